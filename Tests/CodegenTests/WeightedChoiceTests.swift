import Foundation
import XCTest

@testable import Codegen
@testable import X2BIR
@testable import X2BSemantics

/// Weighted clusters whose random value comes from a header or the hash policy
/// (`header_name`, `use_hash_policy`): the kernel cannot compute that value, so
/// such a choice compiles only when it cannot change the pick.
final class WeightedChoiceTests: XCTestCase {
    /// A bootstrap: one HTTP listener whose only route picks among clusters c0, c1, ...
    /// with `weights`, its random value chosen by `chooser` (a weighted_clusters field).
    func bootstrap(weights: [UInt32], chooser: String) -> String {
        var y = [
            "static_resources:",
            "  listeners:",
            "  - name: web",
            "    address: {socket_address: {address: 10.96.0.1, port_value: 80}}",
            "    filter_chains:",
            "    - filters:",
            "      - name: envoy.filters.network.http_connection_manager",
            "        typed_config:",
            "          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "          stat_prefix: web",
            "          http_filters:",
            "          - name: envoy.filters.http.router",
            "            typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}",
            "          route_config:",
            "            virtual_hosts:",
            "            - name: all",
            "              domains: [\"*\"]",
            "              routes:",
            "              - match: {prefix: /}",
            "                route:",
            "                  hash_policy: [{connection_properties: {source_ip: true}}]",
            "                  weighted_clusters:",
            "                    \(chooser)",
            "                    clusters:",
        ]
        y += weights.indices.map { "                    - {name: c\($0), weight: \(weights[$0])}" }
        y.append("  clusters:")
        for i in weights.indices {
            y += [
                "  - name: c\(i)",
                "    type: STATIC",
                "    load_assignment:",
                "      cluster_name: c\(i)",
                "      endpoints:",
                "      - lb_endpoints:",
                "        - endpoint: {address: {socket_address: {address: 10.1.0.\(i + 1), port_value: 8080}}}",
            ]
        }
        return y.joined(separator: "\n") + "\n"
    }

    func frontEnd(_ yaml: String) throws -> FrontEndResult {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-wc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("bootstrap.yaml")
        try Data(yaml.utf8).write(to: url)
        return Pipeline.frontEnd(files: [url.path])
    }

    /// Envoy Gateway's shape: use_hash_policy over one backend. Any value picks it.
    func testOneWeightedClusterIsRoutedWhateverTheValue() throws {
        for chooser in ["use_hash_policy: true", "header_name: x-pick"] {
            for weights: [UInt32] in [[1], [0, 5, 0]] {
                let fe = try frontEnd(bootstrap(weights: weights, chooser: chooser))
                XCTAssertFalse(fe.rejected, "\(chooser) \(weights): \(fe.diagnostics.map(\.rendered))")
                XCTAssertFalse(fe.diagnostics.contains { $0.id == "XDS201" }, "\(fe.diagnostics.map(\.rendered))")
                for random: UInt64 in [0, 1, 2, 3, 0xffff_ffff] {
                    let e = Interpreter.explain(
                        fe.ir, address: IRAddress(parsing: "10.96.0.1")!, port: 80,
                        request: HTTPRequest(authority: "a", path: "/x", headers: [("x-pick", "7")]), random: random)
                    XCTAssertEqual(e.cluster, weights.count == 1 ? "c0" : "c1", e.text)
                }
            }
        }
    }

    /// Two clusters with weight: the value decides, the kernel cannot see it (fail closed: rejected).
    func testSeveralWeightedClustersChosenByAValueAreRejected() throws {
        for chooser in ["use_hash_policy: true", "header_name: x-pick"] {
            let fe = try frontEnd(bootstrap(weights: [1, 3], chooser: chooser))
            XCTAssertTrue(fe.rejected, chooser)
            XCTAssertTrue(
                fe.diagnostics.contains {
                    $0.id == "XDS201" && $0.path.hasSuffix(".weighted_clusters") && $0.message.contains("hash policy")
                }, "\(fe.diagnostics.map(\.rendered))")
        }
    }
}
