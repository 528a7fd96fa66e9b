import Foundation
import XCTest

@testable import Codegen
@testable import X2BRouteCheck
@testable import X2BSemantics

/// HTTP routing: the RE2 subset and its automata, Envoy's matcher semantics in
/// the interpreter, router-check (IR and BPF engines), the generated C, and the
/// differential test of the kernel against the interpreter.
final class HTTPRoutingTests: XCTestCase {
    static var routerCheckFixtures: URL { TestPaths.fixtures.appendingPathComponent("router-check") }
    static var routerCheckCorpus: URL? { TestPaths.corpus?.appendingPathComponent("envoy-router-check") }

    // MARK: Regexes

    static let patterns = [
        "abc", "a|b|c", "a*", "a+b?", "(ab)+", "[a-z]+[0-9]{2,3}", "[^/]+/x", ".*", ".+\\.json", "\\d+", "\\w+-\\s",
        "(?i)hello", "(?i:ab)c", "x{3}", "x{2,}", "(a|ab)(c|bcd)(d*)", "^/api/v[0-9]+/.*$", "\\Q.*\\E", "[[:alpha:]]+",
        "[a\\-z]", "a.c", "(?s)a.c", "[\\d\\s]+", "\\.", "(?:foo|bar)baz", "a{0,2}b", "[]a]", "[^]a]", "\\x41\\x{42}",
        "/users/\\d+", "(?P<n>x)y", "", "(|a)b",
    ]

