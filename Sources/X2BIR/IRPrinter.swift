import X2BDiagnostics

/// The stable text form of MeshIR (`xds2bpf dump-ir`), golden-tested: one line
/// per entity, two-space indentation, quoted names, canonical order.
public enum IRPrinter {
    public static func render(_ ir: MeshIR) -> String {
        var out = "# MeshIR: \(ir.listeners.count) listeners, \(ir.routeTables.count) route tables, \(ir.clusters.count) clusters\n"
        for l in ir.listeners {
            out += "listener \(q(l.name)) \(l.endpointText) \(l.direction.rawValue)\n"
            for c in l.chains { out += "  " + chain(c) + "\n" }
            if let d = l.defaultChain { out += "  default " + action(d.action) + "\n" }
        }
        for t in ir.routeTables {
            out += "route_table \(q(t.name))\(t.ignorePortInHostMatching ? " ignore_port" : "")\(table(t))\n"
            for vh in t.virtualHosts {
                out +=
                    "  virtual_host \(q(vh.name)) domains [\(vh.domains.map(q).joined(separator: ", "))]"
                    + (vh.requireTLS == .none ? "" : " require_tls \(vh.requireTLS.rawValue)")
                    + (vh.virtualClusters.isEmpty ? "" : " virtual_clusters [\(vh.virtualClusters.map { q($0.name) }.joined(separator: ", "))]")
                    + mutations(vh.requestHeaders, vh.responseHeaders) + "\n"
                for (i, r) in vh.routes.enumerated() {
                    out += "    route[\(i)]\(r.name.isEmpty ? "" : " " + q(r.name)) \(match(r.match)) -> \(action(r.action))"
                    out += mutations(r.requestHeaders, r.responseHeaders)
                    if !r.notes.isEmpty { out += "  ; " + notes(r.notes) }
                    out += "\n"
                }
            }
        }
        for c in ir.clusters {
            var flags: [String] = []
            if c.originalDestination { flags.append("original_dst") }
            if c.localityWeighted { flags.append("locality_weighted") }
            if c.overprovisioningFactor != 140 { flags.append("overprovisioning \(c.overprovisioningFactor)") }
            if c.lb == .maglev { flags.append("table_size \(c.maglevTableSize)") }
            if c.lb == .ringHash { flags.append("ring \(c.ringMinimumSize)..\(c.ringMaximumSize)") }
            out += "cluster \(q(c.name)) \(c.lb.rawValue)\(flags.isEmpty ? "" : " " + flags.joined(separator: " "))\n"
            if let d = c.dns {
                let ttl = d.respectDNSTTL ? " respect_ttl" : ""
                out += "  dns \(d.logical ? "logical" : "strict") \(d.lookupFamily.rawValue) refresh \(d.refreshRateMs)ms\(ttl)\n"
                for h in d.hosts {
                    out += "    host \(q(h.host)):\(h.port) weight \(h.weight) priority \(h.priority)\n"
                }
            }
            for p in c.priorities {
                out += "  priority \(p.level)\n"
                for loc in p.localities {
                    out += "    locality \(loc.label)\(loc.weight.map { " weight \($0)" } ?? "")\n"
                    for e in loc.endpoints {
                        out += "      endpoint \(e.text) weight \(e.weight) \(e.health.rawValue)\n"
                    }
                }
            }
        }
        return out
    }

    static func q(_ s: String) -> String { ResourcePath.quoted(s) }

    /// Table options beyond the defaults (nothing for a plain table).
    static func table(_ t: IRRouteTable) -> String {
        var parts: [String] = []
        if let h = t.vhostHeader { parts.append("vhost_header \(q(h))") }
        if t.ignorePathParameters { parts.append("ignore_path_parameters") }
        if t.hostNormalization.stripTrailingDot { parts.append("strip_trailing_host_dot") }
        switch t.hostNormalization.stripPort {
        case .none: break
        case .any: parts.append("strip_any_host_port")
        case .matching(let p): parts.append("strip_host_port \(p)")
        }
        if t.pathNormalization.normalizePath { parts.append("normalize_path") }
        if t.pathNormalization.mergeSlashes { parts.append("merge_slashes") }
        if t.pathNormalization.escapedSlashes != .keep { parts.append("escaped_slashes \(t.pathNormalization.escapedSlashes.rawValue)") }
        if t.mostSpecificHeaderMutationsWins { parts.append("most_specific_header_mutations_wins") }
        if !t.internalOnlyHeaders.isEmpty { parts.append("internal_only [\(t.internalOnlyHeaders.map(q).joined(separator: ", "))]") }
        let m = mutations(t.requestHeaders, t.responseHeaders)
        return (parts.isEmpty ? "" : " " + parts.joined(separator: " ")) + m
    }

    static func mutations(_ req: IRHeaderMutation, _ resp: IRHeaderMutation) -> String {
        func one(_ m: IRHeaderMutation) -> String {
            (m.add.map { "+\(q($0.key))=\(q($0.value))\($0.action == .appendIfExistsOrAdd ? "" : " " + $0.action.rawValue)" }
                + m.remove.map { "-\(q($0))" }).joined(separator: " ")
        }
        var out = ""
        if !req.isEmpty { out += " request_headers {\(one(req))}" }
        if !resp.isEmpty { out += " response_headers {\(one(resp))}" }
        return out
    }

