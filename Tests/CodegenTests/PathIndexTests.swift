import Foundation
import XCTest

@testable import Codegen
@testable import X2BRouteCheck
@testable import X2BSemantics

/// The path index of a virtual host (Sources/X2BPlan/PathIndex.swift): the
/// literal start of each path matcher, the trie's candidate rows against the
/// matchers themselves, and (root) the kernel with and without the index
/// against the interpreter.
final class PathIndexTests: XCTestCase {
    func testLiteralPrefixOfRegexes() throws {
        func lit(_ p: String, fold: Bool = false) throws -> String {
            String(decoding: PathIndex.literalPrefix(try ByteRE.re2(p), foldCase: fold), as: UTF8.self)
        }
        XCTAssertEqual(try lit("/api/s1/items/[0-9]+"), "/api/s1/items/")
        XCTAssertEqual(try lit("^/v1/(users|groups)/\\d+$"), "/v1/")
        XCTAssertEqual(try lit("/v1/(users|usage)"), "/v1/us")
        XCTAssertEqual(try lit("(/a)+b"), "/a")
        XCTAssertEqual(try lit("(/a)*b"), "")
        XCTAssertEqual(try lit("/x?y"), "/")
        XCTAssertEqual(try lit(".*"), "")
        XCTAssertEqual(try lit("(?i)/Api/x"), "/")
        XCTAssertEqual(try lit("(?i)/Api/x", fold: true), "/api/x")
        XCTAssertEqual(try lit("/a\\.b$"), "/a.b")
    }

    /// Envoy's matcher kinds as the planner lowers them.
    static func language(_ m: IRPathMatch, ignoreCase ic: Bool) throws -> ByteRE {
        switch m {
        case .prefix(let p): .prefix(Array(p.utf8), ignoreCase: ic)
        case .exact(let p): .exact(Array(p.utf8), ignoreCase: ic)
        case .separatedPrefix(let p):
            .alternate([.exact(Array(p.utf8), ignoreCase: ic), .prefix(Array(p.utf8) + [UInt8(ascii: "/")], ignoreCase: ic)])
        case .regex(let r): try ByteRE.re2(r)
        }
    }

    /// The kernel's walk (x2b_http_cand_row): the candidate row of `path`.
    static func row(_ ix: PathIndex, _ path: [UInt8]) -> [UInt64] {
        var state = 1
        var deepest = 1
        for b in path.isEmpty ? [UInt8(ascii: "/")] : path {
            deepest = state
            state = ix.next[state * ix.classCount + Int(ix.classOf[Int(b)])]
            if state == 0 { break }
        }
        return state != 0 ? ix.candidates[2 * state + 1] : ix.candidates[2 * deepest]
    }

    /// Every route whose path matcher accepts a path is a candidate for it; a proven
    /// route is a candidate only then. Over random paths built from the keys' bytes.
    func testCandidatesAreASupersetAndProvenRoutesExact() throws {
        let tables: [[(IRPathMatch, Bool)]] = [
            [
                (.prefix("/api/"), false), (.exact("/api/v1"), false), (.regex("/api/v[0-9]+/x"), false),
                (.separatedPrefix("/api/v1"), false), (.prefix("/api/v1/"), false), (.prefix(""), false), (.exact("/"), false),
            ],
            [
                (.prefix("/API/"), true), (.exact("/Api/V1"), false), (.regex("(?i)/api/v[0-9]+"), false),
                (.prefix("/api/v1/"), false), (.exact("/api/v1"), true), (.prefix("/b"), false),
            ],
            [(.prefix("/" + String(repeating: "a", count: 80)), false), (.exact("/" + String(repeating: "a", count: 70)), false), (.prefix("/a"), false)],
        ]
        var rng = SplitMix64(seed: 7)
        for (ti, table) in tables.enumerated() {
            let keys = try table.map { (m, ic) in
                PathIndex.Key.of(m, ignoreCase: ic, language: try Self.language(m, ignoreCase: ic))
            }
            let ix = try XCTUnwrap(PathIndex.build(keys: keys, maxStates: 4096))
            let dfas = try table.map { (m, ic) in try ByteDFA.build(Self.language(m, ignoreCase: ic)) }
            let alphabet = Array(Set(keys.flatMap(\.bytes) + Array("/aAvV1x".utf8)))
            let seeds = keys.map(\.bytes) + [[]]
            for _ in 0..<4000 {
                var path = seeds.randomElement(using: &rng)!
                if Bool.random(using: &rng) { path = Array(path.prefix(Int.random(in: 0...path.count, using: &rng))) }
                for _ in 0..<Int.random(in: 0...4, using: &rng) { path.append(alphabet.randomElement(using: &rng)!) }
                if Int.random(in: 0..<4, using: &rng) == 0, let i = path.indices.randomElement(using: &rng), let o = ASCII.otherCase(path[i]) {
                    path[i] = o
                }
                let row = Self.row(ix, path)
                let asMatched = path.isEmpty ? Array("/".utf8) : path
                for (ri, dfa) in dfas.enumerated() {
                    let candidate = row[ri >> 6] & (1 << UInt64(ri & 63)) != 0
                    let matches = dfa.fullMatch(asMatched)
                    let text = String(decoding: path, as: UTF8.self)
                    if matches { XCTAssertTrue(candidate, "table \(ti) route \(ri) path \(text): matches but not a candidate") }
                    if ix.proven.contains(ri) { XCTAssertEqual(candidate, matches, "table \(ti) route \(ri) path \(text): proven") }
                }
            }
        }
    }

