import X2BABI
import X2BDiagnostics
import X2BPlan

/// Emit the HTTP plan: the generated header `x2b_routes.h` (map definitions,
/// the runtime's `x2b_http.h`, straight-line route scans) and the map images.
///
/// The connect path includes `x2b_routes.h` and calls
/// `x2b_http_route(req, table)`; the test harness includes the same text with
/// `X2B_TEST_RANDOM` defined, so what route-check proves is what the bundle runs.
public enum HTTPEmitter {
    /// The generated header and the maps it declares (in the manifest).
    public struct Output: Sendable {
        public var header: String
        public var maps: [MapSpec]
    }

    public static let headerName = "x2b_routes.h"
    /// sizeof(struct x2b_hparse) in x2b_http.h (asserted there).
    public static let parseScratchSize = 1448

    public static func maps(for plan: HTTPPlan) -> [MapSpec] {
        let lb = ABILayout.size
        let tab = HTTPMapImages.tables(plan)
        let dom = HTTPMapImages.domains(plan)
        let vh = HTTPMapImages.vhosts(plan)
        let rt = HTTPMapImages.routes(plan)
        let cond = HTTPMapImages.conds(plan)
        let wcl = HTTPMapImages.weighted(plan)
        let cn = HTTPMapImages.clusterNames(plan)
        let dfa = HTTPMapImages.automata(plan)
        let cls = HTTPMapImages.classMaps(plan)
        let tr = HTTPMapImages.transitions(plan)
        let pix = HTTPMapImages.pathIndexes(plan)
        let cand = HTTPMapImages.candidates(plan)
        func cap(_ n: Int) -> Int { CEmitter.capacity(n) }
        return [
            MapSpec(
                name: "x2b_hreq", kind: .percpuArray, keyType: "__u32", valueType: "struct x2b_req", keySize: 4,
                valueSize: lb("x2b_req"), maxEntries: 1, image: nil, serves: "HTTP request head of the current connect (filled by the module)"),
            MapSpec(
                name: "x2b_hscr", kind: .percpuArray, keyType: "__u32", valueType: "struct x2b_hparse", keySize: 4,
                valueSize: parseScratchSize, maxEntries: 1, image: nil, serves: "HTTP request head index (parse scratch)"),
            MapSpec(
                name: "x2b_hres", kind: .percpuArray, keyType: "__u32", valueType: "struct x2b_hresult", keySize: 4,
                valueSize: lb("x2b_hresult"), maxEntries: 1, image: nil, serves: "the last HTTP routing decision and why"),
            MapSpec(
                name: "x2b_htab", kind: .array, keyType: "__u32", valueType: "struct x2b_htable", keySize: 4,
                valueSize: lb("x2b_htable"), maxEntries: cap(tab.entries), image: tab, serves: "HTTP route tables: host handling, wildcard lengths"),
            MapSpec(
                name: "x2b_hdom", kind: .hash, keyType: "struct x2b_hdom_key", valueType: "__u32", keySize: lb("x2b_hdom_key"), valueSize: 4,
                maxEntries: cap(dom.entries), image: dom, serves: "virtual host domains by hash (exact, *suffix, prefix*)"),
            MapSpec(
                name: "x2b_hvh", kind: .array, keyType: "__u32", valueType: "struct x2b_hvhost", keySize: 4,
                valueSize: lb("x2b_hvhost"), maxEntries: cap(vh.entries), image: vh, serves: "virtual hosts: route ranges, require_tls"),
            MapSpec(
                name: "x2b_hrt", kind: .array, keyType: "__u32", valueType: "struct x2b_hroute", keySize: 4,
                valueSize: lb("x2b_hroute"), maxEntries: cap(rt.entries), image: rt, serves: "routes: condition ranges and actions"),
            MapSpec(
                name: "x2b_hcond", kind: .array, keyType: "__u32", valueType: "struct x2b_hcond", keySize: 4,
                valueSize: lb("x2b_hcond"), maxEntries: cap(cond.entries), image: cond, serves: "route conditions (path, headers, query, fractions)"),
            MapSpec(
                name: "x2b_hwcl", kind: .array, keyType: "__u32", valueType: "struct x2b_hwcluster", keySize: 4,
                valueSize: lb("x2b_hwcluster"), maxEntries: cap(wcl.entries), image: wcl, serves: "weighted clusters of HTTP routes"),
            MapSpec(
                name: "x2b_hcn", kind: .hash, keyType: "struct x2b_hcn_key", valueType: "__u32", keySize: lb("x2b_hcn_key"), valueSize: 4,
                maxEntries: cap(cn.entries), image: cn, serves: "cluster ids by name (cluster_header)"),
            MapSpec(
                name: "x2b_dfa", kind: .array, keyType: "__u32", valueType: "struct x2b_dfa", keySize: 4,
                valueSize: lb("x2b_dfa"), maxEntries: cap(dfa.entries), image: dfa, serves: "string matchers and regexes as automata"),
            MapSpec(
                name: "x2b_dcls", kind: .array, keyType: "__u32", valueType: "struct x2b_dcls", keySize: 4,
                valueSize: lb("x2b_dcls"), maxEntries: cap(cls.entries), image: cls, serves: "automaton byte classes"),
            MapSpec(
                name: "x2b_dtr", kind: .array, keyType: "__u32", valueType: "__u32", keySize: 4, valueSize: 4,
                maxEntries: cap(tr.entries), image: tr, serves: "automaton transitions"),
            MapSpec(
                name: "x2b_hpix", kind: .array, keyType: "__u32", valueType: "struct x2b_hpindex", keySize: 4,
                valueSize: lb("x2b_hpindex"), maxEntries: cap(pix.entries), image: pix, serves: "path index of each virtual host"),
            MapSpec(
                name: "x2b_hcand", kind: .array, keyType: "__u32", valueType: "struct x2b_hcand", keySize: 4,
                valueSize: lb("x2b_hcand"), maxEntries: cap(cand.entries), image: cand, serves: "candidate routes per path index state"),
        ]
    }