    static func chain(_ c: IRFilterChain) -> String {
        var parts: [String] = []
        if let p = c.match.destinationPort { parts.append("port \(p)") }
        if !c.match.prefixRanges.isEmpty { parts.append("prefix [\(c.match.prefixRanges.map(\.description).joined(separator: ", "))]") }
        if !c.match.serverNames.isEmpty { parts.append("server_names [\(c.match.serverNames.map(q).joined(separator: ", "))]") }
        if !c.match.transportProtocol.isEmpty { parts.append("transport \(c.match.transportProtocol)") }
        if !c.match.applicationProtocols.isEmpty {
            parts.append("alpn [\(c.match.applicationProtocols.map(q).joined(separator: ", "))]")
        }
        let name = c.name.isEmpty ? "" : " \(q(c.name))"
        return "chain\(name) {\(parts.joined(separator: ", "))} -> \(action(c.action))"
    }

    public static func action(_ a: IRChainAction) -> String {
        switch a {
        case .cluster(let c): "cluster \(q(c))"
        case .weighted(let w): "weighted [\(w.map { "\(q($0.cluster)) \($0.weight)" }.joined(separator: ", "))]"
        case .http(let t): "http route_table \(q(t))"
        case .pass(let why): "pass (\(why))"
        case .refuse(let because): "refuse (\(because))"
        }
    }

    static func string(_ s: IRStringMatch) -> String {
        switch s {
        case .exact(let v): "exact \(q(v))"
        case .prefix(let v): "prefix \(q(v))"
        case .suffix(let v): "suffix \(q(v))"
        case .contains(let v): "contains \(q(v))"
        case .regex(let v): "regex \(q(v))"
        }
    }

    public static func match(_ m: IRRouteMatch) -> String {
        var parts: [String] = []
        switch m.path {
        case .prefix(let p): parts.append("prefix \(q(p))")
        case .exact(let p): parts.append("path \(q(p))")
        case .separatedPrefix(let p): parts.append("path_separated_prefix \(q(p))")
        case .regex(let r): parts.append("regex \(q(r))")
        }
        if !m.caseSensitive { parts.append("case_insensitive") }
        for h in m.headers {
            var t = "header \(q(h.name)) "
            switch h.kind {
            case .string(let s, let ic): t += string(s) + (ic ? " ignore_case" : "")
            case .present(let p): t += p ? "present" : "absent"
            case .range(let lo, let hi): t += "range [\(lo), \(hi))"
            case .anyValue: t += "any_value"
            }
            if h.invert { t += " invert" }
            if h.treatMissingAsEmpty { t += " missing_as_empty" }
            parts.append(t)
        }
        for qp in m.queryParameters {
            parts.append("query \(q(qp.name)) " + (qp.value.map(string) ?? "present") + (qp.ignoreCase ? " ignore_case" : ""))
        }
        if m.grpcOnly { parts.append("grpc") }
        if let f = m.runtimeFraction {
            parts.append("runtime_fraction \(f.numerator)/\(f.denominator)" + (f.runtimeKey.isEmpty ? "" : " key \(q(f.runtimeKey))"))
        }
        for d in m.dynamicMetadata {
            parts.append("metadata \(q(d.filter))\(d.path.map { "." + $0 }.joined()) \(value(d.value))" + (d.invert ? " invert" : ""))
        }
        return parts.joined(separator: " ")
    }

    static func value(_ v: IRValueMatch) -> String {
        switch v {
        case .null: "null"
        case .bool(let b): "bool \(b)"
        case .present(let p): p ? "present" : "present false"
        case .string(let s, let ic): string(s) + (ic ? " ignore_case" : "")
        case .doubleExact(let d): "double \(d)"
        case .doubleRange(let lo, let hi): "double [\(lo), \(hi))"
        case .list(let one): "list one_of (\(value(one)))"
        case .or(let vs): "or (\(vs.map(value).joined(separator: " | ")))"
        }
    }

    public static func action(_ a: IRRouteAction) -> String {
        switch a {
        case .cluster(let c): "cluster \(q(c))"
        case .clusterHeader(let h): "cluster_header \(q(h))"
        case .weighted(let w, let total): "weighted/\(total) [\(w.map { "\(q($0.cluster)) \($0.weight)" }.joined(separator: ", "))]"
        case .redirect(let r):
            "redirect \(r.responseCode)"
                + [
                    r.scheme.map { " scheme \($0)" }, r.host.map { " host \(q($0))" },
                    r.port.map { " port \($0)" }, r.path.map { " path \(q($0))" },
                    r.prefixRewrite.map { " prefix_rewrite \(q($0))" },
                    r.regexRewrite.map { " regex_rewrite \(q($0.pattern)) \(q($0.substitution))" },
                ].compactMap { $0 }.joined()
                + (r.stripQuery ? " strip_query" : "")
        case .directResponse(let s, let body): "direct_response \(s)" + (body.map { " body \(q(String($0.prefix(40))))" } ?? "")
        case .nonForwarding: "non_forwarding"
        case .guarded(let filters): "refuse (guarded by \(filters.map(q).joined(separator: ", ")), which the kernel cannot run)"
        }
    }

    public static func notes(_ n: IRRouteNotes) -> String {
        var parts: [String] = []
        if let t = n.timeout { parts.append("timeout \(t)") }
        if let r = n.retries { parts.append("retries \(r)") }
        if let p = n.prefixRewrite { parts.append("prefix_rewrite \(q(p))") }
        if let h = n.hostRewrite { parts.append("host_rewrite \(q(h))") }
        if let h = n.hostRewriteHeader { parts.append("host_rewrite_header \(q(h))") }
        if let r = n.regexRewrite { parts.append("regex_rewrite \(q(r.pattern)) \(q(r.substitution))") }
        parts += n.other
        return "not enforced: " + parts.joined(separator: ", ")
    }
}
