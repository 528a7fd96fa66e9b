import X2BIR
import X2BSemantics

/// Candidate requests for one pair of virtual hosts, derived from the matchers of
/// both: every path matcher's sample paths and near misses, and for each route the
/// header and query values that satisfy all of its conditions, and the same with
/// each condition broken in turn. The region where two route tables disagree is
/// found by evaluating these requests on both sides; a disagreement no candidate
/// reaches goes unreported (docs/diff.md says so).
enum Candidates {
    /// Header and query conditions of one candidate (the path varies independently).
    struct Variant: Hashable {
        var method = "GET"
        /// Lowercased names, sorted by name.
        var headers: [String: String] = [:]
        var query: [String: String] = [:]
    }

    /// Bounds on one pair's search (a route table of hundreds of routes under one host).
    static let maxPaths = 256
    static let maxVariants = 128

    static func paths(_ routes: [IRRoute]) -> [String] {
        var out: [String] = ["/"]
        var seen: Set<String> = ["/"]
        func add(_ p: String) {
            guard out.count < maxPaths, usable(p), !seen.contains(p) else { return }
            seen.insert(p)
            out.append(p)
        }
        for r in routes {
            switch r.match.path {
            case .prefix(let p):
                add(p)
                add(p.hasSuffix("/") ? p + "x" : p + "/x")
                add(p + "x")
                if p.count > 1 { add(String(p.dropLast())) }
            case .exact(let p):
                add(p)
                add(p + "x")
                add(p + "/")
                if p.count > 1 { add(String(p.dropLast())) }
            case .separatedPrefix(let p):
                add(p)
                add(p + "/x")
                add(p + "x")
            case .regex(let re):
                if let s = RegexExample.shortest(re) {
                    add(s)
                    add(s + "x")
                }
            }
            if !r.match.caseSensitive {
                switch r.match.path {
                case .prefix(let p), .exact(let p), .separatedPrefix(let p): add(p.uppercased())
                case .regex: break
                }
            }
        }
        return out
    }

