import Foundation

/// Regular expressions over bytes: what every string matcher of a route
/// becomes, so the interpreter and the kernel look at the same bytes Envoy does
/// (header values and paths are byte strings; `ignore_case` folds ASCII only).
///
/// RE2 patterns are lowered here from code points to UTF-8 byte sequences the
/// way RE2's own compiler does it, including its loose encoding of U+0080 to
/// U+10FFFF (used by `.` and negated classes).
public indirect enum ByteRE: Sendable, Hashable {
    case empty
    /// One byte from a set of ranges.
    case bytes([ClosedRange<UInt8>])
    case concat([ByteRE])
    case alternate([ByteRE])
    case repeated(ByteRE, min: Int, max: Int?)
    case beginText
    case endText

    public static let anyByte = ByteRE.bytes([0...255])
    public static let anyBytes = ByteRE.repeated(.anyByte, min: 0, max: nil)

    /// A literal, ASCII letters folded when `ignoreCase` (absl's ASCII case folding,
    /// as Envoy's StringMatcher does).
    public static func literal(_ s: [UInt8], ignoreCase: Bool) -> ByteRE {
        if s.isEmpty { return .empty }
        return .concat(
            s.map { b in
                if ignoreCase, let o = ASCII.otherCase(b) { return .bytes(b < o ? [b...b, o...o] : [o...o, b...b]) }
                return .bytes([b...b])
            })
    }

    /// Envoy's StringMatcher kinds as byte languages (full match of the whole value).
    public static func exact(_ s: [UInt8], ignoreCase: Bool) -> ByteRE { literal(s, ignoreCase: ignoreCase) }
    public static func prefix(_ s: [UInt8], ignoreCase: Bool) -> ByteRE { .concat([literal(s, ignoreCase: ignoreCase), anyBytes]) }
    public static func suffix(_ s: [UInt8], ignoreCase: Bool) -> ByteRE { .concat([anyBytes, literal(s, ignoreCase: ignoreCase)]) }
    public static func contains(_ s: [UInt8], ignoreCase: Bool) -> ByteRE {
        .concat([anyBytes, literal(s, ignoreCase: ignoreCase), anyBytes])
    }

    /// An RE2 pattern: parse, then expand characters into UTF-8 byte sequences.
    public static func re2(_ pattern: String) throws(RE2Error) -> ByteRE {
        fromRE(try RE2Parser.parse(pattern))
    }

    static func fromRE(_ n: RENode) -> ByteRE {
        switch n {
        case .empty: return .empty
        case .chars(let set): return UTF8Ranges.expand(set)
        case .concat(let xs): return .concat(xs.map(fromRE))
        case .alternate(let xs): return .alternate(xs.map(fromRE))
        case .repeated(let x, let lo, let hi): return .repeated(fromRE(x), min: lo, max: hi)
        case .beginText: return .beginText
        case .endText: return .endText
        }
    }
}

public enum ASCII {
    public static func otherCase(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x41...0x5A: b + 32
        case 0x61...0x7A: b - 32
        default: nil
        }
    }

    public static func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b + 32 : b }

    public static func lowered<S: Sequence>(_ s: S) -> [UInt8] where S.Element == UInt8 { s.map(lower) }
}

/// Code point ranges as UTF-8 byte sequences, after RE2's compiler
/// (`Compiler::AddRuneRangeUTF8`).
enum UTF8Ranges {
    static func expand(_ set: [ClosedRange<UInt32>]) -> ByteRE {
        var alts: [ByteRE] = []
        for r in set { add(r.lowerBound, r.upperBound, into: &alts) }
        if alts.isEmpty { return .bytes([]) }
        return alts.count == 1 ? alts[0] : .alternate(alts)
    }

    static func maxRune(_ len: Int) -> UInt32 {
        switch len {
        case 1: 0x7F
        case 2: 0x7FF
        case 3: 0xFFFF
        default: 0x10FFFF
        }
    }

    static func add(_ lo: UInt32, _ hi: UInt32, into alts: inout [ByteRE]) {
        if lo > hi { return }
        if lo == 0x80 && hi == 0x10FFFF {
            // RE2 encodes this common range loosely (overlong E0/F0 forms and
            // surrogates accepted) to keep its automata small; the language is RE2's.
            let cont = ByteRE.bytes([0x80...0xBF])
            alts.append(.concat([.bytes([0xC2...0xDF]), cont]))
            alts.append(.concat([.bytes([0xE0...0xEF]), cont, cont]))
            alts.append(.concat([.bytes([0xF0...0xF4]), cont, cont, cont]))
            return
        }
        for i in 1..<4 {
            let m = maxRune(i)
            if lo <= m && m < hi {
                add(lo, m, into: &alts)
                add(m + 1, hi, into: &alts)
                return
            }
        }
        if hi < 0x80 {
            alts.append(.bytes([UInt8(lo)...UInt8(hi)]))
            return
        }
        for i in 1..<4 {
            let m: UInt32 = (1 << (6 * UInt32(i))) - 1
            if (lo & ~m) != (hi & ~m) {
                if (lo & m) != 0 {
                    add(lo, lo | m, into: &alts)
                    add((lo | m) + 1, hi, into: &alts)
                    return
                }
                if (hi & m) != m {
                    add(lo, (hi & ~m) - 1, into: &alts)
                    add(hi & ~m, hi, into: &alts)
                    return
                }
            }
        }
        let a = encode(lo), b = encode(hi)
        alts.append(.concat(zip(a, b).map { .bytes([$0...$1]) }))
    }

