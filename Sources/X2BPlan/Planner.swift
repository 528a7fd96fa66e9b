import X2BABI
import X2BDiagnostics
import X2BIR
import X2BSemantics

/// Plan: MeshIR → the tables and code layout of one bundle.
///
/// Decides, per table, straight-line code or a map; assigns action, cluster and
/// endpoint indexes; computes LB tables; sizes maps; checks kernel limits.
/// Everything here is data: the emitter turns it into C and map images.
public struct BundlePlan: Sendable {
    /// One row of the listener match: `family, port, prefix → action`.
    public struct ListenerEntry: Sendable, Hashable {
        public var prefix: IRCidr
        public var port: UInt16
        public var action: UInt32
        /// Resource path of the filter chain, for comments.
        public var source: String
        /// LPM prefix length over (family, pad, port, addr).
        public var prefixLength: UInt32 { 32 + UInt32(prefix.prefixLength) }
        /// A full-length address: matched by the exact hash map.
        public var isExact: Bool { prefix.prefixLength == (prefix.address.family == .inet4 ? 32 : 128) }
    }

    public enum ActionKind: UInt32, Sendable {
        case pass = 0, cluster = 1, weighted = 2, http = 3, refuse = 4, tls = 5
    }

    /// The chains of one listener row told apart by the ClientHello, laid out as
    /// Envoy's maps: server-name keys → group; a group's transport and ALPN levels
    /// → action. The generated chooser (x2b_routes.h) is this table as code.
    public struct TLSTable: Sendable, Hashable {
        public struct Key: Sendable, Hashable {
            /// "www.example.com", or ".example.com" for "*.example.com".
            public var name: String
            public var group: UInt32
        }
        public var keys: [Key] = []
        /// The group of the chains without server names.
        public var catchAll: UInt32?
        /// The listener's default filter chain.
        public var defaultAction: UInt32?
        /// Resource path of the listener, for comments.
        public var source: String
    }

    /// The chains sharing one server-name key: their transport and ALPN levels.
    public struct TLSGroup: Sendable, Hashable {
        public struct ALPN: Sendable, Hashable {
            public var name: String
            public var action: UInt32
        }
        /// transport "tls": the first chain naming each ALPN value.
        public var alpn: [ALPN] = []
        /// transport "tls": the chain naming no ALPN value.
        public var tlsAny: UInt32?
        /// transport "raw_buffer" (no ClientHello, so no ALPN).
        public var raw: UInt32?
        public var key: String
    }

    public struct Action: Sendable, Hashable {
        public var kind: ActionKind
        public var target: UInt32
        public var count: UInt32
        public var totalWeight: UInt32
        public var listener: UInt32
        public var fallback: UInt32
        public var source: String
    }

    public struct Level: Sendable, Hashable {
        public var cumLoad: UInt32
        public var first: UInt32
        public var count: UInt32
        public var tableFirst: UInt32
        public var tableLength: UInt32
    }

    public struct Cluster: Sendable, Hashable {
        public var name: String
        public var lb: IRLBPolicy
        public var counter: UInt32
        public var passthrough: Bool
        public var levels: [Level]
        public var endpointCount: Int
        /// Host names the loader resolves on the node (STRICT_DNS / LOGICAL_DNS).
        public var dns: IRDNSResolution? = nil
    }

    public struct Endpoint: Sendable, Hashable {
        public var address: IRAddress
        public var port: UInt16
        public var weight: UInt32
    }

    public struct ListenerInfo: Sendable, Hashable {
        public var name: String
        public var address: String
        public var kind: String
    }

