import X2BABI
import X2BIR

/// A map as the bundle declares it, in the C source and in the manifest: the
/// plan decides its kind, layout and capacity; the emitter prints it and encodes
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
    public var serves: String
    /// `BPF_F_MMAPABLE`: the loader writes some of its fields with single stores
    /// (x2b_lsnx's `range`), which a map update does not promise.
    public var mmapable = false
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

/// Every layout decision of one bundle: which rows go to which listener map,
/// every map's kind, layout and capacity, the programs. Computed from the planned tables by `BundleLayout.init(plan)`, after
/// them; the emitters print it and never decide a size.
public struct BundleLayout: Sendable {
    /// A least-request endpoint address: its connection counter in `x2b_active`.
    public struct CountedAddress: Sendable, Hashable {
        public var address: IRAddress
        public var port: UInt16
    }

    /// An exact listener row and its slot in the open-addressed `x2b_lsnx`.
    public struct ListenerSlot: Sendable {
        public var slot: Int
        public var entry: BundlePlan.ListenerEntry
    }

    /// Listener rows looked up by exact address (`x2b_lsnx`: slots laid out
    /// here, one slot read for most lookups; the rows of families matched inline
    /// too, by their slot) and by longest prefix (`x2b_lsn`, for the families
    /// not matched inline).
    public var exactListenerRows: [BundlePlan.ListenerEntry] { exactListenerSlots.map(\.entry) }
    public var exactListenerSlots: [ListenerSlot] = []
    /// Slots of `x2b_lsnx`, a power of two (`X2B_LSNX_MASK` + 1).
    public var exactListenerTableSize = 8
    public var prefixListenerRows: [BundlePlan.ListenerEntry] = []
    /// Addresses sockops counts connections to, each once, in plan order.
    public var countedAddresses: [CountedAddress] = []
    /// Maps declared at the top of `x2b.bpf.c`, in order.
    public var maps: [MapSpec] = []
    /// Maps declared in `x2b_routes.h` (empty without HTTP or TLS rows).
    public var routeMaps: [MapSpec] = []
    /// The LB policies the bundle uses, in ABI order: one switch arm each in
    /// the entry programs, which balance inline (no LB stage, no tail call).
    public var policies: [IRLBPolicy] = []
    /// Whether the sockops program (connection counts) is part of the bundle.
    public var countsConnections = false
    public var programs: [ProgramSpec] = []
    public var tailCalls: [TailCallSpec] = []

    /// Every map of the bundle in the order the manifest lists them.
    public var allMaps: [MapSpec] { maps + routeMaps }

    public init() {}

    /// The layout of `plan`'s tables (everything but `layout` already planned).
    public init(_ plan: BundlePlan) {
        placeListenerRows(plan)
        countAddresses(plan)
        maps = Self.coreMaps(plan, self)
        if plan.needsHTTP {
            routeMaps = plan.http.mapLayout + (plan.tlsTables.isEmpty ? [] : [Self.helloMap])
        }
        layOutPrograms(plan)
    }

    // MARK: Capacities

    /// Capacity classes keep the C source stable across small table changes
    /// (an endpoint-only update then reuses the compiled object).
    public static func capacity(_ n: Int) -> Int {
        var c = 8
        while c < n { c *= 2 }
        return c
    }

    /// Endpoint and LB-table arrays leave room for an in-place update
    /// (`xds2bpf-loader update` writes a cluster's new rows beside the old
    /// ones before it switches): twice what is used, plus a little, up to 4M
    /// spare slots; a delta that does not fit becomes a full replace.
    public static func headroomCapacity(_ used: Int) -> Int {
        capacity(used + max(16, min(used, 1 << 22)))
    }

    /// sizeof(struct x2b_hparse) in x2b_http.h (asserted there; not in the ABI tables yet).
    public static let parseScratchSize = 1448
    /// sizeof(struct x2b_hello) in x2b_tls.h (asserted there; not in the ABI tables yet).
    public static let helloSize = 704

    // MARK: Passes

