import X2BDiagnostics
import X2BIR
import X2BSemantics

/// The comparison itself: every service address either side listens on is probed
/// with a connect (the listener and filter chain `explain` would take); where both
/// sides hand the connection to an HTTP connection manager, candidate requests for
/// every host of both route tables are decided on both sides.
struct DiffEngine {
    var a: DiffSnapshot
    var b: DiffSnapshot

    init(old: MeshIR, new: MeshIR) {
        a = DiffSnapshot(old)
        b = DiffSnapshot(new)
    }

    /// A destination a client may dial: the address that reaches a listener, and how the report names it.
    struct Probe: Hashable {
        var address: IRAddress
        var port: UInt16
        var label: String

        var dst: String { address.withPort(port) }
    }

    /// For a wildcard listener: an address no listener of its own is likely to take (RFC 5737 / RFC 3849).
    static func otherAddress(_ family: IRFamily) -> IRAddress {
        family == .inet4
            ? IRAddress(family: .inet4, bytes: [192, 0, 2, 1])
            : IRAddress(family: .inet6, bytes: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1])
    }

    func probes() -> [Probe] {
        var seen: Set<DiffSnapshot.ListenerKey> = []
        var out: [Probe] = []
        func add(_ address: IRAddress, _ port: UInt16, _ label: String) {
            let k = DiffSnapshot.ListenerKey(address: address, port: port)
            if seen.insert(k).inserted { out.append(Probe(address: address, port: port, label: label)) }
        }
        for l in a.ir.listeners + b.ir.listeners {
            guard l.address.isUnspecified else {
                add(l.address, l.port, l.endpointText)
                continue
            }
            // Other destinations reach a wildcard listener; its chains' prefix ranges tell them apart.
            add(Self.otherAddress(l.address.family), l.port, l.endpointText)
            for c in l.chains + (l.defaultChain.map { [$0] } ?? []) {
                for r in c.match.prefixRanges where r.prefixLength > 0 && !r.address.isUnspecified {
                    add(r.address, l.port, "\(r):\(l.port)")
                }
            }
        }
        return out.sorted { ($0.address, $0.port) < ($1.address, $1.port) }
    }

    mutating func run() -> [RoutingDiff.Change] {
        var changes: [RoutingDiff.Change] = []
        for p in probes() {
            let la = a.listener(p.address, p.port)
            let lb = b.listener(p.address, p.port)
            let ca = la.flatMap { ChainSelection.chain($0, destination: p.address) }
            let cb = lb.flatMap { ChainSelection.chain($0, destination: p.address) }
            if case .http(let ta)? = ca?.action, case .http(let tb)? = cb?.action,
                let tableA = a.tables[ta], let tableB = b.tables[tb]
            {
                changes += httpChanges(p, tableA, tableB)
                continue
            }
            // The same action on the same clusters, which behave alike: nothing to describe.
            if let ca, let cb, ca.action == cb.action {
                switch ca.action {
                case .cluster(let n) where sameClusters([n]): continue
                case .weighted(let e) where sameClusters(e.map(\.cluster)): continue
                case .pass: continue
                default: break
                }
            }
            let da = ca.map { a.behaviours.destination($0.action) } ?? .untouched(la == nil ? "no listener" : "no filter chain")
            let db = cb.map { b.behaviours.destination($0.action) } ?? .untouched(lb == nil ? "no listener" : "no filter chain")
            if da != db {
                changes.append(
                    RoutingDiff.Change(
                        service: p.label, kind: .connect, host: nil,
                        old: Self.connectSide(&a, p, la, ca), new: Self.connectSide(&b, p, lb, cb),
                        example: RoutingDiff.Example(dst: p.dst, random: 0), evidence: 1))
            }
        }
        return changes
    }

    // MARK: HTTP

    /// A virtual host as routing sees it: names, paths, header mutations, statistics-only
    /// virtual clusters and the notes the kernel does not enforce taken out.
    static func shape(_ vh: IRVirtualHost) -> IRVirtualHost {
        var v = vh
        v.name = ""
        v.path = ""
        v.virtualClusters = []
        v.requestHeaders = IRHeaderMutation()
        v.responseHeaders = IRHeaderMutation()
        v.routes = vh.routes.map {
            var r = $0
            r.name = ""
            r.path = ""
            r.notes = IRRouteNotes()
            r.requestHeaders = IRHeaderMutation()
            r.responseHeaders = IRHeaderMutation()
            return r
        }
        return v
    }

    static func shape(_ t: IRRouteTable) -> IRRouteTable {
        var x = t
        x.name = ""
        x.path = ""
        x.virtualHosts = []
        x.requestHeaders = IRHeaderMutation()
        x.responseHeaders = IRHeaderMutation()
        x.mostSpecificHeaderMutationsWins = false
        return x
    }

    static func clusterNames(_ vh: IRVirtualHost) -> [String] {
        vh.routes.flatMap { r -> [String] in
            switch r.action {
            case .cluster(let c): return [c]
            case .weighted(let e, _): return e.map(\.cluster)
            default: return []
            }
        }
    }

    /// Two virtual hosts that route every request alike without asking: the same shape
    /// and the same behaviour behind every cluster name they use.
    mutating func sameRouting(_ va: IRVirtualHost, _ vb: IRVirtualHost) -> Bool {
        Self.shape(va) == Self.shape(vb) && sameClusters(Self.clusterNames(va))
    }

    /// Whether each cluster name routes alike on both sides: equal clusters (names and
    /// paths aside) without describing them, else equal behaviours.
    mutating func sameClusters(_ names: [String]) -> Bool {
        for n in names {
            if let ca = a.behaviours.cluster(n), let cb = b.behaviours.cluster(n), Self.shape(ca) == Self.shape(cb) { continue }
            if a.behaviours.describe(n) != b.behaviours.describe(n) { return false }
        }
        return true
    }

    static func shape(_ c: IRCluster) -> IRCluster {
        var x = c
        x.name = ""
        x.path = ""
        return x
    }

    mutating func httpChanges(_ p: Probe, _ ta: IRRouteTable, _ tb: IRRouteTable) -> [RoutingDiff.Change] {
        let ia = a.domainIndex(ta)
        let ib = b.domainIndex(tb)
        let sameTable = Self.shape(ta) == Self.shape(tb)
        // Hosts in config order, each domain once; a host's pair of virtual hosts is compared once.
        var hostsSeen: Set<String> = []
        var pairsSeen: Set<[Int]> = []
        var changes: [RoutingDiff.Change] = []
        for vh in ta.virtualHosts + tb.virtualHosts {
            for d in vh.domains {
                let host = Candidates.host(for: d)
                guard hostsSeen.insert(host).inserted else { continue }
                let va = Self.virtualHostIndex(ia, ta, host: host)
                let vb = Self.virtualHostIndex(ib, tb, host: host)
                guard pairsSeen.insert([va ?? -1, vb ?? -1]).inserted else { continue }
                if va == nil && vb == nil { continue }
                if sameTable, let va, let vb, sameRouting(ta.virtualHosts[va], tb.virtualHosts[vb]) { continue }
                changes += comparePair(p, ta, tb, va, vb, host: host)
            }
        }
        return changes
    }

    /// The virtual host a request with this host (as `:authority`, or as the table's
    /// `vhost_header`) selects: the connection manager's Host normalisation, then the domains.
    static func virtualHostIndex(_ index: RouteSemantics.DomainIndex, _ t: IRRouteTable, host: String) -> Int? {
        // The vhost_header is not normalised; the authority is.
        let value = t.vhostHeader == nil ? RouteSemantics.normalizeHost(host, t.hostNormalization) : host
        return index.virtualHostIndex(selectionHost: RouteSemantics.selectionHost(t, value: Array(value.utf8)))
    }

    static func withVhostHeader(_ r: HTTPRequest, _ t: IRRouteTable, _ host: String) -> HTTPRequest {
        guard let h = t.vhostHeader else { return r }
        var x = r
        x.headers.removeAll { $0.0 == h }
        x.headers.append((h, host))
        return x
    }

    /// What one side does with a request, names taken out.
    struct HTTPOutcome: Hashable {
        var route: Int?
        var destination: Destination
    }

    static func decide(_ s: inout DiffSnapshot, _ t: IRRouteTable, _ request: HTTPRequest, random: UInt64) -> HTTPOutcome {
        var req = request
        if !t.pathNormalization.isIdentity {
            switch PathNormalization.apply(t.pathNormalization, req.path) {
            case .reject: return HTTPOutcome(destination: .response("path rejected (400)"))
            case .redirect: return HTTPOutcome(destination: .response("escaped slashes redirected (307)"))
            case .forward(let path): req.path = path
            }
        }
        let d = RouteSemantics.decide(t, req, random: random, domains: s.domainIndex(t))
        switch d.outcome {
        case .noVirtualHost: return HTTPOutcome(destination: .response("no virtual host (404)"))
        case .tlsRedirect: return HTTPOutcome(destination: .response("require_tls redirect (301)"))
        case .noRoute: return HTTPOutcome(destination: .response("no route (404)"))
        case .route(let i): return HTTPOutcome(route: i, destination: s.behaviours.destination(d.route!.action))
        }
    }

    struct GroupKey: Hashable {
        var old: HTTPOutcome
        var new: HTTPOutcome
    }

    mutating func comparePair(_ p: Probe, _ ta: IRRouteTable, _ tb: IRRouteTable, _ va: Int?, _ vb: Int?, host: String) -> [RoutingDiff.Change] {
        let routes = (va.map { ta.virtualHosts[$0].routes } ?? []) + (vb.map { tb.virtualHosts[$0].routes } ?? [])
        let paths = Candidates.paths(routes)
        let variants = Candidates.variants(routes)
        let randoms = Candidates.randoms(routes)
        var order: [GroupKey] = []
        var groups: [GroupKey: (example: HTTPRequest, random: UInt64, count: Int)] = [:]
        for v in variants {
            for path in paths {
                var req = HTTPRequest(
                    authority: host, path: Self.withQuery(path, v.query), method: v.method,
                    headers: v.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
                for t in [ta, tb] { req = Self.withVhostHeader(req, t, host) }
                // A request Envoy refuses before routing is refused alike on both sides.
                guard case .accept = HeadValidation.validate(req) else { continue }
                for r in randoms {
                    let oa = Self.decide(&a, ta, req, random: r)
                    let ob = Self.decide(&b, tb, req, random: r)
                    guard oa.destination != ob.destination else { continue }
                    let k = GroupKey(old: oa, new: ob)
                    if let g = groups[k] {
                        groups[k] = (g.example, g.random, g.count + 1)
                    } else {
                        groups[k] = (req, r, 1)
                        order.append(k)
                    }
                }
            }
        }
        return order.map { k in
            let g = groups[k]!
            return RoutingDiff.Change(
                service: p.label, kind: .request, host: host,
                old: Self.requestSide(&a, p, ta, g.example, random: g.random),
                new: Self.requestSide(&b, p, tb, g.example, random: g.random),
                example: RoutingDiff.Example(
                    dst: p.dst, authority: g.example.authority, method: g.example.method, path: g.example.path,
                    headers: g.example.headers.isEmpty ? nil : g.example.headers.map { [$0.0, $0.1] }, random: g.random),
                evidence: g.count)
        }
    }

    static func withQuery(_ path: String, _ query: [String: String]) -> String {
        guard !query.isEmpty else { return path }
        return path + "?" + query.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
    }

    // MARK: Sides, as explain reports them

    static func connectSide(_ s: inout DiffSnapshot, _ p: Probe, _ l: IRListener?, _ c: IRFilterChain?) -> RoutingDiff.Side {
        guard let l else { return RoutingDiff.Side(outcome: "untouched", decision: "no listener for \(p.dst)") }
        let head = "listener \(ResourcePath.quoted(l.name))"
        guard let c else { return RoutingDiff.Side(outcome: "untouched", decision: "\(head): no filter chain matches") }
        switch c.action {
        case .pass(let why):
            return RoutingDiff.Side(outcome: "untouched", decision: "\(head): pass: \(why)")
        case .refuse:
            return RoutingDiff.Side(outcome: "refused", decision: "\(head): \(IRPrinter.action(c.action))")
        case .cluster(let name):
            return clusterSide(&s, head + " tcp_proxy", name: name, options: [(name, 1)])
        case .weighted(let entries):
            let total = entries.reduce(UInt32(0)) { $0 &+ $1.weight }
            let picked = RouteSemantics.pickWeighted(entries, total: total, random: 0)
            let list = entries.map { "\(ResourcePath.quoted($0.cluster)) \($0.weight)" }.joined(separator: ", ")
            return clusterSide(&s, "\(head) tcp_proxy weighted [\(list)]", name: picked, options: weightedOptions(entries))
        case .http(let name):
            // explain without a request: the connect-time fallback (authority = the destination, path /).
            guard let t = s.tables[name] else { return RoutingDiff.Side(outcome: "untouched", decision: "\(head): no route table") }
            if let filters = s.guardingFilters[name] {
                return RoutingDiff.Side(
                    outcome: "refused",
                    decision: "\(head) http (connect-time fallback): routes guarded by \(filters.joined(separator: ", ")), which the kernel cannot run: refused"
                )
            }
            var side = requestSide(&s, p, t, HTTPRequest(authority: p.dst), random: 0, normalize: false)
            side.decision = "\(head) http (connect-time fallback: authority \(p.dst), path /): " + side.decision
            return side
        }
    }

    static func weightedOptions(_ entries: [IRWeightedCluster]) -> [(String, Double)] {
        let total = Double(entries.reduce(UInt64(0)) { $0 + UInt64($1.weight) })
        return total > 0 ? entries.map { ($0.cluster, Double($0.weight) / total) } : []
    }

    static func requestSide(
        _ s: inout DiffSnapshot, _ p: Probe, _ t: IRRouteTable, _ request: HTTPRequest, random: UInt64, normalize: Bool = true
    ) -> RoutingDiff.Side {
        var req = request
        var kernelRefuses = false
        if normalize, !t.pathNormalization.isIdentity {
            kernelRefuses = PathNormalization.kernelRefuses(t.pathNormalization, req.path)
            switch PathNormalization.apply(t.pathNormalization, req.path) {
            case .reject(let why): return RoutingDiff.Side(outcome: "http_response", decision: "refused before routing: \(why) (400)")
            case .redirect(let l): return RoutingDiff.Side(outcome: "http_response", decision: "escaped slashes: redirect to \(l) (307)")
            case .forward(let path): req.path = path
            }
        }
        let d = RouteSemantics.decide(t, req, random: random, domains: s.domainIndex(t))
        guard let vh = d.virtualHost else {
            return RoutingDiff.Side(outcome: "http_response", decision: "no virtual host for \(ResourcePath.quoted(req.authority)) (404)")
        }
        let vhText = "virtual_host \(ResourcePath.quoted(vh.name))"
        var side: RoutingDiff.Side
        switch d.outcome {
        case .tlsRedirect:
            side = RoutingDiff.Side(outcome: "http_response", decision: "\(vhText): require_tls \(vh.requireTLS.rawValue) redirect (301)")
        case .noRoute, .noVirtualHost:
            side = RoutingDiff.Side(outcome: "http_response", decision: "\(vhText): no route matches (404)")
        case .route(let i):
            let r = d.route!
            let head = "\(vhText) route[\(i)] \(IRPrinter.match(r.match)): \(IRPrinter.action(r.action))"
            switch r.action {
            case .redirect, .directResponse, .nonForwarding:
                side = RoutingDiff.Side(outcome: "http_response", decision: head + " (answered by the proxy)")
            case .guarded:
                side = RoutingDiff.Side(outcome: "refused", decision: head)
            case .weighted(let entries, _):
                side = clusterSide(&s, head, name: d.cluster, options: weightedOptions(entries))
            case .cluster, .clusterHeader:
                side = clusterSide(&s, head, name: d.cluster, options: d.cluster.map { [($0, 1)] } ?? [])
            }
            side.route = i
            side.match = IRPrinter.match(r.match)
        }
        side.virtualHost = vh.name
        if kernelRefuses && side.outcome != "http_response" { side.outcome = "refused" }
        return side
    }

    /// explain's last steps: the cluster, then every endpoint the decision may take with its share.
    static func clusterSide(_ s: inout DiffSnapshot, _ decision: String, name: String?, options: [(String, Double)]) -> RoutingDiff.Side {
        guard let name, let c = s.behaviours.cluster(name) else {
            return RoutingDiff.Side(outcome: "refused", decision: decision + "; cluster \(ResourcePath.quoted(name ?? "-")) not found")
        }
        var side = RoutingDiff.Side(outcome: "redirect", decision: decision, cluster: name)
        if c.originalDestination {
            side.outcome = "untouched"
            side.decision += "; ORIGINAL_DST"
            return side
        }
        if ClusterSemantics.effective(c).isEmpty {
            side.outcome = "refused"
            side.decision += "; no healthy endpoint"
            return side
        }
        side.endpoints = Interpreter.candidates(s.ir, options).map {
            RoutingDiff.Endpoint(endpoint: $0.endpoint, priority: $0.priority, share: $0.share)
        }
        return side
    }
}
