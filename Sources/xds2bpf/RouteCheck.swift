import ArgumentParser
import Codegen
import Foundation

extension XDS2BPF {
    struct RouteCheck: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "route-check",
            abstract: "Run Envoy router-check tests against a RouteConfiguration, decided by the IR interpreter or the compiled BPF.",
            discussion: """
                --config is a bare RouteConfiguration (YAML or JSON), as Envoy's router_check_tool reads; \
                --tests is the tool's test file (X.golden.proto.json). Checked fields: cluster_name, \
                virtual_host_name, virtual_cluster_name, path_rewrite, host_rewrite, path_redirect, \
                code_redirect, request_header_matches, response_header_matches. A test that uses anything \
                else is reported as failed with the reason.
                --engine bpf compiles the routes into the same BPF matcher the bundle uses and decides every \
                request in the kernel through BPF_PROG_TEST_RUN (root; needs `make testrun`, or \
                XDS2BPF_TESTRUN naming the x2b-testrun driver; XDS2BPF_CLANG the clang).
                Exit codes: 0 all tests passed, 1 a test failed, 2 usage error, 3 internal or toolchain error.
                """)

        enum Engine: String, ExpressibleByArgument, CaseIterable {
            case ir, bpf
        }

        @Option(help: "The route configuration (YAML or JSON).")
        var config: String

        @Option(help: "The router-check tests (JSON or YAML).")
        var tests: String

        @Option(help: "Who decides: ir (the MeshIR interpreter) or bpf (the compiled matcher in the kernel).")
        var engine: Engine = .ir

        @Flag(help: "Print every test, not only failures.")
        var details = false

        @Option(
            help: ArgumentHelp(
                "With --engine bpf: run each request N times in the kernel and print its average run time.",
                discussion:
                    "One line per test: `time NAME DECISION_NS HARNESS_NS PREP_NS`: the decision, the harness alone (x2b_http_base), and the decision up to the route scan (x2b_http_prep: head parse and virtual host)."
            ))
        var `repeat`: Int = 1

        @Flag(help: "With --engine bpf: plan no path index (every route tested in turn; the benchmark's comparison).")
        var noPathIndex = false

        func validate() throws {
            for f in [config, tests] where !FileManager.default.isReadableFile(atPath: f) {
                throw ValidationError("cannot read \(f)")
            }
            if `repeat` < 1 { throw ValidationError("--repeat must be at least 1") }
            if `repeat` > 1 && engine != .bpf { throw ValidationError("--repeat times the kernel: it needs --engine bpf") }
        }

        func run() throws {
            let cfg: Codegen.RouterCheck.Config
            let cases: [Codegen.RouterCheck.Test]
            do {
                cfg = try Codegen.RouterCheck.loadConfig(config)
                cases = try Codegen.RouterCheck.loadTests(tests)
            } catch let e as Codegen.RouterCheck.LoadError {
                printErr("error: \(e.description)")
                throw Exit.rejected
            }
            // Errors only: "not enforced in the kernel" warnings say nothing about routing.
            for d in cfg.diagnostics where d.severity == .error { printErr(d.rendered) }
            var results: [Codegen.RouterCheck.Result]
            switch engine {
            case .ir:
                results = cases.map { Codegen.RouterCheck.runIR($0, table: cfg.table) }
            case .bpf:
                do {
                    var options = HTTPPlanOptions()
                    if noPathIndex { options.pathIndexMinRoutes = Int.max }
                    results = try HTTPTestRun.routeCheck(cfg, cases, repeat: `repeat`, options: options)
                } catch let e as ToolchainError {
                    for d in e.diagnostics { printErr(d.rendered) }
                    throw Exit.internalError
                } catch let e as HTTPTestRun.RunError {
                    printErr("error: \(e.description)")
                    throw Exit.internalError
                }
            }
            if details {
                for r in results where r.passed { print("ok   \(r.name)") }
            }
            for r in results {
                if let ns = r.nanoseconds, let base = r.harnessNanoseconds, let prep = r.prepNanoseconds {
                    print("time \(r.name) \(ns) \(base) \(prep)")
                }
            }
            print(Codegen.RouterCheck.report(results), terminator: "")
            if cfg.diagnostics.hasErrors || results.contains(where: { !$0.passed }) { throw Exit.rejected }
        }
    }
}

