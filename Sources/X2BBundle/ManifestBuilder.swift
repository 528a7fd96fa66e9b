import X2BABI
import X2BDiagnostics
import X2BEmit
import X2BIR
import X2BPlan
import X2BProtos

/// The bundle's manifest (`proto/xds2bpf/bundle/v1`): what the loader needs to
/// verify and load a bundle (files and their sha256, programs, maps, tail calls),
/// the listener and cluster indexes it reports against, and the versions.
public enum ManifestBuilder {
    /// Where the bundle came from and what built it.
    public struct Provenance: Sendable {
        /// sha256 over the snapshot's input digests.
        public var snapshotDigest: String
        /// sha256 of the generated `x2b.bpf.c`.
        public var codeDigest: String
        public var compilerVersion: String
        public var clangVersion: String
        /// The front end's diagnostics: its XDS209 warnings are the filters the bundle bypasses.
        public var frontEndDiagnostics: [Diagnostic]

        public init(
            snapshotDigest: String, codeDigest: String, compilerVersion: String, clangVersion: String,
            frontEndDiagnostics: [Diagnostic]
        ) {
            self.snapshotDigest = snapshotDigest
            self.codeDigest = codeDigest
            self.compilerVersion = compilerVersion
            self.clangVersion = clangVersion
            self.frontEndDiagnostics = frontEndDiagnostics
        }
    }

    /// The manifest of `bundle` (every file but the manifest itself already in it).
    public static func manifest(
        plan: BundlePlan, emitted: EmittedSource, bundle: BundleFiles, provenance: Provenance
    ) -> Xds2bpf_Bundle_V1_Manifest {
        var m = Xds2bpf_Bundle_V1_Manifest()
        m.formatVersion = 1
        m.abiVersion = ABI.version
        m.xds2BpfVersion = provenance.compilerVersion
        m.clangVersion = provenance.clangVersion
        m.snapshotSha256 = provenance.snapshotDigest
        m.object = "x2b.bpf.o"
        if bundle.files["x2b_http.bpf.o"] != nil { m.httpObject = "x2b_http.bpf.o" }
        m.codeSha256 = provenance.codeDigest
        m.needsHTTP = plan.needsHTTP
        // What the bundle lets through that the snapshot would deny (only with --unsupported=warn:
        // otherwise XDS209 is an error and no bundle is built).
        m.bypassedFilters = provenance.frontEndDiagnostics.filter { $0.id == DiagnosticID.bypassedFilter.code }.map {
            "\($0.path): \($0.message)"
        }
        // What the bundle refuses because a filter it cannot run guards it (the default: fail closed).
        m.refusedFailClosed = provenance.frontEndDiagnostics.filter { $0.id == DiagnosticID.refusedFailClosed.code }.map {
            "\($0.path): \($0.message)"
        }
        for p in bundle.sortedPaths {
            var f = Xds2bpf_Bundle_V1_File()
            f.path = p
            f.sha256 = sha256Hex(bundle.files[p]!)
            f.size = UInt64(bundle.files[p]!.count)
            m.files.append(f)
        }
        for p in emitted.programs {
            var prog = Xds2bpf_Bundle_V1_Program()
            prog.name = p.name
            prog.section = p.section
            prog.attach =
                switch p.attach {
                case .none: .attachNone
                case .connect4: .cgroupInet4Connect
                case .connect6: .cgroupInet6Connect
                case .getpeername4: .cgroupInet4Getpeername
                case .getpeername6: .cgroupInet6Getpeername
                case .sockOps: .cgroupSockOps
                }
            prog.serves = p.serves
            m.programs.append(prog)
        }
        for s in emitted.maps {
            var map = Xds2bpf_Bundle_V1_Map()
            map.name = s.name
            map.kind =
                switch s.kind {
                case .hash: .hash
                case .array: .array
                case .lpmTrie: .lpmTrie
                case .percpuArray: .percpuArray
                case .progArray: .progArray
                case .skStorage: .skStorage
                case .lruHash: .lruHash
                }
            map.keySize = UInt32(s.keySize)
            map.valueSize = UInt32(s.valueSize)
            map.maxEntries = UInt32(s.maxEntries)
            if let img = s.image, img.entries > 0 {
                map.image = "maps/\(s.name).bin"
                map.entries = UInt32(img.entries)
            }
            map.serves = s.serves
            m.maps.append(map)
        }
        for t in emitted.tailCalls {
            var tc = Xds2bpf_Bundle_V1_TailCall()
            tc.progArray = t.progArray
            tc.slot = t.slot
            tc.program = t.program
            m.tailCalls.append(tc)
        }
        // Built in local arrays and assigned once: the manifest keeps its fields in
        // copy-on-write storage, so appending to `m.listeners` in a loop copies the
        // whole array each time (quadratic at 10k services).
        var listeners: [Xds2bpf_Bundle_V1_Listener] = []
        listeners.reserveCapacity(plan.listeners.count)
        for (i, l) in plan.listeners.enumerated() {
            var li = Xds2bpf_Bundle_V1_Listener()
            li.index = UInt32(i)
            li.name = l.name
            li.address = l.address
            li.kind = l.kind
            listeners.append(li)
        }
        m.listeners = listeners
        var clusters: [Xds2bpf_Bundle_V1_Cluster] = []
        clusters.reserveCapacity(plan.clusters.count)
        var dnsClusters: [Xds2bpf_Bundle_V1_DnsCluster] = []
        for (i, c) in plan.clusters.enumerated() {
            var ci = Xds2bpf_Bundle_V1_Cluster()
            ci.index = UInt32(i)
            ci.name = c.name
            ci.lbPolicy = c.passthrough ? "original_dst" : c.lb.rawValue
            ci.endpoints = UInt32(c.endpointCount)
            clusters.append(ci)
            if let dns = c.dns {
                var d = Xds2bpf_Bundle_V1_DnsCluster()
                d.cluster = UInt32(i)
                d.name = c.name
                d.logical = dns.logical
                d.lookupFamily = dns.lookupFamily.rawValue
                d.refreshRateMs = dns.refreshRateMs
                d.respectDnsTtl = dns.respectDNSTTL
                d.maxAddresses = dns.maxAddresses
                d.hosts = dns.hosts.map { h in
                    var host = Xds2bpf_Bundle_V1_DnsHost()
                    host.host = h.host
                    host.port = UInt32(h.port)
                    host.weight = h.weight
                    host.priority = h.priority
                    host.locality = h.locality
                    host.unroutable = !h.routable
                    return host
                }
                d.localityWeighted = dns.localityWeighted
                d.overprovisioningFactor = dns.overprovisioningFactor
                d.maglevTableSize = dns.maglevTableSize
                d.ringMinimumSize = dns.ringMinimumSize
                d.ringMaximumSize = dns.ringMaximumSize
                d.localities = dns.localities.map { l in
                    var loc = Xds2bpf_Bundle_V1_DnsLocality()
                    loc.priority = l.priority
                    loc.weight = l.weight ?? 0
                    return loc
                }
                dnsClusters.append(d)
            }
        }
        m.clusters = clusters
        m.dnsClusters = dnsClusters
        // Version 2 only for bundles that need a loader that resolves DNS clusters:
        // an older loader refuses them instead of loading clusters it would never fill.
        if !m.dnsClusters.isEmpty { m.formatVersion = 2 }
        return m
    }
}