    /// UTF-8 bytes of a code point; surrogates are encoded like any other value, as RE2 does.
    static func encode(_ c: UInt32) -> [UInt8] {
        switch c {
        case 0..<0x80: return [UInt8(c)]
        case 0..<0x800: return [UInt8(0xC0 | (c >> 6)), UInt8(0x80 | (c & 0x3F))]
        case 0..<0x10000: return [UInt8(0xE0 | (c >> 12)), UInt8(0x80 | ((c >> 6) & 0x3F)), UInt8(0x80 | (c & 0x3F))]
        default:
            return [UInt8(0xF0 | (c >> 18)), UInt8(0x80 | ((c >> 12) & 0x3F)), UInt8(0x80 | ((c >> 6) & 0x3F)), UInt8(0x80 | (c & 0x3F))]
        }
    }
}

/// A Thompson NFA over bytes with the two RE2 text anchors as assertion edges.
public struct ByteNFA: Sendable {
    enum Edge: Sendable, Hashable {
        case epsilon(Int)
        case bytes(ClosedRange<UInt8>, Int)
        case begin(Int)
        case end(Int)
    }

    var edges: [[Edge]] = []
    var start = 0
    var accept = 0

    /// More NFA states than this (counted repetition of large patterns) is refused.
    public static let maxStates = 200_000

    public struct TooLarge: Error, Sendable {}

    public init(_ re: ByteRE) throws(TooLarge) {
        start = newState()
        let end = try compile(re, from: start)
        accept = end
    }

    var stateCount: Int { edges.count }

    mutating func newState() -> Int {
        edges.append([])
        return edges.count - 1
    }

    mutating func compile(_ re: ByteRE, from: Int) throws(TooLarge) -> Int {
        if edges.count > Self.maxStates { throw TooLarge() }
        switch re {
        case .empty:
            return from
        case .bytes(let set):
            let to = newState()
            for r in set { edges[from].append(.bytes(r, to)) }
            return to
        case .concat(let xs):
            var cur = from
            for x in xs { cur = try compile(x, from: cur) }
            return cur
        case .alternate(let xs):
            let to = newState()
            for x in xs {
                let s = newState()
                edges[from].append(.epsilon(s))
                let e = try compile(x, from: s)
                edges[e].append(.epsilon(to))
            }
            return to
        case .repeated(let x, let lo, let hi):
            var cur = from
            for _ in 0..<lo {
                let s = newState()
                edges[cur].append(.epsilon(s))
                cur = try compile(x, from: s)
            }
            guard let hi else {
                let loop = newState()
                edges[cur].append(.epsilon(loop))
                let body = newState()
                edges[loop].append(.epsilon(body))
                let e = try compile(x, from: body)
                edges[e].append(.epsilon(loop))
                return loop
            }
            let end = newState()
            for _ in lo..<max(lo, hi) {
                edges[cur].append(.epsilon(end))
                let s = newState()
                edges[cur].append(.epsilon(s))
                cur = try compile(x, from: s)
            }
            edges[cur].append(.epsilon(end))
            return end
        case .beginText:
            let to = newState()
            edges[from].append(.begin(to))
            return to
        case .endText:
            let to = newState()
            edges[from].append(.end(to))
            return to
        }
    }

    /// States reachable through epsilon edges (and `^` at the start of the text).
    func closure(_ seeds: [Int], atStart: Bool) -> [Int] {
        var seen = Set<Int>()
        var stack = seeds
        while let s = stack.popLast() {
            guard seen.insert(s).inserted else { continue }
            for e in edges[s] {
                switch e {
                case .epsilon(let t): stack.append(t)
                case .begin(let t) where atStart: stack.append(t)
                default: break
                }
            }
        }
        return seen.sorted()
    }

    /// Whether the match state is reachable when the text ends here (`$` holds).
    func acceptsAtEnd(_ set: [Int], atStart: Bool) -> Bool {
        var seen = Set<Int>()
        var stack = set
        while let s = stack.popLast() {
            if s == accept { return true }
            guard seen.insert(s).inserted else { continue }
            for e in edges[s] {
                switch e {
                case .epsilon(let t), .end(let t): stack.append(t)
                case .begin(let t) where atStart: stack.append(t)
                default: break
                }
            }
        }
        return false
    }

    func step(_ set: [Int], _ b: UInt8) -> [Int] {
        var next: [Int] = []
        for s in set {
            for e in edges[s] {
                if case .bytes(let r, let t) = e, r.contains(b) { next.append(t) }
            }
        }
        return closure(next, atStart: false)
    }

