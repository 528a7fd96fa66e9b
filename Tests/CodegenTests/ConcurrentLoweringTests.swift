import Foundation
import XCTest

@testable import Codegen
@testable import X2BResolve

/// Clusters of a large mesh are lowered on every core (`Lowerer.lowerClusters`); the IR
/// and the diagnostics must be exactly those of lowering one cluster at a time.
final class ConcurrentLoweringTests: XCTestCase {
    func testManyClustersLowerAsOneAtATime() throws {
        let n = Lowerer.concurrentClusterMinimum * 4 + 3
        var clusters: [String] = []
        let policies = ["ROUND_ROBIN", "LEAST_REQUEST", "RING_HASH", "MAGLEV", "RANDOM", "CLUSTER_PROVIDED"]
        for i in 0..<n {
            // varied shapes, several of them diagnosed: circuit breakers (not enforced),
            // CLUSTER_PROVIDED (unsupported), a host name without --resolve, port 0
            let host = i % 53 == 7 ? "backend-\(i).example.com" : "10.\(i / 250).\(i % 250).1"
            let port = i % 71 == 3 ? 0 : 8000 + i % 7
            let type = i % 53 == 7 ? "STRICT_DNS" : "STATIC"
            let breakers = i % 5 == 0 ? #", "circuit_breakers": {"thresholds": [{"max_connections": 10}]}"# : ""
            clusters.append(
                """
                {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "c-\(String(format: "%04d", i))",
                 "type": "\(type)", "connect_timeout": "1s", "lb_policy": "\(policies[i % policies.count])"\(breakers),
                 "load_assignment": {"cluster_name": "c-\(i)", "endpoints": [{"priority": \(i % 3 == 0 ? 1 : 0),
                   "lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "\(host)", "port_value": \(port)}}},
                                     "load_balancing_weight": \(1 + i % 4)},
                                    {"endpoint": {"address": {"socket_address": {"address": "10.200.\(i % 250).2", "port_value": 9000}}}}]}]}}
                """)
        }
        // one listener referencing some clusters (the rest are unreferenced: lowered too)
        let listener = """
            {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "l",
             "address": {"socket_address": {"address": "10.96.0.1", "port_value": 80}},
             "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
               "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
               "stat_prefix": "s", "weighted_clusters": {"clusters": [{"name": "c-0001", "weight": 1}, {"name": "c-0002", "weight": 3}]}}}]}]}
            """
        let json = #"{"resources": ["# + ([listener] + clusters).joined(separator: ",\n") + "]}"
        let snapshot = SnapshotParser().parse(Array(json.utf8), sourceName: "many.json")
        XCTAssertEqual(snapshot.clusters.count, n, "\(snapshot.diagnostics.map(\.rendered).prefix(3))")
        let resolved = Resolver().resolve(snapshot)
        let (together, dTogether) = Lowerer.lower(resolved, concurrentClusters: true)
        let (apart, dApart) = Lowerer.lower(resolved, concurrentClusters: false)
        XCTAssertEqual(together.clusters.count, apart.clusters.count)
        XCTAssertEqual(together, apart)
        XCTAssertEqual(dTogether.map(\.rendered), dApart.map(\.rendered))
        // the shapes above are diagnosed, so the order of diagnostics is tested, not only the IR
        XCTAssertGreaterThan(Set(dApart.map(\.id)).count, 2, "\(Set(dApart.map(\.id)))")
    }
}