    /// `tlsChooser`: TLSEmitter's chooser, included after the HTTP runtime with its map.
    public static func emit(_ plan: HTTPPlan, tlsChooser: String? = nil) -> Output {
        var maps = maps(for: plan)
        if tlsChooser != nil { maps.append(TLSEmitter.helloMap) }
        var p = CPrinter()
        p.print("/* generated by xds2bpf; do not edit. */")
        p.print("/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */")
        // Virtual hosts, routes and conditions are map rows: not counted here (see CEmitter).
        p.comment("Source: \(plan.tables.count) route tables, \(plan.automata.count) automata")
        p.comment("HTTP routing: include after x2b_prelude.h; call x2b_http_route(req, table).")
        p.print("#ifndef X2B_ROUTES_H", "#define X2B_ROUTES_H", "")
        for m in maps { CEmitter.emitMap(m, into: &p) }
        p.print("#ifdef X2B_TEST_RANDOM")
        p.comment("Test harness: the random value and the active runtime key of the next decision.")
        p.print("struct x2b_htest {")
        p.withIndentation { $0.print("__u32 random;", "__u32 runtime;") }
        p.print("};", "")
        p.print("struct {")
        p.withIndentation { p in
            p.print(
                "__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);", "__type(key, __u32);", "__type(value, struct x2b_htest);",
                "__uint(max_entries, 1);")
        }
        p.print("} x2b_htst SEC(\".maps\");", "#endif", "")
        p.print("#include \"x2b_http.h\"", "")
        emitScan(plan, into: &p)
        if let tlsChooser { p.append(fragment: tlsChooser) }
        p.print("#endif /* X2B_ROUTES_H */")
        return Output(header: p.content, maps: maps)
    }

    /// Straight-line route scans for the virtual hosts the planner inlined; the
    /// others return X2B_HTTP_SCAN_MAPS and are scanned from the maps. In a virtual
    /// host with a path index, a route is tested only when its candidate bit is set.
    static func emitScan(_ plan: HTTPPlan, into p: inout CPrinter) {
        let inlined = plan.vhosts.enumerated().filter(\.element.inline)
        p.comment("Route scans as straight-line code: \(inlined.count) virtual hosts (the others from the maps).")
        p.print("static __always_inline __u32 x2b_http_scan_inline(struct x2b_req *req, __u32 vhost)", "{")
        p.withIndentation { p in
            if inlined.isEmpty {
                p.print("(void)req;", "(void)vhost;", "return X2B_HTTP_SCAN_MAPS;")
                return
            }
            p.print("switch (vhost) {")
            for (vi, vh) in inlined {
                p.print("case \(vi): {")
                p.withIndentation { p in
                    p.comment("\(vh.source) \(ResourcePath.quoted(vh.name))")
                    if vh.indexed { p.print("__u64 cand = x2b_http_cand_word(req, \(vi));", "") }
                    var unconditional = false
                    for ri in 0..<Int(vh.routeCount) {
                        let gi = Int(vh.firstRoute) + ri
                        let r = plan.routes[gi]
                        if r.never { continue }
                        p.comment("routes[\(ri)] \(r.summary)")
                        // Indexed: the route's candidate bit first (its path condition may
                        // be left to the index); the planner inlines at most 64 such routes.
                        let bit = vh.indexed ? [r.condCount == 0 ? "cand & (1ULL << \(ri))" : "(cand & (1ULL << \(ri)))"] : []
                        if r.condCount == 0 && bit.isEmpty {
                            p.print("return \(gi);")
                            unconditional = true
                            break
                        }
                        let conds = bit + (0..<Int(r.condCount)).map { "x2b_http_cond(req, \(Int(r.firstCond) + $0))" }
                        p.print("if (\(conds.joined(separator: " &&\n    ")))")
                        p.withIndentation { $0.print("return \(gi);") }
                    }
                    if !unconditional { p.print("return X2B_HTTP_NONE;") }
                }
                p.print("}")
            }
            p.print("default:")
            p.withIndentation { $0.print("return X2B_HTTP_SCAN_MAPS;") }
            p.print("}")
        }
        p.print("}", "")
    }
}

