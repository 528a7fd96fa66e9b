import Foundation
import SwiftProtobuf
import X2BIR
import XCTest

@testable import Codegen
@testable import X2BFrontend

/// Binary inputs: DiscoveryResponse, length-delimited streams, ConfigDump.
final class FrontendBinaryTests: XCTestCase {
    typealias Listener = Envoy_Config_Listener_V3_Listener
    typealias Route = Envoy_Config_Route_V3_RouteConfiguration
    typealias Cluster = Envoy_Config_Cluster_V3_Cluster
    typealias CLA = Envoy_Config_Endpoint_V3_ClusterLoadAssignment
    typealias DR = Envoy_Service_Discovery_V3_DiscoveryResponse
    typealias HCM = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager

    // MARK: Builders

    static func listener(_ name: String, port: UInt32) throws -> Listener {
        var router = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter()
        router.name = "envoy.filters.http.router"
        router.typedConfig = try Google_Protobuf_Any(message: Envoy_Extensions_Filters_Http_Router_V3_Router())
        var stats = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter()
        stats.name = "istio.stats"
        stats.typedConfig = Google_Protobuf_Any()
        stats.typedConfig.typeURL = "type.googleapis.com/stats.PluginConfig"
        stats.typedConfig.value = Data([0x0A, 0x03, 0x61, 0x62, 0x63])
        var hcm = HCM()
        hcm.statPrefix = name
        hcm.codecType = .auto
        hcm.rds.routeConfigName = "r-\(name)"
        hcm.rds.configSource.ads = .init()
        hcm.httpFilters = [stats, router]
        var filter = Envoy_Config_Listener_V3_Filter()
        filter.name = "envoy.filters.network.http_connection_manager"
        filter.typedConfig = try Google_Protobuf_Any(message: hcm)
        var l = Listener()
        l.name = name
        l.address.socketAddress.address = "0.0.0.0"
        l.address.socketAddress.portValue = port
        l.trafficDirection = .outbound
        var chain = Envoy_Config_Listener_V3_FilterChain()
        chain.filterChainMatch.destinationPort.value = port
        chain.filters = [filter]
        l.filterChains = [chain]
        return l
    }

    static func route(_ name: String) -> Route {
        var r = Route()
        r.name = name
        var vh = Envoy_Config_Route_V3_VirtualHost()
        vh.name = "vh"
        vh.domains = ["*", "example.com"]
        var route = Envoy_Config_Route_V3_Route()
        route.match.prefix = "/"
        route.match.caseSensitive.value = false
        var h = Envoy_Config_Route_V3_HeaderMatcher()
        h.name = "x-env"
        h.stringMatch.exact = "prod"
        h.invertMatch = true
        route.match.headers = [h]
        var a = Envoy_Config_Route_V3_WeightedCluster.ClusterWeight()
        a.name = "a"
        a.weight.value = 20
        var b = a
        b.name = "b"
        b.weight.value = 80
        route.route.weightedClusters.clusters = [a, b]
        route.route.timeout.seconds = 3
        vh.routes = [route]
        r.virtualHosts = [vh]
        return r
    }

    static func cluster(_ name: String) -> Cluster {
        var c = Cluster()
        c.name = name
        c.type = .eds
        c.lbPolicy = .ringHash
        c.ringHashLbConfig.minimumRingSize.value = 1024
        c.edsClusterConfig.edsConfig.ads = .init()
        c.connectTimeout.seconds = 1
        return c
    }

    static func cla(_ name: String, endpoints: Int = 2) -> CLA {
        var cla = CLA()
        cla.clusterName = name
        var loc = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
        loc.locality.zone = "z1"
        loc.loadBalancingWeight.value = 3
        loc.priority = 1
        for i in 0..<endpoints {
            var e = Envoy_Config_Endpoint_V3_LbEndpoint()
            e.endpoint.address.socketAddress.address = "10.0.\(i / 256).\(i % 256)"
            e.endpoint.address.socketAddress.portValue = 8080
            e.healthStatus = i % 2 == 0 ? .healthy : .unhealthy
            e.loadBalancingWeight.value = UInt32(i + 1)
            loc.lbEndpoints.append(e)
        }
        cla.endpoints = [loc]
        cla.policy.overprovisioningFactor.value = 140
        return cla
    }

