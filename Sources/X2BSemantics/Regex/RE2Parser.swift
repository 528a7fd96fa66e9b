/// A parser for the part of RE2's syntax that compiles to a finite automaton:
/// what Envoy's `safe_regex` accepts (Google RE2, default options, full match)
/// minus the few constructs a byte automaton cannot express. Everything it
/// refuses is named in the error, so a diagnostic can say which construct of
/// which regex is the problem.
///
/// RE2's defaults are kept exactly: UTF-8 input, `.` is any character but
/// `\n`, negated classes and `\D`/`\S`/`\W` do match `\n` (RE2's ClassNL),
/// `^`/`$` only at the ends of the text (OneLine), Perl classes are ASCII,
/// `(?i)` folds with Unicode simple case folding.
public indirect enum RENode: Sendable, Hashable {
    /// Matches the empty string.
    case empty
    /// One character from a set of Unicode scalar ranges (inclusive).
    case chars([ClosedRange<UInt32>])
    case concat([RENode])
    case alternate([RENode])
    /// `min`...`max` repetitions; `max == nil` is unbounded.
    case repeated(RENode, min: Int, max: Int?)
    /// `^` / `\A`: the beginning of the text.
    case beginText
    /// `$` / `\z`: the end of the text.
    case endText
}

public struct RE2Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// The construct, e.g. "\\b (word boundary)".
    public var construct: String
    /// True when the construct is valid RE2 that this compiler does not support
    /// (false: the pattern is not valid RE2 at all, which Envoy also rejects).
    public var unsupported: Bool

    public var description: String {
        unsupported ? "unsupported regex construct \(construct)" : "invalid regex: \(construct)"
    }
}

public enum RE2Parser {
    /// RE2's limit on counted repetition.
    static let maxRepeat = 1000
    static let maxRune: UInt32 = 0x10FFFF

    public static func parse(_ pattern: String) throws(RE2Error) -> RENode {
        var p = Parser(Array(pattern.unicodeScalars.map(\.value)))
        let node = try p.parseAlternation(depth: 0)
        if p.pos < p.chars.count {
            // Only an unbalanced ')' stops the top level early.
            throw RE2Error(construct: "unexpected ) at offset \(p.pos)", unsupported: false)
        }
        return node
    }

    struct Flags {
        var foldCase = false
        var dotNL = false
    }

    struct Parser {
        let chars: [UInt32]
        var pos = 0
        var flags = Flags()

        init(_ chars: [UInt32]) { self.chars = chars }

        var atEnd: Bool { pos >= chars.count }
        func peek(_ k: Int = 0) -> UInt32? { pos + k < chars.count ? chars[pos + k] : nil }
        func isChar(_ c: Character, at k: Int = 0) -> Bool { peek(k) == c.unicodeScalars.first!.value }

        mutating func parseAlternation(depth: Int) throws(RE2Error) -> RENode {
            if depth > 1000 { throw RE2Error(construct: "nesting too deep", unsupported: false) }
            var branches: [RENode] = [try parseConcat(depth: depth)]
            while isChar("|") {
                pos += 1
                branches.append(try parseConcat(depth: depth))
            }
            return branches.count == 1 ? branches[0] : .alternate(branches)
        }

        mutating func parseConcat(depth: Int) throws(RE2Error) -> RENode {
            var items: [RENode] = []
            while let c = peek(), c != 0x7C /* | */, c != 0x29 /* ) */ {
                if c == 0x28 /* ( */ {
                    if let group = try parseGroup(depth: depth) {
                        items.append(try parseQuantifiers(group))
                    }
                    continue
                }
                let atom = try parseAtom()
                items.append(try parseQuantifiers(atom))
            }
            if items.isEmpty { return .empty }
            return items.count == 1 ? items[0] : .concat(items)
        }

