/// A deterministic automaton over bytes, minimised, with byte classes: the
/// form every string matcher and regex takes in the kernel (tables in array
/// maps, one lookup per input byte).
///
/// State 0 is the dead state; the start state is 1. For each state the tables
/// also say whether the text may end there (`acceptAtEnd`) and whether every
/// continuation is accepted (`sure`), so the kernel stops reading early.
public struct ByteDFA: Sendable, Hashable {
    /// Byte → class.
    public var classOf: [UInt8]
    public var classCount: Int
    /// `transitions[state * classCount + class]`.
    public var transitions: [Int]
    public var acceptAtEnd: [Bool]
    public var sure: [Bool]

    public var stateCount: Int { acceptAtEnd.count }
    public static let start = 1

    public enum BuildError: Error, Sendable, Hashable {
        case tooManyStates(Int)
        case nfaTooLarge
    }

    /// Subset construction, then Moore minimisation.
    public static func build(_ re: ByteRE, maxStates: Int = 4096) throws(BuildError) -> ByteDFA {
        let nfa: ByteNFA
        do { nfa = try ByteNFA(re) } catch { throw .nfaTooLarge }
        return try build(nfa, maxStates: maxStates)
    }

    /// `bitsetLimit`: the largest NFA (states × classes × 64-bit words) whose sets are
    /// bit vectors; larger ones use sorted arrays (tests set 0 to compare the two).
    public static func build(_ nfa: ByteNFA, maxStates: Int = 4096, bitsetLimit: Int = 4_000_000) throws(BuildError) -> ByteDFA {
        // Byte classes: bytes no edge tells apart behave the same everywhere.
        var boundary = [Bool](repeating: false, count: 257)
        boundary[0] = true
        boundary[256] = true
        for list in nfa.edges {
            for e in list {
                if case .bytes(let r, _) = e {
                    boundary[Int(r.lowerBound)] = true
                    boundary[Int(r.upperBound) + 1] = true
                }
            }
        }
        var classOf = [UInt8](repeating: 0, count: 256)
        var reps: [UInt8] = []
        var cls = -1
        for b in 0..<256 {
            if boundary[b] {
                cls += 1
                reps.append(UInt8(b))
            }
            classOf[b] = UInt8(cls)
        }
        let k = reps.count

        // Small NFAs (the usual case): sets as bit vectors, same construction.
        let words = (nfa.stateCount + 63) / 64
        if nfa.stateCount * k * words <= bitsetLimit {
            let (trans, accept) = try subsetsAsBits(nfa, classOf: classOf, classCount: k, maxStates: maxStates)
            var dfa = ByteDFA(classOf: classOf, classCount: k, transitions: trans, acceptAtEnd: accept, sure: [])
            dfa = dfa.minimized().mergedClasses()
            dfa.computeSure()
            return dfa
        }

        // Subset construction. Key: NFA state set + whether it is the start
        // (only the start may take `^`); state 0 = the empty set.
        struct Key: Hashable {
            var set: [Int]
            var start: Bool
            /// A cheap hash of the set, computed once (hashing ~100 ints through SipHash
            /// for every lookup dominated the construction).
            let digest: UInt64

            init(set: [Int], start: Bool) {
                self.set = set
                self.start = start
                var h: UInt64 = start ? 0x9E37_79B9_7F4A_7C15 : 0xC2B2_AE3D_27D4_EB4F
                for x in set { h = (h ^ UInt64(bitPattern: Int64(x))) &* 0x0000_0100_0000_01B3 }
                digest = h
            }

            func hash(into hasher: inout Hasher) { hasher.combine(digest) }
            static func == (a: Key, b: Key) -> Bool { a.digest == b.digest && a.start == b.start && a.set == b.set }
        }
        var index: [Key: Int] = [Key(set: [], start: false): 0]
        var sets: [Key] = [Key(set: [], start: false)]
        var trans: [Int] = [Int](repeating: 0, count: k)
        let startKey = Key(set: nfa.closure([nfa.start], atStart: true), start: true)
        index[startKey] = 1
        sets.append(startKey)
        trans += [Int](repeating: 0, count: k)
        var stepper = ByteNFA.ClassStepper(nfa, classOf: classOf, classCount: k)
        let none = ([[Int]](repeating: [], count: k), Array(0..<k))
        var work = [1]
        while let s = work.popLast() {
            let key = sets[s]
            // All successors at once (the same sets `nfa.step(key.set, reps[c])` gives, class by class);
            // a class that moves like an earlier one goes where it went.
            let (successors, same) = key.set.isEmpty ? none : stepper.successors(key.set)
            for c in 0..<k {
                if same[c] != c {
                    trans[s * k + c] = trans[s * k + same[c]]
                    continue
                }
                let next = successors[c]
                let nk = Key(set: next, start: false)
                var t = index[nk]
                if t == nil {
                    t = sets.count
                    if sets.count >= maxStates { throw .tooManyStates(maxStates) }
                    index[nk] = t
                    sets.append(nk)
                    trans += [Int](repeating: 0, count: k)
                    work.append(t!)
                }
                trans[s * k + c] = t!
            }
        }
        let accept = sets.map { key in
            !key.set.isEmpty && (key.start ? nfa.acceptsAtEnd(key.set, atStart: true) : stepper.acceptsAtEnd(key.set))
        }
        var dfa = ByteDFA(classOf: classOf, classCount: k, transitions: trans, acceptAtEnd: accept, sure: [])
        dfa = dfa.minimized().mergedClasses()
        dfa.computeSure()
        return dfa
    }

