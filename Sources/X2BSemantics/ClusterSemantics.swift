import X2BIR

/// How a cluster spreads connections, computed once from the static snapshot:
/// which priority levels carry what share of the load and which endpoints, with
/// which weights, serve each level. Shared by the planner (map images) and the
/// interpreter (`explain`), so both agree.
public struct EffectiveCluster: Sendable, Hashable {
    public struct Level: Sendable, Hashable {
        public var priority: UInt32
        /// Share of connections, percent; levels' loads sum to 100.
        public var load: UInt32
        public var endpoints: [IREndpoint]
        /// Effective weights (endpoint weight, scaled by locality weight when
        /// locality-weighted load balancing is on), parallel to `endpoints`.
        public var weights: [UInt32]
        /// Under locality-weighted load balancing: the level's localities, each a
        /// run of `endpoints` with its effective weight (locality weight × its
        /// health). Random and least request pick a locality by these weights,
        /// then an endpoint inside it, as Envoy does. Empty otherwise.
        public var localities: [LocalityRun] = []
    }

    public struct LocalityRun: Sendable, Hashable {
        /// Index of the locality's first endpoint in the level's `endpoints`.
        public var first: Int
        public var count: Int
        public var weight: UInt64
    }

    public var levels: [Level]

    /// No routable endpoint at any priority: connects are refused.
    public var isEmpty: Bool { levels.isEmpty }
}

public enum ClusterSemantics {
    /// Envoy's priority load: each level's health is the routable share of its
    /// hosts times the overprovisioning factor (capped at 100%); loads are
    /// handed out from priority 0 down, normalised when the total health is
    /// below 100%. Unlike Envoy this compiler has no panic mode: unhealthy,
    /// draining and timed-out endpoints are never chosen.
    public static func effective(_ c: IRCluster) -> EffectiveCluster {
        struct Candidate {
            var priority: UInt32
            var health: UInt64
            var endpoints: [IREndpoint]
            var weights: [UInt32]
            var localities: [EffectiveCluster.LocalityRun]
        }
        var candidates: [Candidate] = []
        for p in c.priorities {
            let all = p.localities.flatMap(\.endpoints)
            guard !all.isEmpty else { continue }
            let routable = all.filter(\.health.isRoutable)
            let health = min(100, UInt64(c.overprovisioningFactor) * UInt64(routable.count) / UInt64(all.count))
            var eps: [IREndpoint] = []
            var weights: [UInt32] = []
            var runs: [EffectiveCluster.LocalityRun] = []
            for loc in p.localities {
                let usable = loc.endpoints.filter(\.health.isRoutable)
                guard !usable.isEmpty else { continue }
                if c.localityWeighted {
                    // Localities without a weight get no traffic under locality-weighted LB.
                    guard let lw = loc.weight, lw > 0 else { continue }
                    let locHealth = min(100, UInt64(c.overprovisioningFactor) * UInt64(usable.count) / UInt64(loc.endpoints.count))
                    let sum = usable.reduce(UInt64(0)) { $0 + UInt64($1.weight) }
                    runs.append(.init(first: eps.count, count: usable.count, weight: UInt64(lw) * locHealth))
                    for e in usable {
                        // locality weight × locality health × endpoint share, in 1/1000ths
                        // (exact: 128-bit product; the quotient is at most lw × locHealth × 10 since e.weight ≤ sum)
                        let (hi, lo) = (UInt64(lw) * locHealth * 10).multipliedFullWidth(by: UInt64(e.weight))
                        let w = sum.dividingFullWidth((hi, lo)).quotient
                        eps.append(e)
                        weights.append(UInt32(clamping: max(1, w)))
                    }
                } else {
                    for e in usable {
                        eps.append(e)
                        weights.append(e.weight)
                    }
                }
            }
            if !eps.isEmpty {
                candidates.append(Candidate(priority: p.level, health: health, endpoints: eps, weights: weights, localities: runs))
            }
        }
        let total = min(100, candidates.reduce(UInt64(0)) { $0 + $1.health })
        guard total > 0 else { return EffectiveCluster(levels: []) }
        var remaining: UInt64 = 100
        var levels: [EffectiveCluster.Level] = []
        for cand in candidates {
            let load = min(remaining, cand.health * 100 / total)
            remaining -= load
            if load > 0 {
                levels.append(
                    .init(
                        priority: cand.priority, load: UInt32(load), endpoints: cand.endpoints, weights: cand.weights,
                        localities: cand.localities))
            }
        }
        // Integer rounding leftovers go to the most preferred level.
        if remaining > 0, !levels.isEmpty { levels[0].load += UInt32(remaining) }
        return EffectiveCluster(levels: levels)
    }
}