    static func response<M: Message>(_ messages: [M], typeURL: String? = nil) throws -> DR {
        var r = DR()
        r.versionInfo = "1"
        r.typeURL = typeURL ?? "type.googleapis.com/\(M.protoMessageName)"
        r.resources = try messages.map { try Google_Protobuf_Any(message: $0) }
        r.nonce = "n"
        return r
    }

    static func delimited(_ responses: [DR]) throws -> [UInt8] {
        var out: [UInt8] = []
        for r in responses {
            let b: [UInt8] = try r.serializedBytes()
            var n = UInt64(b.count)
            while n >= 0x80 {
                out.append(UInt8(n & 0x7F) | 0x80)
                n >>= 7
            }
            out.append(UInt8(n))
            out += b
        }
        return out
    }

    /// The message as any decoder of its bytes sees it.
    static func canonical<M: Message>(_ m: M) throws -> M {
        try M(serializedBytes: m.serializedBytes() as [UInt8])
    }

    // MARK: Tests

    func testDiscoveryResponseRoundTrip() throws {
        let l = try Self.listener("l1", port: 9080)
        let bytes: [UInt8] = try Self.response([l]).serializedBytes()
        let s = SnapshotParser().parse(bytes, sourceName: "lds.pb")
        XCTAssertEqual(s.diagnostics.map(\.rendered), [])
        XCTAssertEqual(s.listeners.count, 1)
        XCTAssertEqual(s.listeners[0].name, "l1")
        XCTAssertEqual(s.listeners[0].origin, "lds.pb: resources[0]")
        // Text form: an `Any` holding its message and one holding its bytes never compare equal.
        XCTAssertEqual(s.listeners[0].message.textFormatString(), try Self.canonical(l).textFormatString())
        let filters = s.listeners[0].message.filterChains[0].filters
        let hcm = try XCTUnwrap(try filters[0].typedConfig.unpackIfXDS(HCM.self))
        XCTAssertEqual(hcm.rds.routeConfigName, "r-l1")
        XCTAssertEqual(hcm.httpFilters.map(\.typedConfig.xdsTypeName), ["stats.PluginConfig", "envoy.extensions.filters.http.router.v3.Router"])
        // Forced format gives the same.
        XCTAssertEqual(SnapshotParser(format: .pb).parse(bytes, sourceName: "lds.pb").listeners.count, 1)
    }

    func testDelimitedStream() throws {
        let responses = [
            try Self.response([try Self.listener("l1", port: 80), try Self.listener("l2", port: 81)]),
            try Self.response([Self.route("r-l1")]),
            try Self.response([Self.cluster("a"), Self.cluster("b")]),
            try Self.response([Self.cla("a"), Self.cla("b", endpoints: 3)]),
        ]
        let s = SnapshotParser().parse(try Self.delimited(responses), sourceName: "snap.xds.pb")
        XCTAssertEqual(s.diagnostics.map(\.rendered), [])
        XCTAssertEqual(s.listeners.map(\.name), ["l1", "l2"])
        XCTAssertEqual(s.routeConfigurations.map(\.name), ["r-l1"])
        XCTAssertEqual(s.clusters.map(\.name), ["a", "b"])
        XCTAssertEqual(s.loadAssignments.map(\.name), ["a", "b"])
        XCTAssertEqual(s.loadAssignments[1].origin, "snap.xds.pb: responses[3].resources[1]")
        XCTAssertEqual(s.routeConfigurations[0].message, Self.route("r-l1"))
        XCTAssertEqual(s.clusters[0].message, Self.cluster("a"))
        XCTAssertEqual(s.loadAssignments[1].message, Self.cla("b", endpoints: 3))
        // A stream of one response also works.
        let one = SnapshotParser().parse(try Self.delimited([responses[2]]), sourceName: "one.pb")
        XCTAssertEqual(one.clusters.count, 2)
        XCTAssertEqual(one.diagnostics.count, 0)
    }