    /// Listener rows: every full-length address to the exact-address table
    /// (`x2b_lsnx`), whose slot also carries the fast path of a service address;
    /// of the families matched through maps, prefixes and wildcards to the LPM
    /// trie. A family matched by straight-line code names its exact rows' slots
    /// in that code (one array read by a constant index), so small bundles take
    /// the same fast path.
    private mutating func placeListenerRows(_ plan: BundlePlan) {
        var exact: [BundlePlan.ListenerEntry] = []
        let inMaps = { (e: BundlePlan.ListenerEntry) in !(plan.inlineMatch[e.prefix.address.family] ?? false) }
        for e in plan.listenerEntries {
            if e.isExact { exact.append(e) } else if inMaps(e) { prefixListenerRows.append(e) }
        }
        let table = Self.layOutExactRows(exact)
        exactListenerSlots = table.slots
        exactListenerTableSize = table.size
        prefixListenerRows += table.overflow.filter(inMaps)
    }

    /// The `x2b_lsnx` slot of each exact row, for the straight-line match.
    public var slotOfExactRow: [BundlePlan.ListenerEntry: Int] {
        Dictionary(exactListenerSlots.map { ($0.entry, $0.slot) }, uniquingKeysWith: { a, _ in a })
    }

    /// Lays the exact rows out in `x2b_lsnx` by linear probing from
    /// `listenerSlotHash`, in plan order, so that no row is more than
    /// `X2B_LSNX_PROBES - 1` slots from its hash. The table starts at twice the
    /// rows (a load of at most one half) and doubles up to 16 times the rows when a
    /// row does not fit; a row that still does not (never seen: it would take
    /// many keys of one hash) goes to the LPM trie, which matches it exactly too.
    public static func layOutExactRows(_ rows: [BundlePlan.ListenerEntry]) -> (
        slots: [ListenerSlot], size: Int, overflow: [BundlePlan.ListenerEntry]
    ) {
        let probes = Int(ABI.lsnxProbes)
        var size = Self.capacity(2 * rows.count)
        while true {
            var taken = [Bool](repeating: false, count: size)
            var placed: [ListenerSlot] = []
            var overflow: [BundlePlan.ListenerEntry] = []
            for e in rows {
                let h = Int(Self.listenerSlotHash(e))
                if let i = (0..<probes).first(where: { !taken[(h + $0) & (size - 1)] }) {
                    taken[(h + i) & (size - 1)] = true
                    placed.append(ListenerSlot(slot: (h + i) & (size - 1), entry: e))
                } else {
                    overflow.append(e)
                }
            }
            if overflow.isEmpty || size >= Self.capacity(16 * rows.count) {
                return (placed, size, overflow)
            }
            size *= 2
        }
    }

    /// `x2b_lsn_hash` (x2b_runtime.h) of a row's `struct x2b_lsn_key`: words 1-5
    /// (family, pad, port in network order; the address), little-endian.
    public static func listenerSlotHash(_ e: BundlePlan.ListenerEntry) -> UInt32 {
        let port = e.port
        var w = [UInt32](repeating: 0, count: 5)
        w[0] = UInt32(e.prefix.address.family.rawValue) | UInt32(port >> 8) << 16 | UInt32(port & 0xff) << 24
        for (i, b) in e.prefix.address.bytes.prefix(16).enumerated() {
            w[1 + i / 4] |= UInt32(b) << (8 * UInt32(i % 4))
        }
        var h: UInt32 = 0
        for word in w {
            h = (h ^ word) &* 0x9e37_79b1
            h ^= h >> 15
        }
        h ^= h >> 16
        h = h &* 0x85eb_ca6b
        h ^= h >> 13
        h = h &* 0xc2b2_ae35
        return h ^ (h >> 16)
    }