    public var listenerEntries: [ListenerEntry] = []
    public var actions: [Action] = []
    public var weightedClusters: [(cumWeight: UInt32, cluster: UInt32)] = []
    public var clusters: [Cluster] = []
    public var endpoints: [Endpoint] = []
    public var slots: [LBTables.Slot] = []
    /// Endpoint records DNS clusters can need beyond the image once the loader has
    /// resolved every name: `x2b_ep` (and `x2b_active`) are sized for them.
    public var dnsEndpointReserve = 0
    /// LB-table slots DNS clusters can need once resolved (`Planner.dnsTableSlots`).
    public var dnsTableReserve = 0
    /// The same for least-request DNS clusters: `x2b_active` gets an entry per address.
    public var dnsActiveReserve = 0
    public var listeners: [ListenerInfo] = []
    /// Listener match as straight-line code (small tables) or an LPM map lookup, per family.
    public var inlineMatch: [IRFamily: Bool] = [.inet4: true, .inet6: true]
    /// LB policies some cluster uses: one switch arm each in the entry programs.
    public var policies: [IRLBPolicy] = []
    public var needsHTTP = false
    /// Bench-only data-path variants, sorted (empty in every real bundle).
    public var benchKnobs: [BenchKnob] = []
    /// Listener rows routed on the ClientHello (with the defer-connect module).
    public var tlsTables: [TLSTable] = []
    public var tlsGroups: [TLSGroup] = []
    /// Route tables, virtual hosts, routes and matchers for per-request HTTP routing.
    public var http = HTTPPlan()
    /// Maps, capacities, programs and tail-call slots: planned last, from the tables above.
    public var layout = BundleLayout()

    public func entries(for family: IRFamily) -> [ListenerEntry] {
        listenerEntries.filter { $0.prefix.address.family == family }
    }
}

public struct PlanOptions: Sendable {
    /// At most this many listener-match rows per family become straight-line code.
    public var inlineListenerLimit = 16
    /// Upper bound on all LB table slots in one bundle (8 bytes each).
    public var maxTableSlots = 32 * 1024 * 1024
    /// Bench-only data-path variants (`compile --bench-variant`): each leaves one
    /// piece of the connect path out, to attribute its cost. Never for production.
    public var benchKnobs: Set<BenchKnob> = []

    public init() {}
}

/// One piece of the connect path a bench-only build leaves out (issue #14's
/// attribution table). The generated C says so at its top.
public enum BenchKnob: String, Sendable, CaseIterable, Comparable {
    /// x2b_count is a no-op: no per-CPU counters.
    case noCounters = "no-counters"
    /// No per-socket record for getpeername.
    case noRemember = "no-remember"
    /// The endpoint pick is always the level's first endpoint (no policy code).
    case noLB = "no-lb"
    /// Every connect takes the first listener row's action (no listener lookup).
    case noListener = "no-listener"

    public var define: String { "X2B_BENCH_" + rawValue.uppercased().replacingOccurrences(of: "-", with: "_") }
    public static func < (a: BenchKnob, b: BenchKnob) -> Bool { a.rawValue < b.rawValue }
}

public struct Planner {
    public private(set) var diagnostics: [Diagnostic] = []
    private var plan = BundlePlan()
    private let ir: MeshIR
    private let options: PlanOptions
    private var clusterIndex: [String: UInt32] = [:]
    /// The filters guarding routes of each route table that has such routes (by name), found
    /// once: every VIP row of a listener asks for its table's, and a table can have 10k hosts.
    private let guardingFilters: [String: [String]]

    public init(_ ir: MeshIR, options: PlanOptions = PlanOptions()) {
        self.ir = ir
        self.options = options
        var guarding: [String: [String]] = [:]
        for t in ir.routeTables { guarding[t.name] = t.guardingFilters }
        self.guardingFilters = guarding
    }

    public static func plan(_ ir: MeshIR, options: PlanOptions = PlanOptions()) -> (BundlePlan, [Diagnostic]) {
        var p = Planner(ir, options: options)
        p.run()
        return (p.plan, p.diagnostics)
    }

    mutating func run() {
        plan.benchKnobs = options.benchKnobs.sorted()
        planClusters()
        planListeners()
        for family in [IRFamily.inet4, .inet6] {
            plan.inlineMatch[family] = plan.entries(for: family).count <= options.inlineListenerLimit
        }
        plan.policies = IRLBPolicy.allCases.filter { p in plan.clusters.contains { $0.lb == p && !$0.passthrough } }
        if plan.needsHTTP {
            let (h, d) = HTTPPlanner.plan(ir, clusterIndex: clusterIndex)
            plan.http = h
            diagnostics += d
        }
        if plan.slots.count > options.maxTableSlots {
            diagnostics.append(
                Diagnostic(
                    .limitExceeded, path: "clusters",
                    "load-balancing tables need \(plan.slots.count) slots, over the limit of \(options.maxTableSlots); lower maglev table_size or ring sizes"))
        }
        plan.layout = BundleLayout(plan)
    }

