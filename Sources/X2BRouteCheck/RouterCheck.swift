import Foundation
import SwiftProtobuf
import X2BDiagnostics
import X2BFrontend
import X2BIR
import X2BProtos
import X2BResolve
import X2BSemantics

/// Envoy's router-check tool (test/tools/router_check): a bare
/// RouteConfiguration, a list of requests, and what Envoy is expected to decide
/// for each. `RouterCheck` loads both, asks an engine (the MeshIR interpreter or
/// the compiled BPF matcher) for the decisions, and compares them field by field
/// as the tool does.
public enum RouterCheck {
    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    // MARK: Configuration

    public struct Config: Sendable {
        public var table: IRRouteTable
        /// Every cluster name the routes can produce (route-check has no Cluster
        /// resources; Envoy's tool does not validate clusters either).
        public var clusterNames: [String]
        public var diagnostics: [Diagnostic]
    }

    /// A bare RouteConfiguration (YAML or JSON), lowered as the compiler lowers
    /// RDS resources, after the tool's own adjustment: a `runtime_fraction` whose
    /// default numerator is 0 gets 1, so a test can enable it.
    public static func loadConfig(_ path: String) throws -> Config {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError(description: "cannot read \(path)")
        }
        let snapshot = SnapshotParser().parse([UInt8](data), sourceName: path)
        var diags = snapshot.diagnostics.filter { $0.severity == .error }
        guard var rc = snapshot.routeConfigurations.first?.message else {
            let why = diags.map(\.rendered).joined(separator: "\n")
            throw LoadError(description: "\(path) holds no RouteConfiguration\(why.isEmpty ? "" : ":\n\(why)")")
        }
        if snapshot.routeConfigurations.count > 1 || !snapshot.listeners.isEmpty || !snapshot.clusters.isEmpty {
            throw LoadError(description: "\(path): expected one bare RouteConfiguration, as Envoy's router_check_tool reads")
        }
        for v in rc.virtualHosts.indices {
            for r in rc.virtualHosts[v].routes.indices where rc.virtualHosts[v].routes[r].match.hasRuntimeFraction {
                if rc.virtualHosts[v].routes[r].match.runtimeFraction.defaultValue.numerator == 0 {
                    rc.virtualHosts[v].routes[r].match.runtimeFraction.defaultValue.numerator = 1
                }
            }
        }
        let name = rc.name.isEmpty ? "route_config" : rc.name
        var resolved = ResolvedSnapshot()
        resolved.routeConfigurations[name] = XDSResource(name: name, message: rc, origin: path)
        let (ir, lowerDiags) = Lowerer.lower(resolved)
        // The tool does not validate clusters: references to clusters that are not
        // in the file are expected.
        diags += lowerDiags.filter { $0.id != DiagnosticID.danglingCluster.code }
        guard let table = ir.routeTables.first else {
            throw LoadError(description: "\(path): the route configuration does not lower")
        }
        var names: [String] = []
        for vh in table.virtualHosts {
            for r in vh.routes {
                switch r.action {
                case .cluster(let c): names.append(c)
                case .weighted(let entries, _): names += entries.map(\.cluster)
                default: break
                }
            }
        }
        var seen = Set<String>()
        names = names.filter { seen.insert($0).inserted }
        return Config(table: table, clusterNames: names, diagnostics: diags)
    }

    // MARK: Tests

    public struct Input: Sendable {
        public var authority = ""
        public var path = ""
        public var method = ""
        public var ssl = false
        public var internalRequest = false
        public var randomValue: UInt64 = 0
        public var runtime = ""
        public var requestHeaders: [(String, String)] = []
        public var responseHeaders: [(String, String)] = []
        /// (namespace, value, allow_overwrite), in order.
        public var dynamicMetadata: [(String, MetadataValue, Bool)] = []
    }

    /// One expectation: a field and its expected value, or header matchers.
    public enum Expectation: Sendable {
        case string(field: String, value: String)
        case code(UInt32)
        case requestHeaders([(IRHeaderMatch, String)])
        case responseHeaders([(IRHeaderMatch, String)])
        /// A field route-check cannot check (named, so the test is reported, not passed).
        case unsupported(String)
    }

    public struct Test: Sendable {
        public var name: String
        public var input: Input
        public var expectations: [Expectation]
    }

    static let stringFields = ["cluster_name", "virtual_cluster_name", "virtual_host_name", "host_rewrite", "path_rewrite", "path_redirect"]

    public static func loadTests(_ path: String) throws -> [Test] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError(description: "cannot read \(path)")
        }
        // JSON first; YAML also reads the JSON that has slips (a trailing comma).
        let root: JSONValue
        switch JSONParser.parse([UInt8](data)) {
        case .success(let v): root = v
        case .failure:
            switch YAMLReader.read(String(decoding: data, as: UTF8.self), byteCount: data.count) {
            case .success(let docs) where docs.count == 1: root = docs[0]
            case .success: throw LoadError(description: "\(path): expected one document")
            case .failure(let f): throw LoadError(description: "\(path): \(f.message)")
            }
        }
        guard let tests = root.object?.field("tests")?.array else {
            throw LoadError(description: "\(path): no \"tests\" list")
        }
        var out: [Test] = []
        for (i, t) in tests.enumerated() {
            guard let o = t.object else { throw LoadError(description: "\(path): tests[\(i)] is not a mapping") }
            out.append(try parseTest(o, where: "\(path): tests[\(i)]"))
        }
        return out
    }

    static func parseTest(_ o: JSONObject, where loc: String) throws -> Test {
        func str(_ v: JSONValue?) -> String? {
            switch v {
            case .string(let s)?: return s
            case .number(let n)?: return n
            case .bool(let b)?: return b ? "true" : "false"
            default: return nil
            }
        }
        func bool(_ v: JSONValue?) -> Bool {
            switch v {
            case .bool(let b)?: return b
            case .string(let s)?: return s == "true"
            default: return false
            }
        }
        func headerValues(_ v: JSONValue?) -> [(String, String)] {
            (v?.array ?? []).compactMap { h in
                guard let ho = h.object else { return nil }
                return (str(ho.field("key")) ?? "", str(ho.field("value")) ?? "")
            }
        }
        var t = Test(name: str(o.field("test_name")) ?? "", input: Input(), expectations: [])
        let input = o.field("input")?.object ?? JSONObject()
        t.input.authority = str(input.field("authority")) ?? ""
        t.input.path = str(input.field("path")) ?? ""
        t.input.method = str(input.field("method")) ?? ""
        t.input.ssl = bool(input.field("ssl"))
        t.input.internalRequest = bool(input.field("internal"))
        t.input.runtime = str(input.field("runtime")) ?? ""
        if let r = str(input.field("random_value")) {
            guard let v = UInt64(r) else { throw LoadError(description: "\(loc): bad random_value \(r)") }
            t.input.randomValue = v
        }
        t.input.requestHeaders = headerValues(input.field("additional_request_headers")) + headerValues(input.field("additional_headers"))
        t.input.responseHeaders = headerValues(input.field("additional_response_headers"))
        for m in input.field("dynamic_metadata")?.array ?? [] {
            guard let mo = m.object else { continue }
            t.input.dynamicMetadata.append(
                (
                    str(mo.field("metadata_namespace")) ?? "", metadata(mo.field("value") ?? .null),
                    bool(mo.field("allow_overwrite"))
                ))
        }
        let validate = o.field("validate")?.object ?? JSONObject()
        for (key, value) in validate.entries {
            let field = JSONObject.snakeCase(key)
            if stringFields.contains(field) {
                t.expectations.append(.string(field: field, value: str(value) ?? ""))
            } else if field == "code_redirect" {
                guard let s = str(value), let c = UInt32(s) else { throw LoadError(description: "\(loc): bad code_redirect") }
                t.expectations.append(.code(c))
            } else if field == "request_header_matches" || field == "response_header_matches" {
                var matchers: [(IRHeaderMatch, String)] = []
                for (i, h) in (value.array ?? []).enumerated() {
                    let proto: Envoy_Config_Route_V3_HeaderMatcher
                    do {
                        proto = try Envoy_Config_Route_V3_HeaderMatcher(jsonUTF8Bytes: h.jsonBytes(), options: ParseSession.jsonOptions)
                    } catch {
                        throw LoadError(description: "\(loc).validate.\(field)[\(i)]: \(error)")
                    }
                    let (ms, diags) = Lowerer.lowerHeaderMatchers([proto], path: "\(loc).validate.\(field)[\(i)]")
                    guard let m = ms.first else {
                        t.expectations.append(.unsupported("\(field)[\(i)]: \(diags.map(\.message).joined(separator: "; "))"))
                        continue
                    }
                    matchers.append((m, describe(proto)))
                }
                t.expectations.append(field == "request_header_matches" ? .requestHeaders(matchers) : .responseHeaders(matchers))
            } else {
                // Deprecated header_fields/custom_header_fields and anything newer.
                t.expectations.append(.unsupported(field))
            }
        }
        return t
    }

    static func metadata(_ v: JSONValue) -> MetadataValue {
        switch v {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .number(let n): return .number(Double(n) ?? 0)
        case .string(let s): return .string(s)
        case .array(let a): return .list(a.map(metadata))
        case .object(let o): return .object(Dictionary(o.entries.map { ($0.key, metadata($0.value)) }, uniquingKeysWith: { _, b in b }))
        }
    }

    /// The tool's rendering of a header matcher in failure messages.
    static func describe(_ h: Envoy_Config_Route_V3_HeaderMatcher) -> String {
        switch h.headerMatchSpecifier {
        case .stringMatch(let s)?:
            switch s.matchPattern {
            case .exact(let e)?: return "\(h.name): \(e)"
            default: return "\(h.name): string_match"
            }
        case .rangeMatch(let r)?: return "\(h.name) in [\(r.start), \(r.end))"
        case .presentMatch(let p)?: return "has(\(h.name)):\(p != h.invertMatch)"
        case nil: return "has(\(h.name)):\(!h.invertMatch)"
        default: return h.name
        }
    }

    // MARK: Requests

    /// The request the tool builds: `:authority`, `:path`, `:method`,
    /// `x-forwarded-proto`, `:scheme`, `x-envoy-internal` when internal, then the
    /// additional headers, in that order.
    public static func request(_ i: Input) -> HTTPRequest {
        var headers: [(String, String)] = [("x-forwarded-proto", i.ssl ? "https" : "http"), (":scheme", i.ssl ? "https" : "http")]
        if i.internalRequest { headers.append(("x-envoy-internal", "true")) }
        headers += i.requestHeaders
        var r = HTTPRequest(authority: i.authority, path: i.path, method: i.method, headers: headers)
        r.scheme = i.ssl ? "https" : "http"
        for (ns, value, overwrite) in i.dynamicMetadata {
            if case .object(let fields) = value, case .object(var existing)? = r.dynamicMetadata[ns] {
                for (k, v) in fields where overwrite || existing[k] == nil { existing[k] = v }
                r.dynamicMetadata[ns] = .object(existing)
            } else if r.dynamicMetadata[ns] == nil || overwrite {
                r.dynamicMetadata[ns] = value
            }
        }
        return r
    }

    /// The tool's random value: `static_cast<int>` of the input, widened again to 64 bits.
    public static func random(_ i: Input) -> UInt64 {
        UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: i.randomValue)))
    }

    public static func runtime(_ i: Input) -> RuntimeMode { .routerCheck(activeKey: i.runtime) }

    // MARK: Checking

    public struct Failure: Sendable {
        public var field: String
        public var expected: String
        public var actual: String
    }

    public struct Result: Sendable {
        public var name: String
        public var failures: [Failure]
        /// Why the engine could not decide the test (counted as a failure).
        public var undecidable: String?
        /// `route-check --engine bpf --repeat N`: the decision's average run time in the
        /// kernel and, timed beside it, the harness's alone (x2b_http_base), in ns.
        public var nanoseconds: UInt64? = nil
        public var harnessNanoseconds: UInt64? = nil
        /// The same, up to the route scan (x2b_http_prep: head parse and virtual host).
        public var prepNanoseconds: UInt64? = nil
        public var passed: Bool { failures.isEmpty && undecidable == nil }
    }

    /// The outcome an engine reports for one request; the IR engine is `RouteSemantics.decide`.
    public typealias Decision = RouteSemantics.Decision

    /// Compares a decision with a test's expectations, as the tool's checkers do.
    public static func check(_ test: Test, table: IRRouteTable, decision d: Decision, request validated: HTTPRequest? = nil) -> Result {
        let req = validated ?? request(test.input)
        let fin = RouteSemantics.finalize(table, d, req, responseHeaders: HTTPHeaderMap(test.input.responseHeaders))
        // A route entry: a forwarding route (not a redirect or direct response).
        var routeEntry = false
        if let r = d.route, case .route = d.outcome {
            switch r.action {
            case .redirect, .directResponse: break
            default: routeEntry = true
            }
        }
        let directResponse =
            d.outcome == .tlsRedirect
            || (d.route.map { r in
                if case .redirect = r.action { return true }
                if case .directResponse = r.action { return true }
                return false
            } ?? false)
        var failures: [Failure] = []
        func expect(_ field: String, _ expected: String, _ actual: String) {
            if expected != actual { failures.append(Failure(field: field, expected: expected, actual: actual)) }
        }
        var unsupported: [String] = []
        for e in test.expectations {
            switch e {
            case .string(let field, let value):
                switch field {
                case "cluster_name": expect(field, value, routeEntry ? (d.cluster ?? "") : "")
                case "virtual_host_name": expect(field, value, routeEntry ? (d.virtualHost?.name ?? "") : "")
                case "virtual_cluster_name":
                    let vc = routeEntry ? d.virtualHost.flatMap { RouteSemantics.virtualCluster($0, fin.requestHeaders) } : nil
                    expect(field, value, vc ?? "")
                case "path_rewrite": expect(field, value, routeEntry ? (fin.requestHeaders.first(":path") ?? "") : "")
                case "host_rewrite": expect(field, value, routeEntry ? (fin.requestHeaders.first(":authority") ?? "") : "")
                case "path_redirect": expect(field, value, directResponse ? (fin.newURI ?? "") : "")
                default: break
                }
                if !fin.unsupported.isEmpty, field.hasSuffix("rewrite") || field == "path_redirect" {
                    unsupported += fin.unsupported
                }
            case .code(let c):
                expect("code_redirect", String(c), String(directResponse ? (fin.responseCode ?? 0) : 0))
            case .requestHeaders(let ms):
                for (m, text) in ms where !RouteSemantics.matches(m, fin.requestHeaders) {
                    failures.append(
                        Failure(
                            field: "request_header_matches", expected: text,
                            actual: (m.invert ? "NOT " : "") + "\(m.name): \(fin.requestHeaders.first(m.name) ?? "NULL")"))
                }
                if !fin.unsupported.isEmpty { unsupported += fin.unsupported }
            case .responseHeaders(let ms):
                for (m, text) in ms where !RouteSemantics.matches(m, fin.responseHeaders) {
                    failures.append(
                        Failure(
                            field: "response_header_matches", expected: text,
                            actual: (m.invert ? "NOT " : "") + "\(m.name): \(fin.responseHeaders.first(m.name) ?? "NULL")"))
                }
                if !fin.unsupported.isEmpty { unsupported += fin.unsupported }
            case .unsupported(let what):
                unsupported.append("field \(what)")
            }
        }
        var result = Result(name: test.name, failures: failures)
        if !unsupported.isEmpty {
            var seen = Set<String>()
            result.undecidable = "not checked: " + unsupported.filter { seen.insert($0).inserted }.joined(separator: ", ")
        }
        return result
    }

    /// The IR engine for one test: the head validation of Envoy's HTTP/1 codec, then routing.
    /// A request the codec refuses is reported as not decided, with Envoy's status.
    public static func runIR(_ test: Test, table: IRRouteTable) -> Result {
        switch HeadValidation.validate(request(test.input)) {
        case .refuse(let status, let reason):
            return Result(
                name: test.name, failures: [],
                undecidable: "refused before routing: \(reason) (Envoy's HTTP/1 codec answers \(status); the kernel refuses the connection)")
        case .accept(let r):
            let d = RouteSemantics.decide(table, r, random: random(test.input), runtime: runtime(test.input))
            return check(test, table: table, decision: d, request: r)
        }
    }

    /// The IR engine: Envoy's routing as the interpreter computes it.
    public static func decideIR(_ test: Test, table: IRRouteTable) -> Decision {
        RouteSemantics.decide(table, request(test.input), random: random(test.input), runtime: runtime(test.input))
    }

    /// Text report; the last line is `N passed, M failed`.
    public static func report(_ results: [Result]) -> String {
        var out = ""
        for r in results where !r.passed {
            out += "FAIL \(r.name)\n"
            for f in r.failures {
                let actual = f.actual.hasPrefix("NOT ") ? "NOT [\(f.actual.dropFirst(4))]" : "[\(f.actual)]"
                out += "  expected: [\(f.expected)], actual: \(actual), test type: \(f.field)\n"
            }
            if let u = r.undecidable { out += "  \(u)\n" }
        }
        let passed = results.filter(\.passed).count
        out += "\(passed) passed, \(results.count - passed) failed\n"
        return out
    }
}
