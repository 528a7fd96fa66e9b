import Foundation
import X2BABI
import X2BDiagnostics
import X2BIR
import X2BSemantics

/// HTTP plan: the route tables of MeshIR as the kernel evaluates them.
///
/// Every route matcher becomes a condition record; every string matcher and
/// regex a byte DFA (tables in array maps). Virtual hosts are found by hashing
/// the host (exact domains in one lookup, wildcard domains at the lengths that
/// exist); the routes of a virtual host are scanned in order, first match wins,
/// either by straight-line code (small configurations) or by a bounded loop
/// over route records in maps (large ones). Either way the same condition
/// records decide, so the two strategies cannot disagree. A virtual host of
/// several routes also gets a path index (`PathIndex`): one walk over the path
/// names the candidate routes, and only those are tested, still in order.
public struct HTTPPlan: Sendable {
    public struct Table: Sendable, Hashable {
        public var name: String
        public var source: String
        public var flags: UInt32
        public var stripPort: UInt16
        public var defaultVHost: UInt32
        public var vhostHeader: UInt64
        public var suffixLengths: [UInt64] = [0, 0, 0, 0]
        public var prefixLengths: [UInt64] = [0, 0, 0, 0]
    }

    public struct Domain: Sendable, Hashable {
        public var table: UInt32
        public var kind: UInt16
        public var length: UInt16
        public var hash: UInt64
        public var vhost: UInt32
    }

    public struct VHost: Sendable, Hashable {
        public var table: UInt32
        public var index: UInt32
        public var name: String
        public var source: String
        public var firstRoute: UInt32
        public var routeCount: UInt32
        public var tls: UInt32
        /// Compiled to straight-line code.
        public var inline = false
        /// Has a path index (`pathIndexes`): only its candidates are tested.
        public var indexed = false
    }

    /// x2b_hpix rows, one per virtual host: the index automaton and its first
    /// x2b_hcand row (`dfa` = ABI.httpNone: no index).
    public struct PathIndexRow: Sendable, Hashable {
        public var dfa: UInt32
        public var candidates: UInt32
    }

    public enum Action: UInt16, Sendable {
        case cluster = 0, weighted = 1, header = 2, local = 3
    }

    public struct Route: Sendable, Hashable {
        public var index: UInt32
        public var source: String
        public var summary: String
        public var firstCond: UInt32
        public var condCount: UInt16
        public var action: Action
        public var arg: UInt32
        public var count: UInt32
        public var total: UInt32
        public var hash: UInt64
        /// A condition is constant false (e.g. dynamic metadata the kernel never has).
        public var never = false
    }

    public enum Op: UInt8, Sendable {
        case string = 0, present = 1, range = 2, any = 3, fraction = 4
    }

    public enum Source: UInt8, Sendable {
        case path = 0, fullPath = 1, method = 2, authority = 3, scheme = 4, header = 5, query = 6, none = 7
    }

    public struct Cond: Sendable, Hashable {
        public var op: Op
        public var source: Source
        public var flags: UInt8
        public var dfa: UInt32
        public var hash: UInt64
        public var lo: Int64
        public var hi: Int64
        public var summary: String
    }

    public struct Automaton: Sendable, Hashable {
        public var transitions: UInt32
        public var classMap: UInt32
        public var classCount: UInt16
        public var startFlags: UInt16
    }

    public var tables: [Table] = []
    public var domains: [Domain] = []
    public var vhosts: [VHost] = []
    public var routes: [Route] = []
    public var conds: [Cond] = []
    public var weighted: [(cumWeight: UInt32, cluster: UInt32)] = []
    /// cluster_header targets: (FNV of the name, length) → cluster id.
    public var clusterNames: [(hash: UInt64, length: UInt32, cluster: UInt32)] = []
    public var automata: [Automaton] = []
    /// By global virtual host.
    public var pathIndexes: [PathIndexRow] = []
    /// x2b_hcand rows: candidate routes per index state, 4 words each.
    public var candidates: [[UInt64]] = []
    public var classMaps: [[UInt8]] = []
    public var transitions: [UInt32] = []
    /// Runtime keys of runtime_fraction matchers, by id (1-based; 0: none).
    public var runtimeKeys: [String] = []

    public var isEmpty: Bool { tables.isEmpty }

    public func runtimeKeyID(_ key: String) -> UInt32 {
        guard !key.isEmpty, let i = runtimeKeys.firstIndex(of: key) else { return 0 }
        return UInt32(i + 1)
    }
}