    // MARK: Clusters

    private mutating func planClusters() {
        for c in ir.clusters {
            let id = UInt32(plan.clusters.count)
            clusterIndex[c.name] = id
            if c.originalDestination {
                plan.clusters.append(.init(name: c.name, lb: c.lb, counter: id, passthrough: true, levels: [], endpointCount: 0))
                continue
            }
            var levels: [BundlePlan.Level] = []
            // Past the slot budget no more tables are built (the limit is diagnosed below):
            // a snapshot of many huge rings must not exhaust memory first.
            for lv in Self.clusterLevels(c, buildTables: plan.slots.count <= options.maxTableSlots, diagnostics: &diagnostics) {
                let first = UInt32(plan.endpoints.count)
                plan.endpoints += lv.endpoints
                let tableFirst = UInt32(plan.slots.count)
                plan.slots += lv.table
                levels.append(
                    .init(
                        cumLoad: lv.cumLoad, first: first, count: UInt32(lv.endpoints.count),
                        tableFirst: tableFirst, tableLength: UInt32(lv.table.count)))
            }
            plan.clusters.append(
                .init(
                    name: c.name, lb: c.lb, counter: id, passthrough: false, levels: levels,
                    endpointCount: levels.reduce(0) { $0 + Int($1.count) }, dns: c.dns))
            if let dns = c.dns {
                plan.dnsEndpointReserve += dns.maxEndpoints
                plan.dnsTableReserve += Self.dnsTableSlots(dns, lb: c.lb)
                if c.lb == .leastRequest { plan.dnsActiveReserve += dns.maxEndpoints }
            }
        }
    }

    /// LB-table slots the loader can need for a DNS cluster once its names are
    /// resolved (it builds the tables `clusterLevels` would), over the levels that
    /// carry load (at most `ABI.maxPriorities`): per priority, a round-robin or
    /// locality schedule of at most the weight sum (scaled to
    /// `LBTables.maxScheduleLength`, plus one slot per endpoint for rounding); a
    /// maglev table of `maglevTableSize`; a ring of at most the minimum size plus
    /// weight sum / smallest weight (Envoy's scaling), within the maximum. Under
    /// locality weights a ring's scale depends on the localities' health: room for
    /// 16 times the minimum (a larger ring does not fit in place, see
    /// docs/semantics.md).
    static func dnsTableSlots(_ dns: IRDNSResolution, lb: IRLBPolicy) -> Int {
        let weighted = dns.localityWeighted
        var perPriority: [UInt32: (sum: UInt64, endpoints: Int, weights: Set<UInt32>)] = [:]
        for h in dns.hosts {
            let n = IRAddress(parsing: h.host) == nil ? Int(dns.maxAddresses) : 1
            var p = perPriority[h.priority, default: (0, 0, [])]
            p.sum += UInt64(h.weight) * UInt64(n)
            p.endpoints += n
            p.weights.insert(h.weight)
            perPriority[h.priority] = p
        }
        let maxRing = min(dns.ringMaximumSize, LBTables.maxRingSize)
        let bounds = perPriority.values.map { p -> Int in
            let schedule = Int(LBTables.maxScheduleLength) + p.endpoints
            switch lb {
            case .roundRobin where weighted: return schedule
            // Without locality weights equal weights need no schedule.
            case .roundRobin: return p.weights.count > 1 ? min(schedule, Int(clamping: p.sum)) : 0
            case .random, .leastRequest: return weighted ? schedule : 0
            case .maglev: return Int(clamping: dns.maglevTableSize)
            case .ringHash:
                let spread = weighted ? 15 * dns.ringMinimumSize : p.sum / UInt64(max(1, p.weights.min() ?? 1))
                return Int(clamping: min(maxRing, dns.ringMinimumSize + spread)) + p.endpoints + 1
            }
        }
        return bounds.sorted(by: >).prefix(Int(ABI.maxPriorities)).reduce(0, +)
    }

