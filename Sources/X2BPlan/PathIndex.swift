import X2BIR
import X2BSemantics

/// The path index of a virtual host: which routes can match a path, found in one
/// pass over the path instead of testing every route in turn.
///
/// Every path matcher (prefix, exact, path_separated_prefix, safe_regex) is a byte
/// language whose strings all begin with a literal: its *key* (a prefix or exact
/// path itself; for a regex the literal bytes it starts with, `/api/v1/` of
/// `/api/v1/[a-z]+`; empty for a route with no path matcher). The keys form a
/// trie; walking the path down it until no edge fits, or the path ends, reaches a
/// node whose ancestors are exactly the keys that are prefixes of the path. The
/// state reached, and whether the whole path was consumed, select a row of
/// candidate routes: every route whose path matcher may accept the path. The
/// kernel tests the candidates, and only them, in route order, so the first route
/// that matches is the one Envoy picks.
///
/// For a prefix or an exact path whose key is whole (not cut at `maxKeyLength`)
/// and compared as the matcher compares (the trie folds ASCII case only when
/// some route of the virtual host ignores case), being a candidate *is* the path
/// matching: such routes are `proven`, and the planner leaves their path
/// condition out. Other keys only narrow the candidates (a superset).
///
/// The trie is stored as the byte automata are (x2b_dfa, x2b_dcls, x2b_dtr: one
/// row of next states per node, node 0 dead, 1 the root); each node has two
/// candidate rows in x2b_hcand: 2 * state (the path goes on past the node) and
/// 2 * state + 1 (the path ends at the node).
public struct PathIndex: Sendable, Hashable {
    /// What a route's path matcher tells the index.
    public struct Key: Sendable, Hashable {
        public enum Kind: Sendable, Hashable {
            /// No path condition: a candidate for every path.
            case none
            /// The path starts with `bytes`.
            case prefix
            /// The path is `bytes`.
            case exact
            /// Every accepted path starts with `bytes`; the matcher still decides.
            case partial
        }

        public var bytes: [UInt8]
        public var kind: Kind
        public var ignoreCase: Bool

        /// The key of a route's path matcher (`re`: its byte language, as the planner built it).
        public static func of(_ path: IRPathMatch, ignoreCase: Bool, language re: ByteRE?) -> Key {
            switch path {
            case .prefix(let p): Key(bytes: Array(p.utf8), kind: p.isEmpty ? .none : .prefix, ignoreCase: ignoreCase)
            case .exact(let p): Key(bytes: Array(p.utf8), kind: p.isEmpty ? .partial : .exact, ignoreCase: ignoreCase)
            case .separatedPrefix(let p): Key(bytes: Array(p.utf8), kind: .partial, ignoreCase: ignoreCase)
            case .regex:
                // case_sensitive does not apply to regexes (Envoy); the literal is read from the language
                Key(bytes: re.map { PathIndex.literalPrefix($0, foldCase: false) } ?? [], kind: .partial, ignoreCase: false)
            }
        }
    }

    /// Byte → class (bytes of no key: class 0; folding case, an upper-case letter
    /// has its lower case's class).
    public var classOf: [UInt8]
    public var classCount: Int
    /// next[state * classCount + class]; 0: no edge.
    public var next: [Int]
    /// Candidate rows (2 per state, see above); bit i: the virtual host's route i. 4 words each.
    public var candidates: [[UInt64]]
    /// Routes whose path condition the index decides exactly (left out of their conditions).
    public var proven: Set<Int>

    public var stateCount: Int { candidates.count / 2 }

    /// Longest key kept: deeper bytes only narrow the candidates further, at a state each.
    public static let maxKeyLength = 64
    /// Routes one candidate row holds.
    public static let maxRoutes = 256