    /// Every endpoint address of a least-request cluster, so sockops counts exactly those.
    private mutating func countAddresses(_ plan: BundlePlan) {
        var seen = Set<CountedAddress>()
        for c in plan.clusters where c.lb == .leastRequest && !c.passthrough {
            for lv in c.levels {
                for e in plan.endpoints[Int(lv.first)..<Int(lv.first + lv.count)] {
                    let a = CountedAddress(address: e.address, port: e.port)
                    if seen.insert(a).inserted { countedAddresses.append(a) }
                }
            }
        }
    }

    private static func coreMaps(_ plan: BundlePlan, _ layout: BundleLayout) -> [MapSpec] {
        let lb = ABILayout.size
        let clusters = plan.clusters.count
        return [
            MapSpec(
                name: "x2b_lsnx", kind: .array, keyType: "__u32", valueType: "struct x2b_lsn_slot", keySize: 4,
                valueSize: lb("x2b_lsn_slot"), maxEntries: layout.exactListenerTableSize,
                serves: "listener match: exact listener addresses (open addressing, slots laid out by the compiler)",
                mmapable: true),
            MapSpec(
                name: "x2b_lsn4", kind: .array, keyType: "__u32", valueType: "struct x2b_lsn4_slot", keySize: 4,
                valueSize: lb("x2b_lsn4_slot"), maxEntries: layout.exactListenerTableSize,
                serves: "listener match: the IPv4 rows of x2b_lsnx at the same slots, half a cache line each (the fast path)",
                mmapable: true),
            MapSpec(
                name: "x2b_lsnf", kind: .array, keyType: "__u32", valueType: "__u32", keySize: 4, valueSize: 4,
                maxEntries: Int(ABI.listenerFilterWords), serves: "listener match: IPv4 /16s some listener row covers (one bit each)"),
            MapSpec(
                name: "x2b_lsn", kind: .lpmTrie, keyType: "struct x2b_lsn_key", valueType: "__u32", keySize: lb("x2b_lsn_key"), valueSize: 4,
                maxEntries: capacity(layout.prefixListenerRows.count),
                serves: "listener match: destination prefixes and wildcard listeners (longest prefix)"),
            MapSpec(
                name: "x2b_act", kind: .array, keyType: "__u32", valueType: "struct x2b_action", keySize: 4, valueSize: lb("x2b_action"),
                maxEntries: capacity(plan.actions.count), serves: "filter chain actions"),
            MapSpec(
                name: "x2b_wcl", kind: .array, keyType: "__u32", valueType: "struct x2b_wcluster", keySize: 4, valueSize: lb("x2b_wcluster"),
                maxEntries: capacity(plan.weightedClusters.count), serves: "weighted clusters, cumulative weights"),
            MapSpec(
                name: "x2b_clu", kind: .array, keyType: "__u32", valueType: "struct x2b_cluster", keySize: 4, valueSize: lb("x2b_cluster"),
                maxEntries: capacity(2 * clusters), serves: "clusters: LB policy and priority levels, two rows each"),
            MapSpec(
                name: "x2b_cluv", kind: .array, keyType: "__u32", valueType: "__u32", keySize: 4, valueSize: 4,
                maxEntries: capacity(clusters), serves: "live row of each cluster (0 or 1; flipped by in-place updates)"),
            MapSpec(
                name: "x2b_ep", kind: .array, keyType: "__u32", valueType: "struct x2b_endpoint", keySize: 4, valueSize: lb("x2b_endpoint"),
                maxEntries: headroomCapacity(plan.endpoints.count + plan.dnsEndpointReserve), serves: "routable endpoints"),
            MapSpec(
                name: "x2b_ep4", kind: .array, keyType: "__u32", valueType: "struct x2b_ep4", keySize: 4, valueSize: lb("x2b_ep4"),
                maxEntries: headroomCapacity(plan.endpoints.count + plan.dnsEndpointReserve),
                serves: "the IPv4 endpoints of x2b_ep at the same index, 16 bytes each (the IPv4 fast path)"),
            MapSpec(
                name: "x2b_lbtab", kind: .array, keyType: "__u32", valueType: "struct x2b_slot", keySize: 4, valueSize: lb("x2b_slot"),
                maxEntries: headroomCapacity(plan.slots.count + plan.dnsTableReserve), serves: "round-robin schedules, maglev tables, hash rings"),
            MapSpec(
                name: "x2b_active", kind: .hash, keyType: "struct x2b_epkey", valueType: "__u32", keySize: lb("x2b_epkey"), valueSize: 4,
                maxEntries: capacity(layout.countedAddresses.count + plan.dnsActiveReserve),
                serves: "active connections per least-request endpoint address"),
            MapSpec(
                name: "x2b_orig", kind: .array, keyType: "__u32", valueType: "struct x2b_sock", keySize: 4, valueSize: lb("x2b_sock"),
                maxEntries: Int(ABI.origSlots), serves: "dialled service address per socket cookie slot (getpeername)"),
            MapSpec(
                name: "x2b_gstat", kind: .percpuArray, keyType: "__u32", valueType: "__u64", keySize: 4, valueSize: 8,
                maxEntries: Int(ABI.globalCounters), serves: "counters: seen, unmatched, no endpoint, family mismatch, refused by the route, pass-through"),
            MapSpec(
                name: "x2b_astat", kind: .percpuArray, keyType: "__u32", valueType: "struct x2b_astat", keySize: 4,
                valueSize: lb("x2b_astat"), maxEntries: capacity(plan.actions.count),
                serves: "connects per action: matched, and redirected to the action's own cluster"),
            MapSpec(
                name: "x2b_cstat", kind: .percpuArray, keyType: "__u32", valueType: "__u64", keySize: 4, valueSize: 8,
                maxEntries: capacity(clusters), serves: "connects per cluster picked per connect (weighted, HTTP routes, TLS chains)"),
        ]
    }

