import Foundation
import X2BABI
import X2BDiagnostics
import X2BEmit
import X2BIR
import X2BPlan
import X2BSemantics
import X2BToolchain

/// Runs requests through the compiled HTTP matcher in the kernel: the plan and
/// the generated `x2b_routes.h` of a bundle, built with the test harness
/// (templates/http_testrun.c) into an XDP (frags) program, driven by x2b-testrun with
/// BPF_PROG_TEST_RUN. This is how `route-check --engine bpf` and the
/// differential tests prove the generated code (root needed).
public enum HTTPTestRun {
    public struct RunError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// What the kernel decided for one request (struct x2b_hresult).
    public struct KernelDecision: Sendable, Hashable {
        public enum Kind: UInt32, Sendable {
            case cluster = 0, noVirtualHost = 1, noRoute = 2, tlsRedirect = 3, local = 4, noCluster = 5, error = 6
            /// Envoy's HTTP/1 codec refuses the head (`cluster` holds its status); the kernel refuses the connection.
            case badRequest = 7
        }

        public var kind: Kind
        public var vhost: Int?
        public var route: Int?
        public var cluster: Int?
        /// Average run time (`--repeat`), nanoseconds: the least of the driver's rounds.
        public var nanoseconds: UInt64?
        /// The same for each baseline program of `run`, measured round by round beside it.
        public var baselineNanoseconds: [UInt64] = []
    }

    public struct Request: Sendable {
        public var table: UInt32
        public var random: UInt32
        /// Runtime key id (router-check) or `defaultsRuntime`.
        public var runtime: UInt32
        public var head: [UInt8]

        public init(table: UInt32, random: UInt32, runtime: UInt32, head: [UInt8]) {
            self.table = table
            self.random = random
            self.runtime = runtime
            self.head = head
        }
    }

    /// The runtime key id that makes the test build behave like the bundle.
    public static let defaultsRuntime: UInt32 = 0xFFFF_FFFF

    /// A compiled test object and its map images in a temporary directory.
    public final class Build: @unchecked Sendable {
        public let directory: URL
        public let plan: HTTPPlan
        public let header: String

        init(directory: URL, plan: HTTPPlan, header: String) {
            self.directory = directory
            self.plan = plan
            self.header = header
        }

        /// XDS2BPF_KEEP_TESTRUN=1 keeps the directory (generated C, object, images) for debugging.
        deinit {
            if ProcessInfo.processInfo.environment["XDS2BPF_KEEP_TESTRUN"] == "1" {
                FileHandle.standardError.write(Data("x2b-testrun build kept in \(directory.path)\n".utf8))
            } else {
                try? FileManager.default.removeItem(at: directory)
            }
        }

        var object: String { directory.appendingPathComponent("x2b_http_test.bpf.o").path }
        var mapDirectory: String { directory.appendingPathComponent("maps").path }
    }

