import Foundation
import X2BDiagnostics
import X2BIR
import X2BPlan
import X2BSemantics

/// Differential testing of the HTTP matcher: requests generated near the edges
/// of a route table's matchers (domains, path prefixes, header values, ranges,
/// query parameters, weights), decided by the MeshIR interpreter and by the
/// compiled BPF in the kernel; every disagreement is reported.
public enum HTTPDifferential {
    public struct Mismatch: Sendable, CustomStringConvertible {
        public var table: String
        public var request: String
        public var random: UInt32
        public var interpreter: String
        public var kernel: String

        public var description: String {
            "table \(ResourcePath.quoted(table)) random \(random)\n\(request)  interpreter: \(interpreter)\n  kernel:      \(kernel)"
        }
    }

    public struct Report: Sendable {
        public var checked = 0
        /// Generated requests an HTTP/1.1 head cannot carry (never sent to either engine).
        public var skipped = 0
        public var mismatches: [Mismatch] = []
        /// How many requests ended how (kernel's view), to show the inputs reach the routes.
        public var outcomes: [String: Int] = [:]
    }

    /// Decides `perTable` generated requests for every route table of `ir` with
    /// both engines (one kernel build, one driver run).
    public static func run(
        _ ir: MeshIR, perTable: Int = 10_000, seed: UInt64 = 1,
        options: HTTPPlanOptions = HTTPPlanOptions()
    ) throws -> Report {
        var report = Report()
        guard !ir.routeTables.isEmpty else { return report }
        let index = HTTPPlanner.clusterIndex(ir)
        let (build, _) = try HTTPTestRun.build(ir, clusterIndex: index, options: options)
        var cases: [(Int, HTTPRequest, UInt32)] = []
        var rng = SplitMix(seed)
        for (ti, t) in ir.routeTables.enumerated() {
            var gen = RequestGenerator(table: t, clusters: ir.clusters.map(\.name))
            var made = 0
            var attempts = 0
            while made < perTable && attempts < perTable * 4 {
                attempts += 1
                let (req, random) = gen.next(&rng)
                if HTTPTestRun.unrepresentable(req) != nil {
                    report.skipped += 1
                    continue
                }
                cases.append((ti, req, random))
                made += 1
            }
        }
        let requests = cases.map {
            HTTPTestRun.Request(
                table: UInt32($0.0), random: $0.2, runtime: HTTPTestRun.defaultsRuntime,
                head: HTTPTestRun.render($0.1))
        }
        let kernel = try HTTPTestRun.run(build, requests)
        for (i, (ti, req, random)) in cases.enumerated() {
            let table = ir.routeTables[ti]
            let expected: String
            switch HeadValidation.validate(req) {
            case .refuse: expected = "bad_request"
            case .accept(let r):
                expected =
                    PathNormalization.kernelRefuses(table.pathNormalization, r.path)
                    ? "bad_request" : summary(RouteSemantics.decide(table, r, random: UInt64(random)), index: index)
            }
            let actual = summary(kernel[i])
            report.checked += 1
            let kind = actual.split(separator: " ").first.map(String.init) ?? actual
            report.outcomes[
                kind == "vhost"
                    ? (actual.contains("cluster") && !actual.contains("no_cluster") ? "cluster" : String(actual.split(separator: " ").last!)) : kind, default: 0
            ] += 1
            if expected != actual, report.mismatches.count < 50 {
                report.mismatches.append(
                    Mismatch(
                        table: table.name, request: String(decoding: HTTPTestRun.render(req), as: UTF8.self),
                        random: random, interpreter: expected, kernel: actual))
            } else if expected != actual {
                report.mismatches.append(Mismatch(table: table.name, request: "", random: random, interpreter: expected, kernel: actual))
            }
        }
        return report
    }

    /// A decision as both engines can state it: outcome, virtual host, route, cluster id.
    static func summary(_ d: RouteSemantics.Decision, index: [String: UInt32]) -> String {
        switch d.outcome {
        case .noVirtualHost: return "no_vhost"
        case .tlsRedirect: return "tls_redirect vhost \(d.virtualHostIndex ?? -1)"
        case .noRoute: return "no_route vhost \(d.virtualHostIndex ?? -1)"
        case .route(let r):
            let head = "vhost \(d.virtualHostIndex ?? -1) route \(r)"
            switch d.route?.action {
            case .redirect?, .directResponse?, .nonForwarding?, .guarded?: return "\(head) local"
            default:
                if let c = d.cluster, let id = index[c] { return "\(head) cluster \(id)" }
                return "\(head) no_cluster"
            }
        }
    }