        /// A group, or nil for a flag-only group `(?i)` that changes the flags in place.
        mutating func parseGroup(depth: Int) throws(RE2Error) -> RENode? {
            pos += 1  // (
            let saved = flags
            if isChar("?") {
                pos += 1
                if isChar("P") || isChar("<") {
                    // (?P<name>re) or (?<name>re): a capture; captures do not change the language.
                    if isChar("P") { pos += 1 }
                    guard isChar("<") else { throw RE2Error(construct: "(?P without <name>", unsupported: false) }
                    pos += 1
                    var n = 0
                    while let c = peek(), c != 0x3E /* > */ {
                        guard isWordChar(c) else { throw RE2Error(construct: "bad capture group name", unsupported: false) }
                        pos += 1
                        n += 1
                    }
                    guard n > 0, isChar(">") else { throw RE2Error(construct: "bad capture group name", unsupported: false) }
                    pos += 1
                } else {
                    var negate = false
                    var sawFlag = false
                    var next = flags
                    loop: while let c = peek() {
                        pos += 1
                        switch c {
                        case 0x69 /* i */: next.foldCase = !negate; sawFlag = true
                        case 0x73 /* s */: next.dotNL = !negate; sawFlag = true
                        case 0x55 /* U */: sawFlag = true  // non-greedy by default: same language for a full match
                        case 0x6D /* m */:
                            if negate {
                                sawFlag = true
                            } else {
                                throw RE2Error(construct: "(?m) multi-line mode", unsupported: true)
                            }
                        case 0x2D /* - */:
                            if negate { throw RE2Error(construct: "bad flags", unsupported: false) }
                            negate = true
                            sawFlag = false
                        case 0x3A /* : */:
                            if negate && !sawFlag && next.foldCase == flags.foldCase && next.dotNL == flags.dotNL {
                                throw RE2Error(construct: "bad flags", unsupported: false)
                            }
                            flags = next
                            break loop
                        case 0x29 /* ) */:
                            if negate && !sawFlag { throw RE2Error(construct: "bad flags", unsupported: false) }
                            // (?flags) applies to the rest of the enclosing group.
                            flags = next
                            return nil
                        default:
                            throw RE2Error(construct: "(?\(String(UnicodeScalar(c).map(Character.init) ?? "?"))... group", unsupported: false)
                        }
                    }
                    if atEnd { throw RE2Error(construct: "missing )", unsupported: false) }
                }
            }
            let inner = try parseAlternation(depth: depth + 1)
            guard isChar(")") else { throw RE2Error(construct: "missing )", unsupported: false) }
            pos += 1
            flags = saved
            return inner
        }

        mutating func parseQuantifiers(_ atom: RENode) throws(RE2Error) -> RENode {
            var node = atom
            var quantified = false
            while let c = peek() {
                var minN = 0
                var maxN: Int?
                if c == 0x2A /* * */ {
                    pos += 1
                } else if c == 0x2B /* + */ {
                    minN = 1
                    pos += 1
                } else if c == 0x3F /* ? */ {
                    maxN = 1
                    pos += 1
                } else if c == 0x7B /* { */, let (lo, hi, len) = parseCount() {
                    minN = lo
                    maxN = hi
                    pos += len
                } else {
                    break
                }
                // RE2 rejects a quantifier applied to a quantifier (`a**`), but allows a
                // trailing `?` for non-greedy, which does not change what a full match accepts.
                if quantified { throw RE2Error(construct: "bad repetition operator", unsupported: false) }
                quantified = true
                if isChar("?") { pos += 1 }
                if let m = maxN, m < minN { throw RE2Error(construct: "bad repetition operator", unsupported: false) }
                if minN > RE2Parser.maxRepeat || (maxN ?? 0) > RE2Parser.maxRepeat {
                    throw RE2Error(construct: "bad repetition operator (count over 1000)", unsupported: false)
                }
                node = .repeated(node, min: minN, max: maxN)
            }
            return node
        }

        /// `{n}`, `{n,}`, `{n,m}` at pos: (min, max, length). Anything else is a literal `{`.
        func parseCount() -> (Int, Int?, Int)? {
            var i = pos + 1
            func number() -> Int? {
                var v = 0
                var digits = 0
                while i < chars.count, chars[i] >= 0x30, chars[i] <= 0x39 {
                    v = min(v * 10 + Int(chars[i] - 0x30), 100_000)
                    i += 1
                    digits += 1
                }
                return digits > 0 ? v : nil
            }
            guard let lo = number() else { return nil }
            var hi: Int? = lo
            if i < chars.count, chars[i] == 0x2C /* , */ {
                i += 1
                hi = number()
                if hi == nil { hi = nil }  // {n,} unbounded
            }
            guard i < chars.count, chars[i] == 0x7D /* } */ else { return nil }
            return (lo, hi, i + 1 - pos)
        }

        mutating func parseAtom() throws(RE2Error) -> RENode {
            let c = chars[pos]
            switch c {
            case 0x2A, 0x2B, 0x3F:  // * + ?
                throw RE2Error(construct: "missing argument to repetition operator", unsupported: false)
            case 0x7B where parseCount() != nil:
                throw RE2Error(construct: "missing argument to repetition operator", unsupported: false)
            case 0x2E /* . */:
                pos += 1
                return .chars(flags.dotNL ? [0...RE2Parser.maxRune] : [0...9, 11...RE2Parser.maxRune])
            case 0x5E /* ^ */:
                pos += 1
                return .beginText
            case 0x24 /* $ */:
                pos += 1
                return .endText
            case 0x5B /* [ */:
                return .chars(try parseClass())
            case 0x5C /* \ */:
                return try parseEscape()
            default:
                pos += 1
                return try literal(c)
            }
        }