    func testBinaryConfigDump() throws {
        typealias D = Envoy_Admin_V3_ListenersConfigDump
        var ld = D()
        var st = D.StaticListener()
        st.listener = try Google_Protobuf_Any(message: try Self.listener("static", port: 15090))
        ld.staticListeners = [st]
        var dl = D.DynamicListener()
        dl.name = "dyn"
        dl.activeState.listener = try Google_Protobuf_Any(message: try Self.listener("dyn", port: 80))
        var warming = D.DynamicListener()
        warming.name = "warm"
        warming.warmingState.listener = try Google_Protobuf_Any(message: try Self.listener("warm", port: 81))
        ld.dynamicListeners = [dl, warming]
        var cd = Envoy_Admin_V3_ClustersConfigDump()
        var dc = Envoy_Admin_V3_ClustersConfigDump.DynamicCluster()
        dc.cluster = try Google_Protobuf_Any(message: Self.cluster("c"))
        cd.dynamicActiveClusters = [dc]
        var rd = Envoy_Admin_V3_RoutesConfigDump()
        var dr = Envoy_Admin_V3_RoutesConfigDump.DynamicRouteConfig()
        dr.routeConfig = try Google_Protobuf_Any(message: Self.route("r"))
        rd.dynamicRouteConfigs = [dr]
        var ed = Envoy_Admin_V3_EndpointsConfigDump()
        var de = Envoy_Admin_V3_EndpointsConfigDump.DynamicEndpointConfig()
        de.endpointConfig = try Google_Protobuf_Any(message: Self.cla("c"))
        ed.dynamicEndpointConfigs = [de]
        var dump = Envoy_Admin_V3_ConfigDump()
        dump.configs = [
            try Google_Protobuf_Any(message: Envoy_Admin_V3_BootstrapConfigDump()),
            try Google_Protobuf_Any(message: ld), try Google_Protobuf_Any(message: cd),
            try Google_Protobuf_Any(message: rd), try Google_Protobuf_Any(message: ed),
            try Google_Protobuf_Any(message: Envoy_Admin_V3_SecretsConfigDump()),
        ]
        let s = SnapshotParser().parse(try dump.serializedBytes() as [UInt8], sourceName: "dump.pb")
        XCTAssertFalse(s.diagnostics.hasErrors, "\(s.diagnostics.map(\.rendered))")
        XCTAssertEqual(s.listeners.map(\.name), ["static", "dyn", "warm"])
        XCTAssertEqual(
            s.listeners.map(\.origin),
            [
                "dump.pb: configs[1].static_listeners[0]", "dump.pb: configs[1].dynamic_listeners[0]",
                "dump.pb: configs[1].dynamic_listeners[1].warming_state",
            ])
        XCTAssertEqual(s.clusters.map(\.name), ["c"])
        XCTAssertEqual(s.routeConfigurations.map(\.name), ["r"])
        XCTAssertEqual(s.loadAssignments.map(\.name), ["c"])
        XCTAssertEqual(s.diagnostics.filter { $0.id == "XDS007" }.count, 3)  // bootstrap, secrets, warming
    }

