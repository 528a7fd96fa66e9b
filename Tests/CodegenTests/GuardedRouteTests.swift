import Foundation
import XCTest

@testable import Codegen
@testable import X2BResolve
@testable import X2BRouteCheck
@testable import X2BSemantics

/// Filters that can deny traffic and that the kernel cannot run fail closed: what they
/// guard is refused, the rest routes (issue #13: accept what Envoy accepts; #10: fail
/// closed). Fixture: Tests/Fixtures/guarded (Envoy Gateway's per-route security policies,
/// an RDS table shared by a manager with the filters and one without).
final class GuardedRouteTests: XCTestCase {
    static var files: [String] {
        ["eg-policies.yaml", "eg-policies-routes.yaml"].map {
            TestPaths.fixtures.appendingPathComponent("guarded/\($0)").path
        }
    }

    static let gw = IRAddress(family: .inet4, bytes: [10, 0, 0, 1])
    static let plain = IRAddress(family: .inet4, bytes: [10, 0, 0, 2])

    func frontEnd(_ policy: UnsupportedPolicy = .default) -> FrontEndResult {
        Pipeline.frontEnd(files: Self.files, options: FrontEndOptions(unsupported: policy))
    }

    func table(_ ir: MeshIR, at address: IRAddress) throws -> IRRouteTable {
        let l = try XCTUnwrap(ir.listeners.first { $0.address == address })
        guard case .http(let name) = l.chains.first?.action else { throw XCTSkip("not an HTTP chain") }
        return try XCTUnwrap(ir.routeTable(named: name))
    }

    func testGuardedRoutesAreRefusedAndTheOthersRoute() throws {
        let fe = frontEnd()
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics.map(\.rendered))")
        XCTAssertEqual(fe.diagnostics.filter { $0.id == "XDS210" }.count, 2)
        XCTAssertFalse(fe.diagnostics.contains { $0.id == "XDS209" })
        let jwt = "envoy.filters.http.jwt_authn/securitypolicy/default/jwt"
        let authz = "envoy.filters.http.ext_authz/securitypolicy/default/authz"
        // The manager with the filters: the route that enables JWT, the route whose weighted
        // cluster enables ext_authz (the whole route) and the virtual host that enables it.
        let guarded = try table(fe.ir, at: Self.gw)
        XCTAssertTrue(guarded.name.hasPrefix("shared@guarded:"), guarded.name)
        XCTAssertEqual(
            guarded.virtualHosts[0].routes.map(\.action),
            [
                .guarded(filters: [jwt]), .guarded(filters: [authz]), .cluster("web"),
            ])
        XCTAssertEqual(guarded.virtualHosts[1].routes.map(\.action), [.guarded(filters: [authz])])
        XCTAssertEqual(guarded.guardingFilters, [jwt, authz])
        // The manager without them shares the RDS table: its routes are untouched.
        let open = try table(fe.ir, at: Self.plain)
        XCTAssertEqual(open.name, "shared")
        XCTAssertNil(open.guardingFilters)
        XCTAssertEqual(open.virtualHosts[0].routes[0].action, .cluster("api"))