    func testProvenRoutesLoseTheirPathCondition() throws {
        var ci = IRRouteMatch(path: .prefix("/Ci/"))
        ci.caseSensitive = false
        let routes = [
            IRRoute(name: "", path: "r0", match: IRRouteMatch(path: .prefix("/a/")), action: .cluster("c")),
            IRRoute(name: "", path: "r1", match: IRRouteMatch(path: .exact("/b")), action: .cluster("c")),
            IRRoute(name: "", path: "r2", match: IRRouteMatch(path: .regex("/c/[0-9]+")), action: .cluster("c")),
            IRRoute(name: "", path: "r3", match: IRRouteMatch(path: .separatedPrefix("/d")), action: .cluster("c")),
        ]
        let ir = { (rs: [IRRoute]) in
            MeshIR(
                routeTables: [IRRouteTable(name: "t", path: "t", virtualHosts: [IRVirtualHost(name: "v", path: "v", domains: ["*"], routes: rs)])],
                clusters: [IRCluster(name: "c", path: "c", lb: .roundRobin, priorities: [])])
        }
        let (plan, _) = HTTPPlanner.plan(ir(routes))
        XCTAssertEqual(plan.vhosts.map(\.indexed), [true])
        XCTAssertEqual(plan.routes.map(\.condCount), [0, 0, 1, 1])
        XCTAssertTrue(HTTPEmitter.emit(plan).header.contains("__u64 cand = x2b_http_cand_word(req, 0);"))
        // One route ignores case: the trie folds case, and the others are no longer exact.
        let (folded, _) = HTTPPlanner.plan(ir(routes + [IRRoute(name: "", path: "r4", match: ci, action: .cluster("c"))]))
        XCTAssertEqual(folded.routes.map(\.condCount), [1, 1, 1, 1, 0])
        // Below the threshold, and with the index off: every route keeps its conditions.
        var off = HTTPPlanOptions()
        off.pathIndexMinRoutes = Int.max
        let (plain, _) = HTTPPlanner.plan(ir(routes), options: off)
        XCTAssertEqual(plain.vhosts.map(\.indexed), [false])
        XCTAssertEqual(plain.routes.map(\.condCount), [1, 1, 1, 1])
        XCTAssertEqual(plain.pathIndexes.map(\.dfa), [ABI.httpNone])
        // An index never takes the half of the transition budget the matchers may need.
        var tight = HTTPPlanOptions()
        tight.maxTransitions = 20
        let (lean, _) = HTTPPlanner.plan(ir(routes), options: tight)
        XCTAssertEqual(lean.vhosts.map(\.indexed), [false])
        XCTAssertEqual(lean.routes.map(\.condCount), [1, 1, 1, 1])
    }

    /// The kernel with and without the index, straight-line and from the maps, against
    /// the interpreter: a table shaped like the benchmark's, with cases and headers.
    func testDifferentialWithAndWithoutIndex() throws {
        try TestPaths.requireKernel()
        var routes: [IRRoute] = []
        for i in 0..<40 {
            var m: IRRouteMatch
            switch i % 5 {
            case 0: m = IRRouteMatch(path: .prefix("/api/s\(i)/"))
            case 1: m = IRRouteMatch(path: .exact("/api/s\(i)/status"))
            case 2: m = IRRouteMatch(path: .regex("/api/s\(i)/items/[0-9]+"))
            case 3:
                m = IRRouteMatch(path: .prefix("/api/s\(i)/"))
                m.headers = [IRHeaderMatch(name: "x-tenant", kind: .string(.exact("t\(i)"), ignoreCase: false))]
            default: m = IRRouteMatch(path: .separatedPrefix("/api/s\(i)"))
            }
            if i == 17 { m.caseSensitive = false }
            routes.append(IRRoute(name: "r\(i)", path: "r\(i)", match: m, action: .cluster("c\(i % 3)")))
        }
        routes.append(IRRoute(name: "last", path: "last", match: IRRouteMatch(path: .prefix("/")), action: .cluster("c0")))
        let vhosts = [
            IRVirtualHost(name: "small", path: "v0", domains: ["small"], routes: Array(routes.prefix(12))),
            IRVirtualHost(name: "all", path: "v1", domains: ["*"], routes: routes),
        ]
        let ir = MeshIR(
            routeTables: [IRRouteTable(name: "t", path: "t", virtualHosts: vhosts)],
            clusters: (0..<3).map { IRCluster(name: "c\($0)", path: "", lb: .roundRobin, priorities: []) })
        for (index, inline) in [(true, true), (true, false), (false, true)] {
            var options = HTTPPlanOptions()
            if !index { options.pathIndexMinRoutes = Int.max }
            if !inline { options.inlineConditionLimit = 0 }
            let report = try HTTPDifferential.run(ir, perTable: 10_000, seed: 3, options: options)
            XCTAssertEqual(report.checked, 10_000)
            XCTAssertTrue(
                report.mismatches.isEmpty,
                "index \(index) inline \(inline): \(report.mismatches.prefix(3).map(\.description).joined(separator: "\n"))")
        }
    }
}