    /// The shape rules are written once (DumpShape.swift): the same config dump
    /// read as binary and as JSON gives the same resources and diagnostics.
    func testConfigDumpRulesAgreeForJSONAndBinary() throws {
        registerXDSMessageTypes()
        typealias D = Envoy_Admin_V3_ListenersConfigDump
        typealias C = Envoy_Admin_V3_ClustersConfigDump
        func any(_ m: any Message) throws -> Google_Protobuf_Any { try Google_Protobuf_Any(message: m) }
        // Without typed configs of types the schema leaves out, which have no JSON form.
        func listener(_ name: String, port: UInt32) -> Listener {
            var l = Listener()
            l.name = name
            l.address.socketAddress.address = "0.0.0.0"
            l.address.socketAddress.portValue = port
            return l
        }
        var ld = D()
        var st = D.StaticListener()
        st.listener = try any(listener("static", port: 15090))
        ld.staticListeners = [st]
        var both = D.DynamicListener()
        both.name = "both"
        both.activeState.listener = try any(listener("both", port: 80))
        both.warmingState.listener = try any(listener("both", port: 8080))
        var warming = D.DynamicListener()
        warming.name = "warm"
        warming.warmingState.listener = try any(listener("warm", port: 81))
        var draining = D.DynamicListener()
        draining.name = "drain"
        draining.drainingState.listener = try any(listener("drain", port: 82))
        var rejected = D.DynamicListener()
        rejected.name = "rejected"
        rejected.activeState.listener = try any(listener("rejected", port: 83))
        rejected.errorState.details = "cannot bind"
        ld.dynamicListeners = [both, warming, draining, rejected]
        var cd = C()
        var active = C.DynamicCluster()
        active.cluster = try any(Self.cluster("a"))
        active.errorState.details = "update rejected"
        var shadowed = C.DynamicCluster()
        shadowed.cluster = try any(Self.cluster("a"))
        var fresh = C.DynamicCluster()
        fresh.cluster = try any(Self.cluster("b"))
        cd.dynamicActiveClusters = [active]
        cd.dynamicWarmingClusters = [shadowed, fresh]
        var dump = Envoy_Admin_V3_ConfigDump()
        dump.configs = [try any(ld), try any(cd)]

        let bin = SnapshotParser().parse(try dump.serializedBytes() as [UInt8], sourceName: "dump")
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        let json = SnapshotParser().parse(Array(try dump.jsonUTF8Data(options: options)), sourceName: "dump")
        for s in [bin, json] {
            XCTAssertEqual(s.listeners.map(\.name), ["static", "both", "warm", "rejected"])
            XCTAssertEqual(s.listeners.map { $0.message.address.socketAddress.portValue }, [15090, 80, 81, 83])
            XCTAssertEqual(s.clusters.map(\.name), ["a", "b"])
            XCTAssertEqual(
                s.diagnostics.map(\.rendered).sorted(),
                [
                    "note[XDS007]: dump: configs[0].dynamic_listeners[0]: listener \"both\": warming version ignored, the active one is used",
                    "note[XDS007]: dump: configs[0].dynamic_listeners[1]: listener \"warm\" is warming (not active yet); its warming version is used",
                    "note[XDS007]: dump: configs[0].dynamic_listeners[2]: listener \"drain\" is draining; skipped",
                    "note[XDS007]: dump: configs[1].dynamic_warming_clusters[0]: cluster \"a\": warming version ignored, the active one is used",
                    "note[XDS007]: dump: configs[1].dynamic_warming_clusters[1]: cluster \"b\" is warming (not active yet); its warming version is used",
                    "warning[XDS007]: dump: configs[0].dynamic_listeners[3]: Envoy rejected an update of listener \"rejected\": cannot bind",
                    "warning[XDS007]: dump: configs[1].dynamic_active_clusters[0]: Envoy reported an update failure here: update rejected",
                ])
        }
        XCTAssertEqual(bin.diagnostics.map(\.rendered), json.diagnostics.map(\.rendered))
    }

    func testResourceWrappersAndLegacyTypeURLs() throws {
        var wrapped = Envoy_Service_Discovery_V3_Resource()
        wrapped.name = "w"
        wrapped.version = "1"
        wrapped.resource = try Google_Protobuf_Any(message: Self.cluster("w"))
        var r1 = DR()
        r1.typeURL = "type.googleapis.com/envoy.service.discovery.v3.Resource"
        r1.resources = [try Google_Protobuf_Any(message: wrapped)]
        var legacy = Google_Protobuf_Any()
        legacy.typeURL = "type.googleapis.com/envoy.api.v2.Cluster"
        legacy.value = try Self.cluster("old").serializedData()
        var r2 = DR()
        r2.typeURL = legacy.typeURL
        r2.resources = [legacy]
        // A v2 listener whose filter config is a v2 HTTP connection manager.
        var l = try Self.listener("v2", port: 80)
        var hcmAny = l.filterChains[0].filters[0].typedConfig
        let hcmBytes = try HCM(unpackingAny: hcmAny).serializedData()
        hcmAny = Google_Protobuf_Any()
        hcmAny.typeURL = "type.googleapis.com/envoy.config.filter.network.http_connection_manager.v2.HttpConnectionManager"
        hcmAny.value = hcmBytes
        l.filterChains[0].filters[0].typedConfig = hcmAny
        var v2l = Google_Protobuf_Any()
        v2l.typeURL = "type.googleapis.com/envoy.api.v2.Listener"
        v2l.value = try l.serializedData()
        var r3 = DR()
        r3.typeURL = v2l.typeURL
        r3.resources = [v2l]
        let s = SnapshotParser().parse(try Self.delimited([r1, r2, r3]), sourceName: "s.pb")
        XCTAssertEqual(s.clusters.map(\.name), ["w", "old"])
        XCTAssertEqual(s.clusters[0].origin, "s.pb: responses[0].resources[0].resource")
        XCTAssertEqual(s.diagnostics.map(\.id), ["XDS009", "XDS009"])
        let any = try XCTUnwrap(s.listeners.first?.message.filterChains.first?.filters.first?.typedConfig)
        XCTAssertEqual(any.xdsTypeName, HCM.protoMessageName)
        XCTAssertEqual(try any.unpackIfXDS(HCM.self)?.rds.routeConfigName, "r-v2")
    }

