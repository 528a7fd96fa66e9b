import Foundation

extension RoutingDiff {
    /// The readable report: changes grouped by service address (in address order), each
    /// with its example and the `xds2bpf explain` line that shows it on one side.
    public var text: String {
        guard changed else { return "routing unchanged\n" }
        var out = ""
        var services: [String] = []
        var byService: [String: [Change]] = [:]
        for c in changes {
            if byService[c.service] == nil { services.append(c.service) }
            byService[c.service, default: []].append(c)
        }
        for s in services {
            out += "\(s)\n"
            for c in byService[s]! {
                switch c.kind {
                case .connect:
                    out += "  connect \(c.example.dst)\n"
                case .request:
                    let headers = (c.example.headers ?? []).map { "\($0[0]): \($0[1])" }
                    let extra = headers.isEmpty ? "" : "  [" + headers.joined(separator: "; ") + "]"
                    let random = c.example.random == 0 ? "" : "  (random \(c.example.random))"
                    out += "  \(c.example.method ?? "GET") http://\(c.host ?? "")\(c.example.path ?? "/")\(extra)\(random)"
                    out += c.evidence > 1 ? "  (\(c.evidence) candidate requests)\n" : "\n"
                }
                out += "    old: \(Self.render(c.old))\n"
                out += "    new: \(Self.render(c.new))\n"
            }
        }
        let n = changes.count
        out += "\(n) change\(n == 1 ? "" : "s") in \(services.count) service address\(services.count == 1 ? "" : "es")\n"
        return out
    }

    static func render(_ s: Side) -> String {
        var t = s.decision
        if !s.endpoints.isEmpty {
            t +=
                " -> "
                + s.endpoints.map { "\($0.endpoint) \(String(format: "%.1f", $0.share))%" + ($0.priority > 0 ? " p\($0.priority)" : "") }
                .joined(separator: ", ")
        } else if s.outcome != "redirect" {
            t += " [\(s.outcome)]"
        }
        return t
    }
}
