import Codegen
import Foundation

/// The one-screen summaries of `compile` and `inspect`.
enum Summary {
    static func render(_ r: CompileResult, timings: PhaseTimings, output: String) -> String {
        let m = r.manifest
        let mapBytes = r.emitted.maps.reduce(0) { $0 + ($1.image?.bytes.count ?? 0) }
        let routes = r.plan.listeners.filter { $0.kind == "http" }.count
        var out = "bundle \(output)\n"
        out += "  snapshot   \(m.snapshotSha256.prefix(16))\n"
        out += "  listeners  \(r.plan.listeners.count) (\(routes) http), match rows \(r.plan.listenerEntries.count)"
        out += " [\(r.plan.inlineMatch[.inet4] == true ? "inline" : "map") v4, \(r.plan.inlineMatch[.inet6] == true ? "inline" : "map") v6]\n"
        out += "  clusters   \(r.plan.clusters.count), endpoints \(r.plan.endpoints.count), lb policies \(r.plan.policies.map(\.rawValue).joined(separator: ", "))\n"
        out += "  programs   \(m.programs.count): \(m.programs.map(\.name).joined(separator: " "))\n"
        out += "  maps       \(m.maps.count), images \(mapBytes) bytes\n"
        out += "  object     \(r.bundle.files["x2b.bpf.o"]?.count ?? 0) bytes\(r.objectFromCache ? " (cached: clang not run)" : "")\n"
        out += "  time       " + timings.phases.map { "\($0.0) \(String(format: "%.3f", $0.1))s" }.joined(separator: ", ")
        return out
    }

    static func inspect(_ m: Xds2bpf_Bundle_V1_Manifest) -> String {
        var out = "bundle format \(m.formatVersion), abi \(m.abiVersion), xds2bpf \(m.xds2BpfVersion)\n"
        out += "clang: \(m.clangVersion)\n"
        out += "snapshot sha256: \(m.snapshotSha256)\ncode sha256: \(m.codeSha256)\n"
        out += "needs defer-connect module for HTTP: \(m.needsHTTP ? "yes (L4 fallback without it)" : "no")\n"
        out += "programs:\n"
        for p in m.programs {
            out += "  \(p.name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(p.section.padding(toLength: 22, withPad: " ", startingAt: 0)) \(p.serves)\n"
        }
        out += "tail calls:\n"
        for t in m.tailCalls { out += "  \(t.progArray)[\(t.slot)] -> \(t.program)\n" }
        out += "maps:\n"
        for mp in m.maps {
            let bytes = Int(mp.entries) * Int(mp.keySize + mp.valueSize)
            out += "  \(mp.name.padding(toLength: 11, withPad: " ", startingAt: 0)) \(String(describing: mp.kind).padding(toLength: 12, withPad: " ", startingAt: 0)) max \(mp.maxEntries) image \(mp.entries) entries \(bytes) bytes  \(mp.serves)\n"
        }
        out += "listeners:\n"
        for l in m.listeners { out += "  [\(l.index)] \(l.name) \(l.address) \(l.kind)\n" }
        out += "clusters:\n"
        for c in m.clusters { out += "  [\(c.index)] \(c.name) \(c.lbPolicy) \(c.endpoints) endpoints\n" }
        out += "files:\n"
        for f in m.files { out += "  \(f.path) \(f.size) \(f.sha256.prefix(16))\n" }
        return out
    }
}
