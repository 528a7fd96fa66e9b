import X2BProtos

/// Human-readable rendering of a bundle manifest (`xds2bpf inspect`, goldens).
public enum ManifestText {
    /// `stable`: leave out what depends on the toolchain (clang version, the
    /// object's bytes), so goldens survive a compiler upgrade.
    public static func render(_ m: Xds2bpf_Bundle_V1_Manifest, stable: Bool = false) -> String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        var out = "bundle format \(m.formatVersion), abi \(m.abiVersion), xds2bpf \(m.xds2BpfVersion)\n"
        if !stable { out += "clang: \(m.clangVersion)\n" }
        out += "snapshot sha256: \(m.snapshotSha256)\ncode sha256: \(m.codeSha256)\n"
        out += "needs defer-connect module for HTTP: \(m.needsHTTP ? "yes (L4 fallback without it)" : "no")\n"
        if !m.bypassedFilters.isEmpty {
            out += "NOT ENFORCED, filters that can deny traffic (--unsupported=warn):\n"
            for f in m.bypassedFilters { out += "  \(f)\n" }
        }
        if !m.refusedFailClosed.isEmpty {
            out += "REFUSED (fail closed), what needs filters or TLS termination the kernel cannot run:\n"
            for f in m.refusedFailClosed { out += "  \(f)\n" }
        }
        out += "programs:\n"
        for p in m.programs {
            out += "  \(pad(p.name, 16))\(pad(p.section, 22))\(pad(attachName(p.attach), 14))\(p.serves)\n"
        }
        out += "tail calls:\n"
        for t in m.tailCalls { out += "  \(t.progArray)[\(t.slot)] -> \(t.program)\n" }
        out += "maps:\n"
        for mp in m.maps {
            let bytes = Int(mp.entries) * Int(mp.keySize + mp.valueSize)
            out +=
                "  \(pad(mp.name, 11))\(pad(kindName(mp.kind), 13))key \(pad(String(mp.keySize), 3))value \(pad(String(mp.valueSize), 4))max \(pad(String(mp.maxEntries), 8))"
            out += mp.image.isEmpty ? "no image     " : "\(pad(String(mp.entries), 6))entries \(bytes) bytes "
            out += " \(mp.serves)\n"
        }
        out += "listeners:\n"
        for l in m.listeners { out += "  [\(l.index)] \(l.name) \(l.address) \(l.kind)\n" }
        out += "clusters:\n"
        for c in m.clusters { out += "  [\(c.index)] \(c.name) \(c.lbPolicy) \(c.endpoints) endpoints\n" }
        if !m.dnsClusters.isEmpty {
            out += "dns clusters (resolved by the loader on the node):\n"
            for d in m.dnsClusters {
                out += "  [\(d.cluster)] \(d.name) \(d.logical ? "logical" : "strict") \(d.lookupFamily) refresh \(d.refreshRateMs)ms"
                out += "\(d.respectDnsTtl ? " respect_dns_ttl" : "") up to \(d.maxAddresses) addresses a name"
                out += "\(d.localityWeighted ? " locality-weighted" : "") overprovisioning \(d.overprovisioningFactor)%\n"
                for h in d.hosts {
                    // The locality's weight, when the manifest has localities (an older one has none).
                    let weight = Int(h.locality) < d.localities.count ? d.localities[Int(h.locality)].weight : 0
                    let locality = Int(h.locality) < d.localities.count ? " locality \(h.locality)\(weight > 0 ? " (weight \(weight))" : "")" : ""
                    out += "    \(h.host):\(h.port) weight \(h.weight) priority \(h.priority)\(locality)\(h.unroutable ? " unroutable" : "")\n"
                }
            }
        }
        out += "files:\n"
        for f in m.files {
            if stable, f.path.hasSuffix(".o") {
                out += "  \(f.path)\n"
            } else {
                out += "  \(pad(f.path, 24))\(pad(String(f.size), 8))\(f.sha256)\n"
            }
        }
        return out
    }

    static func attachName(_ a: Xds2bpf_Bundle_V1_AttachKind) -> String {
        switch a {
        case .attachNone: "tail-call"
        case .cgroupInet4Connect: "connect4"
        case .cgroupInet6Connect: "connect6"
        case .cgroupInet4Getpeername: "getpeername4"
        case .cgroupInet6Getpeername: "getpeername6"
        case .cgroupSockOps: "sock_ops"
        default: "unknown"
        }
    }

    static func kindName(_ k: Xds2bpf_Bundle_V1_MapKind) -> String {
        switch k {
        case .hash: "hash"
        case .array: "array"
        case .lpmTrie: "lpm_trie"
        case .percpuArray: "percpu_array"
        case .progArray: "prog_array"
        case .skStorage: "sk_storage"
        case .lruHash: "lru_hash"
        default: "unknown"
        }
    }
}