        mutating func literal(_ c: UInt32) throws(RE2Error) -> RENode {
            .chars(try folded(c...c))
        }

        /// A character range under the current flags: `(?i)` adds the other case.
        func folded(_ r: ClosedRange<UInt32>) throws(RE2Error) -> [ClosedRange<UInt32>] {
            guard flags.foldCase else { return [r] }
            if r.upperBound >= 0x80, !(r.lowerBound == r.upperBound && (r.lowerBound == 0x212A || r.lowerBound == 0x17F)) {
                throw RE2Error(construct: "(?i) with a non-ASCII character", unsupported: true)
            }
            return r.lowerBound == r.upperBound ? CaseFold.orbit(r.lowerBound) : CaseFold.orbit(range: r)
        }

        mutating func parseEscape() throws(RE2Error) -> RENode {
            guard let c = peek(1) else { throw RE2Error(construct: "trailing \\", unsupported: false) }
            switch c {
            case 0x41 /* A */: pos += 2; return .beginText
            case 0x7A /* z */: pos += 2; return .endText
            case 0x62 /* b */, 0x42 /* B */:
                throw RE2Error(construct: "\\\(c == 0x62 ? "b" : "B") (word boundary)", unsupported: true)
            case 0x43 /* C */:
                throw RE2Error(construct: "\\C (any byte)", unsupported: true)
            case 0x51 /* Q */:
                pos += 2
                var items: [RENode] = []
                while !atEnd {
                    if isChar("\\"), peek(1) == 0x45 /* E */ {
                        pos += 2
                        break
                    }
                    items.append(try literal(chars[pos]))
                    pos += 1
                }
                return items.isEmpty ? .empty : (items.count == 1 ? items[0] : .concat(items))
            default:
                let saved = flags
                flags.foldCase = false
                let set: [ClosedRange<UInt32>]
                do { set = try parseClassEscape(inClass: false) } catch { flags = saved; throw error }
                flags = saved
                if set.count == 1, set[0].lowerBound == set[0].upperBound {
                    return .chars(try folded(set[0]))
                }
                return .chars(flags.foldCase ? CaseFold.closeOver(set) : set)
            }
        }

        /// An escape that denotes a set of characters (also a single literal); pos at `\`.
        mutating func parseClassEscape(inClass: Bool) throws(RE2Error) -> [ClosedRange<UInt32>] {
            pos += 1  // backslash
            guard let c = peek() else { throw RE2Error(construct: "trailing \\", unsupported: false) }
            pos += 1
            let flags = self.flags
            func fold(_ v: UInt32) throws(RE2Error) -> [ClosedRange<UInt32>] {
                var p = Parser([])
                p.flags = flags
                return try p.folded(v...v)
            }
            switch c {
            case 0x64 /* d */: return CharSets.digit
            case 0x44 /* D */: return CharSets.negate(CharSets.digit)
            case 0x73 /* s */: return CharSets.perlSpace
            case 0x53 /* S */: return CharSets.negate(CharSets.perlSpace)
            case 0x77 /* w */: return CharSets.word
            case 0x57 /* W */: return CharSets.negate(CharSets.word)
            case 0x70 /* p */, 0x50 /* P */:
                throw RE2Error(construct: "\\\(c == 0x70 ? "p" : "P") (Unicode class)", unsupported: true)
            case 0x61 /* a */: return try fold(7)
            case 0x66 /* f */: return try fold(12)
            case 0x74 /* t */: return try fold(9)
            case 0x6E /* n */: return try fold(10)
            case 0x72 /* r */: return try fold(13)
            case 0x76 /* v */: return try fold(11)
            case 0x78 /* x */:
                if isChar("{") {
                    pos += 1
                    var v: UInt32 = 0
                    var n = 0
                    while let h = peek(), let d = hexValue(h) {
                        v = v * 16 + d
                        n += 1
                        pos += 1
                        if v > RE2Parser.maxRune { throw RE2Error(construct: "bad \\x escape", unsupported: false) }
                    }
                    guard n > 0, isChar("}") else { throw RE2Error(construct: "bad \\x escape", unsupported: false) }
                    pos += 1
                    return try fold(v)
                }
                guard let h1 = peek(), let d1 = hexValue(h1), let h2 = peek(1), let d2 = hexValue(h2) else {
                    throw RE2Error(construct: "bad \\x escape", unsupported: false)
                }
                pos += 2
                return try fold(d1 * 16 + d2)
            case 0x30...0x37:
                // Octal: \0, \0oo; \1-\7 only with a second octal digit (else a backreference).
                if c != 0x30 {
                    guard let n = peek(), n >= 0x30, n <= 0x37 else {
                        throw RE2Error(construct: "backreference \\\(c - 0x30)", unsupported: false)
                    }
                }
                var v = c - 0x30
                for _ in 0..<2 {
                    if let n = peek(), n >= 0x30, n <= 0x37 {
                        v = v * 8 + (n - 0x30)
                        pos += 1
                    } else {
                        break
                    }
                }
                return try fold(v)
            default:
                // Any ASCII punctuation may be escaped to stand for itself.
                if c < 0x80, !isWordChar(c) {
                    return try fold(c)
                }
                throw RE2Error(construct: "invalid escape \\\(String(UnicodeScalar(c).map(Character.init) ?? "?"))", unsupported: false)
            }
        }