    /// A path a request line can carry as is: starts with "/", printable ASCII, no query or fragment.
    static func usable(_ p: String) -> Bool {
        p.hasPrefix("/") && p.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }
    }

    static func variants(_ routes: [IRRoute]) -> [Variant] {
        var out: [Variant] = [Variant()]
        var seen: Set<Variant> = [Variant()]
        func add(_ v: Variant) {
            guard out.count < maxVariants, !seen.contains(v) else { return }
            seen.insert(v)
            out.append(v)
        }
        for r in routes {
            let m = r.match
            if m.headers.isEmpty && m.queryParameters.isEmpty && !m.grpcOnly { continue }
            var all = Variant()
            for h in m.headers { set(&all, h, satisfied: true) }
            for q in m.queryParameters { all.query[q.name] = queryValue(q, satisfied: true) }
            if m.grpcOnly { all.headers["content-type"] = "application/grpc" }
            add(all)
            for h in m.headers {
                var v = all
                set(&v, h, satisfied: false)
                add(v)
            }
            for q in m.queryParameters {
                var v = all
                v.query[q.name] = queryValue(q, satisfied: false)
                add(v)
            }
            if m.grpcOnly {
                var v = all
                v.headers["content-type"] = nil
                add(v)
            }
        }
        return out
    }

    /// Sets (or removes) the header `h` looks at to a value that does (or does not) satisfy it;
    /// the choice is checked with the interpreter's own matcher.
    static func set(_ v: inout Variant, _ h: IRHeaderMatch, satisfied: Bool) {
        if h.name.hasPrefix(":") && h.name != ":method" { return }  // the host and path come from elsewhere
        let options: [String?] = headerValues(h) + ["x", "", "no-such-value", nil]
        for value in options {
            let map = HTTPHeaderMap(value.map { [(h.name, $0)] } ?? [])
            guard RouteSemantics.matches(h, map) == satisfied else { continue }
            if h.name == ":method" {
                if let value, !value.isEmpty, value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) { v.method = value }
            } else {
                v.headers[h.name] = value
            }
            return
        }
    }

    static func headerValues(_ h: IRHeaderMatch) -> [String] {
        switch h.kind {
        case .string(let s, _): return stringValues(s)
        case .present, .anyValue: return ["x"]
        case .range(let lo, let hi): return [String(lo), String(hi), String(lo &- 1)]
        }
    }

    static func stringValues(_ s: IRStringMatch) -> [String] {
        switch s {
        case .exact(let x): return [x, x + "x"]
        case .prefix(let x): return [x, x + "x", "x" + x]
        case .suffix(let x): return ["x" + x, x, x + "x"]
        case .contains(let x): return [x, "x" + x + "x"]
        case .regex(let r): return RegexExample.shortest(r).map { [$0, $0 + "x"] } ?? []
        }
    }

    static func queryValue(_ q: IRQueryMatch, satisfied: Bool) -> String? {
        guard let s = q.value else { return satisfied ? "x" : nil }
        let options = stringValues(s) + ["x", ""]
        for o in options where o.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "&") && $0 != UInt8(ascii: "#") }) {
            if RouteSemantics.matches(s, o, ignoreCase: q.ignoreCase) == satisfied { return o }
        }
        return nil  // absent: no value matches (and a missing parameter fails every condition)
    }

    /// Random values that take each `runtime_fraction` both ways (0 enables every fraction above 0).
    static func randoms(_ routes: [IRRoute]) -> [UInt64] {
        var out: [UInt64] = [0]
        for r in routes {
            if let f = r.match.runtimeFraction, f.numerator > 0, f.numerator < f.denominator, !out.contains(UInt64(f.numerator)) {
                out.append(UInt64(f.numerator))
            }
            if out.count >= 4 { break }
        }
        return out
    }

    /// A host a request can send to reach a domain: the domain itself, or one its wildcard matches.
    static func host(for domain: String) -> String {
        switch RouteSemantics.domainKind(domain) {
        case .exact(let e): return e
        case .suffix(let s): return "x" + s
        case .prefix(let p): return p + "x"
        case .any: return "unmatched.invalid"
        }
    }
}

/// The shortest string a regex fully matches, read off its byte DFA (breadth first,
/// preferring letters, digits and `/`), so examples are readable.
enum RegexExample {
    static let preferred: [UInt8] = Array("abcdefghijklmnopqrstuvwxyz0123456789/-_.ABCDEFGHIJKLMNOPQRSTUVWXYZ~".utf8) + Array(0x21...0x7E)

    static func shortest(_ pattern: String) -> String? {
        guard let re = try? ByteRE.re2(pattern), let dfa = try? ByteDFA.build(re) else { return nil }
        // One representative byte per class, printable where the class has one.
        var representative = [UInt8?](repeating: nil, count: dfa.classCount)
        for b in preferred where representative[Int(dfa.classOf[Int(b)])] == nil {
            representative[Int(dfa.classOf[Int(b)])] = b
        }
        var parent = [(Int, UInt8)?](repeating: nil, count: dfa.stateCount)
        var visited = [Bool](repeating: false, count: dfa.stateCount)
        var queue = [ByteDFA.start]
        visited[ByteDFA.start] = true
        var head = 0
        while head < queue.count {
            let s = queue[head]
            head += 1
            if dfa.acceptAtEnd[s] {
                var bytes: [UInt8] = []
                var cur = s
                while let (p, b) = parent[cur] {
                    bytes.append(b)
                    cur = p
                }
                return String(decoding: bytes.reversed(), as: UTF8.self)
            }
            for c in 0..<dfa.classCount {
                guard let b = representative[c] else { continue }
                let t = dfa.transitions[s * dfa.classCount + c]
                if t != 0 && !visited[t] {
                    visited[t] = true
                    parent[t] = (s, b)
                    queue.append(t)
                }
            }
        }
        return nil
    }
}
