import Foundation
import X2BABI
import X2BIR
import X2BPlan

/// A map as the bundle declares it: in the C source, in the manifest, and with
/// its image.
public struct MapSpec: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case hash, array, lpmTrie = "lpm_trie", percpuArray = "percpu_array", progArray = "prog_array", skStorage = "sk_storage"
        case lruHash = "lru_hash"
    }

    public var name: String
    public var kind: Kind
    public var keyType: String
    public var valueType: String
    public var keySize: Int
    public var valueSize: Int
    public var maxEntries: Int
    public var image: MapImage?
    public var serves: String
}

/// A program as the bundle declares it.
public struct ProgramSpec: Sendable, Hashable {
    public enum Attach: String, Sendable {
        case none, connect4 = "cgroup_inet4_connect", connect6 = "cgroup_inet6_connect"
        case getpeername4 = "cgroup_inet4_getpeername", getpeername6 = "cgroup_inet6_getpeername"
        case sockOps = "cgroup_sock_ops"
    }

    public var name: String
    public var section: String
    public var attach: Attach
    public var serves: String
}

public struct TailCallSpec: Sendable, Hashable {
    public var progArray: String
    public var slot: UInt32
    public var program: String
}

/// The emitted C source and everything the manifest says about it.
public struct EmittedSource: Sendable {
    public var source: String
    /// `x2b_routes.h` (HTTP route tables and matchers), nil without HTTP listeners.
    public var routesHeader: String?
    public var maps: [MapSpec]
    public var programs: [ProgramSpec]
    public var tailCalls: [TailCallSpec]
}

/// Emit: BundlePlan → `x2b.bpf.c` text, map specs and images.
public enum CEmitter {
    /// Capacity classes keep the C source stable across small table changes
    /// (an endpoint-only update then reuses the compiled object).
    static func capacity(_ n: Int) -> Int {
        var c = 8
        while c < n { c *= 2 }
        return c
    }

    /// Endpoint and LB-table arrays leave room for an in-place update
    /// (`xds2bpf-loader update` writes a cluster's new rows beside the old
    /// ones before it switches): twice what is used, plus a little, up to 4M
    /// spare slots; a delta that does not fit becomes a full replace.
    static func headroomCapacity(_ used: Int) -> Int {
        capacity(used + max(16, min(used, 1 << 22)))
    }