        func hexValue(_ c: UInt32) -> UInt32? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x41...0x46: c - 0x41 + 10
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }

        func isWordChar(_ c: UInt32) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
        }

        /// `[...]`, pos at `[`.
        mutating func parseClass() throws(RE2Error) -> [ClosedRange<UInt32>] {
            pos += 1
            var negated = false
            if isChar("^") {
                negated = true
                pos += 1
            }
            var set: [ClosedRange<UInt32>] = []
            var first = true
            while true {
                guard let c = peek() else { throw RE2Error(construct: "missing ]", unsupported: false) }
                if c == 0x5D /* ] */, !first {
                    pos += 1
                    break
                }
                first = false
                if c == 0x5B /* [ */, isChar(":", at: 1) {
                    set += try parsePosixClass()
                    continue
                }
                // A single character or a range lo-hi.
                let lo: UInt32
                if c == 0x5C /* \ */ {
                    let saved = flags
                    flags.foldCase = false  // fold once, below
                    let s: [ClosedRange<UInt32>]
                    do { s = try parseClassEscape(inClass: true) } catch { flags = saved; throw error }
                    flags = saved
                    if s.count != 1 || s[0].lowerBound != s[0].upperBound {
                        // A class escape (\d...) cannot start or end a range.
                        if isChar("-"), let n = peek(1), n != 0x5D {
                            throw RE2Error(construct: "bad character class range", unsupported: false)
                        }
                        set += flags.foldCase ? CaseFold.closeOver(s) : s
                        continue
                    }
                    lo = s[0].lowerBound
                } else {
                    pos += 1
                    lo = c
                }
                if isChar("-"), let n = peek(1), n != 0x5D /* ] */ {
                    pos += 1
                    let hi: UInt32
                    if n == 0x5C {
                        let saved = flags
                        flags.foldCase = false
                        let s: [ClosedRange<UInt32>]
                        do { s = try parseClassEscape(inClass: true) } catch { flags = saved; throw error }
                        flags = saved
                        guard s.count == 1, s[0].lowerBound == s[0].upperBound else {
                            throw RE2Error(construct: "bad character class range", unsupported: false)
                        }
                        hi = s[0].lowerBound
                    } else {
                        pos += 1
                        hi = n
                    }
                    guard lo <= hi else { throw RE2Error(construct: "bad character class range", unsupported: false) }
                    set += try folded(lo...hi)
                } else {
                    set += try folded(lo...lo)
                }
            }
            let normalized = CharSets.normalize(set)
            return negated ? CharSets.negate(normalized) : normalized
        }

        mutating func parsePosixClass() throws(RE2Error) -> [ClosedRange<UInt32>] {
            // pos at "[:"
            var i = pos + 2
            var negate = false
            if i < chars.count, chars[i] == 0x5E { negate = true; i += 1 }
            var name = ""
            while i < chars.count, chars[i] != 0x3A {
                name.unicodeScalars.append(UnicodeScalar(chars[i]) ?? "?")
                i += 1
            }
            guard i + 1 < chars.count, chars[i] == 0x3A, chars[i + 1] == 0x5D else {
                throw RE2Error(construct: "bad POSIX class", unsupported: false)
            }
            guard var set = CharSets.posix[name] else {
                throw RE2Error(construct: "invalid character class range [:\(name):]", unsupported: false)
            }
            if flags.foldCase {
                var f: [ClosedRange<UInt32>] = []
                for r in set { f += try folded(r) }
                set = CharSets.normalize(f)
            }
            pos = i + 2
            return negate ? CharSets.negate(set) : set
        }
    }
}

