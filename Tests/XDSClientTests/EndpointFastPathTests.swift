import Codegen
import Foundation
import SwiftProtobuf
import XCTest

@testable import XDSClient

/// The fast endpoint path (rows from the changed assignments alone) gives the same
/// rows as compiling both snapshots and diffing the bundles (EndpointDelta.make),
/// for every LB policy, priorities and weights; anything unusual goes the full way.
final class EndpointFastPathTests: XCTestCase {
    let policies: [(String, Envoy_Config_Cluster_V3_Cluster.LbPolicy)] = [
        ("rr", .roundRobin), ("random", .random), ("lr", .leastRequest), ("maglev", .maglev), ("ring", .ringHash),
    ]

    func listener(_ i: Int, cluster: String) throws -> Google_Protobuf_Any {
        var tp = Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy()
        tp.statPrefix = cluster
        tp.cluster = cluster
        var f = Envoy_Config_Listener_V3_Filter()
        f.name = "envoy.filters.network.tcp_proxy"
        f.typedConfig = try Google_Protobuf_Any(message: tp)
        var fc = Envoy_Config_Listener_V3_FilterChain()
        fc.filters = [f]
        var l = Envoy_Config_Listener_V3_Listener()
        l.name = "l-\(cluster)"
        l.address.socketAddress.address = "10.96.7.\(i + 1)"
        l.address.socketAddress.portValue = 80
        l.filterChains = [fc]
        return try Google_Protobuf_Any(message: l)
    }

    func cluster(_ name: String, _ lb: Envoy_Config_Cluster_V3_Cluster.LbPolicy) throws -> Google_Protobuf_Any {
        var c = Envoy_Config_Cluster_V3_Cluster()
        c.name = name
        c.type = .eds
        c.edsClusterConfig.edsConfig.ads = Envoy_Config_Core_V3_AggregatedConfigSource()
        c.lbPolicy = lb
        // a warning (not enforced in the kernel), as real clusters have: the fast path still applies
        c.outlierDetection = Envoy_Config_Cluster_V3_OutlierDetection()
        return try Google_Protobuf_Any(message: c)
    }

    /// An assignment: per priority, (address suffix, weight) endpoints in one locality.
    func assignment(_ name: String, _ priorities: [[(Int, UInt32)]]) throws -> Google_Protobuf_Any {
        var a = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
        a.clusterName = name
        for (p, eps) in priorities.enumerated() {
            var loc = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
            loc.priority = UInt32(p)
            for (host, w) in eps {
                var e = Envoy_Config_Endpoint_V3_LbEndpoint()
                e.endpoint.address.socketAddress.address = "10.30.\(p).\(host)"
                e.endpoint.address.socketAddress.portValue = 8080
                e.loadBalancingWeight = Google_Protobuf_UInt32Value(w)
                loc.lbEndpoints.append(e)
            }
            a.endpoints.append(loc)
        }
        return try Google_Protobuf_Any(message: a)
    }

    func set(_ eps: [String: [[(Int, UInt32)]]]) throws -> XDSResourceSet {
        var s = XDSResourceSet()
        s.applyStateOfTheWorld(
            .listener,
            try policies.enumerated().map {
                try XDSResourceSet.decode(try listener($0.offset, cluster: $0.element.0), as: .listener)
            }, version: "1", nonce: "")
        s.applyStateOfTheWorld(
            .cluster, try policies.map { try XDSResourceSet.decode(try cluster($0.0, $0.1), as: .cluster) },
            version: "1", nonce: "")
        s.applyStateOfTheWorld(
            .endpoint,
            try policies.map { p in
                try XDSResourceSet.decode(try assignment(p.0, eps[p.0] ?? [[(1, 1), (2, 1)]]), as: .endpoint)
            }, version: "1", nonce: "")
        return s
    }