public struct HTTPPlanOptions: Sendable {
    /// Conditions compiled to straight-line code across the bundle; above, maps.
    public var inlineConditionLimit = 256
    /// Routes of one virtual host compiled to straight-line code at most.
    public var inlineRoutesPerVHost = 32
    /// DFA states per matcher (each state costs nclass transition entries).
    public var maxDFAStates = 4096
    /// All DFA transition entries of a bundle (4 bytes each).
    public var maxTransitions = 16 * 1024 * 1024
    /// Virtual hosts with at least this many routes (and at most ABI.httpCandRoutes)
    /// get a path index; Int.max: none (every route tested in turn, as before the
    /// index existed: the benchmark's comparison).
    public var pathIndexMinRoutes = 4

    public init() {}
}

public struct HTTPPlanner {
    public private(set) var diagnostics: [Diagnostic] = []
    private var plan = HTTPPlan()
    private let ir: MeshIR
    private let clusterIndex: [String: UInt32]
    private let options: HTTPPlanOptions
    private var dfaIndex: [ByteRE: UInt32] = [:]
    /// Automata of path regexes, built ahead on all cores (they are independent and
    /// the costliest part of planning); `dfa` takes them from here in its own order.
    private var prebuilt: [ByteRE: Result<ByteDFA, ByteDFA.BuildError>] = [:]
    private var classMapIndex: [[UInt8]: UInt32] = [:]
    private var inlineBudget: Int

    /// Cluster ids as the bundle planner assigns them: the position in MeshIR's clusters.
    public static func clusterIndex(_ ir: MeshIR) -> [String: UInt32] {
        var out: [String: UInt32] = [:]
        for (i, c) in ir.clusters.enumerated() where out[c.name] == nil { out[c.name] = UInt32(i) }
        return out
    }

    public init(_ ir: MeshIR, clusterIndex: [String: UInt32], options: HTTPPlanOptions = HTTPPlanOptions()) {
        self.ir = ir
        self.clusterIndex = clusterIndex
        self.options = options
        self.inlineBudget = options.inlineConditionLimit
    }

    /// Table ids are positions in `ir.routeTables`, as X2B_ACT_HTTP actions name them.
    public static func plan(
        _ ir: MeshIR, clusterIndex: [String: UInt32]? = nil,
        options: HTTPPlanOptions = HTTPPlanOptions()
    ) -> (HTTPPlan, [Diagnostic]) {
        var p = HTTPPlanner(ir, clusterIndex: clusterIndex ?? Self.clusterIndex(ir), options: options)
        p.run()
        return (p.plan, p.diagnostics)
    }

    mutating func run() {
        prebuildRegexAutomata()
        for (ti, t) in ir.routeTables.enumerated() { planTable(t, id: UInt32(ti)) }
        if ir.routeTables.contains(where: { $0.virtualHosts.contains { $0.routes.contains { if case .clusterHeader = $0.action { true } else { false } } } }) {
            for (name, id) in clusterIndex.sorted(by: { $0.value < $1.value }) {
                plan.clusterNames.append((FNV.hash(Array(name.utf8)), UInt32(name.utf8.count), id))
            }
        }
        if plan.transitions.count > options.maxTransitions {
            diagnostics.append(
                Diagnostic(
                    .limitExceeded, path: "route_configurations",
                    "HTTP matchers need \(plan.transitions.count) automaton transitions, over the limit of \(options.maxTransitions)"))
        }
    }

    // MARK: Tables and domains

