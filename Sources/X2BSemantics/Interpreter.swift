import Foundation
import X2BDiagnostics
import X2BIR

/// The reference semantics: where a connection (and, for HTTP listeners, a
/// request) goes, computed from MeshIR alone. `xds2bpf explain` prints it; the
/// kernel tests compare the BPF data plane against it.
public struct Explanation: Sendable, Codable {
    public struct Step: Sendable, Codable {
        public var stage: String
        public var decision: String
        public var path: String?
    }

    public enum Outcome: String, Sendable, Codable {
        case redirect, untouched, refused, httpResponse = "http_response"
    }

    public var steps: [Step] = []
    public var outcome: Outcome = .untouched
    /// The chosen endpoint (`ip:port`) for a redirect.
    public var endpoint: String?
    public var cluster: String?
    /// Every endpoint the cluster may pick, with its share in percent.
    public var candidates: [Candidate] = []

    public struct Candidate: Sendable, Codable {
        public var endpoint: String
        public var priority: UInt32
        public var share: Double
    }

    public var text: String {
        var out = ""
        for s in steps {
            out += "\(s.stage): \(s.decision)" + (s.path.map { "  [\($0)]" } ?? "") + "\n"
        }
        if !candidates.isEmpty {
            out += "candidates:\n"
            for c in candidates {
                out += "  \(c.endpoint) priority \(c.priority) \(String(format: "%.2f", c.share))%\n"
            }
        }
        out += "result: \(outcome.rawValue)\(endpoint.map { " -> \($0)" } ?? "")\n"
        return out
    }
}

public enum Interpreter {
    /// Each endpoint's share of a level's connections under the cluster's policy,
    /// from the same tables the kernel uses: the round-robin schedule, the
    /// maglev table, the ring's arcs; uniform for random and least request
    /// (idle endpoints), per locality by its weight under locality weights.
    public static func endpointShares(_ c: IRCluster, _ lv: EffectiveCluster.Level) -> [Double] {
        let n = lv.endpoints.count
        var counts = [Double](repeating: 0, count: n)
        switch c.lb {
        case .random, .leastRequest:
            // Under locality weights: a locality by the schedule, then uniform inside it.
            let t = LBTables.localitySchedule(lv.localities)
            if t.isEmpty { return [Double](repeating: 1.0 / Double(n), count: n) }
            for s in t {
                for i in Int(s.endpoint)..<Int(s.endpoint + s.hash) { counts[i] += 1 / Double(s.hash) }
            }
            return counts.map { $0 / Double(t.count) }
        case .roundRobin:
            let t = LBTables.roundRobinSchedule(weights: lv.weights)
            if t.isEmpty { return [Double](repeating: 1.0 / Double(n), count: n) }
            for s in t { counts[Int(s.endpoint)] += 1 }
            return counts.map { $0 / Double(t.count) }
        case .maglev:
            let t = LBTables.maglev(endpoints: lv.endpoints, weights: lv.weights, size: c.maglevTableSize)
            for s in t { counts[Int(s.endpoint)] += 1 }
            return counts.map { $0 / Double(t.count) }
        case .ringHash:
            let ring = LBTables.ring(
                endpoints: lv.endpoints, weights: lv.weights,
                minimum: c.ringMinimumSize, maximum: c.ringMaximumSize)
            guard let last = ring.last else { return counts }
            // Point i takes the keys in (hash[i-1], hash[i]]; the first also those above the last point.
            var prev = Double(last.hash) - 4_294_967_296
            for s in ring {
                counts[Int(s.endpoint)] += Double(s.hash) - prev
                prev = Double(s.hash)
            }
            return counts.map { $0 / 4_294_967_296 }
        }
    }

