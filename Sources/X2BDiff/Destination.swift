import X2BIR
import X2BSemantics

/// Where traffic goes, with every resource name taken out: two snapshots that
/// route the same way under other names give equal values, so renames are no change.
enum Destination: Hashable {
    /// The connect keeps its destination (no listener, no filter chain, a chain that does not route).
    case untouched(String)
    /// An HTTP connection manager; what it does is compared request by request.
    case http
    /// Clusters with their share of the traffic (weighted clusters merged by behaviour, fractions reduced).
    case clusters([Share])
    /// `cluster_header`: the cluster is named by this request header.
    case clusterHeader(String)
    /// Answered by the proxy (no virtual host or route, redirect, direct response, ...).
    case response(String)

    struct Share: Hashable, Comparable {
        /// `ClusterBehaviour.describe` of the cluster.
        var behaviour: String
        var numerator: UInt64
        var denominator: UInt64

        static func < (a: Share, b: Share) -> Bool {
            (a.behaviour, a.numerator, a.denominator) < (b.behaviour, b.numerator, b.denominator)
        }
    }
}

/// The name-free behaviour of each cluster of one snapshot, computed once per name.
struct ClusterBehaviours {
    let ir: MeshIR
    private let byName: [String: IRCluster]
    private var cache: [String: String] = [:]

    init(_ ir: MeshIR) {
        self.ir = ir
        var m: [String: IRCluster] = [:]
        for c in ir.clusters where m[c.name] == nil { m[c.name] = c }
        byName = m
    }

    func cluster(_ name: String) -> IRCluster? { byName[name] }

    /// What the cluster does with a connection, as text: the LB policy (and the table
    /// size where it shapes the choice), then each effective priority level with its
    /// load and its endpoints with their effective weights, sorted (the order of
    /// endpoints in an assignment is not a routing change).
    mutating func describe(_ name: String) -> String {
        if let d = cache[name] { return d }
        let d: String
        if let c = byName[name] {
            d = Self.describe(c)
        } else {
            d = "missing"
        }
        cache[name] = d
        return d
    }

    static func describe(_ c: IRCluster) -> String {
        if c.originalDestination { return "original_dst" }
        var out = c.lb.rawValue
        switch c.lb {
        case .maglev: out += " table \(c.maglevTableSize)"
        case .ringHash: out += " ring \(c.ringMinimumSize)..\(c.ringMaximumSize)"
        default: break
        }
        let eff = ClusterSemantics.effective(c)
        if eff.isEmpty { return out + "; no routable endpoint" }
        for lv in eff.levels {
            let eps = zip(lv.endpoints, lv.weights).map { "\($0.0.text) w\($0.1)" }.sorted()
            out += "; p\(lv.priority) \(lv.load)%: " + eps.joined(separator: ", ")
        }
        return out
    }

    /// Weighted clusters as a share set: entries of equal behaviour merged, zero weights
    /// dropped, each share a reduced fraction of the total.
    mutating func shares(_ entries: [(String, UInt64)]) -> Destination {
        var merged: [String: UInt64] = [:]
        var total: UInt64 = 0
        for (name, w) in entries where w > 0 {
            merged[describe(name), default: 0] += w
            total += w
        }
        if total == 0 { return .response("weighted clusters of total weight 0") }
        var out: [Destination.Share] = []
        for (b, w) in merged {
            let g = gcd(w, total)
            out.append(.init(behaviour: b, numerator: w / g, denominator: total / g))
        }
        return .clusters(out.sorted())
    }

    mutating func destination(_ a: IRChainAction) -> Destination {
        switch a {
        case .cluster(let c): return shares([(c, 1)])
        case .weighted(let e): return shares(e.map { ($0.cluster, UInt64($0.weight)) })
        case .http: return .http
        case .pass: return .untouched("the filter chain does not route")
        case .refuse: return .response(IRPrinter.action(a))
        }
    }

    mutating func destination(_ a: IRRouteAction) -> Destination {
        switch a {
        case .cluster(let c): return shares([(c, 1)])
        case .weighted(let e, _): return shares(e.map { ($0.cluster, UInt64($0.weight)) })
        case .clusterHeader(let h): return .clusterHeader(h)
        case .redirect, .directResponse, .nonForwarding, .guarded: return .response(IRPrinter.action(a))
        }
    }
}

func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
    var (x, y) = (a, b)
    while y != 0 { (x, y) = (y, x % y) }
    return x
}