    /// Printable ASCII and tab: where RE2 and ICU agree (ICU's `$` before a final
    /// newline, `.` and line separators, `\s` and `\v` differ from RE2).
    func randomASCII(_ rng: inout SplitMix, alphabet: [UInt8]) -> [UInt8] {
        (0..<Int.random(in: 0...8, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
    }

    func testRegexAgreesWithICUOnASCII() throws {
        var rng = SplitMix(7)
        let alphabet = Array("abcxyzABC0129-_./ \t[]{}:".utf8)
        for p in Self.patterns {
            let nfa = try XCTUnwrap(try? ByteNFA(ByteRE.re2(p)), p)
            // ICU spells named groups (?<n>...) only.
            let icu = try NSRegularExpression(pattern: "^(?:\(p.replacingOccurrences(of: "(?P<", with: "(?<")))$")
            var inputs = (0..<400).map { _ in randomASCII(&rng, alphabet: alphabet) }
            inputs += HTTPDifferentialProbe.samples(p).map { Array($0.utf8) }
            for input in inputs {
                let s = String(decoding: input, as: UTF8.self)
                let expected = icu.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
                XCTAssertEqual(nfa.fullMatch(input), expected, "regex \(p) on \(s.debugDescription)")
            }
        }
    }

    func testDFAAgreesWithNFAOnBytes() throws {
        var rng = SplitMix(11)
        var languages: [(String, ByteRE)] = try Self.patterns.map { ($0, try ByteRE.re2($0)) }
        for ic in [false, true] {
            let lit = Array("AbC/x".utf8)
            languages += [
                ("exact \(ic)", .exact(lit, ignoreCase: ic)), ("prefix \(ic)", .prefix(lit, ignoreCase: ic)),
                ("suffix \(ic)", .suffix(lit, ignoreCase: ic)), ("contains \(ic)", .contains(lit, ignoreCase: ic)),
            ]
        }
        languages.append(("non-ascii dot", try ByteRE.re2("é.[^a]")))
        for (name, re) in languages {
            let nfa = try ByteNFA(re)
            let dfa = try ByteDFA.build(re)
            XCTAssertEqual(dfa.acceptAtEnd[0], false, name)
            for _ in 0..<600 {
                var input = (0..<Int.random(in: 0...7, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if Bool.random(using: &rng) { input = Array("abcAbC/xé".utf8).shuffled(using: &rng).prefix(Int.random(in: 0...9, using: &rng)).map { $0 } }
                XCTAssertEqual(dfa.fullMatch(input), nfa.fullMatch(input), "\(name) on \(input)")
            }
        }
    }

    func testRE2SyntaxEdges() throws {
        // RE2's `.` stops at '\n'; its negated classes do not.
        XCTAssertFalse(RegexCache.fullMatch("a.b", Array("a\nb".utf8)))
        XCTAssertTrue(RegexCache.fullMatch("a[^x]b", Array("a\nb".utf8)))
        XCTAssertTrue(RegexCache.fullMatch("(?s)a.b", Array("a\nb".utf8)))
        // `$` is the end of the text only.
        XCTAssertFalse(RegexCache.fullMatch("a$", Array("a\n".utf8)))
        // `.` is a UTF-8 character, and RE2's loose encoding takes surrogates (ED A0 80).
        XCTAssertTrue(RegexCache.fullMatch(".", Array("é".utf8)))
        XCTAssertTrue(RegexCache.fullMatch(".", [0xED, 0xA0, 0x80]))
        XCTAssertFalse(RegexCache.fullMatch(".", [0x80]))
        // (?i) folds k with KELVIN SIGN.
        XCTAssertTrue(RegexCache.fullMatch("(?i)k", Array("\u{212A}".utf8)))
        // \s is [\t\n\f\r ]: no vertical tab.
        XCTAssertFalse(RegexCache.fullMatch("\\s", [0x0B]))
    }

    func testUnsupportedRegexConstructsAreNamed() {
        let cases: [(String, String, Bool)] = [
            ("\\bword", "\\b (word boundary)", true), ("\\pL", "\\p (Unicode class)", true),
            ("(?m)^a", "(?m) multi-line mode", true), ("\\C", "\\C (any byte)", true),
            ("(?i)é", "(?i) with a non-ASCII character", true),
            ("a\\1", "backreference", false), ("a**", "bad repetition operator", false), ("(a", "missing )", false),
            ("(?=a)", "(?=", false), ("x{1001}", "count over 1000", false),
        ]
        for (p, construct, unsupported) in cases {
            do {
                _ = try RE2Parser.parse(p)
                XCTFail("\(p) parsed")
            } catch {
                XCTAssertTrue(error.construct.contains(construct), "\(p): \(error.construct)")
                XCTAssertEqual(error.unsupported, unsupported, p)
            }
        }
    }

    func testLoweringNamesTheRegexConstruct() throws {
        let yaml = """
            virtual_hosts:
            - name: v
              domains: ["*"]
              routes:
              - match: {safe_regex: {regex: "\\\\bx"}}
                route: {cluster: c}
            """
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-re-\(UUID().uuidString).yaml")
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let cfg = try RouterCheck.loadConfig(url.path)
        let d = try XCTUnwrap(cfg.diagnostics.first { $0.id == DiagnosticID.unsupportedMatcher.code })
        XCTAssertTrue(d.message.contains("\\b (word boundary)"), d.message)
        XCTAssertTrue(d.path.hasSuffix("routes[0].match.safe_regex"), d.path)
    }

    // MARK: Semantics

    func testFNVConstantsOfTheRuntime() throws {
        let text = try String(contentsOf: TestPaths.root.appendingPathComponent("bpf-runtime/include/x2b_http.h"), encoding: .utf8)
        for (macro, name) in [("X2B_H_HOST", "host"), ("X2B_H_XFP", "x-forwarded-proto"), ("X2B_H_INTERNAL", "x-envoy-internal")] {
            let hex = String(FNV.name(name), radix: 16)
            XCTAssertTrue(text.contains("#define \(macro) 0x\(String(repeating: "0", count: 16 - hex.count))\(hex)ULL"), macro)
        }
        XCTAssertTrue(text.contains("sizeof(struct x2b_hparse) == \(BundleLayout.parseScratchSize)"))
    }

    /// The kernel's head validation uses the interpreter's tables: method hashes, byte classes.
    func testHeadValidationConstantsOfTheRuntime() throws {
        let text = try String(contentsOf: TestPaths.root.appendingPathComponent("bpf-runtime/include/x2b_http.h"), encoding: .utf8)
        func hex(_ v: UInt64) -> String { let h = String(v, radix: 16); return "0x" + String(repeating: "0", count: 16 - h.count) + h + "ULL" }
        for m in HeadValidation.methods {
            XCTAssertTrue(text.contains("case \(hex(FNV.hash(Array(m.utf8)))): /* \(m) */"), m)
        }
        XCTAssertEqual(text.components(separatedBy: "ULL: /* ").count - 1, HeadValidation.methods.count)
        func mask(_ pred: (UInt8) -> Bool) -> (UInt64, UInt64) {
            var lo: UInt64 = 0, hi: UInt64 = 0
            for c in 0..<128 where pred(UInt8(c)) { if c < 64 { lo |= 1 << UInt64(c) } else { hi |= 1 << UInt64(c - 64) } }
            return (lo, hi)
        }
        for (name, pred) in [("TCHAR", HeadValidation.isTokenChar), ("AUTH", HeadValidation.isAuthorityChar)] as [(String, (UInt8) -> Bool)] {
            let (lo, hi) = mask(pred)
            XCTAssertTrue(text.contains("#define X2B_\(name)_LO \(hex(lo))"), name)
            XCTAssertTrue(text.contains("#define X2B_\(name)_HI \(hex(hi))"), name)
        }
        XCTAssertTrue(text.contains("#define X2B_H_CONTENT_LENGTH \(hex(FNV.name("content-length")))"))
        XCTAssertTrue(text.contains("#define X2B_H_TRANSFER_ENCODING \(hex(FNV.name("transfer-encoding")))"))
        XCTAssertTrue(text.contains("#define X2B_MAX_HEADER_LINES \(HeadValidation.maxHeaders)"))
    }

    /// What a real Envoy 1.40 answered for each class (Tests/envoy/diff-http.py, docs/semantics.md).
    func testHeadValidationAsEnvoyAnswers() {
        func req(
            _ method: String = "GET", _ path: String = "/", host: String? = "a.example", version: String = "HTTP/1.1",
            h headers: [(String, String)] = []
        ) -> HTTPRequest {
            var r = HTTPRequest(authority: host ?? "", path: path, method: method, headers: headers)
            r.hasAuthority = host != nil
            r.version = version
            return r
        }
        let refused: [(HTTPRequest, Int)] = [
            (req("GET", "/b#frag"), 400), (req("GET", "/b?q#f"), 400), (req("GET", "b"), 400), (req("GET", "*"), 400),
            (req("FOO-BAR"), 400), (req("get"), 400), (req("QUERY"), 400), (req("M-SEARCH"), 400), (req("CONNECT", "/p"), 400),
            (req(version: "HTTP/1.0"), 426), (req(version: ""), 426), (req(version: "HTTP/2.0"), 426), (req(version: "HTTX/1.1"), 400),
            (req(version: "HTTP/1.10"), 400), (req(host: nil), 400), (req("GET", "/a b"), 400), (req("GET", "/a\u{1}"), 400),
            (req("GET", "/a\u{7f}"), 400), (req("GET", "/\u{e9}"), 400), (req("GET", "/a\u{0}"), 400),
            (req(host: "a x"), 400), (req(host: "a/x"), 400), (req(host: "a\"x"), 400), (req(host: "a{x"), 400), (req(host: "a^x"), 400),
            (req(h: [("bad name", "x")]), 400), (req(h: [("bad(n", "x")]), 400), (req(h: [("x", "a\u{1}b")]), 400),
            (req(h: [("content-length", "0"), ("content-length", "0")]), 400), (req(h: [("content-length", "+0")]), 400),
            (req(h: [("transfer-encoding", "gzip")]), 501), (req(h: [("transfer-encoding", "chunked"), ("content-length", "0")]), 400),
            (req(h: (0..<101).map { ("x\($0)", "y") }), 431), (req(h: [("x", String(repeating: "y", count: 70_000))]), 431),
            (req("GET", "ftp://h/p"), 400), (req("GET", "http:/p"), 400), (req("GET", "http://h_x/p"), 400),
            (req("GET", "http://a@b@h/p"), 400), (req("GET", "http://h:x/p"), 400), (req("GET", "http:///p"), 400),
            (req("OPTIONS", "*"), 404), (req("OPTIONS", "*x"), 404), (req("GET", "http://h.example?q"), 404),
        ]
        for (r, status) in refused {
            XCTAssertEqual(HeadValidation.validate(r).refusal?.status, status, "\(r.method) \(r.path.debugDescription) \(r.version) \(r.authority)")
        }
        let accepted: [(HTTPRequest, String, String)] = [
            (req(), "a.example", "/"), (req("PURGE"), "a.example", "/"), (req("MSEARCH"), "a.example", "/"),
            (req(host: "a_x-y.z~!$&'()*+;=:@[]%"), "a_x-y.z~!$&'()*+;=:@[]%", "/"),
            (req(host: ""), "", "/"), (req("GET", "/a\"<>{}|\\^`"), "a.example", "/a\"<>{}|\\^`"),
            (req("GET", "http://h.example/p?x"), "h.example", "/p?x"), (req("GET", "HTTP://H.example"), "H.example", "/"),
            (req("GET", "https://u@h.example:81/p", host: nil), "h.example:81", "/p"), (req("GET", "http://[::1]:80/p"), "[::1]:80", "/p"),
            (req(h: [("x", "caf\u{e9}\tx"), ("transfer-encoding", "Chunked")]), "a.example", "/"),
            (req(h: [("content-length", "00")]), "a.example", "/"),
            (req(h: (0..<99).map { ("x\($0)", "y") }), "a.example", "/"),
        ]
        for (r, authority, path) in accepted {
            guard case .accept(let out) = HeadValidation.validate(r) else {
                XCTFail("refused: \(r.method) \(r.path) \(r.authority): \(HeadValidation.validate(r))")
                continue
            }
            XCTAssertEqual(out.authority, authority, r.path)
            XCTAssertEqual(out.path, path, r.path)
        }
    }

    /// What a real Envoy 1.40 did to each path (Tests/envoy/diff-http.py path classes; a backend
    /// echoing the path it received).
    func testPathNormalizationAsEnvoyAnswers() {
        let norm = IRPathNormalization(normalizePath: true)
        let merge = IRPathNormalization(mergeSlashes: true)
        let rej = IRPathNormalization(escapedSlashes: .reject)
        let redir = IRPathNormalization(escapedSlashes: .redirect)
        let fwd = IRPathNormalization(escapedSlashes: .forward)
        let all = IRPathNormalization(normalizePath: true, mergeSlashes: true, escapedSlashes: .forward)
        typealias R = PathNormalization.Result
        let cases: [(IRPathNormalization, String, R)] = [
            (norm, "/a/../b", .forward("/b")), (norm, "/a/./b", .forward("/a/b")), (norm, "/a/%2e%2e/b", .forward("/b")),
            (norm, "/a/%2E/b", .forward("/a/b")), (norm, "/a/.%2e/b", .forward("/b")), (norm, "/..", .forward("/")),
            (norm, "/../a", .forward("/a")), (norm, "/a/..", .forward("/")), (norm, "/a/.", .forward("/a/")),
            (norm, "/a//b", .forward("/a//b")), (norm, "/a\\b", .forward("/a/b")), (norm, "/%41%42", .forward("/AB")),
            (norm, "/%7e%7E", .forward("/~~")), (norm, "/%2d%5f", .forward("/-_")), (norm, "/%20", .forward("/%20")),
            (norm, "/%25", .forward("/%25")), (norm, "/%zz", .forward("/%zz")), (norm, "/%", .forward("/%")), (norm, "/%4", .forward("/%4")),
            (norm, "/a?x=/../b", .forward("/a?x=/../b")), (norm, "/a/../b?x=1", .forward("/b?x=1")), (norm, "/a%2fb", .forward("/a%2fb")),
            (norm, "/a%3fb", .forward("/a%3fb")), (norm, "/\"<>`{}|^", .forward("/%22%3C%3E%60%7B%7D%7C%5E")),
            (norm, "/a;b/../c", .forward("/c")), (norm, "/%2e", .forward("/")), (norm, "/a/b/../../..", .forward("/")),
            (norm, "/.a", .forward("/.a")), (norm, "/..a/b", .forward("/..a/b")), (norm, "/a/.../b", .forward("/a/.../b")),
            (norm, "/%%30%30", .forward("/%2500")),
            (merge, "/a//b", .forward("/a/b")), (merge, "//a", .forward("/a")), (merge, "/a/b//", .forward("/a/b/")),
            (merge, "/a/../b", .forward("/a/../b")),
            (rej, "/a%2fb", .reject("")), (rej, "/A%2f", .reject("")), (rej, "/a%5Cb", .reject("")), (rej, "/a/../b", .forward("/a/../b")),
            (redir, "/a%2Fb", .redirect("/a/b")), (redir, "/a%5cb", .redirect("/a\\b")), (redir, "/a%2f..%2fb", .redirect("/a/../b")),
            (fwd, "/a%2fb", .forward("/a/b")), (fwd, "/a%5Cb", .forward("/a\\b")),
            (all, "/a%5cb", .forward("/a/b")), (all, "/a%2f..%2fb", .forward("/b")), (all, "/a//b/./c", .forward("/a/b/c")),
            (norm, "/a%00b", .reject("")), (all, "/a%00b", .reject("")),
        ]
        for (n, path, want) in cases {
            let got = PathNormalization.apply(n, path)
            switch (got, want) {
            case (.reject, .reject): break
            default: XCTAssertEqual(got, want, "\(n) \(path)")
            }
        }
    }

    /// The kernel's test (refuse what normalisation would change) is exact on the paths the codec
    /// accepts, for every combination of options.
    func testKernelPathCheckIsExact() {
        let alphabet = Array("/.%2fF5cCeE0a\\\"?x;~41".utf8)
        var rng = SplitMix(16)
        var refused = 0
        for normalize in [false, true] {
            for merge in [false, true] {
                for esc in [IRPathNormalization.EscapedSlashes.keep, .reject, .redirect, .forward] {
                    let n = IRPathNormalization(normalizePath: normalize, mergeSlashes: merge, escapedSlashes: esc)
                    for _ in 0..<3000 {
                        let body = (0..<Int.random(in: 0...9, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
                        let path = "/" + String(decoding: body, as: UTF8.self)
                        let changes = PathNormalization.apply(n, path) != .forward(path)
                        XCTAssertEqual(PathNormalization.kernelRefuses(n, path), changes, "\(n) \(path)")
                        if changes { refused += 1 }
                    }
                }
            }
        }
        XCTAssertGreaterThan(refused, 5_000)
    }

    func testPathNormalizationConstantsOfTheRuntime() throws {
        let text = try String(contentsOf: TestPaths.root.appendingPathComponent("bpf-runtime/include/x2b_http.h"), encoding: .utf8)
        func hex(_ v: UInt64) -> String { let h = String(v, radix: 16); return "0x" + String(repeating: "0", count: 16 - h.count) + h + "ULL" }
        func mask(_ pred: (UInt8) -> Bool) -> (UInt64, UInt64) {
            var lo: UInt64 = 0, hi: UInt64 = 0
            for c in 0..<128 where pred(UInt8(c)) { if c < 64 { lo |= 1 << UInt64(c) } else { hi |= 1 << UInt64(c - 64) } }
            return (lo, hi)
        }
        let esc = mask { PathNormalization.escapedInPath.contains($0) }
        let unesc = mask { $0 == 0 || $0 == PathNormalization.dot || PathNormalization.flags[Int($0)] & PathNormalization.unescapeFlag != 0 }
        for (name, (lo, hi)) in [("PESC", esc), ("PUNESC", unesc)] {
            XCTAssertTrue(text.contains("#define X2B_\(name)_LO \(hex(lo))"), name)
            XCTAssertTrue(text.contains("#define X2B_\(name)_HI \(hex(hi))"), name)
        }
    }

    func testDifferentialPathNormalization() throws {
        try requireKernel()
        for c in Self.fixtureCases().prefix(3) {
            let cfg = try RouterCheck.loadConfig(c.config)
            for n in [
                IRPathNormalization(normalizePath: true), IRPathNormalization(mergeSlashes: true, escapedSlashes: .reject),
                IRPathNormalization(normalizePath: true, mergeSlashes: true, escapedSlashes: .forward),
            ] {
                var table = cfg.table
                table.pathNormalization = n
                let ir = MeshIR(
                    routeTables: [table],
                    clusters: cfg.clusterNames.map {
                        IRCluster(name: $0, path: "", lb: .roundRobin, priorities: [])
                    })
                let report = try HTTPDifferential.run(ir, perTable: 5_000, seed: 3)
                XCTAssertEqual(report.checked, 5_000, c.config)
                XCTAssertGreaterThan(report.outcomes["bad_request", default: 0], 100, "\(c.config) \(n): \(report.outcomes)")
                XCTAssertTrue(report.mismatches.isEmpty, "\(c.config) \(n): \(report.mismatches.prefix(3).map(\.description).joined(separator: "\n"))")
            }
        }
    }

    func testHeaderMatcherMissingAndInverted() {
        let absent = HTTPHeaderMap([(":path", "/")])
        let present = HTTPHeaderMap([("x", "v")])
        func m(_ k: IRHeaderMatch.Kind, invert: Bool = false, empty: Bool = false) -> IRHeaderMatch {
            IRHeaderMatch(name: "x", kind: k, invert: invert, treatMissingAsEmpty: empty)
        }
        // (matcher, on absent, on present "v")
        let table: [(IRHeaderMatch, Bool, Bool)] = [
            (m(.present(true)), false, true), (m(.present(false)), true, false),
            (m(.present(true), invert: true), true, false), (m(.present(false), invert: true), false, true),
            (m(.string(.exact("v"), ignoreCase: false)), false, true),
            (m(.string(.exact("v"), ignoreCase: false), invert: true), false, false),
            (m(.string(.exact(""), ignoreCase: false), empty: true), true, false),
            (m(.string(.exact(""), ignoreCase: false), invert: true, empty: true), false, true),
            (m(.anyValue), false, true), (m(.anyValue, invert: true), false, false),
            (m(.range(start: 0, end: 10)), false, false), (m(.present(true), empty: true), true, true),
        ]
        for (i, (matcher, onAbsent, onPresent)) in table.enumerated() {
            XCTAssertEqual(RouteSemantics.matches(matcher, absent), onAbsent, "row \(i) absent")
            XCTAssertEqual(RouteSemantics.matches(matcher, present), onPresent, "row \(i) present")
        }
        // Repeated values join with ","; the first is what cluster_header reads.
        let twice = HTTPHeaderMap([("x", "a"), ("X", "b")])
        XCTAssertEqual(twice.joined("x"), "a,b")
        XCTAssertEqual(twice.first("x"), "a")
        // Host lines build :authority as Envoy's appendToHeader does: an empty one adds nothing,
        // and no "," before the first value (Envoy 1.40 routes "Host:" + "Host: b" by "b"; found
        // by the fuzzer of the kernel's head parser, Tests/fuzz/http/regressions).
        XCTAssertEqual(HTTPHeaderMap([("host", ""), ("Host", "b")]).joined(":authority"), "b")
        XCTAssertEqual(HTTPHeaderMap([("host", "b"), ("host", "")]).joined(":authority"), "b")
        XCTAssertEqual(HTTPHeaderMap([("host", "a"), ("host", ""), ("host", "c")]).joined(":authority"), "a,c")
        XCTAssertEqual(HTTPHeaderMap([("host", "")]).joined(":authority"), "")
        XCTAssertNil(HTTPHeaderMap([("x", "v")]).joined(":authority"))
    }

    func testHostNormalisationAndPorts() {
        let n = IRHostNormalization.self
        XCTAssertEqual(RouteSemantics.normalizeHost("a.com.", n.init(stripTrailingDot: true)), "a.com")
        XCTAssertEqual(RouteSemantics.normalizeHost("a.com.:80", n.init(stripTrailingDot: true)), "a.com:80")
        XCTAssertEqual(RouteSemantics.normalizeHost("a.com:80", n.init(stripPort: .any)), "a.com")
        XCTAssertEqual(RouteSemantics.normalizeHost("a.com:x", n.init(stripPort: .any)), "a.com:x")
        XCTAssertEqual(RouteSemantics.normalizeHost("a.com:80", n.init(stripPort: .matching(8080))), "a.com:80")
        XCTAssertEqual(RouteSemantics.normalizeHost("a.com:8080", n.init(stripPort: .matching(8080))), "a.com")
        XCTAssertEqual(RouteSemantics.normalizeHost("[::1]:80", n.init(stripPort: .any)), "[::1]")
        XCTAssertEqual(RouteSemantics.normalizeHost("[::1]", n.init(stripPort: .any)), "[::1]")
        XCTAssertEqual(RouteSemantics.portStart(Array("[::1]".utf8)), nil)
        XCTAssertEqual(RouteSemantics.simpleAtoi(Array(" +42 ".utf8)[...]), 42)
        XCTAssertNil(RouteSemantics.simpleAtoi(Array("9223372036854775808".utf8)[...]))
        XCTAssertEqual(RouteSemantics.simpleAtoi(Array("-9223372036854775808".utf8)[...]), Int64.min)
    }

    func testQueryStringParsing() {
        let q = RouteSemantics.parseQuery("/p?a=1&&b&c=x=y#f")
        XCTAssertEqual(q.map(\.0), ["a", "", "b", "c"])
        XCTAssertEqual(q.map(\.1), ["1", "", "", "x=y#f"])
        XCTAssertEqual(RouteSemantics.removeQueryAndFragment("/a#b?c"), "/a")
    }

    // MARK: route-check, IR engine

    /// Corpus case → the tests expected to fail (TestRoutesFailures is meant to).
    static func corpusCases() -> [(config: String, tests: String, failing: Set<String>)] {
        guard let dir = routerCheckCorpus else { return [] }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".golden.proto.json") }.sorted()
        return files.map { f in
            let name = String(f.dropLast(".golden.proto.json".count))
            if name == "TestRoutesFailures" {
                return (
                    routerCheckFixtures.appendingPathComponent("TestRoutesFailures.yaml").path, dir.appendingPathComponent(f).path,
                    ["ResponseHeaderMatches Failures"]
                )
            }
            return (dir.appendingPathComponent("\(name).yaml").path, dir.appendingPathComponent(f).path, [])
        }
    }

    static func fixtureCases() -> [(config: String, tests: String, failing: Set<String>)] {
        let dir = routerCheckFixtures
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".golden.proto.json") }.sorted()
        return files.map { f in
            let name = String(f.dropLast(".golden.proto.json".count))
            return (dir.appendingPathComponent("\(name).yaml").path, dir.appendingPathComponent(f).path, [])
        }
    }

    func testRouterCheckCorpusWithIR() throws {
        _ = try TestPaths.requireCorpus()
        let cases = Self.corpusCases()
        XCTAssertGreaterThanOrEqual(cases.count, 11)
        for c in cases + Self.fixtureCases() {
            let cfg = try RouterCheck.loadConfig(c.config)
            XCTAssertFalse(cfg.diagnostics.hasErrors, "\(c.config): \(cfg.diagnostics.map(\.rendered))")
            let tests = try RouterCheck.loadTests(c.tests)
            XCTAssertFalse(tests.isEmpty, c.tests)
            for t in tests {
                let r = RouterCheck.runIR(t, table: cfg.table)
                XCTAssertEqual(
                    r.passed, !c.failing.contains(t.name),
                    "\(c.tests): \(t.name): \(r.failures.map { "\($0.field) expected \($0.expected) actual \($0.actual)" }) \(r.undecidable ?? "")")
                if c.failing.contains(t.name) {
                    // It fails for the reason Envoy's suite expects: the response headers.
                    XCTAssertTrue(r.failures.allSatisfy { $0.field == "response_header_matches" }, "\(r.failures)")
                    XCTAssertEqual(r.failures.count, 4)
                }
            }
        }
    }

    // MARK: Generated C

    func testGeneratedRoutesGoldens() throws {
        for c in Self.fixtureCases() {
            let cfg = try RouterCheck.loadConfig(c.config)
            let ir = MeshIR(
                routeTables: [cfg.table],
                clusters: cfg.clusterNames.map {
                    IRCluster(name: $0, path: "", lb: .roundRobin, priorities: [])
                })
            let (plan, diags) = HTTPPlanner.plan(ir)
            XCTAssertTrue(diags.isEmpty, "\(diags.map(\.rendered))")
            let out = HTTPEmitter.emit(plan)
            let name = URL(fileURLWithPath: c.config).deletingPathExtension().lastPathComponent
            assertGolden(out.header, "http-\(name)/x2b_routes.h")
            var images = ""
            for m in out.maps {
                guard let img = m.image, img.entries > 0 else { continue }
                images += "\(m.name): \(img.entries) records, sha256 \(sha256Hex(img.bytes))\n"
            }
            assertGolden(images, "http-\(name)/maps.txt")
        }
    }

    func testPlannerLimitsBecomeDiagnostics() {
        var match = IRRouteMatch(path: .prefix("/"))
        match.headers = (0..<40).map { IRHeaderMatch(name: "x-\($0)", kind: .present(true)) }
        var regex = IRRouteMatch(path: .regex("(a|b)*a(a|b){14}"))
        regex.caseSensitive = true
        let vh = IRVirtualHost(
            name: "v", path: "vh", domains: ["*"],
            routes: [
                IRRoute(name: "many", path: "r0", match: match, action: .cluster("c")),
                IRRoute(name: "big", path: "r1", match: regex, action: .cluster("c")),
            ])
        let ir = MeshIR(
            routeTables: [IRRouteTable(name: "t", path: "t", virtualHosts: [vh])],
            clusters: [IRCluster(name: "c", path: "c", lb: .roundRobin, priorities: [])])
        var options = HTTPPlanOptions()
        options.maxDFAStates = 1024
        let (plan, diags) = HTTPPlanner.plan(ir, options: options)
        XCTAssertTrue(diags.contains { $0.id == DiagnosticID.limitExceeded.code && $0.message.contains("41 conditions") }, "\(diags)")
        XCTAssertTrue(diags.contains { $0.id == DiagnosticID.limitExceeded.code && $0.message.contains("automaton states") }, "\(diags)")
        XCTAssertTrue(plan.routes.allSatisfy(\.never))
    }

    func testPlannerChoosesMapsForLargeTables() {
        let routes = (0..<300).map { IRRoute(name: "", path: "r\($0)", match: IRRouteMatch(path: .prefix("/p\($0)")), action: .cluster("c")) }
        let small = IRVirtualHost(name: "small", path: "v0", domains: ["a"], routes: Array(routes.prefix(3)))
        let large = IRVirtualHost(name: "large", path: "v1", domains: ["b"], routes: routes)
        let ir = MeshIR(
            routeTables: [IRRouteTable(name: "t", path: "t", virtualHosts: [small, large])],
            clusters: [IRCluster(name: "c", path: "c", lb: .roundRobin, priorities: [])])
        let (plan, _) = HTTPPlanner.plan(ir)
        XCTAssertEqual(plan.vhosts.map(\.inline), [true, false])
        let header = HTTPEmitter.emit(plan).header
        XCTAssertTrue(header.contains("case 0:"))
        XCTAssertFalse(header.contains("case 1:"))
    }

    // MARK: Kernel (root): BPF_PROG_TEST_RUN through x2b-testrun

    func requireKernel() throws { try TestPaths.requireKernel() }

    func testRouterCheckWithBPF() throws {
        try requireKernel()
        for c in Self.corpusCases() + Self.fixtureCases() {
            let cfg = try RouterCheck.loadConfig(c.config)
            let tests = try RouterCheck.loadTests(c.tests)
            let results = try HTTPTestRun.routeCheck(cfg, tests)
            for (t, r) in zip(tests, results) {
                // Dynamic metadata is set by HTTP filters, which do not run before the kernel decides.
                let undecidable = !t.input.dynamicMetadata.isEmpty
                if undecidable {
                    XCTAssertTrue(r.undecidable?.contains("dynamic metadata") == true, "\(t.name): \(r)")
                    continue
                }
                XCTAssertEqual(
                    r.passed, !c.failing.contains(t.name),
                    "\(c.tests): \(t.name): \(r.failures.map { "\($0.field) expected \($0.expected) actual \($0.actual)" }) \(r.undecidable ?? "")")
            }
        }
    }

    /// A head the kernel cannot read whole (over X2B_HEAD_MAX) takes the L4 fallback only
    /// where the table routes every request alike; elsewhere it is refused, since the unseen
    /// part might select a route that denies it (fail closed).
    func testUnusableHeadFallsBackOnlyWhereEveryRequestIsRoutedAlike() throws {
        func table(_ name: String, vhosts: [IRVirtualHost]) -> IRRouteTable {
            IRRouteTable(name: name, path: "route_configurations[\"\(name)\"]", virtualHosts: vhosts)
        }
        func route(_ path: IRPathMatch, _ action: IRRouteAction) -> IRRoute {
            IRRoute(name: "", path: "r", match: IRRouteMatch(path: path), action: action)
        }
        let everything = route(.prefix("/"), .cluster("c1"))
        let uniform = table("uniform", vhosts: [IRVirtualHost(name: "all", path: "v", domains: ["*"], routes: [everything])])
        var denyAdmin = uniform
        denyAdmin.name = "deny-admin"
        denyAdmin.virtualHosts[0].routes.insert(route(.prefix("/admin"), .directResponse(status: 403, body: nil)), at: 0)
        var byHost = uniform
        byHost.name = "by-host"
        byHost.virtualHosts[0].domains = ["a.example"]
        var direct = uniform
        direct.name = "direct"
        direct.virtualHosts[0].routes = [route(.prefix(""), .directResponse(status: 200, body: nil))]
        XCTAssertTrue(RouteSemantics.routesEveryRequestAlike(uniform))
        for t in [denyAdmin, byHost, direct] { XCTAssertFalse(RouteSemantics.routesEveryRequestAlike(t), t.name) }

        try requireKernel()
        var ir = MeshIR()
        ir.routeTables = [uniform, denyAdmin]
        ir.clusters = [IRCluster(name: "c1", path: "clusters[\"c1\"]", lb: .roundRobin, priorities: [])]
        let (build, _) = try HTTPTestRun.build(ir)
        defer { try? FileManager.default.removeItem(at: build.directory) }
        let big = HTTPRequest(authority: "svc", path: "/admin", headers: [("cookie", String(repeating: "x", count: Int(ABI.headMax) + 500))])
        let small = HTTPRequest(authority: "svc", path: "/admin")
        // cookies of ~3 KB: over the old 1024-byte head, whole in X2B_HEAD_MAX, so routed by path
        let cookies = (0..<12).map { i in ("cookie", "session\(i)=" + String(repeating: "c", count: 240)) }
        let cookied = HTTPRequest(authority: "svc", path: "/admin", headers: cookies)
        let cookiedOther = HTTPRequest(authority: "svc", path: "/shop", headers: cookies)
        XCTAssertGreaterThan(HTTPTestRun.render(cookied).count, 3000)
        XCTAssertLessThan(HTTPTestRun.render(cookied).count, Int(ABI.headMax))
        XCTAssertGreaterThan(HTTPTestRun.render(big).count, Int(ABI.headMax))
        // the driver takes at most X2B_HEAD_MAX + 1 bytes: one more than the module keeps marks the head cut
        let heads = [big, small, cookied, cookiedOther].map { r in Array(HTTPTestRun.render(r).prefix(Int(ABI.headMax) + 1)) }
        let reqs = (0..<2).flatMap { t in heads.map { HTTPTestRun.Request(table: UInt32(t), random: 0, runtime: HTTPTestRun.defaultsRuntime, head: $0) } }
        let d = try HTTPTestRun.run(build, reqs)
        // uniform: the big head is unusable, and falls back (1); the others are routed
        XCTAssertEqual(d[0].kind, .error)
        XCTAssertEqual(d[0].cluster, 1)
        XCTAssertEqual(d[1].kind, .cluster)
        XCTAssertEqual(d[2].kind, .cluster)
        XCTAssertEqual(d[3].kind, .cluster)
        // deny /admin: the big head is refused (0); the others are routed by path, cookies or not
        XCTAssertEqual(d[4].kind, .error)
        XCTAssertEqual(d[4].cluster, 0)
        XCTAssertEqual(d[5].kind, .local)
        XCTAssertEqual(d[6].kind, .local)
        XCTAssertEqual(d[6].route, 0)
        XCTAssertEqual(d[7].kind, .cluster)
        XCTAssertEqual(d[7].route, 1)
    }

    /// Corpus inputs (single files and multi-file snapshots) with HTTP route tables.
    static func corpusSnapshots() throws -> [(String, [String])] {
        CorpusOutcomeTests.cases(try TestPaths.requireCorpus()).filter { name, _ in
            !name.hasPrefix("envoy-router-check/")
        }
    }

    func testDifferentialCorpusSnapshots() throws {
        try requireKernel()
        var tables = 0
        for (name, files) in try Self.corpusSnapshots() {
            // Unsupported features drop their routes from both engines alike.
            let fe = Pipeline.frontEnd(files: files, options: FrontEndOptions(unsupported: .warn))
            guard !fe.ir.routeTables.isEmpty else { continue }
            tables += fe.ir.routeTables.count
            let report = try HTTPDifferential.run(fe.ir, perTable: 10_000, seed: 1)
            XCTAssertEqual(report.checked, fe.ir.routeTables.count * 10_000, name)
            XCTAssertTrue(
                report.mismatches.isEmpty,
                "\(name): \(report.mismatches.count) disagreements\n\(report.mismatches.prefix(3).map(\.description).joined(separator: "\n"))")
        }
        XCTAssertGreaterThanOrEqual(tables, 15, "corpus route tables")
    }

    func testDifferentialFixturesBothStrategies() throws {
        try requireKernel()
        for c in Self.fixtureCases() {
            let cfg = try RouterCheck.loadConfig(c.config)
            let ir = MeshIR(
                routeTables: [cfg.table],
                clusters: cfg.clusterNames.map {
                    IRCluster(name: $0, path: "", lb: .roundRobin, priorities: [])
                })
            for inline in [HTTPPlanOptions().inlineConditionLimit, 0] {
                var options = HTTPPlanOptions()
                options.inlineConditionLimit = inline
                let report = try HTTPDifferential.run(ir, perTable: 10_000, seed: 2, options: options)
                XCTAssertEqual(report.checked, 10_000, c.config)
                XCTAssertTrue(
                    report.mismatches.isEmpty, "\(c.config) inline \(inline): \(report.mismatches.prefix(3).map(\.description).joined(separator: "\n"))")
            }
        }
    }
}

/// Regex samples for the ICU comparison (strings each pattern accepts).
enum HTTPDifferentialProbe {
    static func samples(_ p: String) -> [String] { RequestGenerator.samples(regex: p, count: 6) }
}