    /// One priority level of a cluster as the data plane holds it: cumulative load
    /// (out of 100; the last level 100), endpoints, and the LB table (endpoint
    /// indexes relative to the level's first endpoint).
    public struct LevelRows: Sendable, Equatable {
        public var cumLoad: UInt32
        public var endpoints: [BundlePlan.Endpoint]
        public var table: [LBTables.Slot]
    }

    /// The rows of one (non-passthrough) cluster: what planning a whole bundle lays
    /// out, and what an in-place endpoint update writes for that cluster alone.
    public static func clusterLevels(_ c: IRCluster, buildTables: Bool = true, diagnostics: inout [Diagnostic]) -> [LevelRows] {
        let eff = ClusterSemantics.effective(c)
        if eff.levels.count > Int(ABI.maxPriorities) {
            diagnostics.append(
                Diagnostic(
                    .limitExceeded, path: c.path,
                    "\(eff.levels.count) priority levels carry load; the data plane supports \(ABI.maxPriorities)"))
        }
        if eff.isEmpty && c.dns == nil {
            diagnostics.append(Diagnostic(.noEndpoints, path: c.path, "cluster has no healthy endpoint; connects routed to it are refused"))
        }
        var out: [LevelRows] = []
        var cum: UInt32 = 0
        for lv in eff.levels.prefix(Int(ABI.maxPriorities)) {
            cum += lv.load
            let table: [LBTables.Slot] =
                switch c.lb {
                case _ where !buildTables: []
                case .roundRobin: LBTables.roundRobinSchedule(weights: lv.weights)
                case .random, .leastRequest: LBTables.localitySchedule(lv.localities)
                case .maglev: LBTables.maglev(endpoints: lv.endpoints, weights: lv.weights, size: c.maglevTableSize)
                case .ringHash:
                    LBTables.ring(
                        endpoints: lv.endpoints, weights: lv.weights,
                        minimum: c.ringMinimumSize, maximum: c.ringMaximumSize)
                }
            out.append(
                LevelRows(
                    cumLoad: cum, endpoints: lv.endpoints.map { .init(address: $0.address, port: $0.port, weight: $0.weight) },
                    table: table))
        }
        if !out.isEmpty { out[out.count - 1].cumLoad = 100 }
        return out
    }

    // MARK: Listeners and actions

    private mutating func action(for chain: IRFilterChain, listener: UInt32) -> UInt32? {
        let id = UInt32(plan.actions.count)
        switch chain.action {
        case .cluster(let name):
            guard let cid = clusterIndex[name] else {
                // Unknown cluster (diagnosed by the lowering): Envoy closes such connections.
                plan.actions.append(.init(kind: .refuse, target: 0, count: 0, totalWeight: 0, listener: listener, fallback: 0, source: chain.path))
                return id
            }
            plan.actions.append(.init(kind: .cluster, target: cid, count: 1, totalWeight: 0, listener: listener, fallback: 0, source: chain.path))
        case .weighted(let entries):
            if entries.count > Int(ABI.maxWeighted) {
                diagnostics.append(
                    Diagnostic(
                        .limitExceeded, path: chain.path,
                        "\(entries.count) weighted clusters; the data plane supports \(ABI.maxWeighted)"))
                return nil
            }
            // The lowering rejects totals over 32 bits; checked again here, never trapped on.
            guard entries.reduce(UInt64(0), { $0 + UInt64($1.weight) }) <= UInt64(UInt32.max) else {
                diagnostics.append(
                    Diagnostic(
                        .limitExceeded, path: chain.path,
                        "weighted cluster weights sum to more than \(UInt32.max)"))
                return nil
            }
            let first = UInt32(plan.weightedClusters.count)
            var cum: UInt32 = 0
            for e in entries {
                // An unknown cluster keeps its share of the weight and refuses, as in Envoy.
                let cid = clusterIndex[e.cluster] ?? Self.refusingCluster
                cum += e.weight
                plan.weightedClusters.append((cum, cid))
            }
            plan.actions.append(
                .init(
                    kind: .weighted, target: first, count: UInt32(entries.count), totalWeight: cum,
                    listener: listener, fallback: 0, source: chain.path))
        case .http:
            return nil  // HTTP chains are planned per destination by httpAction
        case .pass:
            plan.actions.append(.init(kind: .pass, target: 0, count: 0, totalWeight: 0, listener: listener, fallback: 0, source: chain.path))
        case .refuse:
            // A deny-capable network filter the kernel cannot run guards the chain: fail closed.
            plan.actions.append(.init(kind: .refuse, target: 0, count: 0, totalWeight: 0, listener: listener, fallback: 0, source: chain.path))
        }
        return id
    }