/// Character sets as sorted, non-overlapping scalar ranges.
enum CharSets {
    static let digit: [ClosedRange<UInt32>] = [0x30...0x39]
    /// RE2's \s: [\t\n\f\r ] (no \v).
    static let perlSpace: [ClosedRange<UInt32>] = [9...10, 12...13, 32...32]
    static let word: [ClosedRange<UInt32>] = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]

    static let posix: [String: [ClosedRange<UInt32>]] = [
        "alnum": [0x30...0x39, 0x41...0x5A, 0x61...0x7A],
        "alpha": [0x41...0x5A, 0x61...0x7A],
        "ascii": [0...0x7F],
        "blank": [9...9, 32...32],
        "cntrl": [0...0x1F, 0x7F...0x7F],
        "digit": [0x30...0x39],
        "graph": [0x21...0x7E],
        "lower": [0x61...0x7A],
        "print": [0x20...0x7E],
        "punct": [0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E],
        "space": [9...13, 32...32],
        "upper": [0x41...0x5A],
        "word": [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A],
        "xdigit": [0x30...0x39, 0x41...0x46, 0x61...0x66],
    ]

    static func normalize(_ set: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        let sorted = set.sorted { $0.lowerBound < $1.lowerBound }
        var out: [ClosedRange<UInt32>] = []
        for r in sorted {
            if let last = out.last, r.lowerBound <= last.upperBound &+ 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    static func negate(_ set: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for r in normalize(set) {
            if r.lowerBound > next { out.append(next...(r.lowerBound - 1)) }
            next = r.upperBound + 1
        }
        if next <= RE2Parser.maxRune { out.append(next...RE2Parser.maxRune) }
        return out
    }
}

/// RE2's case folding for `(?i)`: ASCII letters fold with their other case, and
/// `k`/`s` also with KELVIN SIGN and LONG S, as Unicode simple case folding has it.
/// Other non-ASCII letters are refused by the compiler rather than folded wrongly.
enum CaseFold {
    static func orbit(_ c: UInt32) -> [ClosedRange<UInt32>] {
        var out: [UInt32] = [c]
        switch c {
        case 0x41...0x5A: out.append(c + 32)
        case 0x61...0x7A: out.append(c - 32)
        default: break
        }
        if c == 0x4B || c == 0x6B || c == 0x212A { out = [0x4B, 0x6B, 0x212A] }
        if c == 0x53 || c == 0x73 || c == 0x17F { out = [0x53, 0x73, 0x17F] }
        return CharSets.normalize(out.map { $0...$0 })
    }

    /// A Perl class (`\d`, `\W`...) under `(?i)`: its ASCII letters get their other
    /// case, and KELVIN SIGN / LONG S bring k and s with them; the non-ASCII part of
    /// these classes is either empty or everything, so it needs nothing more.
    static func closeOver(_ set: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out = set
        for r in set where r.lowerBound < 0x80 {
            out += orbit(range: r.lowerBound...min(r.upperBound, 0x7F))
        }
        if set.contains(where: { $0.contains(0x212A) }) { out += orbit(0x212A) }
        if set.contains(where: { $0.contains(0x17F) }) { out += orbit(0x17F) }
        return CharSets.normalize(out)
    }

    static func orbit(range: ClosedRange<UInt32>) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = [range]
        // The intersections with A-Z and a-z, as bounds first: a range that misses
        // one of them would make an empty (invalid) ClosedRange.
        let upperLo = max(range.lowerBound, 0x41), upperHi = min(range.upperBound, 0x5A)
        if upperLo <= upperHi { out.append((upperLo + 32)...(upperHi + 32)) }
        let lowerLo = max(range.lowerBound, 0x61), lowerHi = min(range.upperBound, 0x7A)
        if lowerLo <= lowerHi { out.append((lowerLo - 32)...(lowerHi - 32)) }
        for special: UInt32 in [0x4B, 0x6B, 0x212A] where range.contains(special) { out += [0x4B...0x4B, 0x6B...0x6B, 0x212A...0x212A] }
        for special: UInt32 in [0x53, 0x73, 0x17F] where range.contains(special) { out += [0x53...0x53, 0x73...0x73, 0x17F...0x17F] }
        return CharSets.normalize(out)
    }
}