    static let helloMap = MapSpec(
        name: "x2b_tlsh", kind: .percpuArray, keyType: "__u32", valueType: "struct x2b_hello", keySize: 4,
        valueSize: helloSize, maxEntries: 1, serves: "the ClientHello of the current connect (parse scratch)")

    /// Per family the entry program (balancing inline), then getpeername, and
    /// sockops only for least request.
    private mutating func layOutPrograms(_ plan: BundlePlan) {
        policies = plan.policies
        for family in [IRFamily.inet4, .inet6] {
            let f = family == .inet4 ? "4" : "6"
            programs.append(
                ProgramSpec(
                    name: "x2b_connect\(f)", section: "cgroup/connect\(f)", attach: family == .inet4 ? .connect4 : .connect6,
                    serves: "entry: listener match and routing, \(family == .inet4 ? "IPv4" : "IPv6")"))
        }
        programs += [
            ProgramSpec(name: "x2b_peer4", section: "cgroup/getpeername4", attach: .getpeername4, serves: "report the dialled service address, IPv4"),
            ProgramSpec(name: "x2b_peer6", section: "cgroup/getpeername6", attach: .getpeername6, serves: "report the dialled service address, IPv6"),
        ]
        // Only least request needs connection counts: other bundles keep sockops off every connection.
        countsConnections = plan.policies.contains(.leastRequest)
        if countsConnections {
            programs.append(
                ProgramSpec(name: "x2b_sockops", section: "sockops", attach: .sockOps, serves: "active connection counts for least request"))
        }
    }
}