    private mutating func planTable(_ t: IRRouteTable, id: UInt32) {
        var table = HTTPPlan.Table(name: t.name, source: t.path, flags: 0, stripPort: 0, defaultVHost: ABI.httpNone, vhostHeader: 0)
        if t.ignorePortInHostMatching { table.flags |= ABI.htIgnorePort }
        if let h = t.vhostHeader, h != "host", h != ":authority" {
            table.flags |= ABI.htVhostHeader
            table.vhostHeader = FNV.name(h)
        }
        if t.hostNormalization.stripTrailingDot { table.flags |= ABI.htStripDot }
        switch t.hostNormalization.stripPort {
        case .none: break
        case .any: table.flags |= ABI.htStripAnyPort
        case .matching(let p):
            table.flags |= ABI.htStripPort
            table.stripPort = p
        }
        if t.ignorePathParameters { table.flags |= ABI.htPathParams }
        // refuse a path these options would change
        if t.pathNormalization.normalizePath { table.flags |= ABI.htNormalizePath }
        if t.pathNormalization.mergeSlashes { table.flags |= ABI.htMergeSlashes }
        if t.pathNormalization.escapedSlashes != .keep { table.flags |= ABI.htEscapedSlashes }
        if RouteSemantics.routesEveryRequestAlike(t) { table.flags |= ABI.htUniform }
        var seen: [String: String] = [:]
        var keys: Set<HTTPPlan.Domain> = []
        for (vi, vh) in t.virtualHosts.enumerated() {
            let global = UInt32(plan.vhosts.count)
            plan.vhosts.append(planVHost(vh, table: id, index: UInt32(vi)))
            for d in vh.domains {
                let key = "\(d)"
                if seen[key] != nil { continue }  // diagnosed by the lowering; the first wins, as in Envoy's maps
                seen[key] = vh.path
                let bytes = Array(d.utf8)
                if bytes.count > Int(ABI.hostMax) - 1 {
                    diagnostics.append(
                        Diagnostic(
                            .limitExceeded, path: vh.path,
                            "domain of \(bytes.count) bytes; the kernel routes hosts up to \(ABI.hostMax - 1) bytes"))
                    continue
                }
                var dom: HTTPPlan.Domain
                switch RouteSemantics.domainKind(d) {
                case .any:
                    if table.defaultVHost == ABI.httpNone { table.defaultVHost = global }
                    continue
                case .exact(let e):
                    dom = HTTPPlan.Domain(table: id, kind: UInt16(ABI.domExact), length: UInt16(e.utf8.count), hash: FNV.hash(Array(e.utf8)), vhost: global)
                case .suffix(let s):
                    let b = Array(s.utf8)
                    dom = HTTPPlan.Domain(table: id, kind: UInt16(ABI.domSuffix), length: UInt16(b.count), hash: FNV.hash(b.reversed()), vhost: global)
                    table.suffixLengths[b.count >> 6] |= 1 << UInt64(b.count & 63)
                case .prefix(let p):
                    let b = Array(p.utf8)
                    dom = HTTPPlan.Domain(table: id, kind: UInt16(ABI.domPrefix), length: UInt16(b.count), hash: FNV.hash(b), vhost: global)
                    table.prefixLengths[b.count >> 6] |= 1 << UInt64(b.count & 63)
                }
                table.flags |= ABI.htDomains
                var key2 = dom
                key2.vhost = 0
                if keys.contains(key2) {
                    diagnostics.append(
                        Diagnostic(
                            .limitExceeded, path: vh.path,
                            "domain \(ResourcePath.quoted(d)) collides with another domain's hash; rename one"))
                    continue
                }
                keys.insert(key2)
                plan.domains.append(dom)
            }
        }
        plan.tables.append(table)
    }

    private mutating func planVHost(_ vh: IRVirtualHost, table: UInt32, index: UInt32) -> HTTPPlan.VHost {
        var out = HTTPPlan.VHost(
            table: table, index: index, name: vh.name, source: vh.path,
            firstRoute: UInt32(plan.routes.count), routeCount: UInt32(vh.routes.count),
            tls: vh.requireTLS == .all ? ABI.tlsAll : (vh.requireTLS == .externalOnly ? ABI.tlsExternal : ABI.tlsNone))
        var conds = 0
        let proven = planPathIndex(vh)
        out.indexed = proven != nil
        for (ri, r) in vh.routes.enumerated() {
            let route = planRoute(r, index: UInt32(ri), pathProven: proven?.contains(ri) ?? false)
            conds += Int(route.condCount)
            plan.routes.append(route)
        }
        // an indexed straight-line scan tests one 64-bit candidate word
        if vh.routes.count <= options.inlineRoutesPerVHost, conds + vh.routes.count <= inlineBudget, !out.indexed || vh.routes.count <= 64 {
            inlineBudget -= conds + vh.routes.count
            out.inline = true
        }
        return out
    }

    // MARK: Routes