    /// The trie of `keys` (one per route, in route order), or nil when it would take
    /// more than `maxStates` states or the routes do not fit a candidate row.
    public static func build(keys: [Key], maxStates: Int) -> PathIndex? {
        guard !keys.isEmpty, keys.count <= maxRoutes else { return nil }
        // Fold case when a prefix or exact path ignores it; regexes are read as written.
        let fold = keys.contains { $0.ignoreCase && $0.kind != .none }
        // node 0: dead; node 1: the root
        var children: [[UInt8: Int]] = [[:], [:]]
        var parent = [0, 0]
        var below: [[Int]] = [[], []]  // routes a candidate from this node down
        var endsHere: [[Int]] = [[], []]  // routes a candidate when the path ends here
        var proven = Set<Int>()
        for (route, key) in keys.enumerated() {
            var bytes = key.bytes
            var kind = key.kind
            if bytes.count > maxKeyLength {
                bytes = Array(bytes.prefix(maxKeyLength))
                kind = .partial
            }
            if fold {
                bytes = bytes.map(ASCII.lower)
                if !key.ignoreCase && kind != .none { kind = .partial }
            } else if key.ignoreCase, let i = bytes.firstIndex(where: { ASCII.otherCase($0) != nil }) {
                // (not reached: folding is on when a key ignores case) a letter ends the key
                bytes = Array(bytes.prefix(i))
                kind = .partial
            }
            var node = 1
            for b in bytes {
                if let c = children[node][b] {
                    node = c
                } else {
                    children.append([:])
                    parent.append(node)
                    below.append([])
                    endsHere.append([])
                    children[node][b] = children.count - 1
                    node = children.count - 1
                }
            }
            switch kind {
            case .exact:
                endsHere[node].append(route)
                proven.insert(route)
            case .prefix:
                below[node].append(route)
                proven.insert(route)
            case .none, .partial:
                below[node].append(route)
            }
        }
        let states = children.count
        guard states <= maxStates else { return nil }
        var classOf = [UInt8](repeating: 0, count: 256)
        let used = Set(children.flatMap(\.keys)).sorted()
        guard used.count < 255 else { return nil }
        for (i, b) in used.enumerated() { classOf[Int(b)] = UInt8(i + 1) }
        if fold {
            for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { classOf[Int(b)] = classOf[Int(ASCII.lower(b))] }
        }
        let classCount = used.count + 1
        var next = [Int](repeating: 0, count: states * classCount)
        for (s, edges) in children.enumerated() {
            for (b, c) in edges { next[s * classCount + Int(classOf[Int(b)])] = c }
        }
        // Nodes come after their parents, so one pass in order sees a parent's set first.
        var inherited = [[UInt64]](repeating: [0, 0, 0, 0], count: states)
        var candidates = [[UInt64]](repeating: [0, 0, 0, 0], count: 2 * states)
        for s in 1..<states {
            if s > 1 { inherited[s] = inherited[parent[s]] }
            for r in below[s] { inherited[s][r >> 6] |= 1 << UInt64(r & 63) }
            candidates[2 * s] = inherited[s]
            candidates[2 * s + 1] = inherited[s]
            for r in endsHere[s] { candidates[2 * s + 1][r >> 6] |= 1 << UInt64(r & 63) }
        }
        // State 0 (dead) is never the one reached: its rows stay empty.
        return PathIndex(classOf: classOf, classCount: classCount, next: next, candidates: candidates, proven: proven)
    }

    /// The literal every string of `re` begins with. `foldCase`: a byte set that is
    /// one ASCII letter in both cases counts as that letter, lowercased; else it ends
    /// the literal.
    public static func literalPrefix(_ re: ByteRE, foldCase: Bool) -> [UInt8] {
        var out: [UInt8] = []
        _ = appendLiteral(re, foldCase: foldCase, to: &out)
        return out
    }

    /// Appends the literal start of `re`; true when `re` is exactly that literal
    /// (so what follows it in a concatenation continues the literal).
    private static func appendLiteral(_ re: ByteRE, foldCase: Bool, to out: inout [UInt8]) -> Bool {
        switch re {
        case .empty, .beginText:
            return true
        case .bytes(let ranges):
            guard let b = single(ranges, foldCase: foldCase) else { return false }
            out.append(b)
            return true
        case .concat(let parts):
            for p in parts where !appendLiteral(p, foldCase: foldCase, to: &out) { return false }
            return true
        case .alternate(let branches):
            // one byte from a set, spelt as alternatives (RE2's case folding: A|a)
            let sets = branches.compactMap { b -> [ClosedRange<UInt8>]? in if case .bytes(let r) = b { r } else { nil } }
            if sets.count == branches.count { return appendLiteral(.bytes(sets.flatMap { $0 }), foldCase: foldCase, to: &out) }
            // the longest literal common to every branch
            let starts = branches.map { b -> [UInt8] in
                var o: [UInt8] = []
                _ = appendLiteral(b, foldCase: foldCase, to: &o)
                return o
            }
            guard var common = starts.first else { return false }
            for s in starts.dropFirst() {
                common = Array(zip(common, s).prefix { $0.0 == $0.1 }.map(\.0))
            }
            out += common
            return false
        case .repeated(let x, let min, _):
            // at least one copy: every string starts with one of x's
            if min >= 1 { _ = appendLiteral(x, foldCase: foldCase, to: &out) }
            return false
        case .endText:
            return false
        }
    }

    /// The byte a set stands for: one byte, or (folding case) one ASCII letter in both cases.
    private static func single(_ ranges: [ClosedRange<UInt8>], foldCase: Bool) -> UInt8? {
        let count = ranges.reduce(0) { $0 + $1.count }
        guard count == 1 || count == 2 else { return nil }
        let bytes = ranges.flatMap { Array($0) }
        if bytes.count == 1 { return bytes[0] }
        if foldCase, ASCII.otherCase(bytes[0]) == bytes[1] { return ASCII.lower(bytes[0]) }
        return nil
    }
}