    func compile(_ s: XDSResourceSet) throws -> (FrontEndResult, BundleFiles) {
        let fe = Pipeline.frontEnd(snapshot: SnapshotParser().parse(try s.discoveryStream(), sourceName: "t"))
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics.map(\.rendered))")
        let r = try Pipeline.compile(fe)
        XCTAssertFalse(r.diagnostics.hasErrors, "\(r.diagnostics.map(\.rendered))")
        return (fe, r.bundle)
    }

    func testFastRowsEqualCompiledRows() throws {
        let old = try set([:])
        let (fe, bundle) = try compile(old)
        let fast = try XCTUnwrap(EndpointFastPath(frontEnd: fe, bundle: bundle, options: FrontEndOptions()))
        let changes: [[String: [[(Int, UInt32)]]]] = [
            ["rr": [[(1, 3), (2, 1), (3, 2)]]],
            ["maglev": [[(7, 1), (8, 5)], [(9, 1)]], "ring": [[(4, 2)]]],
            ["lr": [[(1, 1)], [(2, 1), (3, 1)]], "random": [[(5, 100), (6, 1)]]],
            ["rr": [[(1, 1)]], "maglev": [[(1, 1), (2, 1), (3, 1), (4, 1)]], "ring": [[(9, 1), (10, 1)]]],
        ]
        var compared = 0
        for change in changes {
            let new = try set(change)
            XCTAssertEqual(EndpointFastPath.changedAssignments(from: old, to: new), change.keys.sorted())
            let changed = try XCTUnwrap(EndpointFastPath.changes(from: old, to: new))
            var laps = Laps()
            let fastDelta = try XCTUnwrap(fast.delta(changed, snapshotSha256: "x", laps: &laps))
            let (_, newBundle) = try compile(new)
            switch EndpointDelta.make(base: bundle, new: newBundle) {
            case .success(let full):
                XCTAssertEqual(fastDelta.clusters, full.clusters, "\(change.keys.sorted())")
                XCTAssertEqual(fastDelta.baseCodeSha256, full.baseCodeSha256)
                compared += 1
            case .failure(let why):
                // A table that outgrows its map's capacity class changes the code: the
                // agent then applies the fast rows if they fit the headroom (the loader
                // checks), else replaces. The rows must still be right.
                XCTAssertTrue(why.reason.contains("generated code"), why.reason)
                XCTAssertFalse(fastDelta.clusters.isEmpty)
            }
        }
        XCTAssertGreaterThanOrEqual(compared, 2)
    }

    /// Many changes are decoded on every core: the same messages, in order, a gone
    /// assignment nil; one that does not decode sends the change the full way.
    func testAssignmentsDecodeConcurrentlyInOrder() throws {
        var changes: [EndpointFastPath.Change] = []
        for i in 0..<40 {
            let name = "c\(i)"
            let bytes = i % 7 == 3 ? nil : try assignment(name, [[(i % 250 + 1, UInt32(i + 1))]]).value
            changes.append(EndpointFastPath.Change(name: name, bytes: bytes))
        }
        let decoded = try XCTUnwrap(EndpointFastPath.decodeAssignments(changes))
        XCTAssertEqual(decoded.count, changes.count)
        for (c, d) in zip(changes, decoded) {
            if let bytes = c.bytes {
                XCTAssertEqual(d, try Envoy_Config_Endpoint_V3_ClusterLoadAssignment(serializedBytes: bytes), c.name)
            } else {
                XCTAssertNil(d, c.name)
            }
        }
        changes[29] = EndpointFastPath.Change(name: "c29", bytes: Data([0x0a, 0xff]))  // a field longer than the message
        XCTAssertNil(EndpointFastPath.decodeAssignments(changes))
        XCTAssertNil(EndpointFastPath.decodeAssignments(Array(changes[25..<32])), "the sequential path agrees")
    }

    func testAnythingButAssignmentsGoesTheFullWay() throws {
        let old = try set([:])
        var other = old
        other.applyStateOfTheWorld(.cluster, [try XDSResourceSet.decode(try cluster("rr", .random), as: .cluster)], version: "2", nonce: "")
        XCTAssertNil(EndpointFastPath.changedAssignments(from: old, to: other))
        // an assignment with a host name: the fast path declines, the full front end diagnoses it
        let (fe, bundle) = try compile(old)
        let fast = try XCTUnwrap(EndpointFastPath(frontEnd: fe, bundle: bundle, options: FrontEndOptions()))
        var bad = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
        bad.clusterName = "rr"
        var loc = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
        var e = Envoy_Config_Endpoint_V3_LbEndpoint()
        e.endpoint.address.socketAddress.address = "backend.example"
        e.endpoint.address.socketAddress.portValue = 80
        loc.lbEndpoints = [e]
        bad.endpoints = [loc]
        var new = old
        new.applyStateOfTheWorld(
            .endpoint, [try XDSResourceSet.decode(try Google_Protobuf_Any(message: bad), as: .endpoint)],
            version: "2", nonce: "")
        let changed = try XCTUnwrap(EndpointFastPath.changes(from: old, to: new))
        XCTAssertEqual(changed.map(\.name), ["rr"])
        var laps = Laps()
        XCTAssertNil(fast.delta(changed, snapshotSha256: "x", laps: &laps))
    }
}