/// Map images of the HTTP plan (layouts: bpf-runtime/abi/x2b_abi.h, ABILayout).
public enum HTTPMapImages {
    public static func tables(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_htable"))
        for (i, t) in plan.tables.enumerated() {
            var v = ByteWriter()
            v.u32(t.flags)
            v.u16le(t.stripPort)
            v.u16le(0)
            v.u32(t.defaultVHost)
            v.u32(0)
            v.u64(t.vhostHeader)
            for x in t.suffixLengths { v.u64(x) }
            for x in t.prefixLengths { v.u64(x) }
            img.append(index: i, value: v.bytes)
        }
        return img
    }

    public static func domainKey(_ d: HTTPPlan.Domain) -> [UInt8] {
        var k = ByteWriter()
        k.u32(d.table)
        k.u16le(d.kind)
        k.u16le(d.length)
        k.u64(d.hash)
        return k.bytes
    }

    public static func domains(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: ABILayout.size("x2b_hdom_key"), valueSize: 4)
        for d in plan.domains {
            var v = ByteWriter()
            v.u32(d.vhost)
            img.append(key: domainKey(d), value: v.bytes)
        }
        return img
    }

    public static func vhosts(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_hvhost"))
        for (i, vh) in plan.vhosts.enumerated() {
            var v = ByteWriter()
            v.u32(vh.firstRoute)
            v.u32(vh.routeCount)
            v.u32(vh.tls)
            v.u32(vh.index)
            img.append(index: i, value: v.bytes)
        }
        return img
    }

    public static func routes(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_hroute"))
        for (i, r) in plan.routes.enumerated() {
            var v = ByteWriter()
            v.u32(r.firstCond)
            v.u16le(r.condCount)
            v.u16le(r.action.rawValue)
            v.u32(r.arg)
            v.u32(r.count)
            v.u32(r.total)
            v.u32(r.index)
            v.u64(r.hash)
            img.append(index: i, value: v.bytes)
        }
        return img
    }

    public static func conds(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_hcond"))
        for (i, c) in plan.conds.enumerated() {
            var v = ByteWriter()
            v.u8(c.op.rawValue)
            v.u8(c.source.rawValue)
            v.u8(c.flags)
            v.u8(0)
            v.u32(c.dfa)
            v.u64(c.hash)
            v.u64(UInt64(bitPattern: c.lo))
            v.u64(UInt64(bitPattern: c.hi))
            img.append(index: i, value: v.bytes)
        }
        return img
    }

    public static func weighted(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_hwcluster"))
        for (i, w) in plan.weighted.enumerated() {
            var v = ByteWriter()
            v.u32(w.cumWeight)
            v.u32(w.cluster)
            img.append(index: i, value: v.bytes)
        }
        return img
    }

    public static func clusterNames(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: ABILayout.size("x2b_hcn_key"), valueSize: 4)
        for n in plan.clusterNames {
            var k = ByteWriter()
            k.u64(n.hash)
            k.u32(n.length)
            k.u32(0)
            var v = ByteWriter()
            v.u32(n.cluster)
            img.append(key: k.bytes, value: v.bytes)
        }
        return img
    }

    public static func automata(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_dfa"))
        for (i, a) in plan.automata.enumerated() {
            var v = ByteWriter()
            v.u32(a.transitions)
            v.u32(a.classMap)
            v.u16le(a.classCount)
            v.u16le(a.startFlags)
            img.append(index: i, value: v.bytes)
        }
        return img
    }

    public static func pathIndexes(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_hpindex"))
        for (i, x) in plan.pathIndexes.enumerated() {
            var v = ByteWriter()
            v.u32(x.dfa)
            v.u32(x.candidates)
            img.append(index: i, value: v.bytes)
        }
        return img
    }

    public static func candidates(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_hcand"))
        for (i, row) in plan.candidates.enumerated() {
            var v = ByteWriter()
            for w in row { v.u64(w) }
            img.append(index: i, value: v.bytes)
        }
        return img
    }

    public static func classMaps(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_dcls"))
        for (i, m) in plan.classMaps.enumerated() { img.append(index: i, value: m) }
        return img
    }

    public static func transitions(_ plan: HTTPPlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: 4)
        img.bytes.reserveCapacity(plan.transitions.count * 8)
        for (i, t) in plan.transitions.enumerated() {
            var v = ByteWriter()
            v.u32(t)
            img.append(index: i, value: v.bytes)
        }
        return img
    }
}
