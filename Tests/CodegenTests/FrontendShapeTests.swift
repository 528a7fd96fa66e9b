import Foundation
import SwiftProtobuf
import XCTest

@testable import Codegen

/// Input shapes the parse stage accepts, on small inline inputs.
final class FrontendShapeTests: XCTestCase {
    typealias HCM = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager

    func parse(_ text: String, name: String = "in.json", format: InputFormat = .auto) -> XDSSnapshot {
        SnapshotParser(format: format).parse(Array(text.utf8), sourceName: name)
    }

    func ids(_ s: XDSSnapshot) -> [String] { s.diagnostics.map(\.id) }

    func assertNoErrors(_ s: XDSSnapshot, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(s.diagnostics.hasErrors, "\(s.diagnostics.map(\.rendered))", file: file, line: line)
    }

    static let hcmURL = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

    // MARK: Shapes

    func testResourcesListWithTypeURLsAndCamelCase() throws {
        let s = parse(
            """
            {"resources": [
              {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "l1",
               "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 8080}},
               "filterChains": [{"filters": [{"name": "hcm", "typedConfig": {
                  "@type": "\(Self.hcmURL)", "statPrefix": "x",
                  "rds": {"routeConfigName": "r1", "configSource": {"ads": {}}},
                  "httpFilters": [{"name": "envoy.filters.http.router", "typedConfig": {
                     "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]},
              {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": "r1",
               "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c1"}}]}]}
            ]}
            """)
        assertNoErrors(s)
        XCTAssertEqual(s.listeners.map(\.name), ["l1"])
        XCTAssertEqual(s.listeners[0].origin, "in.json: resources[0]")
        XCTAssertEqual(s.listeners[0].message.address.socketAddress.portValue, 8080)
        let hcm = try XCTUnwrap(s.listeners[0].message.filterChains[0].filters[0].typedConfig.unpackIfXDS(HCM.self))
        XCTAssertEqual(hcm.rds.routeConfigName, "r1")
        XCTAssertEqual(hcm.httpFilters[0].typedConfig.xdsTypeName, "envoy.extensions.filters.http.router.v3.Router")
        XCTAssertEqual(s.routeConfigurations.map(\.name), ["r1"])
        XCTAssertEqual(s.routeConfigurations[0].message.virtualHosts[0].routes[0].route.cluster, "c1")
        XCTAssertEqual(s.inputDigests.count, 1)
        XCTAssertEqual(s.inputDigests[0].count, 64)
    }

    /// A bootstrap that takes its resources from files (dynamic_resources with
    /// path_config_source): the note names the files to give instead.
    func testDynamicResourcesFromFilesAreNamed() {
        let snap = parse(
            """
            dynamic_resources:
              lds_config: {path_config_source: {path: /var/lib/envoy/lds.yaml}}
              cds_config: {path: /etc/envoy/cds.yaml}
            """, name: "envoy.yaml")
        let note = snap.diagnostics.first { $0.id == "XDS007" }
        XCTAssertEqual(
            note?.message,
            "dynamic_resources ignored: Envoy reads listeners from /var/lib/envoy/lds.yaml, clusters from /etc/envoy/cds.yaml at run time; give those files as inputs too"
        )
    }

    func testTypeURLMap() {
        let s = parse(
            """
            {"type.googleapis.com/envoy.config.cluster.v3.Cluster": {
               "c1": {"name": "c1", "type": "EDS", "lb_policy": "MAGLEV", "connect_timeout": "0.25s"},
               "c2": {"name": "c2", "type": "STRICT_DNS"}},
             "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment": {
               "c1": {"cluster_name": "c1", "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
                 {"socket_address": {"address": "10.0.0.1", "port_value": 80}}}, "health_status": "DRAINING"}]}]}},
             "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret": {"s": {"name": "s"}}}
            """)
        assertNoErrors(s)
        XCTAssertEqual(s.clusters.map(\.name), ["c1", "c2"])
        XCTAssertEqual(s.clusters[0].message.lbPolicy, .maglev)
        XCTAssertEqual(s.clusters[0].message.connectTimeout.nanos, 250_000_000)
        XCTAssertEqual(s.clusters[1].message.type, .strictDns)
        XCTAssertEqual(s.loadAssignments.map(\.name), ["c1"])
        XCTAssertEqual(s.loadAssignments[0].message.endpoints[0].lbEndpoints[0].healthStatus, .draining)
        XCTAssertEqual(
            s.clusters[0].origin, "in.json: [\"type.googleapis.com/envoy.config.cluster.v3.Cluster\"][\"c1\"]")
        XCTAssertTrue(s.diagnostics.contains { $0.id == "XDS007" && $0.message.contains("secret") })
    }