    /// The subset construction's inner loop, made cheap: epsilon closures of single
    /// states are computed once, sets are merged with a generation mark instead of
    /// hashing, and one pass over a set's byte edges yields its successors for every
    /// byte class. Gives exactly the sets of `step` (sorted), so DFAs are unchanged.
    struct ClassStepper {
        let nfa: ByteNFA
        let classCount: Int
        /// Per NFA state: its byte edges as (first class, last class, target).
        private var classEdges: [[(Int, Int, Int)]]
        private var closures: [[Int]?]
        private var mark: [Int]
        private var generation = 0

        init(_ nfa: ByteNFA, classOf: [UInt8], classCount: Int) {
            self.nfa = nfa
            self.classCount = classCount
            classEdges = nfa.edges.map { list in
                list.compactMap { e in
                    if case .bytes(let r, let t) = e { return (Int(classOf[Int(r.lowerBound)]), Int(classOf[Int(r.upperBound)]), t) }
                    return nil
                }
            }
            closures = [[Int]?](repeating: nil, count: nfa.edges.count)
            mark = [Int](repeating: 0, count: nfa.edges.count)
        }

        /// A state's byte edges as (first class, last class, target).
        func byteEdges(of s: Int) -> [(Int, Int, Int)] { classEdges[s] }

        /// `closure(of:)` for callers outside.
        mutating func closureOf(_ s: Int) -> [Int] { closure(of: s) }

        /// Epsilon closure of one state (no `^`: only the start set may take it).
        private mutating func closure(of s: Int) -> [Int] {
            if let c = closures[s] { return c }
            generation += 1
            let g = generation
            var out: [Int] = []
            var stack = [s]
            while let q = stack.popLast() {
                if mark[q] == g { continue }
                mark[q] = g
                out.append(q)
                for e in nfa.edges[q] {
                    if case .epsilon(let t) = e, mark[t] != g { stack.append(t) }
                }
            }
            closures[s] = out
            return out
        }

        /// `ByteNFA.acceptsAtEnd(set, atStart: false)`, with the marks instead of a Set.
        mutating func acceptsAtEnd(_ set: [Int]) -> Bool {
            generation += 1
            let g = generation
            var stack = set
            while let q = stack.popLast() {
                if q == nfa.accept { return true }
                if mark[q] == g { continue }
                mark[q] = g
                for e in nfa.edges[q] {
                    switch e {
                    case .epsilon(let t), .end(let t): stack.append(t)
                    default: break
                    }
                }
            }
            return false
        }

        /// For each byte class, the closure of the states the set moves to, and for
        /// each class the first class with the same moves (`same[c] <= c`; its
        /// successor is the same set, so callers may reuse what they found for it).
        mutating func successors(_ set: [Int]) -> (sets: [[Int]], same: [Int]) {
            var targets = [[Int]](repeating: [], count: classCount)
            for s in set {
                for (lo, hi, t) in classEdges[s] {
                    for c in lo...hi { targets[c].append(t) }
                }
            }
            var out = [[Int]](repeating: [], count: classCount)
            var same = Array(0..<classCount)
            classes: for c in 0..<classCount {
                for e in 0..<c where same[e] == e && targets[e] == targets[c] {
                    same[c] = e
                    out[c] = out[e]
                    continue classes
                }
                guard !targets[c].isEmpty else { continue }
                for t in targets[c] where closures[t] == nil { _ = closure(of: t) }
                generation += 1
                let g = generation
                var unique: [Int] = []
                for t in targets[c] {
                    for q in closures[t]! where mark[q] != g {
                        mark[q] = g
                        unique.append(q)
                    }
                }
                unique.sort()
                out[c] = unique
            }
            return (out, same)
        }
    }

    /// RE2::FullMatch semantics on bytes, by simulating the NFA: the reference the
    /// compiled DFA tables are tested against.
    public func fullMatch<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        var cur = closure([start], atStart: true)
        var atStart = true
        for b in bytes {
            cur = step(cur, b)
            atStart = false
            if cur.isEmpty { return false }
        }
        return acceptsAtEnd(cur, atStart: atStart)
    }
}

/// Compiled matchers, cached by pattern: the interpreter's view of RE2.
public enum RegexCache {
    nonisolated(unsafe) private static var cache: [String: Result<ByteNFA, RE2Error>] = [:]
    private static let lock = NSLock()

    public static func compile(_ pattern: String) -> Result<ByteNFA, RE2Error> {
        lock.lock()
        defer { lock.unlock() }
        do {
            if let c = cache[pattern] { return c }
            let r: Result<ByteNFA, RE2Error>
            do {
                let re = try ByteRE.re2(pattern)
                do { r = .success(try ByteNFA(re)) } catch { r = .failure(RE2Error(construct: "pattern too large", unsupported: true)) }
            } catch {
                r = .failure(error)
            }
            cache[pattern] = r
            return r
        }
    }

    /// Full match; a pattern that does not compile matches nothing (the lowering
    /// diagnosed it already).
    public static func fullMatch(_ pattern: String, _ value: [UInt8]) -> Bool {
        guard case .success(let nfa) = compile(pattern) else { return false }
        return nfa.fullMatch(value)
    }
}
