import Foundation
import XCTest

@testable import Codegen
@testable import X2BIR

/// Typed `load_balancing_policy` extensions the kernel decides as Envoy does.
final class LBPolicyTests: XCTestCase {
    /// A TCP listener in front of cluster `c`, whose endpoints have weights 1, 3 and 5.
    func bootstrap(policy: String) -> String {
        """
        static_resources:
          listeners:
          - name: db
            address: {socket_address: {address: 10.96.0.2, port_value: 5432}}
            filter_chains:
            - filters:
              - name: envoy.filters.network.tcp_proxy
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                  stat_prefix: db
                  cluster: c
          clusters:
          - name: c
            type: STATIC
            load_balancing_policy:
              policies:
              - typed_extension_config:
                  name: lb
                  typed_config:
                    "@type": \(policy)
            load_assignment:
              cluster_name: c
              endpoints:
              - lb_endpoints:
                - {endpoint: {address: {socket_address: {address: 10.1.0.1, port_value: 5432}}}, load_balancing_weight: 1}
                - {endpoint: {address: {socket_address: {address: 10.1.0.2, port_value: 5432}}}, load_balancing_weight: 3}
                - {endpoint: {address: {socket_address: {address: 10.1.0.3, port_value: 5432}}}, load_balancing_weight: 5}

        """
    }

    func frontEnd(_ yaml: String) throws -> FrontEndResult {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-lb-\(UUID().uuidString).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(at: file) }
        return Pipeline.frontEnd(files: [file.path])
    }

    /// Client-side weighted round robin takes its weights from ORCA load reports, which
    /// the kernel never sees: Envoy's choice while no endpoint has reported load is
    /// round robin over equal weights, the endpoints' own weights set aside. It
    /// compiles with a warning naming the policy, not as an unsupported cluster.
    func testClientSideWeightedRoundRobinIsEqualWeightRoundRobin() throws {
        let fe = try frontEnd(
            bootstrap(policy: "type.googleapis.com/envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin"))
        XCTAssertFalse(fe.rejected, fe.diagnostics.map(\.rendered).joined(separator: "\n"))
        let warning = try XCTUnwrap(fe.diagnostics.first { $0.message.contains("client_side_weighted_round_robin") })
        XCTAssertEqual(warning.id, "XDS202")
        XCTAssertEqual(warning.path, #"clusters["c"].load_balancing_policy.policies[0]"#)
        let c = try XCTUnwrap(fe.ir.clusters.first { $0.name == "c" })
        XCTAssertEqual(c.lb, .roundRobin)
        XCTAssertEqual(c.priorities.flatMap { $0.localities.flatMap { $0.endpoints.map(\.weight) } }, [1, 1, 1])

        // the same cluster under plain round robin keeps the endpoints' weights
        let rr = try frontEnd(bootstrap(policy: "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"))
        XCTAssertEqual(
            rr.ir.clusters.first { $0.name == "c" }?.priorities.flatMap { $0.localities.flatMap { $0.endpoints.map(\.weight) } }, [1, 3, 5])
    }
}