    /// The subset construction of `build` with NFA state sets as bit vectors: a
    /// state's successor for a class is the union of precomputed per-NFA-state
    /// moves (closures included), found and numbered in the same order as `build`
    /// numbers its sorted-array sets, so the automaton is the same.
    static func subsetsAsBits(
        _ nfa: ByteNFA, classOf: [UInt8], classCount k: Int,
        maxStates: Int
    ) throws(BuildError) -> (transitions: [Int], accept: [Bool]) {
        let n = nfa.stateCount
        let w = (n + 63) / 64
        var stepper = ByteNFA.ClassStepper(nfa, classOf: classOf, classCount: k)
        // moves[(s * k + c) * w ..< +w]: closure of the states s reaches on class c.
        var moves = [UInt64](repeating: 0, count: n * k * w)
        for s in 0..<n {
            for (lo, hi, t) in stepper.byteEdges(of: s) {
                let cl = stepper.closureOf(t)
                for c in lo...hi {
                    let base = (s * k + c) * w
                    for q in cl { moves[base + q >> 6] |= 1 << UInt64(q & 63) }
                }
            }
        }
        struct Key: Hashable {
            var bits: [UInt64]
            var start: Bool
            let digest: UInt64

            init(bits: [UInt64], start: Bool) {
                self.bits = bits
                self.start = start
                var h: UInt64 = start ? 0x9E37_79B9_7F4A_7C15 : 0xC2B2_AE3D_27D4_EB4F
                for x in bits { h = (h ^ x) &* 0x0000_0100_0000_01B3 }
                digest = h
            }

            func hash(into hasher: inout Hasher) { hasher.combine(digest) }
            static func == (a: Key, b: Key) -> Bool { a.digest == b.digest && a.start == b.start && a.bits == b.bits }
        }
        func members(_ bits: [UInt64]) -> [Int] {
            var out: [Int] = []
            for (i, word) in bits.enumerated() {
                var x = word
                while x != 0 {
                    out.append(i * 64 + x.trailingZeroBitCount)
                    x &= x - 1
                }
            }
            return out
        }
        let empty = [UInt64](repeating: 0, count: w)
        var startBits = empty
        for q in nfa.closure([nfa.start], atStart: true) { startBits[q >> 6] |= 1 << UInt64(q & 63) }
        var index: [Key: Int] = [Key(bits: empty, start: false): 0]
        var sets: [Key] = [Key(bits: empty, start: false), Key(bits: startBits, start: true)]
        index[sets[1]] = 1
        var trans = [Int](repeating: 0, count: 2 * k)
        var next = [UInt64](repeating: 0, count: k * w)
        var work = [1]
        while let s = work.popLast() {
            let key = sets[s]
            for i in 0..<next.count { next[i] = 0 }
            for q in members(key.bits) {
                let base = q * k * w
                for i in 0..<(k * w) { next[i] |= moves[base + i] }
            }
            for c in 0..<k {
                let nk = Key(bits: Array(next[(c * w)..<(c * w + w)]), start: false)
                var t = index[nk]
                if t == nil {
                    t = sets.count
                    if sets.count >= maxStates { throw .tooManyStates(maxStates) }
                    index[nk] = t
                    sets.append(nk)
                    trans += [Int](repeating: 0, count: k)
                    work.append(t!)
                }
                trans[s * k + c] = t!
            }
        }
        let accept = sets.map { key -> Bool in
            let m = members(key.bits)
            return !m.isEmpty && (key.start ? nfa.acceptsAtEnd(m, atStart: true) : stepper.acceptsAtEnd(m))
        }
        return (trans, accept)
    }