    public static func maps(for plan: BundlePlan) -> [MapSpec] {
        let lsn = MapImageEncoder.listeners(plan)
        let lsnx = MapImageEncoder.exactListeners(plan)
        let lsnf = MapImageEncoder.listenerFilter(plan)
        let active = MapImageEncoder.activeCounts(plan)
        let act = MapImageEncoder.actions(plan)
        let wcl = MapImageEncoder.weightedClusters(plan)
        let clu = MapImageEncoder.clusters(plan)
        let ep = MapImageEncoder.endpoints(plan)
        let tab = MapImageEncoder.slots(plan)
        let lb = ABILayout.size
        return [
            MapSpec(
                name: "x2b_lsnx", kind: .hash, keyType: "struct x2b_lsn_key", valueType: "__u32", keySize: lb("x2b_lsn_key"), valueSize: 4,
                maxEntries: capacity(lsnx.entries), image: lsnx, serves: "listener match: exact listener addresses"),
            MapSpec(
                name: "x2b_lsnf", kind: .array, keyType: "__u32", valueType: "__u32", keySize: 4, valueSize: 4,
                maxEntries: Int(ABI.listenerFilterWords), image: lsnf,
                serves: "listener match: IPv4 /16s some listener row covers (one bit each)"),
            MapSpec(
                name: "x2b_lsn", kind: .lpmTrie, keyType: "struct x2b_lsn_key", valueType: "__u32", keySize: lb("x2b_lsn_key"), valueSize: 4,
                maxEntries: capacity(lsn.entries), image: lsn, serves: "listener match: destination prefixes and wildcard listeners (longest prefix)"),
            MapSpec(
                name: "x2b_act", kind: .array, keyType: "__u32", valueType: "struct x2b_action", keySize: 4, valueSize: lb("x2b_action"),
                maxEntries: capacity(act.entries), image: act, serves: "filter chain actions"),
            MapSpec(
                name: "x2b_wcl", kind: .array, keyType: "__u32", valueType: "struct x2b_wcluster", keySize: 4, valueSize: lb("x2b_wcluster"),
                maxEntries: capacity(wcl.entries), image: wcl, serves: "weighted clusters, cumulative weights"),
            MapSpec(
                name: "x2b_clu", kind: .array, keyType: "__u32", valueType: "struct x2b_cluster", keySize: 4, valueSize: lb("x2b_cluster"),
                maxEntries: capacity(2 * plan.clusters.count), image: clu, serves: "clusters: LB policy and priority levels, two rows each"),
            MapSpec(
                name: "x2b_cluv", kind: .array, keyType: "__u32", valueType: "__u32", keySize: 4, valueSize: 4,
                maxEntries: capacity(plan.clusters.count), image: nil, serves: "live row of each cluster (0 or 1; flipped by in-place updates)"),
            MapSpec(
                name: "x2b_ep", kind: .array, keyType: "__u32", valueType: "struct x2b_endpoint", keySize: 4, valueSize: lb("x2b_endpoint"),
                maxEntries: headroomCapacity(ep.entries + plan.dnsEndpointReserve), image: ep, serves: "routable endpoints"),
            MapSpec(
                name: "x2b_lbtab", kind: .array, keyType: "__u32", valueType: "struct x2b_slot", keySize: 4, valueSize: lb("x2b_slot"),
                maxEntries: headroomCapacity(tab.entries), image: tab, serves: "round-robin schedules, maglev tables, hash rings"),
            MapSpec(
                name: "x2b_rr", kind: .array, keyType: "__u32", valueType: "__u32", keySize: 4, valueSize: 4,
                maxEntries: capacity(plan.clusters.count), image: nil, serves: "round-robin counters per cluster"),
            MapSpec(
                name: "x2b_active", kind: .hash, keyType: "struct x2b_epkey", valueType: "__u32", keySize: lb("x2b_epkey"), valueSize: 4,
                maxEntries: capacity(active.entries + plan.dnsActiveReserve), image: active, serves: "active connections per least-request endpoint address"),
            MapSpec(
                name: "x2b_orig", kind: .array, keyType: "__u32", valueType: "struct x2b_sock", keySize: 4, valueSize: lb("x2b_sock"),
                maxEntries: Int(ABI.origSlots), image: nil, serves: "dialled service address per socket cookie slot (getpeername)"),
            MapSpec(
                name: "x2b_gstat", kind: .percpuArray, keyType: "__u32", valueType: "__u64", keySize: 4, valueSize: 8,
                maxEntries: Int(ABI.globalCounters), image: nil, serves: "counters: seen, unmatched, no endpoint, family mismatch"),
            MapSpec(
                name: "x2b_lstat", kind: .percpuArray, keyType: "__u32", valueType: "__u64", keySize: 4, valueSize: 8,
                maxEntries: capacity(plan.listeners.count), image: nil, serves: "connects per listener"),
            MapSpec(
                name: "x2b_cstat", kind: .percpuArray, keyType: "__u32", valueType: "__u64", keySize: 4, valueSize: 8,
                maxEntries: capacity(plan.clusters.count), image: nil, serves: "connects per cluster"),
        ]
    }