        func outcome(_ address: IRAddress, _ authority: String, _ path: String) -> Explanation.Outcome {
            Interpreter.explain(
                fe.ir, address: address, port: 80, request: HTTPRequest(authority: authority, path: path), random: 0
            ).outcome
        }
        XCTAssertEqual(outcome(Self.gw, "www.example.com", "/api/users"), .refused)
        XCTAssertEqual(outcome(Self.gw, "www.example.com", "/beta/x"), .refused)
        XCTAssertEqual(outcome(Self.gw, "www.example.com", "/home"), .redirect)
        XCTAssertEqual(outcome(Self.gw, "admin.example.com", "/"), .refused)
        XCTAssertEqual(outcome(Self.plain, "admin.example.com", "/"), .redirect)
        XCTAssertEqual(outcome(Self.plain, "www.example.com", "/api/users"), .redirect)
    }

    func testWithoutTheModuleAGuardedTableRefusesTheConnect() throws {
        let fe = frontEnd()
        let (plan, diags) = Planner.plan(fe.ir)
        XCTAssertFalse(diags.hasErrors, "\(diags.map(\.rendered))")
        let gwTable = UInt32(try XCTUnwrap(fe.ir.routeTables.firstIndex { $0.name.hasPrefix("shared@guarded:") }))
        let httpActions = plan.actions.filter { $0.kind == .http }
        XCTAssertEqual(httpActions.count, 2)
        for a in httpActions {
            let fallback = plan.actions[Int(a.fallback)].kind
            if a.target == gwTable {
                XCTAssertEqual(fallback, .refuse, "the guarded table's L4 fallback")
            } else {
                XCTAssertNotEqual(fallback, .refuse, "the open table's L4 fallback")
            }
        }
        XCTAssertEqual(Interpreter.explain(fe.ir, address: Self.gw, port: 80, request: nil, random: 0).outcome, .refused)
        XCTAssertTrue(
            diags.contains { $0.id == "XDS208" && $0.path == "listeners[\"gw\"]" && $0.message.contains("guarded") },
            "\(diags.map(\.rendered))")
    }

    func testWarnBypassesAndErrorRejects() throws {
        let warn = frontEnd(.warn)
        XCTAssertFalse(warn.rejected)
        XCTAssertEqual(warn.diagnostics.filter { $0.id == "XDS209" && $0.severity == .warning }.count, 2)
        XCTAssertFalse(warn.diagnostics.contains { $0.id == "XDS210" })
        XCTAssertTrue(warn.ir.routeTables.allSatisfy { $0.guardingFilters == nil })
        XCTAssertEqual(try table(warn.ir, at: Self.gw).name, "shared", "one table: nothing differs between the managers")
        let error = frontEnd(.error)
        XCTAssertTrue(error.rejected)
        XCTAssertEqual(error.diagnostics.filter { $0.id == "XDS210" && $0.severity == .error }.count, 2)
    }

    /// A chain routed by another terminal filter (redis_proxy here) is refused; one that
    /// ends in an observing filter has no terminal filter at all (Envoy rejects it): XDS206.
    func testOtherTerminalFiltersAreRefusedAndMissingOnesRejected() throws {
        func snapshot(_ filter: String) -> String {
            """
            static_resources:
              listeners:
              - name: l
                address: {socket_address: {address: 10.0.0.9, port_value: 6379}}
                filter_chains:
                - filters:
                  - \(filter)
              clusters:
              - name: c
                load_assignment:
                  cluster_name: c
                  endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 10.1.0.9, port_value: 6379}}}}]}]
            """
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-guarded-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        func frontEnd(_ filter: String, _ policy: UnsupportedPolicy = .default) throws -> FrontEndResult {
            let url = dir.appendingPathComponent("\(UUID().uuidString).yaml")
            try Data(snapshot(filter).utf8).write(to: url)
            return Pipeline.frontEnd(files: [url.path], options: FrontEndOptions(unsupported: policy))
        }
        let redis =
            "{name: envoy.filters.network.redis_proxy, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy, stat_prefix: r}}"
        let refused = try frontEnd(redis)
        XCTAssertFalse(refused.rejected, "\(refused.diagnostics.map(\.rendered))")
        XCTAssertTrue(refused.diagnostics.contains { $0.id == "XDS210" && $0.message.contains("redis_proxy") })
        guard case .refuse? = refused.ir.listeners.first?.chains.first?.action else {
            return XCTFail("\(refused.ir.listeners)")
        }
        let vip = IRAddress(family: .inet4, bytes: [10, 0, 0, 9])
        XCTAssertEqual(Interpreter.explain(refused.ir, address: vip, port: 6379, request: nil, random: 0).outcome, .refused)
        XCTAssertTrue(try frontEnd(redis, .error).rejected)
        // Only an observing filter: no terminal filter, rejected as before.
        let observing = try frontEnd(
            "{name: istio.stats, typed_config: {\"@type\": type.googleapis.com/stats.PluginConfig}}")
        XCTAssertTrue(observing.rejected)
        XCTAssertTrue(observing.diagnostics.contains { $0.id == "XDS206" && $0.severity == .error }, "\(observing.diagnostics.map(\.rendered))")
        // A filter that names nothing is invalid (Envoy requires the name), not one to refuse by.
        let empty = try frontEnd("{}")
        XCTAssertTrue(empty.rejected)
        XCTAssertTrue(
            empty.diagnostics.contains { $0.id == "XDS006" && $0.message.contains("neither a name nor a typed_config") },
            "\(empty.diagnostics.map(\.rendered))")
    }

    /// Where a per-route filter runs: its places and their routes (table, virtual host, route,
    /// weighted cluster), also when a table's name looks like a path.
    func testGuardPlaces() {
        let t = "route_configurations[\"a.virtual_hosts[1].routes[1]\"]"
        let table = Lowerer.RouteGuard(filter: "f", places: [t])
        XCTAssertTrue(table.guards("\(t).virtual_hosts[0].routes[3]"))
        XCTAssertFalse(table.guards("route_configurations[\"b\"].virtual_hosts[0].routes[3]"))
        let vhost = Lowerer.RouteGuard(filter: "f", places: ["\(t).virtual_hosts[1]"])
        XCTAssertTrue(vhost.guards("\(t).virtual_hosts[1].routes[0]"))
        XCTAssertFalse(vhost.guards("\(t).virtual_hosts[0].routes[1]"))
        XCTAssertFalse(vhost.guards("\(t).virtual_hosts[10].routes[0]"))
        let weighted = Lowerer.RouteGuard(filter: "f", places: ["\(t).virtual_hosts[0].routes[2].route.weighted_clusters.clusters[1]"])
        XCTAssertTrue(weighted.guards("\(t).virtual_hosts[0].routes[2]"))
        XCTAssertFalse(weighted.guards("\(t).virtual_hosts[0].routes[20]"))
        XCTAssertTrue(Lowerer.RouteGuard(filter: "f", places: nil).guards("\(t).virtual_hosts[9].routes[9]"))
        XCTAssertFalse(Lowerer.RouteGuard(filter: "f", places: []).guards("\(t).virtual_hosts[0].routes[0]"))
    }

    /// The compiled matcher in the kernel (BPF_PROG_TEST_RUN) refuses what the
    /// interpreter refuses, on both tables, request by request.
    func testKernelAgreesWithTheInterpreter() throws {
        try TestPaths.requireKernel()
        let fe = frontEnd()
        let report = try HTTPDifferential.run(fe.ir, perTable: 10_000, seed: 3)
        XCTAssertEqual(report.checked + report.skipped, 20_000)
        XCTAssertTrue(report.mismatches.isEmpty, report.mismatches.prefix(3).map(\.description).joined(separator: "\n"))
        XCTAssertGreaterThan(report.outcomes.filter { $0.key.contains("local") }.values.reduce(0, +), 0, "\(report.outcomes)")
        XCTAssertGreaterThan(report.outcomes.filter { $0.key.contains("cluster") }.values.reduce(0, +), 0, "\(report.outcomes)")
    }
}