    /// Moore's partition refinement; the dead state stays 0 and the start 1.
    func minimized() -> ByteDFA {
        let n = stateCount
        let k = classCount
        let block = equivalenceBlocks()
        // Renumber: dead block → 0, start block → 1, the rest in order of first appearance.
        var renum: [Int: Int] = [block[0]: 0]
        if renum[block[1]] == nil { renum[block[1]] = 1 }
        var order: [Int] = [block[0]]
        if block[1] != block[0] { order.append(block[1]) }
        for s in 0..<n where renum[block[s]] == nil {
            renum[block[s]] = renum.count
            order.append(block[s])
        }
        let m = renum.count
        var rep = [Int](repeating: -1, count: m)
        for s in 0..<n where rep[renum[block[s]]!] < 0 { rep[renum[block[s]]!] = s }
        var t = [Int](repeating: 0, count: max(m, 2) * k)
        var acc = [Bool](repeating: false, count: max(m, 2))
        for b in 0..<m {
            let s = rep[b]
            acc[b] = acceptAtEnd[s]
            for c in 0..<k { t[b * k + c] = renum[block[transitions[s * k + c]]]! }
        }
        if m == 1 {
            // The start is dead (the language is empty): keep a distinct state 1 that is dead too.
            for c in 0..<k { t[k + c] = 0 }
        }
        return ByteDFA(classOf: classOf, classCount: k, transitions: t, acceptAtEnd: acc, sure: [])
    }