extension HTTPPlan {
    /// The maps of `x2b_routes.h`, sized for this plan's rows (also the layout of
    /// the HTTP test harness, which compiles the header alone).
    public var mapLayout: [MapSpec] {
        let lb = ABILayout.size
        func cap(_ n: Int) -> Int { BundleLayout.capacity(n) }
        return [
            MapSpec(
                name: "x2b_hreq", kind: .percpuArray, keyType: "__u32", valueType: "struct x2b_req", keySize: 4,
                valueSize: lb("x2b_req"), maxEntries: 1, serves: "HTTP request head of the current connect (filled by the module)"),
            MapSpec(
                name: "x2b_hscr", kind: .percpuArray, keyType: "__u32", valueType: "struct x2b_hparse", keySize: 4,
                valueSize: BundleLayout.parseScratchSize, maxEntries: 1, serves: "HTTP request head index (parse scratch)"),
            MapSpec(
                name: "x2b_hres", kind: .percpuArray, keyType: "__u32", valueType: "struct x2b_hresult", keySize: 4,
                valueSize: lb("x2b_hresult"), maxEntries: 1, serves: "the last HTTP routing decision and why"),
            MapSpec(
                name: "x2b_hstat", kind: .percpuArray, keyType: "__u32", valueType: "__u64", keySize: 4, valueSize: 8,
                maxEntries: Int(ABI.hkCount), serves: "counters: HTTP routing decisions per kind (X2B_HK_*)"),
            MapSpec(
                name: "x2b_htab", kind: .array, keyType: "__u32", valueType: "struct x2b_htable", keySize: 4,
                valueSize: lb("x2b_htable"), maxEntries: cap(tables.count), serves: "HTTP route tables: host handling, wildcard lengths"),
            MapSpec(
                name: "x2b_hdom", kind: .hash, keyType: "struct x2b_hdom_key", valueType: "__u32", keySize: lb("x2b_hdom_key"), valueSize: 4,
                maxEntries: cap(domains.count), serves: "virtual host domains by hash (exact, *suffix, prefix*)"),
            MapSpec(
                name: "x2b_hvh", kind: .array, keyType: "__u32", valueType: "struct x2b_hvhost", keySize: 4,
                valueSize: lb("x2b_hvhost"), maxEntries: cap(vhosts.count), serves: "virtual hosts: route ranges, require_tls"),
            MapSpec(
                name: "x2b_hrt", kind: .array, keyType: "__u32", valueType: "struct x2b_hroute", keySize: 4,
                valueSize: lb("x2b_hroute"), maxEntries: cap(routes.count), serves: "routes: condition ranges and actions"),
            MapSpec(
                name: "x2b_hcond", kind: .array, keyType: "__u32", valueType: "struct x2b_hcond", keySize: 4,
                valueSize: lb("x2b_hcond"), maxEntries: cap(conds.count), serves: "route conditions (path, headers, query, fractions)"),
            MapSpec(
                name: "x2b_hwcl", kind: .array, keyType: "__u32", valueType: "struct x2b_hwcluster", keySize: 4,
                valueSize: lb("x2b_hwcluster"), maxEntries: cap(weighted.count), serves: "weighted clusters of HTTP routes"),
            MapSpec(
                name: "x2b_hcn", kind: .hash, keyType: "struct x2b_hcn_key", valueType: "__u32", keySize: lb("x2b_hcn_key"), valueSize: 4,
                maxEntries: cap(clusterNames.count), serves: "cluster ids by name (cluster_header)"),
            MapSpec(
                name: "x2b_dfa", kind: .array, keyType: "__u32", valueType: "struct x2b_dfa", keySize: 4,
                valueSize: lb("x2b_dfa"), maxEntries: cap(automata.count), serves: "string matchers and regexes as automata"),
            MapSpec(
                name: "x2b_dcls", kind: .array, keyType: "__u32", valueType: "struct x2b_dcls", keySize: 4,
                valueSize: lb("x2b_dcls"), maxEntries: cap(classMaps.count), serves: "automaton byte classes"),
            MapSpec(
                name: "x2b_dtr", kind: .array, keyType: "__u32", valueType: "__u32", keySize: 4, valueSize: 4,
                maxEntries: cap(transitions.count), serves: "automaton transitions"),
            MapSpec(
                name: "x2b_hpix", kind: .array, keyType: "__u32", valueType: "struct x2b_hpindex", keySize: 4,
                valueSize: lb("x2b_hpindex"), maxEntries: cap(pathIndexes.count), serves: "path index of each virtual host"),
            MapSpec(
                name: "x2b_hcand", kind: .array, keyType: "__u32", valueType: "struct x2b_hcand", keySize: 4,
                valueSize: lb("x2b_hcand"), maxEntries: cap(candidates.count), serves: "candidate routes per path index state"),
        ]
    }
}