    /// Appends the virtual host's x2b_hpix row (and its automaton and candidate rows
    /// when it gets an index). Returns the routes whose path condition the index
    /// decides, or nil: no index.
    private mutating func planPathIndex(_ vh: IRVirtualHost) -> Set<Int>? {
        var row = HTTPPlan.PathIndexRow(dfa: ABI.httpNone, candidates: 0)
        defer { plan.pathIndexes.append(row) }
        guard vh.routes.count >= options.pathIndexMinRoutes, vh.routes.count <= Int(ABI.httpCandRoutes) else { return nil }
        let keys = vh.routes.map { r in
            let re: ByteRE? = if case .regex(let pattern) = r.match.path { try? ByteRE.re2(pattern) } else { nil }
            return PathIndex.Key.of(r.match.path, ignoreCase: !r.match.caseSensitive, language: re)
        }
        // An index pays when some route can be passed over: a key to tell routes apart.
        guard keys.contains(where: { !$0.bytes.isEmpty }),
            let index = PathIndex.build(keys: keys, maxStates: min(options.maxDFAStates, Int(ABI.dsState))),
            // an index is an optimisation: it never takes the matchers' half of the transition budget
            plan.transitions.count + index.next.count <= options.maxTransitions / 2
        else { return nil }
        row.candidates = UInt32(plan.candidates.count)
        plan.candidates += index.candidates
        row.dfa = register(
            classOf: index.classOf, classCount: index.classCount, stateCount: index.stateCount,
            next: { index.next[$0 * index.classCount + $1] }, flags: { _ in 0 })
        return index.proven
    }

    /// `pathProven`: the virtual host's path index decides the path matcher exactly
    /// (a route is tested only when it holds), so it is no condition of its own.
    private mutating func planRoute(_ r: IRRoute, index: UInt32, pathProven: Bool = false) -> HTTPPlan.Route {
        var route = HTTPPlan.Route(
            index: index, source: r.path, summary: IRPrinter.match(r.match), firstCond: UInt32(plan.conds.count),
            condCount: 0, action: .local, arg: ABI.httpNone, count: 0, total: 0, hash: 0)
        var conds: [HTTPPlan.Cond] = []
        let m = r.match
        let ic = !m.caseSensitive
        // Pure conditions: their order is free; the path (most selective) goes first.
        let pathRE: ByteRE
        switch m.path {
        case .prefix(let p): pathRE = .prefix(Array(p.utf8), ignoreCase: ic)
        case .exact(let p): pathRE = .exact(Array(p.utf8), ignoreCase: ic)
        case .separatedPrefix(let p):
            pathRE = .alternate([.exact(Array(p.utf8), ignoreCase: ic), .prefix(Array(p.utf8) + [UInt8(ascii: "/")], ignoreCase: ic)])
        case .regex(let re): pathRE = (try? ByteRE.re2(re)) ?? .bytes([])
        }
        if case .prefix("") = m.path {
            // An empty prefix matches every path: no condition.
        } else if pathProven {
            // decided by the path index before the route is tested
        } else if let d = dfa(pathRE, path: "\(r.path).match") {
            conds.append(.init(op: .string, source: .path, flags: 0, dfa: d, hash: 0, lo: 0, hi: 0, summary: "path"))
        } else {
            route.never = true
        }
        if let f = m.runtimeFraction {
            let id: UInt32
            if f.runtimeKey.isEmpty {
                id = 0
            } else if let i = plan.runtimeKeys.firstIndex(of: f.runtimeKey) {
                id = UInt32(i + 1)
            } else {
                plan.runtimeKeys.append(f.runtimeKey)
                id = UInt32(plan.runtimeKeys.count)
            }
            conds.append(
                .init(
                    op: .fraction, source: .none, flags: 0, dfa: id, hash: 0, lo: Int64(f.numerator),
                    hi: Int64(f.denominator), summary: "runtime_fraction \(f.numerator)/\(f.denominator)"))
        }
        if m.grpcOnly {
            let g = Array("application/grpc".utf8)
            let re = ByteRE.alternate([.exact(g, ignoreCase: false), .prefix(g + [UInt8(ascii: "+")], ignoreCase: false)])
            if let d = dfa(re, path: "\(r.path).match.grpc") {
                conds.append(.init(op: .string, source: .header, flags: 0, dfa: d, hash: FNV.name("content-type"), lo: 0, hi: 0, summary: "grpc"))
            }
        }
        for (i, h) in m.headers.enumerated() {
            if let c = headerCond(h, path: "\(r.path).match.headers[\(i)]") { conds.append(c) } else { route.never = true }
        }
        for (i, q) in m.queryParameters.enumerated() {
            let hash = FNV.hash(Array(q.name.utf8))
            if let v = q.value {
                guard let d = dfa(stringRE(v, ignoreCase: q.ignoreCase), path: "\(r.path).match.query_parameters[\(i)]") else {
                    route.never = true
                    continue
                }
                conds.append(.init(op: .string, source: .query, flags: 0, dfa: d, hash: hash, lo: 0, hi: 0, summary: "query \(q.name)"))
            } else {
                conds.append(
                    .init(op: .present, source: .query, flags: UInt8(ABI.cfWant), dfa: 0, hash: hash, lo: 0, hi: 0, summary: "query \(q.name) present"))
            }
        }
        // No HTTP filter runs before the kernel decides: dynamic metadata is always
        // absent, so each matcher is a constant (a missing value matches nothing,
        // then `invert` applies).
        if m.dynamicMetadata.contains(where: { !$0.invert }) { route.never = true }
        if route.never {
            // Constant false: a 0-in-1 fraction with no runtime key.
            conds = [.init(op: .fraction, source: .none, flags: 0, dfa: 0, hash: 0, lo: 0, hi: 1, summary: "never (constant false)")]
        }
        if conds.count > Int(ABI.httpMaxConds) {
            diagnostics.append(
                Diagnostic(
                    .limitExceeded, path: "\(r.path).match",
                    "route has \(conds.count) conditions; the kernel evaluates at most \(ABI.httpMaxConds)"))
            conds = [.init(op: .fraction, source: .none, flags: 0, dfa: 0, hash: 0, lo: 0, hi: 1, summary: "never (too many conditions)")]
            route.never = true
        }
        route.condCount = UInt16(conds.count)
        plan.conds += conds
        switch r.action {
        case .cluster(let c):
            route.action = .cluster
            route.arg = clusterIndex[c] ?? ABI.httpNone
        case .weighted(let entries, let total):
            if entries.count > Int(ABI.httpMaxWeighted) {
                diagnostics.append(
                    Diagnostic(
                        .limitExceeded, path: "\(r.path).route.weighted_clusters",
                        "\(entries.count) weighted clusters; the kernel supports \(ABI.httpMaxWeighted)"))
            }
            route.action = .weighted
            route.arg = UInt32(plan.weighted.count)
            route.count = UInt32(entries.count)
            route.total = total
            var cum: UInt32 = 0
            for e in entries {
                cum &+= e.weight
                plan.weighted.append((cum, clusterIndex[e.cluster] ?? ABI.httpNone))
            }
        case .clusterHeader(let h):
            route.action = .header
            let canonical = HTTPHeaderMap.canonical(h)
            if canonical.hasPrefix(":"), canonical != ":authority" {
                diagnostics.append(
                    Diagnostic(
                        .unsupportedRouting, path: "\(r.path).route.cluster_header",
                        "cluster_header \(ResourcePath.quoted(h)) (a pseudo-header) is not supported"))
            }
            route.hash = canonical == ":authority" ? FNV.name("host") : FNV.name(canonical)
        case .redirect, .directResponse, .nonForwarding, .guarded:
            route.action = .local
        }
        return route
    }