    /// An HTTP chain at connect time, without the request: the decision for a
    /// request to `authority` with path `/` (documented in docs/semantics.md).
    private mutating func httpAction(
        _ chain: IRFilterChain, table name: String, authority: String, listener: UInt32,
        virtualHost: IRVirtualHost? = nil
    ) -> UInt32? {
        guard let table = ir.routeTable(named: name) else { return nil }
        let request = HTTPRequest(authority: authority, path: "/", method: "GET")
        let route: IRRoute?
        if let vh = virtualHost {
            // The caller found the domain in this virtual host: an exact domain match wins,
            // so only its routes are evaluated (no search over thousands of hosts per domain).
            route = vh.routes.first { RouteSemantics.matches($0.match, request, random: 0) }
        } else {
            route = RouteSemantics.decide(table, request, random: 0).route
        }
        let source = route?.path ?? chain.path
        var l4: IRChainAction
        switch route?.action {
        case .cluster(let c)?: l4 = .cluster(c)
        case .weighted(let entries, _)?: l4 = .weighted(entries)
        default: l4 = .pass(reason: "no forwarding route for \(authority)/")
        }
        // Without the request any route of the table may be asked for, so a table where a
        // filter the kernel cannot run guards some route refuses the L4 fallback (fail
        // closed): forwarding every request where `/` goes would bypass the filter.
        if let filters = guardingFilters[name] { l4 = .refuse(guardedBy: filters) }
        let fallback = action(for: IRFilterChain(name: chain.name, path: source, match: chain.match, action: l4), listener: listener)
        guard let fallback else { return nil }
        plan.needsHTTP = true
        let id = UInt32(plan.actions.count)
        plan.actions.append(
            .init(
                kind: .http, target: UInt32(ir.routeTables.firstIndex { $0.name == name } ?? 0),
                count: 0, totalWeight: 0, listener: listener, fallback: fallback, source: chain.path))
        return id
    }

    private mutating func addEntry(
        _ prefix: IRCidr, port: UInt16, chain: IRFilterChain, listener: UInt32,
        authority: String, virtualHost: IRVirtualHost? = nil, taken: inout Set<RowKey>
    ) {
        let key = RowKey(prefix: prefix, port: port)
        guard !taken.contains(key) else { return }
        let id: UInt32?
        if case .http(let table) = chain.action {
            id = httpAction(chain, table: table, authority: authority, listener: listener, virtualHost: virtualHost)
        } else {
            id = action(for: chain, listener: listener)
        }
        guard let id else { return }
        taken.insert(key)
        plan.listenerEntries.append(.init(prefix: prefix, port: port, action: id, source: chain.path))
    }

    /// A row whose chains are told apart by the ClientHello: an X2B_ACT_TLS action
    /// over a TLS table; without the module it refuses (the bytes decide, and
    /// they are never seen).
    private mutating func addTLSEntry(
        _ prefix: IRCidr, port: UInt16, chains: [IRFilterChain], listener l: IRListener, index li: UInt32,
        taken: inout Set<RowKey>
    ) {
        let key = RowKey(prefix: prefix, port: port)
        guard !taken.contains(key) else { return }
        let all = chains + (l.defaultChain.map { [$0] } ?? [])
        if let http = all.first(where: { if case .http = $0.action { true } else { false } }) {
            diagnostics.append(
                Diagnostic(
                    .unsupportedRouting, path: http.path,
                    "an HTTP connection manager chain shares \(l.endpointText) with chains chosen by the ClientHello (server_names, transport_protocol, application_protocols); the kernel routes such a row on TLS passthrough chains only"
                ))
            return
        }
        guard let table = tlsTable(chains, listener: l, index: li) else { return }
        if !plan.tlsTables.dropLast().contains(where: { $0.source == l.path }) {
            diagnostics.append(
                Diagnostic(
                    .httpNeedsModule, path: l.path,
                    "filter chains chosen by server_names, transport_protocol or application_protocols are decided from the ClientHello only with the defer-connect module; without it connects to \(l.endpointText) are refused"
                ))
        }
        let fallback = UInt32(plan.actions.count)
        plan.actions.append(.init(kind: .refuse, target: 0, count: 0, totalWeight: 0, listener: li, fallback: 0, source: l.path))
        let id = UInt32(plan.actions.count)
        plan.actions.append(.init(kind: .tls, target: table, count: 0, totalWeight: 0, listener: li, fallback: fallback, source: l.path))
        plan.needsHTTP = true
        taken.insert(key)
        plan.listenerEntries.append(.init(prefix: prefix, port: port, action: id, source: l.path))
    }