    public static func emit(_ plan: BundlePlan) -> EmittedSource {
        var maps = maps(for: plan)
        var programs: [ProgramSpec] = []
        // The connect path balances inline (no LB stages): no tail calls. The
        // manifest keeps the table (the loader checks it when there is one).
        let tailCalls: [TailCallSpec] = []
        var p = CPrinter()
        p.print("/* generated by xds2bpf; do not edit. */")
        p.print("/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */")
        // No counts of listeners, clusters or rows here: they are map rows (the
        // manifest lists them), and a change of rows alone must keep this code
        // byte for byte, so that the object cache answers without clang.
        p.comment("Listeners, clusters and endpoints are rows in the maps (manifest.pb lists them).")
        if !plan.benchKnobs.isEmpty {
            p.comment("BENCH-ONLY data-path variant (compile --bench-variant): not for production.")
            for k in plan.benchKnobs { p.print("#define \(k.define) 1") }
        }
        p.print("#include \"x2b_prelude.h\"", "")
        p.comment("Listener rows kept in the LPM trie (prefixes, wildcard listeners); 0: exact listeners only.")
        p.print("#define X2B_LPM_ROWS \(MapImageEncoder.listeners(plan).entries)", "")
        for m in maps {
            emitMap(m, into: &p)
        }
        var routesHeader: String?
        if plan.needsHTTP {
            let routes = HTTPEmitter.emit(plan.http, tlsChooser: TLSEmitter.chooser(plan))
            maps += routes.maps
            routesHeader = routes.header
            p.comment("HTTP route tables and matchers; used per request only in the defer-connect build (X2B_WITH_MODULE).")
            p.print("#include \"\(HTTPEmitter.headerName)\"", "#ifdef X2B_WITH_MODULE", "#include \"x2b_defer.h\"", "#endif")
        }
        p.print("#include \"x2b_runtime.h\"", "")

        for family in [IRFamily.inet4, .inet6] {
            let f = family == .inet4 ? "4" : "6"
            emitMatch(plan, family: family, into: &p)
            // One switch arm per LB policy the bundle uses, each with its policy's
            // code inline (a constant `lb`): no tail call, no state between stages.
            var dispatch = CPrinter()
            dispatch.indent()
            if plan.policies.isEmpty {
                dispatch.print("(void)cluster;")
            } else {
                dispatch.print("switch (slot) {")
                for policy in plan.policies {
                    dispatch.print("case \(CNamer.lbConstant(policy)):")
                    dispatch.withIndentation { d in
                        d.print("return x2b_balance(ctx, c, cluster, \(CNamer.lbConstant(policy)), X2B_FAM_INET\(f));")
                    }
                }
                dispatch.print("}")
            }
            p.append(fragment: render(Templates.text("entry\(f).c"), ["DISPATCH": String(dispatch.content.dropLast())]))
            p.print("")
            programs.append(
                ProgramSpec(
                    name: "x2b_connect\(f)", section: "cgroup/connect\(f)",
                    attach: family == .inet4 ? .connect4 : .connect6,
                    serves: "entry: listener match and routing, \(family == .inet4 ? "IPv4" : "IPv6")"))
        }
        p.append(fragment: Templates.text("peer.c"))
        programs += [
            ProgramSpec(name: "x2b_peer4", section: "cgroup/getpeername4", attach: .getpeername4, serves: "report the dialled service address, IPv4"),
            ProgramSpec(name: "x2b_peer6", section: "cgroup/getpeername6", attach: .getpeername6, serves: "report the dialled service address, IPv6"),
        ]
        if plan.policies.contains(.leastRequest) {
            // Only least request needs connection counts: other bundles keep sockops off every connection.
            p.print("")
            p.append(fragment: Templates.text("sockops.c"))
            programs.append(
                ProgramSpec(
                    name: "x2b_sockops", section: "sockops", attach: .sockOps,
                    serves: "active connection counts for least request"))
        }
        p.print("", "char LICENSE[] SEC(\"license\") = \"Dual BSD/GPL\";")
        return EmittedSource(source: p.content, routesHeader: routesHeader, maps: maps, programs: programs, tailCalls: tailCalls)
    }