    static func summary(_ k: HTTPTestRun.KernelDecision) -> String {
        switch k.kind {
        case .noVirtualHost: return "no_vhost"
        case .tlsRedirect: return "tls_redirect vhost \(k.vhost ?? -1)"
        case .noRoute: return "no_route vhost \(k.vhost ?? -1)"
        case .local: return "vhost \(k.vhost ?? -1) route \(k.route ?? -1) local"
        case .cluster: return "vhost \(k.vhost ?? -1) route \(k.route ?? -1) cluster \(k.cluster ?? -1)"
        case .noCluster: return "vhost \(k.vhost ?? -1) route \(k.route ?? -1) no_cluster"
        case .error: return "error (the kernel could not use the head)"
        case .badRequest: return "bad_request"
        }
    }
}

/// SplitMix64: a small, seedable generator (reproducible test inputs).
public struct SplitMix: RandomNumberGenerator, Sendable {
    var state: UInt64

    public init(_ seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Requests aimed at a route table's matchers: values that match, values one
/// byte off, other cases, absent and repeated headers, numbers at range ends,
/// random values at weight and fraction boundaries.
struct RequestGenerator {
    let table: IRRouteTable
    var hosts: [String] = []
    var paths: [String] = []
    /// name → candidate values (nil: leave the header out).
    var headers: [(String, [String])] = []
    var queries: [(String, [String])] = []
    var randoms: [UInt32] = []
    var methods: [String] = []
    /// Hosts taken from the table's domains: chosen more often than the others.
    var domainHosts: [String] = []
    var clusters: [String]

    init(table: IRRouteTable, clusters: [String]) {
        self.table = table
        self.clusters = clusters
        var hs = Set<String>(["example.com", "EXAMPLE.com", "[::1]:80", "10.0.0.1:8080", "a.b.c", "", "host.", "host.:80", "host:abc"])
        var ps = Set<String>(["/", "/a", "/index.html", "/x?y=1", "/x#frag", "/;p=1", "/%2F", "/a/b/c"])
        var hd: [String: Set<String>] = [
            "x-forwarded-proto": ["http", "https", "", "https,http"],
            "x-envoy-internal": ["true", "false"],
            "content-type": ["application/grpc", "application/grpc+proto", "application/grpc-web", "text/plain"],
        ]
        var qs: [String: Set<String>] = [:]
        var rs = Set<UInt32>([0, 1, 99, 100, 4_294_967_295])
        var ms = Set<String>(["GET", "POST", "PUT", "PATCH"])
        var dh = Set<String>()
        func variants(_ s: String) -> [String] {
            var out = [s, s.uppercased(), s.lowercased(), s + "x", "x" + s, s + "/", s + "?q=1"]
            if !s.isEmpty {
                out.append(String(s.dropLast()))
                out.append(String(s.dropFirst()))
                var b = Array(s.utf8)
                let i = b.count / 2
                b[i] = b[i] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
                out.append(String(decoding: b, as: UTF8.self))
            }
            return out
        }
        func addString(_ m: IRStringMatch, into set: inout Set<String>) {
            switch m {
            case .exact(let v), .prefix(let v), .suffix(let v), .contains(let v):
                for x in variants(v) { set.insert(x) }
                set.insert("pre" + v + "post")
            case .regex(let r):
                for x in RequestGenerator.samples(regex: r, count: 8) { for y in variants(x) { set.insert(y) } }
            }
        }
        for vh in table.virtualHosts {
            for d in vh.domains {
                switch RouteSemantics.domainKind(d) {
                case .any: hs.insert("anything.example")
                case .exact(let e): for v in variants(e) + [e + ":80", e + ":8080", e + ".", e.uppercased() + ":443"] { dh.insert(v) }
                case .suffix(let s): for v in ["a" + s, "x.y" + s, s, String(s.dropFirst()), "A" + s.uppercased(), "a" + s + ":80"] { dh.insert(v) }
                case .prefix(let p): for v in [p + "a", p, String(p.dropLast()), p + "x:80", p.uppercased() + "b"] { dh.insert(v) }
                }
            }
            for r in vh.routes {
                switch r.match.path {
                case .prefix(let p), .exact(let p), .separatedPrefix(let p):
                    for v in variants(p) { ps.insert(v) }
                    ps.insert(p + "/more")
                    ps.insert(p + ";param")
                case .regex(let re):
                    for s in RequestGenerator.samples(regex: re, count: 12) { for v in variants(s) { ps.insert(v) } }
                }
                for h in r.match.headers {
                    let name = h.name == ":authority" ? "host" : h.name
                    // Pseudo-headers are the request line: vary it instead.
                    if name == ":method" || name == ":path" || name == ":scheme" {
                        var set = Set<String>()
                        if case .string(let m, _) = h.kind { addString(m, into: &set) }
                        // Methods the codec knows (unknown ones: `malform`, which both engines refuse).
                        if name == ":method" { ms.formUnion(set.filter { HeadValidation.methods.contains($0) }) }
                        if name == ":path" { ps.formUnion(set) }
                        continue
                    }
                    var set = hd[name] ?? []
                    switch h.kind {
                    case .string(let s, _): addString(s, into: &set)
                    case .range(let lo, let hi):
                        for v in [lo - 1, lo, lo + 1, hi - 1, hi, hi + 1] { set.insert(String(v)) }
                        set.formUnion([" \(lo) ", "+\(lo)", "x", "99999999999999999999", "-9223372036854775808", ""])
                    case .present, .anyValue: set.formUnion(["", "v"])
                    }
                    hd[name] = set
                }
                for q in r.match.queryParameters {
                    var set = qs[q.name] ?? [""]
                    if let v = q.value { addString(v, into: &set) } else { set.insert("1") }
                    qs[q.name] = set
                }
                if let f = r.match.runtimeFraction {
                    for d in [f.numerator, f.numerator &- 1, f.numerator &+ 1, f.denominator, f.denominator &+ f.numerator] { rs.insert(d) }
                }
                switch r.action {
                case .weighted(let entries, _):
                    var cum: UInt32 = 0
                    for e in entries {
                        cum &+= e.weight
                        rs.formUnion([cum &- 1, cum, cum &+ 1])
                    }
                case .clusterHeader(let h):
                    var set = hd[h] ?? []
                    set.formUnion(clusters.prefix(8))
                    set.insert("no-such-cluster")
                    hd[h == ":authority" ? "host" : h] = set
                default:
                    break
                }
            }
        }
        // Hosts Envoy's codec refuses (a '/' or '?' of a variant) are kept among the rarer ones.
        let validHost = { (h: String) in h.utf8.allSatisfy(HeadValidation.isAuthorityChar) }
        hosts = hs.union(dh.filter { !validHost($0) }).sorted()
        domainHosts = dh.filter(validHost).sorted()
        methods = ms.sorted()
        paths = ps.filter { $0.hasPrefix("/") }.sorted()
        if paths.isEmpty { paths = ["/"] }
        headers = hd.keys.sorted().map { ($0, hd[$0]!.sorted()) }
        queries = qs.keys.sorted().map { ($0, qs[$0]!.sorted()) }
        randoms = rs.sorted()
    }

    /// One head Envoy's HTTP/1 codec refuses (or reads differently), of every class
    /// `HeadValidation` knows: the kernel must refuse (or route) it as the interpreter does.
    static func malform(_ req: inout HTTPRequest, _ rng: inout SplitMix) {
        let p = req.path
        let bare = p.hasPrefix("/") ? String(p.dropFirst()) : p
        switch Int.random(in: 0..<24, using: &rng) {
        case 0: req.path = p + "#frag"
        case 1: req.path = bare.isEmpty ? "b" : bare
        case 2: req.path = "*"
        case 3: req.method = "OPTIONS"; req.path = "*"
        case 4: req.path = "http://\(req.authority.isEmpty || req.authority.contains("[") ? "h.example" : req.authority)\(p)"
        case 5: req.path = "HTTPS://u:pw@\(["example.com", "a.b.c", "x-y.example:8080"].randomElement(using: &rng)!)\(p)"
        case 6:
            req.path = [
                "ftp://example.com/", "http://h_x.example/", "http://a@b@h/", "http://h:x/", "http:/p", "http://", "http://example.com?q=1",
                "http://example.com",
            ].randomElement(using: &rng)!
        case 7: req.path = p + ["/a b", "/\u{7f}", "/\u{1}", "/\u{0}", "/\u{e9}", "\t"].randomElement(using: &rng)!
        case 8: req.method = ["FOO-BAR", "get", "QUERY", "M-SEARCH", "PURGE", "MKCALENDAR", "", "G\u{1}T"].randomElement(using: &rng)!
        case 9: req.method = "CONNECT"
        case 10: req.version = ["HTTP/1.0", "", "HTTP/2.0", "HTTX/1.1", "http/1.1", "HTTP/1.10", "HTTP/11"].randomElement(using: &rng)!
        case 11: req.hasAuthority = false; req.headers.removeAll { $0.0 == ":authority" }
        case 12:
            req.authority = (req.authority.isEmpty ? "a" : req.authority) + [" x", "/x", "\"x", "\u{e9}", "{", "|", "\\", "\u{7f}"].randomElement(using: &rng)!
        case 13: req.authority = ["a!$&'()*+,;=b", "[::1]:80", "a:b:c", "a@b", "a%41", "a_b", "a~b"].randomElement(using: &rng)!
        case 14:
            req.headers.append(
                ([("bad name", "x"), ("bad\"n", "x"), ("bad(n", "x"), ("x\u{e9}", "x"), ("", "x"), ("ok!#$%&'*+-.^_`|~", "x")].randomElement(using: &rng)!))
        case 15: req.headers.append(("x-ctl", ["a\u{1}b", "a\u{7f}", "\u{1f}", "a\tb", "caf\u{e9}"].randomElement(using: &rng)!))
        case 16: req.headers += [("content-length", "1"), ("content-length", "1")]
        case 17: req.headers.append(("content-length", ["x", "+1", "1, 1", "", "00", "12"].randomElement(using: &rng)!))
        case 18: req.headers.append(("transfer-encoding", ["chunked", "Chunked", "gzip", "gzip, chunked", "identity"].randomElement(using: &rng)!))
        case 19: req.headers += [("transfer-encoding", "chunked"), ("content-length", "0")]
        case 20: req.headers.append(("host", ["a b", "b", "x/y"].randomElement(using: &rng)!))
        case 21: req.method = "OPTIONS"; req.path = "*x"
        case 22: req.path = ["http://example.com:65535/a", "http://example.com:/a"].randomElement(using: &rng)!
        default: req.path = "?q"
        }
    }

    /// Strings a regex accepts (random walks of its DFA), printable ASCII where possible.
    static func samples(regex: String, count: Int) -> [String] {
        guard let re = try? ByteRE.re2(regex), let d = try? ByteDFA.build(re, maxStates: 2048) else { return [] }
        var rng = SplitMix(FNV.hash(Array(regex.utf8)))
        var out: [String] = []
        for _ in 0..<count * 4 where out.count < count {
            var st = ByteDFA.start
            var bytes: [UInt8] = []
            for _ in 0..<40 {
                if d.acceptAtEnd[st] && Int.random(in: 0..<4, using: &rng) == 0 { break }
                // Printable bytes that keep the walk alive.
                let live = (33...126).map(UInt8.init).filter { d.transitions[st * d.classCount + Int(d.classOf[Int($0)])] != 0 }
                guard let b = live.randomElement(using: &rng) else { break }
                bytes.append(b)
                st = d.transitions[st * d.classCount + Int(d.classOf[Int(b)])]
            }
            if d.acceptAtEnd[st] { out.append(String(decoding: bytes, as: UTF8.self)) }
        }
        return out
    }

    mutating func next(_ rng: inout SplitMix) -> (HTTPRequest, UInt32) {
        let host = (!domainHosts.isEmpty && Int.random(in: 0..<4, using: &rng) != 0 ? domainHosts : hosts).randomElement(using: &rng) ?? ""
        var path = paths.randomElement(using: &rng) ?? "/"
        if !queries.isEmpty, Int.random(in: 0..<2, using: &rng) == 0 {
            var parts: [String] = []
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let (name, values) = queries.randomElement(using: &rng)!
                let v = values.randomElement(using: &rng) ?? ""
                parts.append(Int.random(in: 0..<6, using: &rng) == 0 ? name : "\(name)=\(v)")
            }
            path += (path.contains("?") ? "&" : "?") + parts.joined(separator: "&")
        }
        var hs: [(String, String)] = []
        for (name, values) in headers where Int.random(in: 0..<3, using: &rng) != 0 {
            let n = Int.random(in: 0..<8, using: &rng) == 0 ? 2 : 1
            for _ in 0..<n {
                let display = Int.random(in: 0..<4, using: &rng) == 0 ? name.uppercased() : name
                hs.append((display, values.randomElement(using: &rng) ?? ""))
            }
        }
        var req = HTTPRequest(
            authority: host, path: path,
            method: Int.random(in: 0..<3, using: &rng) == 0 ? "GET" : (methods.randomElement(using: &rng) ?? "GET"), headers: hs)
        if Int.random(in: 0..<40, using: &rng) == 0 { req.hasAuthority = false }
        if Int.random(in: 0..<6, using: &rng) == 0 {
            // forms the connection manager's path normalisation changes (PathNormalization)
            let forms = [
                "/../", "/./", "//", "%2F", "%2f", "%5C", "%5c", "\\", "%2e", "/%2E%2e", "%41", "%7e", "%00", "\"", "^",
                "%zz", "%%30%30", "/..", "/.", "%20",
            ]
            let q = req.path.firstIndex(of: "?") ?? req.path.endIndex
            let at =
                req.path.index(
                    req.path.startIndex, offsetBy: Int.random(in: 1...max(1, req.path.distance(from: req.path.startIndex, to: q)), using: &rng),
                    limitedBy: q) ?? q
            req.path.insert(contentsOf: forms.randomElement(using: &rng)!, at: at)
        }
        if Int.random(in: 0..<8, using: &rng) == 0 { Self.malform(&req, &rng) }
        let random = Int.random(in: 0..<2, using: &rng) == 0 ? (randoms.randomElement(using: &rng) ?? 0) : UInt32.random(in: 0...UInt32.max, using: &rng)
        return (req, random)
    }
}