    /// Envoy's server-name, transport and ALPN maps over `chains`, each chain an action.
    private mutating func tlsTable(_ chains: [IRFilterChain], listener l: IRListener, index li: UInt32) -> UInt32? {
        var actionOf: [String: UInt32] = [:]
        // chains without an action (diagnosed by `action`): the table is not built
        var unplanned: [String] = []
        func act(_ c: IRFilterChain?) -> UInt32? {
            guard let c else { return nil }
            if let a = actionOf[c.path] { return a }
            guard let a = action(for: c, listener: li) else {
                unplanned.append(c.path)
                return nil
            }
            actionOf[c.path] = a
            return a
        }
        var table = BundlePlan.TLSTable(source: l.path)
        var names: [String] = []
        for c in chains { for k in TLSSelection.nameKeys(c) where !names.contains(k) { names.append(k) } }
        for name in names {
            let named = chains.filter { TLSSelection.nameKeys($0).contains(name) }
            var g = BundlePlan.TLSGroup(key: name)
            let tls = TLSSelection.transportLevel(named, protocol: "tls")
            for c in tls {
                for p in c.match.applicationProtocols where !g.alpn.contains(where: { $0.name == p }) {
                    if let a = act(c) { g.alpn.append(.init(name: p, action: a)) }
                }
            }
            g.tlsAny = act(tls.first { $0.match.applicationProtocols.isEmpty })
            g.raw = act(TLSSelection.alpnLevel(TLSSelection.transportLevel(named, protocol: "raw_buffer"), protocols: []))
            let gid = UInt32(plan.tlsGroups.count)
            plan.tlsGroups.append(g)
            if name.isEmpty {
                table.catchAll = gid
            } else {
                table.keys.append(.init(name: name, group: gid))
            }
        }
        table.defaultAction = act(l.defaultChain)
        if !unplanned.isEmpty { return nil }
        plan.tlsTables.append(table)
        return UInt32(plan.tlsTables.count - 1)
    }

    struct RowKey: Hashable {
        var prefix: IRCidr
        var port: UInt16
    }