    static func emitMap(_ m: MapSpec, into p: inout CPrinter) {
        let type: String =
            switch m.kind {
            case .hash: "BPF_MAP_TYPE_HASH"
            case .array: "BPF_MAP_TYPE_ARRAY"
            case .lpmTrie: "BPF_MAP_TYPE_LPM_TRIE"
            case .percpuArray: "BPF_MAP_TYPE_PERCPU_ARRAY"
            case .progArray: "BPF_MAP_TYPE_PROG_ARRAY"
            case .skStorage: "BPF_MAP_TYPE_SK_STORAGE"
            case .lruHash: "BPF_MAP_TYPE_LRU_HASH"
            }
        p.comment(m.serves.prefix(1).uppercased() + m.serves.dropFirst() + ".")
        p.print("struct {")
        p.withIndentation { p in
            p.print("__uint(type, \(type));")
            if m.kind == .lpmTrie || m.kind == .skStorage { p.print("__uint(map_flags, BPF_F_NO_PREALLOC);") }
            p.print("__type(key, \(m.keyType));", "__type(value, \(m.valueType));")
            if m.kind != .skStorage {
                p.print("__uint(max_entries, \(m.name == "x2b_gstat" ? "X2B_G_COUNT" : String(m.maxEntries)));")
            }
        }
        p.print("} \(m.name) SEC(\".maps\");", "")
    }

    static func hex32(_ bytes: ArraySlice<UInt8>) -> String {
        var v: UInt32 = 0
        for b in bytes { v = v << 8 | UInt32(b) }
        let digits = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }

    static func mask32(_ bits: Int) -> String {
        let m: UInt32 = bits >= 32 ? 0xFFFF_FFFF : bits <= 0 ? 0 : ~(UInt32.max >> UInt32(bits))
        let digits = String(m, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }

    static func emitMatch(_ plan: BundlePlan, family: IRFamily, into p: inout CPrinter) {
        let f = family == .inet4 ? "4" : "6"
        let entries = plan.entries(for: family)
        let ipParam = family == .inet4 ? "__u32 ip" : "const __u32 *ip"
        let inline = plan.inlineMatch[family] ?? true
        if inline {
            p.comment("Listener match, \(family == .inet4 ? "IPv4" : "IPv6"): \(entries.count) rows as straight-line code, longest prefix first.")
        } else {
            p.comment("Listener match, \(family == .inet4 ? "IPv4" : "IPv6"): rows in x2b_lsn (LPM trie).")
        }
        p.print("static __always_inline __u32 x2b_match\(f)(\(ipParam), __u16 port)", "{")
        p.withIndentation { p in
            if plan.benchKnobs.contains(.noListener) {
                p.print("(void)ip;", "(void)port;", "return \(entries.first.map { String($0.action) } ?? "X2B_NO_ACTION");")
                return
            }
            if !inline {
                p.print("return x2b_lookup_listener(X2B_FAM_INET\(f), port, \(family == .inet4 ? "&ip" : "ip"));")
                return
            }
            if entries.isEmpty { p.print("(void)ip;", "(void)port;") }
            for e in entries {
                var conds = ["port == bpf_htons(\(e.port))"]
                let len = e.prefix.prefixLength
                let bytes = e.prefix.address.bytes
                if family == .inet4 {
                    if len == 32 {
                        conds.append("ip == bpf_htonl(\(hex32(bytes[0..<4])))")
                    } else if len > 0 {
                        conds.append("(ip & bpf_htonl(\(mask32(len)))) == bpf_htonl(\(hex32(bytes[0..<4])))")
                    }
                } else {
                    for w in 0..<4 {
                        let bits = min(32, max(0, len - 32 * w))
                        if bits == 0 { continue }
                        let value = hex32(bytes[(4 * w)..<(4 * w + 4)])
                        conds.append(
                            bits == 32
                                ? "ip[\(w)] == bpf_htonl(\(value))"
                                : "(ip[\(w)] & bpf_htonl(\(mask32(bits)))) == bpf_htonl(\(value))")
                    }
                }
                p.comment("\(e.prefix) port \(e.port): \(e.source)")
                p.print("if (\(conds.joined(separator: " && ")))")
                p.withIndentation { $0.print("return \(e.action);") }
            }
            p.print("return X2B_NO_ACTION;")
        }
        p.print("}", "")
    }

    /// `{{KEY}}` substitution in a template; every placeholder must be bound.
    static func render(_ template: String, _ values: [String: String]) -> String {
        var out = template
        for (k, v) in values {
            out = out.replacingOccurrences(of: "{{\(k)}}", with: v)
        }
        precondition(!out.contains("{{"), "unbound template placeholder")
        return out
    }
}