extension XDS2BPF {
    /// Differential test of the HTTP matcher on a snapshot (the tests run it on the corpus).
    struct HTTPDiff: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "http-diff",
            abstract: "Decide generated requests with the IR interpreter and the compiled BPF (root) and report disagreements.",
            shouldDisplay: false)

        @OptionGroup var input: FrontEndOptionGroup

        @Option(help: "Requests per route table.")
        var requests: Int = 10_000

        @Option(help: "Seed of the request generator.")
        var seed: UInt64 = 1

        @Option(help: "Conditions compiled to straight-line code (0: every virtual host in maps).")
        var inlineLimit: Int?

        func run() throws {
            let fe = Pipeline.frontEnd(files: input.snapshot, options: input.options)
            if fe.rejected {
                input.report(fe.diagnostics.filter { $0.severity == .error })
                throw Exit.rejected
            }
            var options = HTTPPlanOptions()
            if let l = inlineLimit { options.inlineConditionLimit = l }
            let report: HTTPDifferential.Report
            do {
                report = try HTTPDifferential.run(fe.ir, perTable: requests, seed: seed, options: options)
            } catch let e as ToolchainError {
                for d in e.diagnostics { printErr(d.rendered) }
                throw Exit.internalError
            } catch let e as HTTPTestRun.RunError {
                printErr("error: \(e.description)")
                throw Exit.internalError
            }
            for m in report.mismatches.prefix(10) { print(m.description) }
            print("outcomes: " + report.outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            print("\(fe.ir.routeTables.count) route tables, \(report.checked) requests, \(report.skipped) skipped, \(report.mismatches.count) disagreements")
            if !report.mismatches.isEmpty { throw Exit.rejected }
        }
    }
}

extension XDS2BPF {
    /// Cost of one HTTP decision in the kernel for synthetic tables of N routes (root).
    struct HTTPBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "http-bench",
            abstract: "Measure the kernel's HTTP decision time (BPF_PROG_TEST_RUN) for synthetic route tables.",
            shouldDisplay: false)

        @Option(parsing: .upToNextOption, help: "Route counts to measure.")
        var routes: [Int] = [10, 1000, 10000]

        @Option(name: .customLong("per-vhost"), help: "Routes per virtual host (0: all in one virtual host).")
        var perVHost: Int = 10

        @Option(name: .customLong("repeat"), help: "Runs per request.")
        var runs: Int = 20000

        func run() throws {
            print("routes  vhosts  routes/vhost  strategy  ns/decision (first route, last route, no vhost)")
            for n in routes {
                let per = perVHost > 0 ? perVHost : n
                let vhosts = max(1, n / per)
                var vhs: [IRVirtualHost] = []
                var clusters: [IRCluster] = []
                for v in 0..<vhosts {
                    var rs: [IRRoute] = []
                    for r in 0..<per {
                        let c = "c\(v)-\(r)"
                        clusters.append(IRCluster(name: c, path: c, lb: .roundRobin, priorities: []))
                        var m = IRRouteMatch(path: .prefix("/api/v\(r)/"))
                        if r % 3 == 1 { m.headers = [IRHeaderMatch(name: "x-version", kind: .string(.exact("v\(r)"), ignoreCase: false))] }
                        rs.append(IRRoute(name: "", path: "r\(v).\(r)", match: m, action: .cluster(c)))
                    }
                    vhs.append(IRVirtualHost(name: "svc\(v)", path: "v\(v)", domains: ["svc\(v).example.com", "svc\(v).example.com:80"], routes: rs))
                }
                let ir = MeshIR(routeTables: [IRRouteTable(name: "bench", path: "bench", virtualHosts: vhs)], clusters: clusters)
                let (build, _) = try HTTPTestRun.build(ir)
                let target = vhosts / 2
                func head(_ path: String, host: String) -> [UInt8] {
                    HTTPTestRun.render(
                        HTTPRequest(
                            authority: host, path: path, method: "GET",
                            headers: [("user-agent", "bench/1.0"), ("accept", "*/*"), ("x-version", "v\(per - 1)")]))
                }
                let reqs = [
                    head("/api/v0/items", host: "svc\(target).example.com"),
                    head("/api/v\(per - 1)/items", host: "svc\(target).example.com"),
                    head("/", host: "unknown.example.org"),
                ].map {
                    HTTPTestRun.Request(table: 0, random: 1, runtime: HTTPTestRun.defaultsRuntime, head: $0)
                }
                let out = try HTTPTestRun.run(build, reqs, repeat: runs)
                let inline = build.plan.vhosts.filter(\.inline).count
                let strategy = inline == vhosts ? "inline" : (inline == 0 ? "maps" : "mixed")
                print(
                    String(
                        format: "%6d  %6d  %12d  %-8@  %@", n, vhosts, per, strategy as NSString,
                        out.map { "\($0.nanoseconds ?? 0)" }.joined(separator: ", ") as NSString))
            }
        }
    }
}