    func testJSONAndBinaryPathsAgree() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/frontend")
        let json = SnapshotParser().parse(
            files: ["listeners", "routes", "clusters", "endpoints"].map { fixtures.appendingPathComponent("case.\($0).yaml").path })
        XCTAssertFalse(json.diagnostics.hasErrors)
        let stream = try Self.delimited([
            try Self.response(json.listeners.map(\.message)), try Self.response(json.routeConfigurations.map(\.message)),
            try Self.response(json.clusters.map(\.message)), try Self.response(json.loadAssignments.map(\.message)),
        ])
        let bin = SnapshotParser().parse(stream, sourceName: "case.pb")
        XCTAssertEqual(bin.diagnostics.count, 0)
        XCTAssertEqual(bin.listeners.map(\.message), json.listeners.map(\.message))
        XCTAssertEqual(bin.routeConfigurations.map(\.message), json.routeConfigurations.map(\.message))
        XCTAssertEqual(bin.clusters.map(\.message), json.clusters.map(\.message))
        XCTAssertEqual(bin.loadAssignments.map(\.message), json.loadAssignments.map(\.message))
    }

    func testOnlyResourcesNamingAModelledTypeAreWalkedForAnys() throws {
        let l = try Self.listener("l", port: 80)
        XCTAssertTrue(DecodedResource.mayHoldModelledAny(try l.serializedBytes()), "the HCM and the router")
        XCTAssertFalse(DecodedResource.mayHoldModelledAny(try Self.cla("c").serializedBytes()), "no Any at all")
        var c = Self.cluster("c")
        var f = Envoy_Config_Cluster_V3_Filter()
        f.name = "istio.metadata_exchange"
        f.typedConfig.typeURL = "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange"
        c.filters = [f]
        XCTAssertFalse(DecodedResource.mayHoldModelledAny(try c.serializedBytes()), "only a type nobody models")
        f.typedConfig = try Google_Protobuf_Any(message: Google_Protobuf_Struct())
        c.filters = [f]
        XCTAssertTrue(DecodedResource.mayHoldModelledAny(try c.serializedBytes()), "a well-known type")
        // An HCM under another host name is not decoded up front: the pass that reads it
        // unpacks it, with the same result.
        var hcm = try HCM(unpackingAny: l.filterChains[0].filters[0].typedConfig)
        hcm.httpFilters[1].typedConfig.typeURL = "example.com/envoy.extensions.filters.http.router.v3.Router"
        var other = l
        other.filterChains[0].filters[0].typedConfig = try Google_Protobuf_Any(message: hcm)
        other.filterChains[0].filters[0].typedConfig.typeURL = "example.com/" + HCM.protoMessageName
        XCTAssertFalse(DecodedResource.mayHoldModelledAny(try other.serializedBytes()))
        func lowered(_ listener: Listener) throws -> String {
            let stream = try Self.delimited([try Self.response([listener]), try Self.response([Self.route("r-l")])])
            let fe = Pipeline.frontEnd(snapshot: SnapshotParser().parse(stream, sourceName: "x.pb"))
            XCTAssertFalse(fe.diagnostics.hasErrors, "\(fe.diagnostics.map(\.rendered))")
            return IRPrinter.render(fe.ir)
        }
        XCTAssertEqual(try lowered(other), try lowered(l))
    }

    /// `weighted-zones.xds.pb` was written by Envoy's own protos (PyPI xds-protos
    /// 1.85.0, `scripts/make-pb.py ... --as discovery-stream`) from the corpus's
    /// envoy-gateway/xds-ir/http-route-weighted-zones: decoding it with the
    /// trimmed schema gives what the JSON path gives.
    func testUpstreamEncodedSnapshot() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/frontend")
        let bin = SnapshotParser().parse(files: [fixtures.appendingPathComponent("weighted-zones.xds.pb").path])
        XCTAssertEqual(bin.diagnostics.map(\.rendered), [])
        XCTAssertEqual(
            [bin.listeners.count, bin.routeConfigurations.count, bin.clusters.count, bin.loadAssignments.count], [1, 1, 3, 3])
        let root = try TestPaths.requireCorpus().path
        let dir = root + "/envoy-gateway/xds-ir/http-route-weighted-zones/http-route-weighted-zones."
        let json = SnapshotParser().parse(files: ["listeners", "routes", "clusters", "endpoints"].map { dir + $0 + ".yaml" })
        XCTAssertEqual(bin.routeConfigurations.map(\.message), json.routeConfigurations.map(\.message))
        XCTAssertEqual(bin.clusters.map(\.message), json.clusters.map(\.message))
        XCTAssertEqual(bin.loadAssignments.map(\.message), json.loadAssignments.map(\.message))
        // Listener typed configs carry fields the trimmed schema leaves out:
        // compare what the schema models.
        var opts = BinaryDecodingOptions()
        opts.discardUnknownFields = true
        func hcms(_ s: XDSSnapshot) throws -> [HCM] {
            try s.listeners.flatMap { l in
                try (l.message.filterChains + [l.message.defaultFilterChain]).flatMap(\.filters).map {
                    try HCM(unpackingAny: $0.typedConfig, options: opts)
                }
            }
        }
        XCTAssertEqual(try hcms(bin), try hcms(json))
        func stripped(_ s: XDSSnapshot) -> [Listener] {
            s.listeners.map {
                var l = $0.message
                l.defaultFilterChain.filters = l.defaultFilterChain.filters.map { f in
                    var f = f
                    f.typedConfig = Google_Protobuf_Any()
                    return f
                }
                return l
            }
        }
        XCTAssertEqual(stripped(bin), stripped(json))
    }

    func testDetectionDoesNotMisreadText() throws {
        // JSON starting with a newline (0x0A is also protobuf's field-1 tag).
        let s = SnapshotParser().parse(Array("\n\n[{\"name\": \"c\", \"type\": \"EDS\"}]\n".utf8), sourceName: "c.json")
        XCTAssertEqual(s.clusters.count, 1)
        XCTAssertEqual(s.diagnostics.count, 0)
        // Printable-only "protobuf-like" text is still text.
        let t = SnapshotParser().parse(Array("\n\u{7}hello".utf8), sourceName: "t")
        XCTAssertNotEqual(t.diagnostics.first?.id, nil)
        XCTAssertEqual(t.listeners.count + t.clusters.count, 0)
        // A DiscoveryResponse without resources nor type is not taken for one.
        var empty = DR()
        empty.versionInfo = "1"
        let e = SnapshotParser().parse(try empty.serializedBytes() as [UInt8], sourceName: "e.pb")
        XCTAssertTrue(e.diagnostics.hasErrors)
    }

    func testTenThousandResourcesQuickly() throws {
        let n = 10_000
        var listeners: [Listener] = []
        let template = try Self.canonical(try Self.listener("l", port: 1))
        for i in 0..<n {
            var l = template
            l.name = "l\(i)"
            l.address.socketAddress.portValue = UInt32(1 + i % 60000)
            listeners.append(l)
        }
        let clusters = (0..<n).map { i -> Cluster in
            var c = Self.cluster("")
            c.name = "c\(i)"
            return c
        }
        let claTemplate = Self.cla("", endpoints: 3)
        let clas = (0..<n).map { i -> CLA in
            var c = claTemplate
            c.clusterName = "c\(i)"
            return c
        }
        let stream = try Self.delimited([
            try Self.response(listeners), try Self.response(clusters), try Self.response(clas),
        ])
        let start = Date()
        let s = SnapshotParser().parse(stream, sourceName: "big.pb")
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual([s.listeners.count, s.clusters.count, s.loadAssignments.count], [n, n, n])
        XCTAssertEqual(s.diagnostics.count, 0)
        // The bound is for release builds (<1 s); debug builds of the tests get slack.
        #if DEBUG
            let limit = 10.0
        #else
            let limit = 1.0
        #endif
        XCTAssertLessThan(elapsed, limit, "parsing \(stream.count) bytes took \(elapsed) s")
        print("frontend: \(3 * n) binary resources (\(stream.count) bytes) parsed in \(String(format: "%.3f", elapsed)) s")
    }
}