    /// Plans the route tables of `ir` exactly as a bundle does and compiles the test object.
    public static func build(
        _ ir: MeshIR, clusterIndex: [String: UInt32]? = nil, options: HTTPPlanOptions = HTTPPlanOptions(),
        clang: Clang? = nil
    ) throws -> (Build, [Diagnostic]) {
        let (plan, diags) = HTTPPlanner.plan(ir, clusterIndex: clusterIndex, options: options)
        let out = HTTPEmitter.emit(plan)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-http-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("maps"), withIntermediateDirectories: true)
        let build = Build(directory: dir, plan: plan, header: out.header)
        var files: [(String, String)] = [(HTTPEmitter.headerName, out.header), ("x2b_http_test.bpf.c", Templates.text("http_testrun.c"))]
        for h in ["x2b_prelude.h", "x2b_abi.h", "x2b_abi_asserts.h", "x2b_http.h"] { files.append((h, Templates.text(h))) }
        for (name, text) in files { try Data(text.utf8).write(to: dir.appendingPathComponent(name)) }
        for m in out.maps {
            guard let img = m.image, img.entries > 0 else { continue }
            try Data(img.bytes).write(to: dir.appendingPathComponent("maps/\(m.name).bin"))
        }
        try compileHarness(in: dir, header: out.header, clang: clang)
        return (build, diags)
    }

    /// Compiles `x2b_http_test.bpf.c` of `dir` (the harness and the headers written there)
    /// into the test object; clang's errors are mapped onto the generated `header`.
    static func compileHarness(in dir: URL, header: String, clang: Clang?) throws {
        let cc = try clang ?? Clang.locate()
        let args =
            Clang.pinnedFlags + ["-fdebug-prefix-map=\(dir.path)=."] + cc.extraIncludes.flatMap { ["-idirafter", $0] }
            + ["-I", ".", "-c", "x2b_http_test.bpf.c", "-o", "x2b_http_test.bpf.o"]
        let r = try ProcessRunner(cc.path, args, directory: dir.path).run()
        guard r.succeeded else {
            throw ToolchainError(diagnostics: Clang.mapErrors(r.stderrText, source: header))
        }
    }

    /// The x2b-testrun driver: XDS2BPF_TESTRUN, or bpf-runtime/testrun/ of the checkout.
    public static func locateDriver() throws -> String {
        let env = ProcessInfo.processInfo.environment
        if let d = env["XDS2BPF_TESTRUN"], !d.isEmpty { return d }
        var candidates: [String] = []
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(dir.appendingPathComponent("bpf-runtime/testrun/x2b-testrun").path)
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/bpf-runtime/testrun/x2b-testrun")
        candidates.append(
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("bpf-runtime/testrun/x2b-testrun").path)
        for p in (env["PATH"] ?? "").split(separator: ":") { candidates.append("\(p)/x2b-testrun") }
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw RunError(description: "x2b-testrun not found (build it with `make testrun`, or set XDS2BPF_TESTRUN)")
    }

    /// Runs every request in one driver process. `baselines` (with `count` > 1): programs
    /// of the harness timed beside the decision on each request (x2b_http_base: the
    /// harness alone; x2b_http_prep: up to the route match).
    public static func run(
        _ build: Build, _ requests: [Request], repeat count: Int = 1, baselines: [String] = []
    ) throws -> [KernelDecision] {
        let driver = try locateDriver()
        var input: [UInt8] = []
        for r in requests {
            input += Array("\(r.table) \(r.random) \(r.runtime) \(r.head.count)\n".utf8)
            input += r.head
        }
        let r = try ProcessRunner(
            driver,
            [build.object, build.mapDirectory] + (count > 1 ? ["--repeat", String(count)] : [])
                + (count > 1 && !baselines.isEmpty ? ["--baselines", baselines.joined(separator: ",")] : []),
            input: Data(input)
        ).run()
        let err = r.stderrText
        guard r.succeeded else {
            throw RunError(description: "x2b-testrun failed (exit \(r.status)): \(err.prefix(4000))")
        }
        let lines = r.stdoutText.split(separator: "\n")
        guard lines.count == requests.count else {
            throw RunError(description: "x2b-testrun answered \(lines.count) of \(requests.count) requests: \(err.prefix(2000))")
        }
        return try lines.map { line in
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 4, let k = UInt32(f[0]), let kind = KernelDecision.Kind(rawValue: k),
                let v = Int(f[1]), let r = Int(f[2]), let c = Int(f[3])
            else {
                throw RunError(description: "x2b-testrun: bad output line \(line)")
            }
            return KernelDecision(
                kind: kind, vhost: v < 0 ? nil : v, route: r < 0 ? nil : r, cluster: c < 0 ? nil : c,
                nanoseconds: f.count > 4 ? UInt64(f[4]) : nil, baselineNanoseconds: f.dropFirst(5).compactMap { UInt64($0) })
        }
    }

    // MARK: Requests as HTTP/1.1

    /// Why a request cannot be given to the kernel as an HTTP/1.1 head, or nil.
    public static func unrepresentable(_ r: HTTPRequest) -> String? {
        func ctl(_ s: String) -> Bool { s.utf8.contains { $0 == 13 || $0 == 10 || $0 == 0 } }
        func lineBreak(_ s: String) -> Bool { s.utf8.contains { $0 == 13 || $0 == 10 } }
        if HeadValidation.validate(r).refusal != nil {
            // A head Envoy's codec refuses: sent as is, the kernel must refuse it too; only
            // line breaks would make it another head.
            if lineBreak(r.method) || lineBreak(r.path) || lineBreak(r.version) || (r.hasAuthority && lineBreak(r.authority))
                || r.headers.contains(where: { lineBreak($0.0) || lineBreak($0.1) })
            {
                return "line breaks in a head the codec refuses"
            }
            if render(r).count > Int(ABI.headMax) { return "request head longer than \(ABI.headMax) bytes" }
            return nil
        }
        func token(_ s: String) -> Bool {
            !s.isEmpty && s.utf8.allSatisfy { $0 > 32 && $0 < 127 && !"()<>@,;:\\\"/[]?={}".utf8.contains($0) }
        }
        func trimmed(_ s: String) -> Bool {
            guard let f = s.utf8.first, let l = s.utf8.last else { return true }
            return f != 32 && f != 9 && l != 32 && l != 9
        }
        if !token(r.method) { return "method \(ResourcePath.quoted(r.method)) is not an HTTP/1.1 token" }
        if r.hasAuthority && (ctl(r.authority) || !trimmed(r.authority)) {
            return "authority \(ResourcePath.quoted(r.authority)) cannot be a Host header"
        }
        if r.scheme != "http" { return "scheme \(r.scheme): the kernel sees plaintext HTTP/1.1" }
        if !r.dynamicMetadata.isEmpty { return "dynamic metadata (set by HTTP filters, which do not run before the kernel decides)" }
        for (k, v) in r.headers {
            if k == ":scheme" {
                if v != "http" { return ":scheme \(v): the kernel sees plaintext HTTP/1.1" }
                continue
            }
            if k.hasPrefix(":") && k != ":authority" { return "pseudo-header \(k) in an HTTP/1.1 head" }
            if k != ":authority" && !token(k) { return "header name \(ResourcePath.quoted(k)) is not a token" }
            if ctl(v) || !trimmed(v) { return "header \(k) value \(ResourcePath.quoted(v)) changes when sent (whitespace, line breaks)" }
        }
        if render(r).count > Int(ABI.headMax) { return "request head longer than \(ABI.headMax) bytes" }
        return nil
    }

    /// The request as HTTP/1.1 bytes: request line, Host, the other headers in order.
    public static func render(_ r: HTTPRequest) -> [UInt8] {
        var s = "\(r.method) \(r.path)\(r.version.isEmpty ? "" : " " + r.version)\r\n"
        if r.hasAuthority { s += "Host: \(r.authority)\r\n" }
        for (k, v) in r.headers where k != ":scheme" {
            s += "\(k == ":authority" ? "Host" : k): \(v)\r\n"
        }
        s += "\r\n"
        return Array(s.utf8)
    }

    // MARK: route-check

    /// `route-check --engine bpf`: the kernel decides virtual host, route and
    /// cluster; what follows from the decision (rewrites, redirect URLs, header
    /// mutations) is computed as for the IR engine.
    /// `repeat` > 1: each request also runs `repeat` times through the decision and
    /// through the bare harness, and the results carry both average run times.
    public static func routeCheck(
        _ cfg: RouterCheck.Config, _ tests: [RouterCheck.Test], repeat count: Int = 1,
        options: HTTPPlanOptions = HTTPPlanOptions()
    ) throws -> [RouterCheck.Result] {
        let table = cfg.table
        // Cluster names the kernel can produce: the config's, and those cluster_header
        // tests name (route-check has no Cluster resources; the tool validates none).
        var names = cfg.clusterNames
        var headerNames = Set<String>()
        for vh in table.virtualHosts {
            for r in vh.routes {
                if case .clusterHeader(let h) = r.action { headerNames.insert(HTTPHeaderMap.canonical(h)) }
            }
        }
        for t in tests {
            let m = RouterCheck.request(t.input).headerMap
            for h in headerNames.sorted() { if let v = m.first(h) { names.append(v) } }
        }
        var seen = Set<String>()
        names = names.filter { seen.insert($0).inserted }
        let clusters = names.map { IRCluster(name: $0, path: "route-check", lb: .roundRobin, priorities: []) }
        let ir = MeshIR(listeners: [], routeTables: [table], clusters: clusters)
        let (build, _) = try build(ir, options: options)
        var requests: [Request] = []
        var why: [Int: String] = [:]
        for (i, t) in tests.enumerated() {
            let req = RouterCheck.request(t.input)
            let random = RouterCheck.random(t.input)
            var problem = unrepresentable(kernelView(req))
            if random > UInt64(UInt32.max) { problem = problem ?? "random_value beyond 32 bits" }
            if t.input.ssl, Self.routesOnScheme(table) { problem = problem ?? ":scheme https (the kernel sees plaintext HTTP/1.1)" }
            if let problem {
                why[i] = problem
                continue
            }
            requests.append(
                Request(
                    table: 0, random: UInt32(random), runtime: build.plan.runtimeKeyID(t.input.runtime),
                    head: render(kernelView(req))))
        }
        let decisions = try run(build, requests, repeat: count, baselines: ["x2b_http_base", "x2b_http_prep"])
        var results: [RouterCheck.Result] = []
        var next = 0
        for (i, t) in tests.enumerated() {
            if let w = why[i] {
                results.append(RouterCheck.Result(name: t.name, failures: [], undecidable: "not decidable by the bpf engine: \(w)"))
                continue
            }
            let k = decisions[next]
            let baseNanoseconds = k.baselineNanoseconds.count == 2 ? k.baselineNanoseconds[0] : nil
            let prepNanoseconds = k.baselineNanoseconds.count == 2 ? k.baselineNanoseconds[1] : nil
            next += 1
            guard let d = decision(k, table: table, clusters: names) else {
                results.append(
                    RouterCheck.Result(
                        name: t.name, failures: [],
                        undecidable: k.kind == .badRequest
                            ? "the kernel refuses the head as Envoy's HTTP/1 codec does (status \(k.cluster ?? 0))"
                            : "the kernel could not use the request head (\(k.kind))"))
                continue
            }
            var result = RouterCheck.check(t, table: table, decision: d)
            result.nanoseconds = count > 1 ? k.nanoseconds : nil
            result.harnessNanoseconds = baseNanoseconds
            result.prepNanoseconds = prepNanoseconds
            results.append(result)
        }
        return results
    }

    /// The tool's request as the kernel receives it: a plaintext HTTP/1.1 head,
    /// whose `:scheme` the kernel takes from the connection (http); the tool's
    /// ssl flag still reaches routing through `x-forwarded-proto`.
    static func kernelView(_ r: HTTPRequest) -> HTTPRequest {
        var k = r
        k.scheme = "http"
        k.headers = r.headers.filter { $0.0 != ":scheme" }
        return k
    }

    static func routesOnScheme(_ t: IRRouteTable) -> Bool {
        t.virtualHosts.contains { vh in
            vh.routes.contains { $0.match.headers.contains { HTTPHeaderMap.canonical($0.name) == ":scheme" } }
        }
    }

    /// A kernel decision as a RouteSemantics decision over the same table.
    public static func decision(_ k: KernelDecision, table: IRRouteTable, clusters: [String]) -> RouteSemantics.Decision? {
        var d = RouteSemantics.Decision()
        switch k.kind {
        case .error, .badRequest: return nil
        case .noVirtualHost:
            d.outcome = .noVirtualHost
            return d
        default: break
        }
        guard let v = k.vhost, v < table.virtualHosts.count else { return nil }
        d.virtualHost = table.virtualHosts[v]
        d.virtualHostIndex = v
        switch k.kind {
        case .tlsRedirect:
            d.outcome = .tlsRedirect
        case .noRoute:
            d.outcome = .noRoute
        default:
            guard let r = k.route, r < table.virtualHosts[v].routes.count else { return nil }
            d.route = table.virtualHosts[v].routes[r]
            d.routeIndex = r
            d.outcome = .route(r)
            if k.kind == .cluster, let c = k.cluster, c < clusters.count { d.cluster = clusters[c] }
            if k.kind == .noCluster {
                switch d.route?.action {
                case .clusterHeader?: d.cluster = ""
                case .cluster(let c)?: d.cluster = c
                default: d.cluster = nil
                }
            }
        }
        return d
    }
}