    func stringRE(_ s: IRStringMatch, ignoreCase: Bool) -> ByteRE {
        switch s {
        case .exact(let x): .exact(Array(x.utf8), ignoreCase: ignoreCase)
        case .prefix(let x): .prefix(Array(x.utf8), ignoreCase: ignoreCase)
        case .suffix(let x): .suffix(Array(x.utf8), ignoreCase: ignoreCase)
        case .contains(let x): .contains(Array(x.utf8), ignoreCase: ignoreCase)
        case .regex(let r): (try? ByteRE.re2(r)) ?? .bytes([])
        }
    }

    private mutating func headerCond(_ h: IRHeaderMatch, path: String) -> HTTPPlan.Cond? {
        let name = HTTPHeaderMap.canonical(h.name)
        let source: HTTPPlan.Source =
            switch name {
            case ":authority": .authority
            case ":path": .fullPath
            case ":method": .method
            case ":scheme": .scheme
            default: .header
            }
        var flags = UInt8(h.invert ? ABI.cfInvert : 0) | UInt8(h.treatMissingAsEmpty ? ABI.cfMissingEmpty : 0)
        // a header Envoy keeps an entry per line of is matched line by line (RouteSemantics.matches)
        if source == .header && !HTTPHeaderMap.isInline(name) { flags |= UInt8(ABI.cfEach) }
        var c = HTTPPlan.Cond(
            op: .any, source: source, flags: 0, dfa: 0, hash: source == .header ? FNV.name(name) : 0,
            lo: 0, hi: 0, summary: "header \(name)")
        switch h.kind {
        case .present(let want):
            c.op = .present
            if want { flags |= UInt8(ABI.cfWant) }
        case .anyValue:
            c.op = .any
        case .range(let lo, let hi):
            c.op = .range
            c.lo = lo
            c.hi = hi
        case .string(let s, let ic):
            c.op = .string
            guard let d = dfa(stringRE(s, ignoreCase: ic), path: path) else { return nil }
            c.dfa = d
        }
        c.flags = flags
        return c
    }

