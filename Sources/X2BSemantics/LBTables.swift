import Crypto
import X2BIR

/// Load-balancing tables computed at compile time and shipped as map images.
/// Entries are endpoint indexes relative to their priority level.
public enum LBTables {
    public struct Slot: Sendable, Hashable {
        public var hash: UInt32
        public var endpoint: UInt32
    }

    /// Envoy's limits: `MaglevLbConfig.table_size` lte 5000011 (and a prime),
    /// `RingHashLbConfig.{minimum,maximum}_ring_size` lte 8388608.
    public static let maxMaglevTableSize: UInt64 = 5_000_011
    public static let maxRingSize: UInt64 = 8_388_608

    /// Trial division; sizes are bounded by `maxMaglevTableSize` before this is asked.
    public static func isPrime(_ n: UInt64) -> Bool {
        if n < 2 { return false }
        if n < 4 { return true }
        if n % 2 == 0 { return false }
        var d: UInt64 = 3
        while d <= n / d {
            if n % d == 0 { return false }
            d += 2
        }
        return true
    }

    /// Longest round-robin schedule; larger weight sums are scaled down.
    public static let maxScheduleLength: UInt64 = 4096

    /// Smooth weighted round robin (the nginx sequence): every endpoint appears
    /// in proportion to its weight, spread out rather than in bursts. Empty when
    /// all weights are equal (the stage then walks the endpoints in order).
    public static func roundRobinSchedule(weights: [UInt32]) -> [Slot] {
        guard let first = weights.first, weights.contains(where: { $0 != first }) else { return [] }
        var w = weights.map(UInt64.init)
        let g = w.reduce(0, gcd)
        w = w.map { $0 / g }
        var sum = w.reduce(0, +)
        if sum > maxScheduleLength {
            let scale = Double(maxScheduleLength) / Double(sum)
            w = w.map { max(1, UInt64((Double($0) * scale).rounded())) }
            sum = w.reduce(0, +)
        }
        var current = [Int64](repeating: 0, count: w.count)
        var out: [Slot] = []
        out.reserveCapacity(Int(sum))
        for _ in 0..<sum {
            var best = 0
            for i in 0..<w.count {
                current[i] += Int64(w[i])
                if current[i] > current[best] { best = i }
            }
            current[best] -= Int64(sum)
            out.append(Slot(hash: 0, endpoint: UInt32(best)))
        }
        return out
    }

    /// Random and least request under locality weights: a schedule of the level's
    /// localities in proportion to their weights; each slot names a locality by
    /// its first endpoint (`endpoint`) and its endpoint count (`hash`). Empty when
    /// a uniform pick over the level is the same thing (equal weights and sizes).
    public static func localitySchedule(_ runs: [EffectiveCluster.LocalityRun]) -> [Slot] {
        guard runs.count > 1 else { return [] }
        if Set(runs.map(\.weight)).count == 1 && Set(runs.map(\.count)).count == 1 { return [] }
        let g = runs.map(\.weight).reduce(0, gcd)
        let weights = runs.map { UInt32(clamping: $0.weight / max(g, 1)) }
        var picks = roundRobinSchedule(weights: weights)
        if picks.isEmpty { picks = runs.indices.map { Slot(hash: 0, endpoint: UInt32($0)) } }
        return picks.map { Slot(hash: UInt32(runs[Int($0.endpoint)].count), endpoint: UInt32(runs[Int($0.endpoint)].first)) }
    }

    /// Weighted Maglev lookup table of `size` entries (a prime, as Envoy requires).
    public static func maglev(endpoints: [IREndpoint], weights: [UInt32], size: UInt64) -> [Slot] {
        let n = endpoints.count
        // A size that is not a prime never fills the table (the lowering rejects it, as Envoy does).
        guard n > 0, size > 1, size <= maxMaglevTableSize, isPrime(size) else { return [] }
        let m = size
        var offset = [UInt64](repeating: 0, count: n)
        var skip = [UInt64](repeating: 0, count: n)
        for (i, e) in endpoints.enumerated() {
            let (h1, h2) = hashPair(e.text)
            offset[i] = h1 % m
            skip[i] = h2 % (m - 1) + 1
        }
        let maxW = Double(weights.max() ?? 1)
        var next = [UInt64](repeating: 0, count: n)
        var credit = [Double](repeating: 0, count: n)
        var table = [Int32](repeating: -1, count: Int(m))
        var filled: UInt64 = 0
        while filled < m {
            for i in 0..<n {
                credit[i] += Double(weights[i]) / maxW
                if credit[i] < 1 { continue }
                credit[i] -= 1
                var c = (offset[i] + next[i] * skip[i]) % m
                while table[Int(c)] >= 0 {
                    next[i] += 1
                    c = (offset[i] + next[i] * skip[i]) % m
                }
                table[Int(c)] = Int32(i)
                next[i] += 1
                filled += 1
                if filled == m { break }
            }
        }
        return table.map { Slot(hash: 0, endpoint: UInt32($0)) }
    }

    /// Ketama-style hash ring as Envoy builds it: each endpoint gets a number of
    /// points proportional to its weight, the ring size scaled between the
    /// configured minimum and maximum; points sorted by hash.
    public static func ring(endpoints: [IREndpoint], weights: [UInt32], minimum: UInt64, maximum: UInt64) -> [Slot] {
        guard !endpoints.isEmpty, minimum <= maxRingSize else { return [] }
        let maximum = min(maximum, maxRingSize)
        let total = Double(weights.reduce(UInt64(0)) { $0 + UInt64($1) })
        let normalized = weights.map { Double($0) / total }
        let minNorm = normalized.min() ?? 1
        let scale = min((Double(minimum) * minNorm).rounded(.up) / minNorm, Double(maximum))
        var out: [Slot] = []
        var target = 0.0
        var made = 0.0
        for (i, e) in endpoints.enumerated() {
            target += scale * normalized[i]
            var k = 0
            while made < target {
                out.append(Slot(hash: hash32("\(e.text)_\(k)"), endpoint: UInt32(i)))
                k += 1
                made += 1
            }
        }
        out.sort { ($0.hash, $0.endpoint) < ($1.hash, $1.endpoint) }
        return out
    }

    static func hashPair(_ s: String) -> (UInt64, UInt64) {
        let d = Array(SHA256.hash(data: Array(s.utf8)))
        var a: UInt64 = 0
        var b: UInt64 = 0
        for i in 0..<8 {
            a = a << 8 | UInt64(d[i])
            b = b << 8 | UInt64(d[8 + i])
        }
        return (a, b)
    }

    static func hash32(_ s: String) -> UInt32 {
        UInt32(truncatingIfNeeded: hashPair(s).0 >> 32)
    }

    static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        b == 0 ? a : gcd(b, a % b)
    }
}