    /// The states' blocks of the coarsest partition that separates accepting from
    /// other states and is stable under every class (Hopcroft's algorithm: the
    /// partition Moore's refinement reaches, in O(k n log n)). Only the partition
    /// matters to the caller, not the block numbers.
    func equivalenceBlocks() -> [Int] {
        let n = stateCount
        let k = classCount
        // Predecessors by (class, target), as offsets into one array.
        var offset = [Int](repeating: 0, count: k * n + 1)
        for s in 0..<n { for c in 0..<k { offset[c * n + transitions[s * k + c] + 1] += 1 } }
        for i in 0..<(k * n) { offset[i + 1] += offset[i] }
        var preds = [Int](repeating: 0, count: n * k)
        var fill = offset
        for s in 0..<n {
            for c in 0..<k {
                let key = c * n + transitions[s * k + c]
                preds[fill[key]] = s
                fill[key] += 1
            }
        }
        // Blocks are ranges of `elems`; a block's marked states sit at its front.
        let rejecting = (0..<n).filter { !acceptAtEnd[$0] }
        let accepting = (0..<n).filter { acceptAtEnd[$0] }
        var elems = rejecting + accepting
        var loc = [Int](repeating: 0, count: n)
        for (i, s) in elems.enumerated() { loc[s] = i }
        var blockStart: [Int] = []
        var blockEnd: [Int] = []
        if !rejecting.isEmpty { blockStart.append(0); blockEnd.append(rejecting.count) }
        if !accepting.isEmpty { blockStart.append(rejecting.count); blockEnd.append(n) }
        var blockOf = [Int](repeating: 0, count: n)
        for b in 0..<blockStart.count { for i in blockStart[b]..<blockEnd[b] { blockOf[elems[i]] = b } }
        var marked = [Int](repeating: 0, count: blockStart.count)
        var inWork = [Bool](repeating: false, count: max(n, 2) * k)
        var work: [(Int, Int)] = []
        for b in 0..<blockStart.count {
            for c in 0..<k {
                work.append((b, c))
                inWork[b * k + c] = true
            }
        }
        var touched: [Int] = []
        var members: [Int] = []
        while let (a, c) = work.popLast() {
            inWork[a * k + c] = false
            members.removeAll(keepingCapacity: true)
            members.append(contentsOf: elems[blockStart[a]..<blockEnd[a]])
            touched.removeAll(keepingCapacity: true)
            for t in members {
                for i in offset[c * n + t]..<offset[c * n + t + 1] {
                    let s = preds[i]
                    let b = blockOf[s]
                    let m = blockStart[b] + marked[b]
                    let pos = loc[s]
                    if pos < m { continue }
                    let other = elems[m]
                    elems[m] = s
                    loc[s] = m
                    elems[pos] = other
                    loc[other] = pos
                    if marked[b] == 0 { touched.append(b) }
                    marked[b] += 1
                }
            }
            for b in touched {
                let size = blockEnd[b] - blockStart[b]
                let m = marked[b]
                marked[b] = 0
                if m == size { continue }
                // The marked front becomes a new block.
                let nb = blockStart.count
                blockStart.append(blockStart[b])
                blockEnd.append(blockStart[b] + m)
                marked.append(0)
                blockStart[b] += m
                for i in blockStart[nb]..<blockEnd[nb] { blockOf[elems[i]] = nb }
                for c2 in 0..<k {
                    if inWork[b * k + c2] {
                        inWork[nb * k + c2] = true
                        work.append((nb, c2))
                    } else {
                        let smaller = m <= size - m ? nb : b
                        inWork[smaller * k + c2] = true
                        work.append((smaller, c2))
                    }
                }
            }
        }
        return blockOf
    }

    /// Classes whose columns agree in every state become one class.
    func mergedClasses() -> ByteDFA {
        let n = stateCount
        let k = classCount
        var columnIndex: [[Int]: Int] = [:]
        var map = [Int](repeating: 0, count: k)
        var columns: [[Int]] = []
        for c in 0..<k {
            let col = (0..<n).map { transitions[$0 * k + c] }
            if let i = columnIndex[col] {
                map[c] = i
            } else {
                map[c] = columns.count
                columnIndex[col] = columns.count
                columns.append(col)
            }
        }
        let k2 = columns.count
        var t = [Int](repeating: 0, count: n * k2)
        for s in 0..<n { for c in 0..<k2 { t[s * k2 + c] = columns[c][s] } }
        return ByteDFA(
            classOf: classOf.map { UInt8(map[Int($0)]) }, classCount: k2, transitions: t,
            acceptAtEnd: acceptAtEnd, sure: [])
    }

    /// `sure[s]`: the text is accepted however it continues from s.
    mutating func computeSure() {
        var s = acceptAtEnd
        var changed = true
        while changed {
            changed = false
            for q in 0..<stateCount where s[q] {
                for c in 0..<classCount where !s[transitions[q * classCount + c]] {
                    s[q] = false
                    changed = true
                    break
                }
            }
        }
        sure = s
    }

    /// Runs the tables as the kernel does (early exits included).
    public func fullMatch<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        var st = Self.start
        for b in bytes {
            if st == 0 { return false }
            if sure[st] { return true }
            st = transitions[st * classCount + Int(classOf[Int(b)])]
        }
        return acceptAtEnd[st]
    }

    /// Feeds bytes from a state (for values split in pieces, e.g. repeated headers).
    public func run<S: Sequence>(_ bytes: S, from state: Int) -> Int where S.Element == UInt8 {
        var st = state
        for b in bytes {
            if st == 0 || sure[st] { return st }
            st = transitions[st * classCount + Int(classOf[Int(b)])]
        }
        return st
    }
}
