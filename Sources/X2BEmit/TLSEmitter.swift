import X2BPlan

/// The TLS chain chooser: the plan's TLS tables (Envoy's server-name, transport
/// and ALPN maps of each listener row routed on the ClientHello) as straight-line
/// C, appended to `x2b_routes.h` after `x2b_tls.h`, which parses the ClientHello
/// and calls these four functions. Names are compared by length and FNV-1a 64
/// (`TLSHash`), as the parser computes them.
public enum TLSEmitter {
    /// The chooser, or nil when no listener row needs the ClientHello.
    public static func chooser(_ plan: BundlePlan) -> String? {
        guard !plan.tlsTables.isEmpty else { return nil }
        var p = CPrinter()
        p.comment("TLS passthrough: \(plan.tlsTables.count) listener rows chosen by the ClientHello (server name, transport, ALPN).")
        p.print("#include \"x2b_tls.h\"", "")
        emitGroups(plan, into: &p)
        emitLeaves(plan, into: &p)
        emitPerTable(plan, name: "x2b_tls_catchall", into: &p) { $0.catchAll }
        emitPerTable(plan, name: "x2b_tls_default", into: &p) { $0.defaultAction }
        return p.content
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) + "ULL" }

    /// Server-name key → group, per table (exact names and ".suffix" wildcard keys alike).
    static func emitGroups(_ plan: BundlePlan, into p: inout CPrinter) {
        p.print("static __always_inline __u32 x2b_tls_group(__u32 table, __u32 len, __u64 hash)", "{")
        p.withIndentation { p in
            p.print("(void)len;", "(void)hash;", "switch (table) {")
            for (ti, t) in plan.tlsTables.enumerated() where !t.keys.isEmpty {
                p.print("case \(ti):")
                p.withIndentation { p in
                    p.comment(t.source)
                    for k in t.keys {
                        p.comment(k.name)
                        p.print("if (len == \(k.name.utf8.count) && hash == \(hex(TLSHash.serverName(k.name))))")
                        p.withIndentation { $0.print("return \(k.group);") }
                    }
                    p.print("return X2B_TLS_NOMATCH;")
                }
            }
            p.print("default:")
            p.withIndentation { $0.print("return X2B_TLS_NOMATCH;") }
            p.print("}")
        }
        p.print("}", "")
    }

    static func action(_ a: UInt32?) -> String { a.map(String.init) ?? "X2B_TLS_NOMATCH" }

    /// A group's transport level, then (tls) the first client ALPN value a chain names.
    static func emitLeaves(_ plan: BundlePlan, into p: inout CPrinter) {
        p.print("static __always_inline __u32 x2b_tls_leaf(__u32 group, const struct x2b_hello *h)", "{")
        p.withIndentation { p in
            p.print("switch (group) {")
            for (gi, g) in plan.tlsGroups.enumerated() {
                p.print("case \(gi):")
                p.withIndentation { p in
                    p.comment(g.key.isEmpty ? "chains without server names" : "server name key \(g.key)")
                    p.print("if (h->state != X2B_TLS_HELLO)")
                    p.withIndentation { $0.print("return \(action(g.raw));") }
                    if !g.alpn.isEmpty {
                        p.print("for (__u32 i = 0; i < X2B_TLS_MAX_ALPN; i++) {")
                        p.withIndentation { p in
                            p.print("if (i >= h->nalpn)")
                            p.withIndentation { $0.print("break;") }
                            for a in g.alpn {
                                p.comment(a.name)
                                p.print("if (h->alpn[i].len == \(a.name.utf8.count) && h->alpn[i].hash == \(hex(TLSHash.alpn(a.name))))")
                                p.withIndentation { $0.print("return \(a.action);") }
                            }
                        }
                        p.print("}")
                        p.comment("values past the ones compared might have matched: not judged")
                        p.print("if (h->nalpn > X2B_TLS_MAX_ALPN)")
                        p.withIndentation { $0.print("return X2B_TLS_CLOSE;") }
                    }
                    p.print("return \(action(g.tlsAny));")
                }
            }
            p.print("default:")
            p.withIndentation { $0.print("return X2B_TLS_NOMATCH;") }
            p.print("}")
        }
        p.print("}", "")
    }

    static func emitPerTable(
        _ plan: BundlePlan, name: String, into p: inout CPrinter, _ value: (BundlePlan.TLSTable) -> UInt32?
    ) {
        p.print("static __always_inline __u32 \(name)(__u32 table)", "{")
        p.withIndentation { p in
            p.print("switch (table) {")
            for (ti, t) in plan.tlsTables.enumerated() {
                guard let v = value(t) else { continue }
                p.print("case \(ti):")
                p.withIndentation { $0.print("return \(v);") }
            }
            p.print("default:")
            p.withIndentation { $0.print("return X2B_TLS_NOMATCH;") }
            p.print("}")
        }
        p.print("}", "")
    }
}