    private mutating func planListeners() {
        var taken: Set<RowKey> = []
        // Exact listeners first: they win over wildcard listeners' prefix rows for the same address.
        let ordered = ir.listeners.enumerated().sorted { a, b in
            (a.element.address.isUnspecified ? 1 : 0, a.offset) < (b.element.address.isUnspecified ? 1 : 0, b.offset)
        }
        for (_, l) in ordered {
            let kind =
                l.chains.contains { if case .http = $0.action { true } else { false } }
                ? "http" : TLSSelection.needsClientHello(l.chains) ? "tls" : "tcp"
            plan.listeners.append(.init(name: l.name, address: l.endpointText, kind: kind))
        }
        for (i, (_, l)) in ordered.enumerated() {
            let li = UInt32(i)
            let httpTables = l.chains.compactMap { if case .http(let t) = $0.action { t } else { nil } }
            if !httpTables.isEmpty {
                let guarded = httpTables.contains { guardingFilters[$0] != nil }
                diagnostics.append(
                    Diagnostic(
                        .httpNeedsModule, path: l.path,
                        "HTTP routes are decided per request only with the defer-connect module; without it a connect follows the route for path \"/\" of the virtual host of the dialled address"
                            + (guarded ? ", and is refused where the route table has routes guarded by filters the kernel cannot run (XDS210)" : "")
                    ))
            }
            let full = l.address.family == .inet4 ? 32 : 128
            let candidates = ChainSelection.portCandidates(l)
            if !l.address.isUnspecified {
                let survivors = ChainSelection.ipSurvivors(l, destination: l.address)
                if TLSSelection.needsClientHello(survivors) {
                    addTLSEntry(
                        IRCidr(address: l.address, prefixLength: full), port: l.port, chains: survivors, listener: l, index: li,
                        taken: &taken)
                } else if let chain = ChainSelection.chain(l, destination: l.address) {
                    addEntry(
                        IRCidr(address: l.address, prefixLength: full), port: l.port, chain: chain, listener: li,
                        authority: l.endpointText, taken: &taken)
                }
                continue
            }
            // Wildcard listener: one row per distinct destination prefix, longest prefix wins.
            var prefixes = Set<IRCidr>()
            for c in candidates { for p in c.match.prefixRanges where p.address.family == l.address.family { prefixes.insert(p) } }
            for p in prefixes.sorted() {
                let survivors = ChainSelection.ipLevel(candidates, prefix: p)
                if TLSSelection.needsClientHello(survivors) {
                    addTLSEntry(p, port: l.port, chains: survivors, listener: l, index: li, taken: &taken)
                } else if let chain = ChainSelection.chain(l, candidates: candidates, prefix: p) {
                    addEntry(p, port: l.port, chain: chain, listener: li, authority: p.address.withPort(l.port), taken: &taken)
                }
            }
            let survivors = ChainSelection.ipLevel(candidates, prefix: nil)
            if TLSSelection.needsClientHello(survivors) {
                addTLSEntry(
                    IRCidr(address: l.address, prefixLength: 0), port: l.port, chains: survivors, listener: l, index: li,
                    taken: &taken)
                continue
            }
            guard let chain = ChainSelection.chain(l, candidates: candidates, prefix: nil) else { continue }
            if case .http(let name) = chain.action, let table = ir.routeTable(named: name) {
                // Service addresses written as domains (Istio lists each VIP) get their own row,
                // so a connect to a VIP follows that service's virtual host.
                for vh in table.virtualHosts {
                    for d in vh.domains {
                        guard let ip = Self.addressDomain(d, port: l.port), ip.family == l.address.family else { continue }
                        if prefixes.contains(where: { $0.contains(ip) }) { continue }
                        addEntry(
                            IRCidr(address: ip, prefixLength: full), port: l.port, chain: chain, listener: li,
                            authority: d, virtualHost: vh, taken: &taken)
                    }
                }
            }
            addEntry(
                IRCidr(address: l.address, prefixLength: 0), port: l.port, chain: chain, listener: li,
                authority: "", taken: &taken)
        }
        // Canonical order: family, port, address, then longest prefix first (the inline matcher's order).
        plan.listenerEntries.sort {
            ($0.prefix.address.family, $0.port, -$0.prefix.prefixLength, $0.prefix.address)
                < ($1.prefix.address.family, $1.port, -$1.prefix.prefixLength, $1.prefix.address)
        }
    }

    /// The weighted-cluster entry of a cluster missing from the snapshot: the
    /// value X2B_REFUSE, which the entry stage turns into a refused connect.
    static let refusingCluster: UInt32 = 0xFFFF_FFFE

    /// `10.96.0.12` or `10.96.0.12:9080` (with the listener's port) as an address.
    static func addressDomain(_ d: String, port: UInt16) -> IRAddress? {
        if let a = IRAddress(parsing: d) { return a }
        if d.hasPrefix("["), let close = d.firstIndex(of: "]") {
            let host = String(d[d.index(after: d.startIndex)..<close])
            guard d[d.index(after: close)...] == ":\(port)" else { return nil }
            return IRAddress(parsing: host)
        }
        if let colon = d.lastIndex(of: ":"), d[d.index(after: colon)...] == "\(port)" {
            let host = String(d[..<colon])
            if let a = IRAddress(parsing: host), a.family == .inet4 { return a }
        }
        return nil
    }
}