    func testKumaResourceWrappers() {
        let s = parse(
            """
            resources:
            - name: backend
              resource:
                '@type': type.googleapis.com/envoy.config.cluster.v3.Cluster
                name: backend
                type: EDS
                edsClusterConfig:
                  edsConfig:
                    ads: {}
                    resourceApiVersion: V3
            - name: backend
              resource:
                '@type': type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
                clusterName: backend
            """, name: "x.clusters.golden.yaml")
        assertNoErrors(s)
        XCTAssertEqual(s.clusters.map(\.name), ["backend"])
        XCTAssertEqual(s.clusters[0].message.edsClusterConfig.edsConfig.resourceApiVersion, .v3)
        XCTAssertEqual(s.loadAssignments.map(\.name), ["backend"])
        XCTAssertEqual(s.clusters[0].origin, "x.clusters.golden.yaml: resources[0].resource")
    }

    func testWrappedConfigDumpsAreMerged() {
        func dump(_ name: String) -> String {
            """
            {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
              "dynamic_active_clusters": [{"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "\(name)"}}]}]}
            """
        }
        let s = parse(#"{"xds": {"ns/a": \#(dump("a")), "ns/b": \#(dump("b"))}}"#)
        assertNoErrors(s)
        XCTAssertEqual(s.clusters.map(\.name), ["a", "b"])
        XCTAssertEqual(s.clusters[1].origin, "in.json: xds[\"ns/b\"].configs[0].dynamic_active_clusters[0]")
    }

    func testEgctlSingleTypeDumpsByGatewayAndByNamespace() {
        // `egctl config envoy-proxy route` and `egctl x translate --type route`: one typed
        // dump section per proxy, under `xds` or under namespace and pod.
        let routes = """
            {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
             "dynamicRouteConfigs": [{"routeConfig": {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
               "name": "NAME", "virtualHosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}]}]}}]}
            """
        for (text, origin) in [
            (#"{"xds": {"envoy-gateway-system/eg": \#(routes)}}"#, "in.yaml: xds[\"envoy-gateway-system/eg\"].dynamicRouteConfigs[0]"),
            (#"{"default": {"eg": \#(routes)}}"#, "in.yaml: [\"default\"][\"eg\"].dynamicRouteConfigs[0]"),
        ] {
            // The file name hints at routes: the wrapper itself must not be read as one.
            let s = parse(text.replacingOccurrences(of: "NAME", with: "r1"), name: "in.yaml")
            assertNoErrors(s)
            XCTAssertEqual(s.routeConfigurations.map(\.name), ["r1"])
            XCTAssertEqual(s.routeConfigurations.first?.origin, origin)
        }
        // `egctl x translate` writes the Gateway API input beside the result.
        let translated = parse(
            #"{"gatewayClass": {"kind": "GatewayClass"}, "httpRoutes": [], "xds": {"ns/eg": \#(routes)}}"#
                .replacingOccurrences(of: "NAME", with: "r2"), name: "t.cluster.yaml")
        assertNoErrors(translated)
        XCTAssertEqual(translated.routeConfigurations.map(\.name), ["r2"])
        XCTAssertEqual(
            translated.diagnostics.filter { $0.id == "XDS007" }.map(\.message),
            [
                "skipped gatewayClass beside `xds` (the input it was translated from, or a diff between outputs): not routing input"
            ])
        // A wrapper nobody knows is an unknown shape, not an unnamed route table.
        let unknown = parse(#"{"proxies": {"a": {"b": 1}}}"#, name: "x.route.yaml")
        XCTAssertEqual(ids(unknown), ["XDS005"])
    }

    func testKumaInspectOutput() {
        let s = parse(
            """
            {"diff": [{"op": "add", "path": "/x"}],
             "xds": {"type.googleapis.com/envoy.config.cluster.v3.Cluster": {"c1": {"name": "c1", "type": "EDS"}},
                     "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment": {"c1": {"clusterName": "c1"}}}}
            """)
        assertNoErrors(s)
        XCTAssertEqual(s.clusters.map(\.name), ["c1"])
        XCTAssertEqual(s.loadAssignments.map(\.name), ["c1"])
        XCTAssertEqual(s.clusters[0].origin, "in.json: xds[\"type.googleapis.com/envoy.config.cluster.v3.Cluster\"][\"c1\"]")
        XCTAssertTrue(s.diagnostics.contains { $0.id == "XDS007" && $0.message.hasPrefix("skipped diff beside") }, "\(s.diagnostics.map(\.rendered))")
    }

    func testPerTypeMaps() {
        let s = parse(
            """
            Listeners:
            - name: l
              address: {socketAddress: {address: '::', portValue: 8080}}
            Routes:
            - name: r
            Clusters: []
            Endpoints:
            - clusterName: c
            Secrets:
            - name: s
            """, name: "proxy.yaml")
        assertNoErrors(s)
        XCTAssertEqual(s.listeners.map(\.name), ["l"])
        XCTAssertEqual(s.routeConfigurations.map(\.name), ["r"])
        XCTAssertEqual(s.loadAssignments.map(\.name), ["c"])
        XCTAssertEqual(s.routeConfigurations[0].origin, "proxy.yaml: Routes[0]")
    }

    func testBareListsUseContentThenFileName() {
        // Kind from content.
        let a = parse(#"[{"name": "c", "connectTimeout": "1s"}, {"clusterName": "c"}]"#, name: "mixed.json")
        assertNoErrors(a)
        XCTAssertEqual(a.clusters.count, 1)
        XCTAssertEqual(a.loadAssignments.count, 1)
        // Only a name: the file name decides, else an error.
        let b = parse(#"[{"name": "r"}]"#, name: "case.routes.yaml")
        assertNoErrors(b)
        XCTAssertEqual(b.routeConfigurations.map(\.name), ["r"])
        let c = parse(#"[{"name": "r"}]"#, name: "case.json")
        XCTAssertEqual(ids(c), ["XDS005"])
        XCTAssertTrue(c.diagnostics.hasErrors)
    }

    func testSingleResources() {
        let r = parse("virtual_hosts:\n- name: v\n  domains: ['*']\n", name: "Check.yaml")
        assertNoErrors(r)
        XCTAssertEqual(r.routeConfigurations.count, 1)
        XCTAssertEqual(r.routeConfigurations[0].origin, "Check.yaml")
        let c = parse(#"{"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "one"}"#)
        XCTAssertEqual(c.clusters.map(\.name), ["one"])
    }

    func testBootstrap() {
        let s = parse(
            """
            admin: {address: {socket_address: {address: 0.0.0.0, port_value: 9901}}}
            static_resources:
              listeners:
              - name: l
                address: {socket_address: {address: 0.0.0.0, port_value: 10000}}
              clusters:
              - name: c
                type: STATIC
                load_assignment:
                  cluster_name: c
                  endpoints:
                  - lb_endpoints:
                    - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 8080}}}
              secrets:
              - name: s
                tls_certificate: {private_key: {inline_string: '[redacted]'}}
            dynamic_resources:
              lds_config: {path_config_source: {path: /etc/lds.yaml}}
            """, name: "envoy.yaml")
        assertNoErrors(s)
        XCTAssertEqual(s.listeners.map(\.origin), ["envoy.yaml: static_resources.listeners[0]"])
        XCTAssertEqual(s.clusters[0].message.loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address.socketAddress.portValue, 8080)
        XCTAssertEqual(s.diagnostics.filter { $0.id == "XDS007" }.count, 2)  // secrets, dynamic_resources
    }

    func testDiscoveryResponseAsJSON() {
        let s = parse(
            """
            {"version_info": "7", "type_url": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
             "resources": [{"@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name": "a"}],
             "nonce": "n"}
            """)
        assertNoErrors(s)
        XCTAssertEqual(s.loadAssignments.map(\.name), ["a"])
        // Resources without @type take the response's type_url.
        let t = parse(#"{"typeUrl": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "resources": [{"name": "x"}]}"#)
        assertNoErrors(t)
        XCTAssertEqual(t.clusters.map(\.name), ["x"])
    }

    func testConfigDumpStates() {
        let s = parse(
            """
            {"configs": [
             {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "dynamic_listeners": [
               {"name": "active", "active_state": {"listener": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "active"}},
                "warming_state": {"listener": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "active"}}},
               {"name": "warm", "warming_state": {"listener": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "warm"}}},
               {"name": "drain", "draining_state": {"listener": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "drain"}}},
               {"name": "bad", "error_state": {"details": "invalid listener"}, "client_status": "NACKED"}]},
             {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
              "dynamic_active_clusters": [{"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "c"}}],
              "dynamic_warming_clusters": [{"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "c"}},
                                           {"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "w"}}]},
             {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamic_route_configs": [
               {"route_config": {"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": "r"}}]},
             {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", "static_endpoint_configs": [
               {"endpoint_config": {"@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name": "c"}}]},
             {"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump", "dynamic_active_secrets": [{"name": "s", "secret": {"[redacted]": 1}}]},
             {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": {}},
             {"@type": "type.googleapis.com/some.vendor.Dump"}
            ]}
            """, name: "dump.json")
        assertNoErrors(s)
        XCTAssertEqual(s.listeners.map(\.name), ["active", "warm"])
        XCTAssertEqual(s.listeners[1].origin, "dump.json: configs[0].dynamic_listeners[1].warming_state")
        XCTAssertEqual(s.clusters.map(\.name), ["c", "w"])
        XCTAssertEqual(s.routeConfigurations.map(\.name), ["r"])
        XCTAssertEqual(s.loadAssignments.map(\.name), ["c"])
        XCTAssertTrue(s.diagnostics.contains { $0.severity == .warning && $0.message.contains("invalid listener") })
        XCTAssertTrue(s.diagnostics.contains { $0.severity == .warning && $0.message.contains("some.vendor.Dump") })
        XCTAssertTrue(s.diagnostics.contains { $0.message.contains("draining") })
    }

    func testLegacyV2TypeURLs() {
        let s = parse(
            """
            {"configs": [{"@type": "type.googleapis.com/envoy.admin.v2alpha.ClustersConfigDump",
              "static_clusters": [{"cluster": {"@type": "type.googleapis.com/envoy.api.v2.Cluster", "name": "a", "hosts": [{"socket_address": {}}]}},
                                  {"cluster": {"@type": "type.googleapis.com/envoy.api.v2.Cluster", "name": "b"}}]}]}
            """)
        assertNoErrors(s)
        XCTAssertEqual(s.clusters.map(\.name), ["a", "b"])
        let legacy = s.diagnostics.filter { $0.id == "XDS009" }
        XCTAssertEqual(legacy.count, 2)  // one per legacy type, repeats counted
        XCTAssertTrue(legacy.allSatisfy { $0.severity == .note })
        XCTAssertTrue(legacy.contains { $0.message.contains("envoy.api.v2.Cluster") && $0.message.contains("2 occurrences") })
    }

    // MARK: Typed configs

    func testUnknownTypedConfigIsCarriedWithItsTypeName() throws {
        let s = parse(
            """
            {"name": "l", "address": {"socket_address": {"address": "1.2.3.4", "port_value": 80}},
             "filter_chains": [{"filters": [
               {"name": "istio.stats", "typed_config": {"@type": "type.googleapis.com/stats.PluginConfig", "disable_host_header_fallback": true, "n": 12345678901234567890}},
               {"name": "wasm", "typed_config": {"@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                  "type_url": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm", "value": {"config": {}}}},
               {"name": "envoy.filters.network.tcp_proxy", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                  "stat_prefix": "s", "weighted_clusters": {"clusters": [{"name": "a", "weight": 1}, {"name": "b", "weight": 3}]}}}]}]}
            """, name: "l.json")
        assertNoErrors(s)
        let filters = try XCTUnwrap(s.listeners.first?.message.filterChains.first?.filters)
        XCTAssertEqual(
            filters.map(\.typedConfig.xdsTypeName),
            [
                "stats.PluginConfig", "envoy.extensions.filters.network.wasm.v3.Wasm",
                "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            ])
        // Not modelled: type URL kept, content dropped (as the binary path keeps the URL).
        XCTAssertEqual(filters[0].typedConfig.typeURL, "type.googleapis.com/stats.PluginConfig")
        XCTAssertTrue(filters[0].typedConfig.value.isEmpty)
        XCTAssertFalse(filters[0].typedConfig.isTypedStruct)
        // The input's own TypedStruct is modelled and kept whole.
        XCTAssertTrue(filters[1].typedConfig.isTypedStruct)
        XCTAssertNotNil(try Udpa_Type_V1_TypedStruct(unpackingAny: filters[1].typedConfig).value.fields["config"])
        let tcp = try XCTUnwrap(filters[2].typedConfig.unpackIfXDS(Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy.self))
        XCTAssertEqual(tcp.weightedClusters.clusters.map(\.weight), [1, 3])
        // Messages are fully binary: serialisable and equal after a round trip.
        let bytes: [UInt8] = try s.listeners[0].message.serializedBytes()
        XCTAssertEqual(try Envoy_Config_Listener_V3_Listener(serializedBytes: bytes).textFormatString(), s.listeners[0].message.textFormatString())
    }

    func testShortUnknownTypeNamesKeepTheirTypeURL() throws {
        // However short its name, a type the schema does not model keeps its URL, content dropped.
        let s = parse(#"{"name": "l", "filter_chains": [{"filters": [{"name": "f", "typed_config": {"@type": "x/a.B", "k": 1}}]}]}"#)
        XCTAssertFalse(s.diagnostics.hasErrors)
        let any = try XCTUnwrap(s.listeners.first?.message.filterChains.first?.filters.first?.typedConfig)
        XCTAssertFalse(any.isTypedStruct)
        XCTAssertEqual(any.typeURL, "x/a.B")
        XCTAssertEqual(any.xdsTypeName, "a.B")
        XCTAssertTrue(any.value.isEmpty)
    }

    func testWellKnownTypesInAny() throws {
        let s = parse(
            """
            {"name": "r", "typed_per_filter_config": {
               "a": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "hello"},
               "b": {"@type": "type.googleapis.com/google.protobuf.Struct", "value": {"k": [1, "x"]}},
               "c": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "2s"},
               "d": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault", "abort": {"http_status": 503}}}}
            """, name: "r.routes.json")
        assertNoErrors(s)
        let m = try XCTUnwrap(s.routeConfigurations.first?.message.typedPerFilterConfig)
        XCTAssertEqual(try Google_Protobuf_StringValue(unpackingAny: m["a"]!).value, "hello")
        XCTAssertEqual(try Google_Protobuf_Struct(unpackingAny: m["b"]!).fields["k"]?.listValue.values.count, 2)
        XCTAssertEqual(try Google_Protobuf_Duration(unpackingAny: m["c"]!).seconds, 2)
        XCTAssertEqual(m["d"]?.xdsTypeName, "envoy.extensions.filters.http.fault.v3.HTTPFault")
    }

    func testInvalidKnownTypedConfigIsReportedAtItsPath() throws {
        let s = parse(
            """
            {"name": "l", "filter_chains": [{"filters": [{"name": "hcm", "typed_config": {
               "@type": "\(Self.hcmURL)", "stat_prefix": "x", "codec_type": "NOT_A_CODEC", "xff_num_trusted_hops": "many"}}]}]}
            """, name: "l.listeners.json")
        let errors = s.diagnostics.filter { $0.severity == .error }
        XCTAssertEqual(errors.count, 1, "\(s.diagnostics.map(\.rendered))")
        XCTAssertEqual(errors.first?.id, "XDS006")
        XCTAssertEqual(errors.first?.path, "l.listeners.json: filter_chains[0].filters[0].typed_config")
        // The listener is kept; the broken config is carried opaquely, still named.
        XCTAssertEqual(s.listeners.count, 1)
        let any = try XCTUnwrap(s.listeners.first?.message.filterChains.first?.filters.first?.typedConfig)
        XCTAssertTrue(any.isTypedStruct)
        XCTAssertEqual(any.xdsTypeName, HCM.protoMessageName)
    }

    func testInvalidResourceNamesTheField() {
        let s = parse(
            """
            [{"name": "c", "type": "EDS", "connect_timeout": "soon"},
             {"name": "d", "type": "EDS"},
             {"virtual_hosts": [{"name": "v", "routes": [{"match": {"prefix": "/"}}, {"match": {"prefix": "/", "headers": [{"name": "h", "range_match": {"start": "x"}}]}}]}]}]
            """, name: "bad.json")
        XCTAssertEqual(s.clusters.map(\.name), ["d"])
        XCTAssertEqual(s.routeConfigurations.count, 0)
        let errors = s.diagnostics.filter { $0.severity == .error }
        XCTAssertEqual(errors.map(\.id), ["XDS006", "XDS006"])
        XCTAssertEqual(errors[0].path, "bad.json: [0]")
        XCTAssertTrue(errors[0].message.contains("connect_timeout"), errors[0].message)
        XCTAssertTrue(errors[1].message.contains("virtual_hosts[0].routes[1].match.headers[0].range_match.start"), errors[1].message)
    }

    func testTypedConfigWithoutTypeIsDropped() {
        let s = parse(#"{"name": "l", "filter_chains": [{"filters": [{"name": "f", "typed_config": {"stat_prefix": "x"}}]}]}"#)
        XCTAssertEqual(s.listeners.count, 1)
        XCTAssertEqual(s.diagnostics.map(\.severity), [.warning])
        XCTAssertFalse(s.listeners[0].message.filterChains[0].filters[0].typedConfig.typeURL.contains("/"))
    }

    // MARK: Spelling and syntax leniency

    func testFiltersWrittenAsAMapping() {
        let s = parse(
            """
            resources:
            - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
              name: listener_0
              filter_chains:
              - filters:
                  name: envoy.filters.network.tcp_proxy
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                    cluster: c
            """, name: "lds.yaml")
        assertNoErrors(s)
        XCTAssertEqual(s.listeners.first?.message.filterChains.first?.filters.count, 1)
        XCTAssertEqual(ids(s), ["XDS010"])
    }

    func testYAMLScalars() throws {
        let s = parse(
            """
            name: r
            virtual_hosts:
            - name: v
              domains: ["*"]
              routes:
              - match:
                  prefix: /
                  headers:
                  - name: x-code
                    exact_match: 200
                  - name: on
                    present_match: true
                route: {cluster: c, timeout: 1.5s, retry_policy: {num_retries: 0x3}}
            """, name: "r.yaml")
        assertNoErrors(s)
        let route = try XCTUnwrap(s.routeConfigurations.first?.message.virtualHosts.first?.routes.first)
        XCTAssertEqual(route.match.headers[0].exactMatch, "200")
        XCTAssertEqual(route.match.headers[1].name, "on")
        XCTAssertEqual(route.route.timeout.nanos, 500_000_000)
        XCTAssertEqual(route.route.retryPolicy.numRetries.value, 3)
    }

    func testYAMLLongLinesAreNotNesting() {
        let dashes = String(repeating: "-", count: 700)
        let s = parse(
            """
            name: c
            connect_timeout: 1s
            metadata:
              filter_metadata:
                notes:
                  banner: |
                    \(dashes)
                  regex: ^/api/[a-z]+$
            """, name: "c.yaml")
        XCTAssertFalse(s.diagnostics.hasErrors, "\(s.diagnostics.map(\.rendered))")
        XCTAssertEqual(
            s.clusters.first?.message.metadata.filterMetadata["notes"]?.fields["banner"]?.stringValue, dashes + "\n")
    }

    func testYAMLAnchorsAndMergeKeys() {
        let s = parse(
            """
            clusters: &c
            - name: a
              connect_timeout: 1s
            listeners:
            - &base
              name: l1
              address: {socket_address: {address: 0.0.0.0, port_value: 1}}
            - <<: *base
              name: l2
            """, name: "anchors.yaml")
        assertNoErrors(s)
        XCTAssertEqual(s.listeners.map(\.name), ["l1", "l2"])
        XCTAssertEqual(s.listeners[1].message.address.socketAddress.portValue, 1)
    }

    func testDurationWrittenAsObject() {
        let s = parse(#"{"name": "c", "connect_timeout": {"seconds": 2, "nanos": 5}}"#, name: "c.clusters.json")
        assertNoErrors(s)
        XCTAssertEqual(s.clusters.first?.message.connectTimeout.seconds, 2)
        XCTAssertEqual(s.clusters.first?.message.connectTimeout.nanos, 5)
    }

    func testNonStrictJSONIsReadAsYAML() {
        let s = parse("{\"resources\": [{\"@type\": \"type.googleapis.com/envoy.config.cluster.v3.Cluster\", \"name\": \"c\",},],}")
        assertNoErrors(s)
        XCTAssertEqual(s.clusters.map(\.name), ["c"])
        XCTAssertEqual(s.diagnostics.first?.severity, .note)
        XCTAssertEqual(ids(s), ["XDS003"])
    }

    func testMultiDocumentYAML() {
        let s = parse("---\nname: a\nconnect_timeout: 1s\n---\nname: b\ntype: EDS\n---\n", name: "multi.yaml")
        assertNoErrors(s)
        XCTAssertEqual(s.clusters.map(\.origin), ["multi.yaml: documents[0]", "multi.yaml: documents[1]"])
    }

    func testForcedFormats() {
        let yaml = "name: c\nconnect_timeout: 1s\n"
        XCTAssertEqual(parse(yaml, name: "c", format: .yaml).clusters.count, 1)
        XCTAssertEqual(ids(parse(yaml, name: "c", format: .json)), ["XDS003"])
        XCTAssertEqual(ids(parse(yaml, name: "c", format: .pb)), ["XDS002"])
        XCTAssertEqual(parse(#"{"name": "c", "type": "EDS"}"#, name: "c", format: .yaml).clusters.count, 1)
    }

    func testRouterCheckTestFileIsNotASnapshot() {
        let s = parse(#"{"tests": [{"test_name": "t", "input": {"authority": "a", "path": "/"}, "validate": {}}]}"#)
        XCTAssertEqual(ids(s), ["XDS005"])
        XCTAssertTrue(s.diagnostics[0].message.contains("router-check"))
    }

    // MARK: Files

    func testParseFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xds2bpf-frontend-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/frontend")
        let files = ["case.listeners.yaml", "case.routes.yaml", "case.clusters.yaml", "case.endpoints.yaml"].map {
            fixtures.appendingPathComponent($0).path
        }
        let missing = dir.appendingPathComponent("missing.json").path
        let s = SnapshotParser().parse(files: files + [missing, dir.path])
        XCTAssertEqual(s.listeners.count, 1)
        XCTAssertEqual(s.routeConfigurations.count, 1)
        XCTAssertEqual(s.clusters.count, 2)
        XCTAssertEqual(s.loadAssignments.count, 2)
        XCTAssertEqual(s.inputDigests.count, 4)
        XCTAssertEqual(s.diagnostics.map(\.id), ["XDS001", "XDS001"], "\(s.diagnostics.map(\.rendered))")
        XCTAssertEqual(s.diagnostics.map(\.path), [missing, dir.path])
        // The same bytes give the same digest.
        XCTAssertEqual(
            SnapshotParser().parse(files: [files[0]]).inputDigests,
            [SnapshotParser().parse(try Data(contentsOf: URL(fileURLWithPath: files[0])), sourceName: "x").inputDigests[0]])
        // Resources link up as written.
        XCTAssertEqual(s.loadAssignments.map(\.name).sorted(), s.clusters.map(\.name).sorted())
        let weights = s.loadAssignments.flatMap { $0.message.endpoints.map(\.loadBalancingWeight.value) }
        XCTAssertEqual(weights.sorted(), [1, 3])
    }
}
