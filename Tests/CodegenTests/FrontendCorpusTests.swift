import Foundation
import SwiftProtobuf
import XCTest

@testable import Codegen

/// Every file of the shared corpus (shared/corpus, or $XDS2BPF_CORPUS) parses
/// without a crash into the expected number of resources, and with errors only
/// where they are expected. Envoy Gateway's four-file cases and Kuma's per-type
/// folders are also parsed as one snapshot each (rows ending in "/").
final class FrontendCorpusTests: XCTestCase {
    struct Expect {
        var path: String
        var l: Int, r: Int, c: Int, e: Int
        /// Whether error diagnostics are expected.
        var errors: Bool
        /// The exact set of diagnostic ids expected (notes included).
        var ids: Set<String>

        init(_ path: String, l: Int, r: Int, c: Int, e: Int, errors: Bool, ids: Set<String>) {
            self.path = path
            self.l = l
            self.r = r
            self.c = c
            self.e = e
            self.errors = errors
            self.ids = ids
        }
    }

    static let table: [Expect] = [
        .init("envoy-configs/configs/envoy-demo.yaml", l: 1, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-configs/configs/internal_listener_proxy.yaml", l: 2, r: 0, c: 2, e: 0, errors: false, ids: []),
        .init("envoy-configs/configs/original-dst-cluster/proxy_config.yaml", l: 1, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-examples/double-proxy/envoy-frontend.yaml", l: 1, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-examples/dynamic-config-fs/configs/cds.yaml", l: 0, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-examples/dynamic-config-fs/configs/lds.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: ["XDS010"]),
        .init("envoy-examples/dynamic-config-fs/envoy.yaml", l: 0, r: 0, c: 0, e: 0, errors: false, ids: ["XDS007"]),
        .init("envoy-examples/locality-load-balancing/envoy.yaml", l: 1, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-examples/mysql/envoy.yaml", l: 1, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-examples/route-mirror/envoy.yaml", l: 1, r: 0, c: 4, e: 0, errors: false, ids: []),
        .init("envoy-examples/tls-inspector/envoy.yaml", l: 1, r: 0, c: 3, e: 0, errors: false, ids: []),
        .init("envoy-examples/tls-sni/envoy.yaml", l: 1, r: 0, c: 3, e: 0, errors: false, ids: []),
        .init("envoy-examples/tls/envoy-https-passthrough.yaml", l: 1, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-examples/udp/envoy.yaml", l: 1, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-examples/websocket/envoy-ws-route.yaml", l: 1, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-gateway/egctl/config-in.all.json", l: 1, r: 1, c: 2, e: 1, errors: false, ids: ["XDS007"]),
        .init("envoy-gateway/egctl/translate-from-gateway-api-to-xds.all.json", l: 6, r: 2, c: 5, e: 5, errors: false, ids: ["XDS007"]),
        .init("envoy-gateway/xds-ir/health-check/health-check.clusters.yaml", l: 0, r: 0, c: 5, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/health-check/health-check.endpoints.yaml", l: 0, r: 0, c: 0, e: 5, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/health-check/health-check.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/health-check/health-check.routes.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-direct-response/http-route-direct-response.clusters.yaml", l: 0, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-direct-response/http-route-direct-response.endpoints.yaml", l: 0, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-direct-response/http-route-direct-response.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-direct-response/http-route-direct-response.routes.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-dns-cluster/http-route-dns-cluster.clusters.yaml", l: 0, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-dns-cluster/http-route-dns-cluster.endpoints.yaml", l: 0, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-dns-cluster/http-route-dns-cluster.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-dns-cluster/http-route-dns-cluster.routes.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-redirect/http-route-redirect.clusters.yaml", l: 0, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-redirect/http-route-redirect.endpoints.yaml", l: 0, r: 0, c: 0, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-redirect/http-route-redirect.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-redirect/http-route-redirect.routes.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-rewrite-url-host/http-route-rewrite-url-host.clusters.yaml", l: 0, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-rewrite-url-host/http-route-rewrite-url-host.endpoints.yaml", l: 0, r: 0, c: 0, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-rewrite-url-host/http-route-rewrite-url-host.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-rewrite-url-host/http-route-rewrite-url-host.routes.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-rewrite-url-prefix/http-route-rewrite-url-prefix.clusters.yaml", l: 0, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init(
            "envoy-gateway/xds-ir/http-route-rewrite-url-prefix/http-route-rewrite-url-prefix.endpoints.yaml", l: 0, r: 0, c: 0, e: 1, errors: false, ids: []),
        .init(
            "envoy-gateway/xds-ir/http-route-rewrite-url-prefix/http-route-rewrite-url-prefix.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-rewrite-url-prefix/http-route-rewrite-url-prefix.routes.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-timeout/http-route-timeout.clusters.yaml", l: 0, r: 0, c: 7, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-timeout/http-route-timeout.endpoints.yaml", l: 0, r: 0, c: 0, e: 7, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-timeout/http-route-timeout.listeners.yaml", l: 2, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-timeout/http-route-timeout.routes.yaml", l: 0, r: 2, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-weighted-zones/http-route-weighted-zones.clusters.yaml", l: 0, r: 0, c: 3, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-weighted-zones/http-route-weighted-zones.endpoints.yaml", l: 0, r: 0, c: 0, e: 3, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-weighted-zones/http-route-weighted-zones.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-weighted-zones/http-route-weighted-zones.routes.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route/http-route.clusters.yaml", l: 0, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route/http-route.endpoints.yaml", l: 0, r: 0, c: 0, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route/http-route.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route/http-route.routes.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/load-balancer/load-balancer.clusters.yaml", l: 0, r: 0, c: 17, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/load-balancer/load-balancer.endpoints.yaml", l: 0, r: 0, c: 0, e: 17, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/load-balancer/load-balancer.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/load-balancer/load-balancer.routes.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/retry/retry.clusters.yaml", l: 0, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/retry/retry.endpoints.yaml", l: 0, r: 0, c: 0, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/retry/retry.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/retry/retry.routes.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tcp-route-complex/tcp-route-complex.clusters.yaml", l: 0, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tcp-route-complex/tcp-route-complex.endpoints.yaml", l: 0, r: 0, c: 0, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tcp-route-complex/tcp-route-complex.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tcp-route-complex/tcp-route-complex.routes.yaml", l: 0, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tcp-route-simple/tcp-route-simple.clusters.yaml", l: 0, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tcp-route-simple/tcp-route-simple.endpoints.yaml", l: 0, r: 0, c: 0, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tcp-route-simple/tcp-route-simple.listeners.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tcp-route-simple/tcp-route-simple.routes.yaml", l: 0, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tls-route-passthrough/tls-route-passthrough.clusters.yaml", l: 0, r: 0, c: 2, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tls-route-passthrough/tls-route-passthrough.endpoints.yaml", l: 0, r: 0, c: 0, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tls-route-passthrough/tls-route-passthrough.listeners.yaml", l: 2, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tls-route-passthrough/tls-route-passthrough.routes.yaml", l: 0, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-router-check/ClusterHeader.golden.proto.json", l: 0, r: 0, c: 0, e: 0, errors: true, ids: ["XDS005"]),
        .init("envoy-router-check/ClusterHeader.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-router-check/ComprehensiveRoutes.golden.proto.json", l: 0, r: 0, c: 0, e: 0, errors: true, ids: ["XDS005"]),
        .init("envoy-router-check/ComprehensiveRoutes.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-router-check/ContentType.golden.proto.json", l: 0, r: 0, c: 0, e: 0, errors: true, ids: ["XDS005"]),
        .init("envoy-router-check/ContentType.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-router-check/DirectResponse.golden.proto.json", l: 0, r: 0, c: 0, e: 0, errors: true, ids: ["XDS005"]),
        .init("envoy-router-check/DirectResponse.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-router-check/DynamicMetadata.golden.proto.json", l: 0, r: 0, c: 0, e: 0, errors: true, ids: ["XDS005"]),
        .init("envoy-router-check/DynamicMetadata.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-router-check/Redirect.golden.proto.json", l: 0, r: 0, c: 0, e: 0, errors: true, ids: ["XDS005"]),
        .init("envoy-router-check/Redirect.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-router-check/Redirect2.golden.proto.json", l: 0, r: 0, c: 0, e: 0, errors: true, ids: ["XDS005"]),
        .init("envoy-router-check/Redirect2.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-router-check/Redirect3.golden.proto.json", l: 0, r: 0, c: 0, e: 0, errors: true, ids: ["XDS005"]),
        .init("envoy-router-check/Redirect3.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-router-check/Redirect4.golden.proto.json", l: 0, r: 0, c: 0, e: 0, errors: true, ids: ["XDS005"]),
        .init("envoy-router-check/Redirect4.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-router-check/Runtime.golden.proto.json", l: 0, r: 0, c: 0, e: 0, errors: true, ids: ["XDS005"]),
        .init("envoy-router-check/Runtime.yaml", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-router-check/TestRoutesFailures.golden.proto.json", l: 0, r: 0, c: 0, e: 0, errors: true, ids: ["XDS005"]),
        .init("go-control-plane/sample/bootstrap-xds.yaml", l: 0, r: 0, c: 2, e: 0, errors: false, ids: ["XDS007"]),
        .init("istio/authz__configdump.yaml", l: 29, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("istio/describe__describe__http_config.json", l: 0, r: 1, c: 1, e: 0, errors: false, ids: []),
        .init("istio/describe__describe__tls_config.json", l: 0, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("istio/proxyconfig__config_dump.json", l: 2, r: 1, c: 3, e: 2, errors: false, ids: ["XDS007"]),
        .init("istio/writer__compare__configdump.json", l: 3, r: 1, c: 1, e: 0, errors: false, ids: []),
        .init("istio/writer__envoy__configdump__endpoint__configdump.json", l: 0, r: 0, c: 0, e: 37, errors: false, ids: []),
        .init("istio/writer__envoy__configdump__routes__istio-gateway-http-route-prefix__configdump.json", l: 0, r: 3, c: 0, e: 0, errors: false, ids: []),
        .init("istio/writer__envoy__configdump__routes__k8s-gateway-http-route-path-prefix__configdump.json", l: 0, r: 3, c: 0, e: 0, errors: false, ids: []),
        .init("kgateway/delegation_relative_paths.yaml", l: 1, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("kgateway/directresponse.yaml", l: 1, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("kgateway/http-routing-proxy.yaml", l: 1, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("kgateway/http-with-header-modifier-proxy.yaml", l: 1, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("kuma/config-dump/full_config.json", l: 2, r: 0, c: 5, e: 0, errors: false, ids: ["XDS007", "XDS009"]),
        .init("kuma/per-type/meshhttproute__headers-match/headers-match.clusters.golden.yaml", l: 0, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("kuma/per-type/meshhttproute__headers-match/headers-match.endpoints.golden.yaml", l: 0, r: 0, c: 0, e: 1, errors: false, ids: []),
        .init("kuma/per-type/meshhttproute__headers-match/headers-match.listeners.golden.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("kuma/per-type/meshhttproute__headers-match/headers-match.routes.golden.yaml", l: 0, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("kuma/per-type/meshhttproute__match-priority/match-priority.clusters.golden.yaml", l: 0, r: 0, c: 1, e: 0, errors: false, ids: []),
        .init("kuma/per-type/meshhttproute__match-priority/match-priority.endpoints.golden.yaml", l: 0, r: 0, c: 0, e: 1, errors: false, ids: []),
        .init("kuma/per-type/meshhttproute__match-priority/match-priority.listeners.golden.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("kuma/per-type/meshhttproute__match-priority/match-priority.routes.golden.yaml", l: 0, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("kuma/per-type/meshtcproute__split-traffic/split-traffic.clusters.golden.yaml", l: 0, r: 0, c: 4, e: 0, errors: false, ids: []),
        .init("kuma/per-type/meshtcproute__split-traffic/split-traffic.endpoints.golden.yaml", l: 0, r: 0, c: 0, e: 4, errors: false, ids: []),
        .init("kuma/per-type/meshtcproute__split-traffic/split-traffic.listeners.golden.yaml", l: 1, r: 0, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/health-check/", l: 1, r: 1, c: 5, e: 5, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route/", l: 1, r: 1, c: 1, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-direct-response/", l: 1, r: 1, c: 0, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-dns-cluster/", l: 1, r: 1, c: 1, e: 0, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-redirect/", l: 1, r: 1, c: 1, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-rewrite-url-host/", l: 1, r: 1, c: 1, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-rewrite-url-prefix/", l: 1, r: 1, c: 1, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-timeout/", l: 2, r: 2, c: 7, e: 7, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/http-route-weighted-zones/", l: 1, r: 1, c: 3, e: 3, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/load-balancer/", l: 1, r: 1, c: 17, e: 17, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/retry/", l: 1, r: 1, c: 1, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tcp-route-complex/", l: 1, r: 0, c: 1, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tcp-route-simple/", l: 1, r: 0, c: 1, e: 1, errors: false, ids: []),
        .init("envoy-gateway/xds-ir/tls-route-passthrough/", l: 2, r: 0, c: 2, e: 1, errors: false, ids: []),
        .init("kuma/per-type/meshhttproute__headers-match/", l: 1, r: 0, c: 1, e: 1, errors: false, ids: []),
        .init("kuma/per-type/meshhttproute__match-priority/", l: 1, r: 0, c: 1, e: 1, errors: false, ids: []),
        .init("kuma/per-type/meshtcproute__split-traffic/", l: 1, r: 0, c: 4, e: 4, errors: false, ids: []),
    ]

    static var corpusRoot: String? { TestPaths.corpus?.path }

    static func corpusFiles(_ root: String) -> [String] {
        let e = FileManager.default.enumerator(atPath: root)
        return (e?.allObjects as? [String] ?? [])
            .filter { $0.hasSuffix(".json") || $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
            .sorted()
    }

    func testEveryCorpusFileIsInTheTable() throws {
        let root = try TestPaths.requireCorpus().path
        let listed = Set(Self.table.map(\.path))
        let missing = Self.corpusFiles(root).filter { !listed.contains($0) }
        XCTAssertEqual(missing, [], "corpus files without an expectation row")
    }

    func testCorpus() throws {
        let root = try TestPaths.requireCorpus().path
        let all = Self.corpusFiles(root)
        for row in Self.table {
            let files: [String]
            if row.path.hasSuffix("/") {
                files = all.filter { $0.hasPrefix(row.path) && !$0.dropFirst(row.path.count).contains("/") }
                XCTAssertFalse(files.isEmpty, "\(row.path): no files")
            } else {
                files = [row.path]
            }
            let s = SnapshotParser().parse(files: files.map { root + "/" + $0 })
            let got = (s.listeners.count, s.routeConfigurations.count, s.clusters.count, s.loadAssignments.count)
            XCTAssertTrue(
                got == (row.l, row.r, row.c, row.e),
                "\(row.path): got L=\(got.0) R=\(got.1) C=\(got.2) E=\(got.3), expected L=\(row.l) R=\(row.r) C=\(row.c) E=\(row.e)")
            let errors = s.diagnostics.filter { $0.severity == .error }
            XCTAssertEqual(
                !errors.isEmpty, row.errors,
                "\(row.path): errors \(errors.map(\.rendered))")
            XCTAssertEqual(
                Set(s.diagnostics.map(\.id)), row.ids,
                "\(row.path): diagnostics \(s.diagnostics.map(\.rendered))")
            XCTAssertEqual(s.inputDigests.count, files.count, row.path)
            for r in s.listeners { XCTAssertTrue(r.origin.hasPrefix(root), r.origin) }
            Self.checkTypedConfigs(s, row.path)
        }
    }

    /// Typed configs the schema models unpack; the others name their type.
    static func checkTypedConfigs(_ s: XDSSnapshot, _ label: String) {
        for l in s.listeners {
            let chains = l.message.filterChains + (l.message.hasDefaultFilterChain ? [l.message.defaultFilterChain] : [])
            for chain in chains {
                for f in chain.filters where { if case .typedConfig = f.configType { return true } else { return false } }() {
                    let any = f.typedConfig
                    XCTAssertFalse(any.xdsTypeName.isEmpty, "\(label): \(l.name): filter \(f.name) has no type")
                    XCTAssertNoThrow(
                        try any.unpackIfXDS(Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.self),
                        "\(label): \(l.name)")
                    XCTAssertNoThrow(
                        try any.unpackIfXDS(Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy.self), "\(label): \(l.name)")
                    if let hcm = try? any.unpackIfXDS(
                        Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.self)
                    {
                        for hf in hcm.httpFilters where { if case .typedConfig = hf.configType { return true } else { return false } }() {
                            XCTAssertFalse(hf.typedConfig.xdsTypeName.isEmpty, "\(label): \(l.name): \(hf.name)")
                        }
                    }
                }
            }
        }
    }

    /// Spot checks of decoded content across shapes and key spellings.
    func testCorpusContent() throws {
        let root = try TestPaths.requireCorpus().path
        // Istio: unknown filters keep their type name; HCM unpacks with its RDS name.
        let istio = SnapshotParser().parse(files: [root + "/istio/authz__configdump.yaml"])
        let names = Set(istio.listeners.flatMap { $0.message.filterChains.flatMap { $0.filters.map(\.typedConfig.xdsTypeName) } })
        XCTAssertTrue(names.contains("stats.PluginConfig"), "\(names)")
        XCTAssertTrue(names.contains("envoy.tcp.metadataexchange.config.MetadataExchange"), "\(names)")
        XCTAssertTrue(names.contains(Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.protoMessageName))
        let l9080 = try XCTUnwrap(istio.listeners.first { $0.name == "0.0.0.0_9080" })
        XCTAssertTrue(l9080.origin.hasSuffix("authz__configdump.yaml: configs[0].dynamic_listeners[10]"), l9080.origin)
        let hcm = try XCTUnwrap(
            l9080.message.filterChains.lazy.flatMap(\.filters).compactMap {
                try? $0.typedConfig.unpackIfXDS(Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.self)
            }.first)
        XCTAssertEqual(hcm.rds.routeConfigName, "9080")

        // Envoy Gateway (camelCase, four files): typed LB policies and locality weights.
        let eg = SnapshotParser().parse(
            files: ["listeners", "routes", "clusters", "endpoints"].map {
                root + "/envoy-gateway/xds-ir/load-balancer/load-balancer.\($0).yaml"
            })
        let policies = eg.clusters.flatMap { $0.message.loadBalancingPolicy.policies.map(\.typedExtensionConfig.typedConfig.xdsTypeName) }
        XCTAssertTrue(policies.contains(Envoy_Extensions_LoadBalancingPolicies_LeastRequest_V3_LeastRequest.protoMessageName), "\(policies)")
        XCTAssertTrue(policies.contains(Envoy_Extensions_LoadBalancingPolicies_Maglev_V3_Maglev.protoMessageName), "\(policies)")
        let weighted = SnapshotParser().parse(files: [root + "/envoy-gateway/xds-ir/http-route-weighted-zones/http-route-weighted-zones.endpoints.yaml"])
        XCTAssertTrue(weighted.loadAssignments.flatMap { $0.message.endpoints.map(\.loadBalancingWeight.value) }.contains { $0 > 1 })

        // kgateway: deprecated exact_match header matcher.
        let kg = SnapshotParser().parse(files: [root + "/kgateway/http-routing-proxy.yaml"])
        let hm = kg.routeConfigurations.flatMap { $0.message.virtualHosts.flatMap { $0.routes.flatMap(\.match.headers) } }
        XCTAssertTrue(hm.contains { if case .exactMatch = $0.headerMatchSpecifier { return true } else { return false } }, "\(hm)")

        // Router-check route config: a Duration written as {nanos: 0}.
        let rc = SnapshotParser().parse(files: [root + "/envoy-router-check/ClusterHeader.yaml"])
        XCTAssertEqual(rc.routeConfigurations.first?.message.virtualHosts.first?.routes.last?.route.clusterHeader, "some_header")
        XCTAssertEqual(rc.routeConfigurations.first?.message.virtualHosts.first?.routes.last?.route.hasTimeout, true)

        // Kuma: legacy v2 clusters decoded as v3.
        let kuma = SnapshotParser().parse(files: [root + "/kuma/config-dump/full_config.json"])
        XCTAssertTrue(kuma.diagnostics.contains { $0.id == "XDS009" })
        XCTAssertFalse(kuma.clusters.contains { $0.name.isEmpty })

        // envoy-examples: `filters` written as a mapping.
        let lds = SnapshotParser().parse(files: [root + "/envoy-examples/dynamic-config-fs/configs/lds.yaml"])
        XCTAssertEqual(lds.listeners.first?.message.filterChains.first?.filters.count, 1)
        XCTAssertEqual(
            lds.listeners.first?.message.filterChains.first?.filters.first?.typedConfig.xdsTypeName,
            Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.protoMessageName)
    }
}
