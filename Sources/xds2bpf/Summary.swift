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
        out +=
            "  clusters   \(r.plan.clusters.count), endpoints \(r.plan.endpoints.count), lb policies \(r.plan.policies.map(\.rawValue).joined(separator: ", "))\n"
        out += "  programs   \(m.programs.count): \(m.programs.map(\.name).joined(separator: " "))\n"
        out += "  maps       \(m.maps.count), images \(mapBytes) bytes\n"
        out += "  object     \(r.bundle.files["x2b.bpf.o"]?.count ?? 0) bytes\(r.objectFromCache ? " (cached: clang not run)" : "")\n"
        out += "  time       " + timings.phases.map { "\($0.0) \(String(format: "%.3f", $0.1))s" }.joined(separator: ", ")
        return out
    }
}