    /// Endpoint shares over all clusters a decision may take (percent of connections).
    public static func candidates(_ ir: MeshIR, _ options: [(String, Double)]) -> [Explanation.Candidate] {
        var out: [Explanation.Candidate] = []
        for (name, p) in options {
            guard let c = ir.cluster(named: name), !c.originalDestination else { continue }
            for lv in ClusterSemantics.effective(c).levels {
                let shares = endpointShares(c, lv)
                for (i, ep) in lv.endpoints.enumerated() {
                    let share = shares[i] * Double(lv.load) * p
                    if let j = out.firstIndex(where: { $0.endpoint == ep.text }) {
                        out[j].share += share
                    } else {
                        out.append(.init(endpoint: ep.text, priority: lv.priority, share: share))
                    }
                }
            }
        }
        return out
    }

    /// `random` stands for every random choice (weighted clusters, priority
    /// level, endpoint), so a given value gives one reproducible path.
    /// `hello`: the connection's first bytes as the TLS inspector reads them, for
    /// listeners whose chains are told apart by the ClientHello (nil: plain bytes).
    public static func explain(
        _ ir: MeshIR, address: IRAddress, port: UInt16, request: HTTPRequest?, random: UInt64, hello: TLSHello? = nil
    ) -> Explanation {
        var e = Explanation()
        guard let l = ChainSelection.listener(in: ir, address: address, port: port) else {
            e.steps.append(.init(stage: "listener", decision: "no listener for \(address.withPort(port)); the connect is left untouched"))
            return e
        }
        e.steps.append(.init(stage: "listener", decision: "\(ResourcePath.quoted(l.name)) on \(l.endpointText)", path: l.path))
        let chosenChain: IRFilterChain?
        if TLSSelection.needsClientHello(ChainSelection.ipSurvivors(l, destination: address)) {
            let h = hello ?? .plaintext
            let what =
                h.isTLS
                ? "ClientHello, server name \(h.serverName.isEmpty ? "(none)" : ResourcePath.quoted(h.serverName)), ALPN [\(h.applicationProtocols.map(ResourcePath.quoted).joined(separator: ", "))]"
                : "not a ClientHello (raw_buffer)"
            e.steps.append(.init(stage: "tls_inspector", decision: "\(what); the chain is chosen at the first send (defer-connect module)"))
            chosenChain = ChainSelection.chain(l, destination: address, hello: h)
            guard chosenChain != nil else {
                e.steps.append(.init(stage: "filter_chain", decision: "no filter chain matches and no default chain; Envoy closes the connection"))
                e.outcome = .refused
                return e
            }
        } else {
            chosenChain = ChainSelection.chain(l, destination: address)
        }
        guard let chain = chosenChain else {
            e.steps.append(.init(stage: "filter_chain", decision: "no filter chain matches; the connect is left untouched"))
            return e
        }
        e.steps.append(.init(stage: "filter_chain", decision: chain.name.isEmpty ? "matched" : ResourcePath.quoted(chain.name), path: chain.path))
        var clusterName: String?
        // The kernel refuses the request (a path Envoy normalises); the steps tell Envoy's decision.
        var kernelRefuses = false
        // Every cluster the decision may take, with its probability (weighted choices).
        var options: [(String, Double)] = []
        func weightedOptions(_ entries: [IRWeightedCluster]) -> [(String, Double)] {
            let total = Double(entries.reduce(UInt64(0)) { $0 + UInt64($1.weight) })
            return total > 0 ? entries.map { ($0.cluster, Double($0.weight) / total) } : []
        }
        switch chain.action {
        case .cluster(let c):
            clusterName = c
            options = [(c, 1)]
            e.steps.append(.init(stage: "tcp_proxy", decision: "cluster \(ResourcePath.quoted(c))"))
        case .weighted(let entries):
            let total = entries.reduce(UInt32(0)) { $0 + $1.weight }
            clusterName = RouteSemantics.pickWeighted(entries, total: total, random: random)
            options = weightedOptions(entries)
            e.steps.append(
                .init(
                    stage: "tcp_proxy",
                    decision: "weighted: \(random) % \(total) = \(total > 0 ? random % UInt64(total) : 0) -> \(ResourcePath.quoted(clusterName ?? "-"))"))
        case .pass(let why):
            e.steps.append(.init(stage: "action", decision: "pass: \(why)"))
            return e
        case .refuse(let because):
            e.steps.append(.init(stage: "action", decision: "refused (fail closed): the chain is \(because)"))
            e.outcome = .refused
            return e
        case .http(let name):
            guard let table = ir.routeTable(named: name) else { return e }
            var req = request ?? HTTPRequest(authority: address.withPort(port))
            if request == nil, let filters = table.guardingFilters {
                e.steps.append(
                    .init(
                        stage: "http",
                        decision:
                            "no request given (the connect-time fallback): routes of this table are guarded by \(filters.joined(separator: ", ")), which the kernel cannot run, and without the request it cannot tell them apart: refused (fail closed)"
                    ))
                e.outcome = .refused
                return e
            }
            if request == nil {
                e.steps.append(.init(stage: "http", decision: "no request given; deciding for authority \(req.authority) path / (the connect-time fallback)"))
            } else {
                switch HeadValidation.validate(req) {
                case .refuse(let status, let reason):
                    e.steps.append(
                        .init(stage: "request", decision: "refused before routing: \(reason); the kernel refuses the connection, Envoy answers \(status)"))
                    e.outcome = .httpResponse
                    return e
                case .accept(let r):
                    if r.path != req.path {
                        e.steps.append(
                            .init(
                                stage: "request",
                                decision: "absolute-form target: authority \(ResourcePath.quoted(r.authority)), path \(ResourcePath.quoted(r.path))"))
                    }
                    req = r
                }
            }
            // The connection manager's path normalisation, before routing; the kernel
            // refuses a path it would change (PathNormalization).
            if request != nil, !table.pathNormalization.isIdentity {
                kernelRefuses = PathNormalization.kernelRefuses(table.pathNormalization, req.path)
                switch PathNormalization.apply(table.pathNormalization, req.path) {
                case .reject(let why):
                    e.steps.append(.init(stage: "request", decision: "refused before routing: \(why); the kernel refuses the connection, Envoy answers 400"))
                    e.outcome = .httpResponse
                    return e
                case .redirect(let location):
                    e.steps.append(
                        .init(
                            stage: "request",
                            decision:
                                "escaped slashes unescaped: Envoy redirects to \(ResourcePath.quoted(location)) (307; answered by the proxy); the kernel refuses the connection"
                        ))
                    e.outcome = .httpResponse
                    return e
                case .forward(let p):
                    if p != req.path {
                        e.steps.append(
                            .init(
                                stage: "request",
                                decision:
                                    "path normalised to \(ResourcePath.quoted(p)) (Envoy routes on it); the kernel does not rewrite paths: it refuses the connection"
                            ))
                        req.path = p
                    }
                }
            }
            let d = RouteSemantics.decide(table, req, random: random)
            guard let vh = d.virtualHost else {
                e.steps.append(
                    .init(stage: "virtual_host", decision: "no virtual host for \(ResourcePath.quoted(req.authority)) (Envoy answers 404)", path: table.path))
                e.outcome = .httpResponse
                return e
            }
            e.steps.append(.init(stage: "virtual_host", decision: ResourcePath.quoted(vh.name), path: vh.path))
            if d.outcome == .tlsRedirect {
                let fin = RouteSemantics.finalize(table, d, req)
                e.steps.append(
                    .init(
                        stage: "route",
                        decision: "require_tls \(vh.requireTLS.rawValue): Envoy redirects to \(fin.newURI ?? "https") (301; answered by the proxy)"))
                e.outcome = .httpResponse
                return e
            }
            guard let r = d.route else {
                e.steps.append(.init(stage: "route", decision: "no route matches (Envoy answers 404)"))
                e.outcome = .httpResponse
                return e
            }
            e.steps.append(.init(stage: "route", decision: "route[\(d.routeIndex ?? 0)] \(IRPrinter.match(r.match))", path: r.path))
            if !r.notes.isEmpty { e.steps.append(.init(stage: "note", decision: IRPrinter.notes(r.notes))) }
            switch r.action {
            case .guarded(let filters):
                e.steps.append(
                    .init(
                        stage: "action",
                        decision:
                            "HTTP filters \(filters.joined(separator: ", ")) guard this route and the kernel cannot run them: refused (fail closed)"
                    ))
                e.outcome = .refused
                return e
            case .redirect, .directResponse, .nonForwarding:
                let fin = RouteSemantics.finalize(table, d, req)
                let uri = fin.newURI.map { " -> \($0)" } ?? ""
                e.steps.append(.init(stage: "action", decision: IRPrinter.action(r.action) + "\(uri) (answered by the proxy; not enforceable at connect time)"))
                e.outcome = .httpResponse
                return e
            default:
                e.steps.append(.init(stage: "action", decision: IRPrinter.action(r.action)))
                clusterName = d.cluster
                switch r.action {
                case .weighted(let entries, _): options = weightedOptions(entries)
                default: options = d.cluster.map { [($0, 1)] } ?? []
                }
            }
        }
        guard let name = clusterName, let c = ir.cluster(named: name) else {
            e.steps.append(.init(stage: "cluster", decision: "cluster \(ResourcePath.quoted(clusterName ?? "-")) not found"))
            e.outcome = .refused
            return e
        }
        e.cluster = name
        if c.originalDestination {
            e.steps.append(.init(stage: "cluster", decision: "ORIGINAL_DST: the connect keeps its destination", path: c.path))
            if kernelRefuses { e.outcome = .refused }
            return e
        }
        let eff = ClusterSemantics.effective(c)
        guard !eff.isEmpty else {
            e.steps.append(.init(stage: "cluster", decision: "no healthy endpoint; the connect is refused", path: c.path))
            e.outcome = .refused
            return e
        }
        e.steps.append(.init(stage: "cluster", decision: "\(ResourcePath.quoted(name)) \(c.lb.rawValue), \(eff.levels.count) priority level(s)", path: c.path))
        e.candidates = candidates(ir, options)
        let r100 = random % 100
        var cum: UInt64 = 0
        var level = eff.levels[0]
        for lv in eff.levels {
            cum += UInt64(lv.load)
            if r100 < cum { level = lv; break }
        }
        let idx: Int
        switch c.lb {
        case .roundRobin:
            let schedule = LBTables.roundRobinSchedule(weights: level.weights)
            idx = schedule.isEmpty ? Int(random % UInt64(level.endpoints.count)) : Int(schedule[Int(random % UInt64(schedule.count))].endpoint)
        case .random, .leastRequest:
            let t = LBTables.localitySchedule(level.localities)
            if t.isEmpty {
                idx = Int(random % UInt64(level.endpoints.count))
            } else {
                let s = t[Int(random % UInt64(t.count))]
                idx = Int(s.endpoint) + Int((random / UInt64(t.count)) % UInt64(s.hash))
            }
        case .maglev:
            let t = LBTables.maglev(endpoints: level.endpoints, weights: level.weights, size: c.maglevTableSize)
            idx = Int(t[Int(random % UInt64(t.count))].endpoint)
        case .ringHash:
            let ring = LBTables.ring(endpoints: level.endpoints, weights: level.weights, minimum: c.ringMinimumSize, maximum: c.ringMaximumSize)
            let h = UInt32(truncatingIfNeeded: random)
            idx = Int((ring.first { $0.hash >= h } ?? ring[0]).endpoint)
        }
        let chosen = level.endpoints[idx]
        e.steps.append(.init(stage: "endpoint", decision: "\(chosen.text) (priority \(level.priority))"))
        if kernelRefuses {
            e.steps.append(.init(stage: "kernel", decision: "refused: the path needs normalising, which the kernel does not do"))
            e.outcome = .refused
            return e
        }
        e.outcome = .redirect
        e.endpoint = chosen.text
        return e
    }
}