    // MARK: Automata

    private mutating func prebuildRegexAutomata() {
        var seen = Set<ByteRE>()
        var res: [ByteRE] = []
        for t in ir.routeTables {
            for vh in t.virtualHosts {
                for r in vh.routes {
                    if case .regex(let pattern) = r.match.path, let re = try? ByteRE.re2(pattern), seen.insert(re).inserted {
                        res.append(re)
                    }
                }
            }
        }
        guard res.count > 1 else { return }
        final class Results: @unchecked Sendable {
            var items: [Result<ByteDFA, ByteDFA.BuildError>?]
            init(_ n: Int) { items = Array(repeating: nil, count: n) }
        }
        let results = Results(res.count)
        let lock = NSLock()
        let maxStates = options.maxDFAStates
        let inputs = res
        DispatchQueue.concurrentPerform(iterations: inputs.count) { i in
            let r: Result<ByteDFA, ByteDFA.BuildError>
            do throws(ByteDFA.BuildError) { r = .success(try ByteDFA.build(inputs[i], maxStates: maxStates)) } catch { r = .failure(error) }
            lock.lock()
            results.items[i] = r
            lock.unlock()
        }
        for (i, re) in res.enumerated() { prebuilt[re] = results.items[i] }
    }

    /// The DFA of a byte language, shared between identical matchers.
    private mutating func dfa(_ re: ByteRE, path: String) -> UInt32? {
        if let i = dfaIndex[re] { return i }
        let d: ByteDFA
        do {
            if let pre = prebuilt[re] { d = try pre.get() } else { d = try ByteDFA.build(re, maxStates: options.maxDFAStates) }
        } catch .tooManyStates(let n) {
            diagnostics.append(Diagnostic(.limitExceeded, path: path, "matcher needs more than \(n) automaton states"))
            return nil
        } catch {
            diagnostics.append(Diagnostic(.limitExceeded, path: path, "matcher is too large to compile"))
            return nil
        }
        guard d.stateCount <= Int(ABI.dsState) else {
            diagnostics.append(Diagnostic(.limitExceeded, path: path, "matcher needs \(d.stateCount) automaton states"))
            return nil
        }
        func flags(_ s: Int) -> UInt32 { (d.acceptAtEnd[s] ? ABI.dsAccept : 0) | (d.sure[s] ? ABI.dsSure : 0) }
        let id = register(
            classOf: d.classOf, classCount: d.classCount, stateCount: d.stateCount,
            next: { d.transitions[$0 * d.classCount + $1] }, flags: flags)
        dfaIndex[re] = id
        return id
    }

    /// Appends an automaton's class map (shared with equal ones), transitions and
    /// x2b_dfa record; state 0 is dead, 1 the start. Returns its id.
    private mutating func register(
        classOf: [UInt8], classCount: Int, stateCount: Int, next: (Int, Int) -> Int, flags: (Int) -> UInt32
    ) -> UInt32 {
        let cmap: UInt32
        if let c = classMapIndex[classOf] {
            cmap = c
        } else {
            cmap = UInt32(plan.classMaps.count)
            classMapIndex[classOf] = cmap
            plan.classMaps.append(classOf)
        }
        let base = UInt32(plan.transitions.count)
        for s in 0..<stateCount {
            for c in 0..<classCount {
                let n = next(s, c)
                plan.transitions.append(UInt32(n) | (n == 0 ? 0 : flags(n)))
            }
        }
        let id = UInt32(plan.automata.count)
        plan.automata.append(
            .init(transitions: base, classMap: cmap, classCount: UInt16(classCount), startFlags: UInt16(flags(ByteDFA.start) >> 16)))
        return id
    }
}
