import Codegen
import Foundation
import SwiftProtobuf
import XCTest

@testable import XDSClient

/// The ADS client's protocol logic without a network: subscriptions, ACK only
/// after an accepting verdict, NACK with the reason, fall back on rejection.
final class ADSSessionTests: XCTestCase {
    func listener(_ name: String, rds: String) throws -> Google_Protobuf_Any {
        var hcm = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager()
        var r = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_Rds()
        r.routeConfigName = rds
        hcm.rds = r
        var f = Envoy_Config_Listener_V3_Filter()
        f.name = "envoy.filters.network.http_connection_manager"
        f.typedConfig = try Google_Protobuf_Any(message: hcm)
        var fc = Envoy_Config_Listener_V3_FilterChain()
        fc.filters = [f]
        var l = Envoy_Config_Listener_V3_Listener()
        l.name = name
        l.filterChains = [fc]
        return try Google_Protobuf_Any(message: l)
    }

    func edsCluster(_ name: String, service: String = "") throws -> Google_Protobuf_Any {
        var c = Envoy_Config_Cluster_V3_Cluster()
        c.name = name
        c.type = .eds
        c.edsClusterConfig.serviceName = service
        return try Google_Protobuf_Any(message: c)
    }

    func assignment(_ name: String) throws -> Google_Protobuf_Any {
        var a = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
        a.clusterName = name
        return try Google_Protobuf_Any(message: a)
    }

    func route(_ name: String) throws -> Google_Protobuf_Any {
        var r = Envoy_Config_Route_V3_RouteConfiguration()
        r.name = name
        return try Google_Protobuf_Any(message: r)
    }

    func response(_ t: XDSResourceType, _ version: String, _ nonce: String, _ res: [Google_Protobuf_Any]) -> DiscoveryResponse {
        var r = DiscoveryResponse()
        r.typeURL = t.typeURL
        r.versionInfo = version
        r.nonce = nonce
        r.resources = res
        return r
    }

    func sotw(_ out: [ADSOutgoing]) -> [DiscoveryRequest] {
        out.compactMap { if case .sotw(let r) = $0 { r } else { nil } }
    }

    func delta(_ out: [ADSOutgoing]) -> [DeltaDiscoveryRequest] {
        out.compactMap { if case .delta(let r) = $0 { r } else { nil } }
    }

    func testSubscribesAsEnvoyAndAcksOnlyAfterTheVerdict() throws {
        var s = ADSSession(mode: .stateOfTheWorld, node: makeNode(id: "n1", cluster: "c", metadata: []))
        let first = sotw(s.initialRequests())
        XCTAssertEqual(first.map(\.typeURL), [XDSResourceType.cluster.typeURL, XDSResourceType.listener.typeURL])
        XCTAssertTrue(first.allSatisfy { $0.resourceNames.isEmpty }, "LDS and CDS by wildcard")
        XCTAssertEqual(first.filter(\.hasNode).count, 1, "the node goes in the first request only")

        var out = sotw(s.receive(response(.cluster, "c1", "n-c1", [try edsCluster("a"), try edsCluster("b", service: "svc-b")])))
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out[0].typeURL, XDSResourceType.endpoint.typeURL)
        XCTAssertEqual(out[0].resourceNames, ["a", "svc-b"], "EDS names from the EDS clusters")
        XCTAssertFalse(s.needsVerdict, "no listeners yet")

        out = sotw(s.receive(response(.listener, "l1", "n-l1", [try listener("l", rds: "r1")])))
        XCTAssertEqual(out.map(\.resourceNames), [["r1"]])
        _ = s.receive(response(.endpoint, "e1", "n-e1", [try assignment("a"), try assignment("svc-b"), try assignment("nobody")]))
        XCTAssertFalse(s.needsVerdict, "RDS r1 is still missing")
        XCTAssertEqual(s.candidate.missing, [#"RDS "r1""#])
        XCTAssertEqual(s.candidate.names(.endpoint), ["a", "svc-b"], "an unrequested resource is ignored")
        _ = s.receive(response(.route, "r1v", "n-r1", [try route("r1")]))
        XCTAssertTrue(s.needsVerdict)
        XCTAssertTrue(s.accepted.received.isEmpty, "nothing accepted before the verdict")

        let acks = sotw(s.apply(.accept))
        XCTAssertEqual(Set(acks.map(\.responseNonce)), ["n-c1", "n-l1", "n-e1", "n-r1"])
        XCTAssertTrue(acks.allSatisfy { !$0.hasErrorDetail })
        XCTAssertEqual(acks.first { $0.typeURL == XDSResourceType.cluster.typeURL }?.versionInfo, "c1")
        XCTAssertEqual(s.accepted.versions[.cluster], "c1")
        XCTAssertFalse(s.hasPending)
    }

    func testRejectionNacksAndKeepsTheLastGood() throws {
        var s = ADSSession(mode: .stateOfTheWorld, node: makeNode(id: "n", cluster: "", metadata: []))
        _ = s.initialRequests()
        _ = s.receive(response(.cluster, "c1", "1", [try edsCluster("a")]))
        _ = s.receive(response(.listener, "l1", "2", []))
        _ = s.receive(response(.endpoint, "e1", "3", [try assignment("a")]))
        _ = s.apply(.accept)
        _ = s.receive(response(.cluster, "c2", "4", [try edsCluster("a"), try edsCluster("b")]))
        _ = s.receive(response(.endpoint, "e2", "5", [try assignment("a"), try assignment("b")]))
        XCTAssertTrue(s.needsVerdict)
        let nacks = sotw(s.apply(.reject("XDS205 clusters[\"b\"]: unsupported")))
        let cds = try XCTUnwrap(nacks.first { $0.typeURL == XDSResourceType.cluster.typeURL && $0.hasErrorDetail })
        XCTAssertEqual(cds.versionInfo, "c1", "a NACK names the last accepted version")
        XCTAssertEqual(cds.responseNonce, "4")
        XCTAssertTrue(cds.errorDetail.message.contains("XDS205"))
        XCTAssertEqual(s.candidate.names(.cluster), ["a"], "back to the last good configuration")
        XCTAssertEqual(s.accepted.versions[.cluster], "c1")
        XCTAssertEqual(sotw(s.apply(.accept)).count, 0, "nothing pending")
    }

    /// A state-of-the-world push repeats every resource: those whose bytes the
    /// candidate holds are kept as they are (the same buffers, so the change
    /// detection downstream compares nothing), changed ones are taken anew, and a
    /// cluster whose EDS name changed updates the subscription although every
    /// other cluster's references come from the cache.
    func testRepeatedResourcesAreKeptAndChangedOnesTaken() throws {
        var s = ADSSession(mode: .stateOfTheWorld, node: makeNode(id: "n", cluster: "", metadata: []))
        _ = s.initialRequests()
        _ = s.receive(response(.cluster, "c1", "1", [try edsCluster("a"), try edsCluster("b")]))
        _ = s.receive(response(.listener, "l1", "2", []))
        // more than 14 bytes: Data keeps those in a buffer of their own, whose address tells it apart
        var a = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
        a.clusterName = "a"
        a.policy.overprovisioningFactor.value = 100
        a.endpoints = [Envoy_Config_Endpoint_V3_LocalityLbEndpoints()]
        a.endpoints[0].locality.zone = "zone-1-with-a-name-long-enough"
        _ = s.receive(response(.endpoint, "e1", "3", [try Google_Protobuf_Any(message: a), try assignment("b")]))
        _ = s.apply(.accept)
        let before = s.accepted

        var changed = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
        changed.clusterName = "b"
        changed.policy.overprovisioningFactor.value = 140
        _ = s.receive(response(.endpoint, "e2", "4", [try Google_Protobuf_Any(message: a), try Google_Protobuf_Any(message: changed)]))
        let (old, new) = (before.resources[.endpoint]!, s.candidate.resources[.endpoint]!)
        XCTAssertEqual(new.map(\.name), ["a", "b"])
        let sameBuffer = { (x: Data, y: Data) in x.withUnsafeBytes { px in y.withUnsafeBytes { py in px.baseAddress == py.baseAddress } } }
        XCTAssertTrue(sameBuffer(old[0].bytes, new[0].bytes), "an unchanged assignment is the held one")
        XCTAssertGreaterThan(old[0].bytes.count, 14)
        XCTAssertEqual(EndpointFastPath.changedAssignments(from: before, to: s.candidate), ["b"])
        _ = s.apply(.accept)

        // the same clusters again, but "b" now names another EDS service
        let out = sotw(s.receive(response(.cluster, "c2", "5", [try edsCluster("a"), try edsCluster("b", service: "svc-b")])))
        XCTAssertEqual(out.map(\.resourceNames), [["a", "svc-b"]])
        XCTAssertEqual(s.candidate.referencedEndpoints, ["a", "svc-b"])
        // and back: the cache holds what each cluster's current bytes reference
        _ = s.apply(.reject("no"))
        XCTAssertEqual(s.candidate.referencedEndpoints, ["a", "b"])
        XCTAssertEqual(sotw(s.receive(response(.cluster, "c3", "6", [try edsCluster("a")]))).map(\.resourceNames), [["a"]])
        _ = s.apply(.reject("no"))

        // a name twice is NACKed, also when one of the two is the held resource
        for (nonce, list) in [("7", [try edsCluster("a"), try edsCluster("a")]), ("8", [try edsCluster("a"), try edsCluster("a", service: "x")])] {
            let nack = try XCTUnwrap(sotw(s.receive(response(.cluster, "c" + nonce, nonce, list))).first)
            XCTAssertTrue(nack.errorDetail.message.contains(#"duplicate CDS resource "a""#), nack.errorDetail.message)
            XCTAssertEqual(s.candidate.names(.cluster), ["a", "b"])
        }
    }

    /// A push that crosses a subscription change answers the old names (the server
    /// dropped the change as stale): the client repeats its names with the new nonce.
    func testCrossedPushRepeatsTheSubscription() throws {
        var s = ADSSession(mode: .stateOfTheWorld, node: makeNode(id: "n", cluster: "", metadata: []))
        _ = s.initialRequests()
        _ = s.receive(response(.cluster, "c1", "1", [try edsCluster("a")]))
        _ = s.receive(response(.listener, "l1", "2", []))
        _ = s.receive(response(.endpoint, "e1", "3", [try assignment("a")]))
        _ = s.apply(.accept)
        let sub = sotw(s.receive(response(.cluster, "c2", "4", [try edsCluster("b")])))
        XCTAssertEqual(sub.map(\.resourceNames), [["b"]])
        // the server's push for the old names crosses that request
        let again = sotw(s.receive(response(.endpoint, "e2", "5", [])))
        XCTAssertEqual(again.count, 1)
        XCTAssertEqual(again[0].resourceNames, ["b"])
        XCTAssertEqual(again[0].responseNonce, "5")
        XCTAssertEqual(again[0].versionInfo, "e1", "no ACK of e2: the accepted version")
        XCTAssertFalse(again[0].hasErrorDetail)
        XCTAssertFalse(s.needsVerdict, "EDS b still missing")
        _ = s.receive(response(.endpoint, "e2", "6", [try assignment("b")]))
        XCTAssertTrue(s.needsVerdict)
    }

    func testUndecodableResponseIsNackedAtOnce() throws {
        var s = ADSSession(mode: .stateOfTheWorld, node: makeNode(id: "n", cluster: "", metadata: []))
        _ = s.initialRequests()
        var garbage = Google_Protobuf_Any()
        garbage.typeURL = XDSResourceType.cluster.typeURL
        garbage.value = Data([0xff, 0xff, 0xff])
        var out = sotw(s.receive(response(.cluster, "c1", "9", [garbage])))
        XCTAssertEqual(out.count, 1)
        XCTAssertTrue(out[0].errorDetail.message.contains("does not decode"), out[0].errorDetail.message)
        out = sotw(s.receive(response(.cluster, "c1", "10", [try listener("x", rds: "y")])))
        XCTAssertTrue(out[0].errorDetail.message.contains("does not match the response's type URL"))
        XCTAssertFalse(s.candidate.received.contains(.cluster))
    }

    /// A state-of-the-world resource is read from its `Any`'s bytes by their framing
    /// alone; whatever that reading takes is what swift-protobuf decodes, and
    /// everything else (a Resource wrapper, a wrong or invalid type URL, a field of
    /// the wrong wire type, bytes that are not a message) is decided as before.
    func testResourceReadFromItsAnyBytesAsSwiftProtobufDecodesIt() throws {
        let t = XDSResourceType.endpoint
        var cla = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
        cla.clusterName = "svc-a"
        cla.endpoints = [Envoy_Config_Endpoint_V3_LocalityLbEndpoints()]
        cla.endpoints[0].locality.zone = "z1"
        let plain = try Google_Protobuf_Any(message: cla)
        var wrapper = Envoy_Service_Discovery_V3_Resource()
        wrapper.resource = plain
        wrapper.version = "v7"
        // a length-delimited field (payloads here are shorter than 128 bytes), and a varint field
        func len(_ field: UInt8, _ payload: Data) -> Data { Data([field << 3 | 2, UInt8(payload.count)]) + payload }
        func varint(_ field: UInt8, _ v: UInt8) -> Data { Data([field << 3, v]) }
        let typeURL = Data(t.typeURL.utf8)
        let value: Data = try cla.serializedBytes()
        let otherType: Data = try Google_Protobuf_Any(message: Envoy_Config_Cluster_V3_Cluster()).serializedBytes()
        var wires: [(String, Data)] = []
        let plainWire: Data = try plain.serializedBytes()
        wires.append(("plain", plainWire))
        wires.append(("wrapped", try Google_Protobuf_Any(message: wrapper).serializedBytes()))
        wires.append(("other type", otherType))
        wires.append(("value first, unknown field", len(2, value) + varint(9, 1) + len(1, typeURL)))
        wires.append(("type URL twice, the last one counts", len(1, Data("abc".utf8)) + len(1, typeURL) + len(2, value)))
        wires.append(("type URL not UTF-8", len(1, Data([0xc3, 0x28])) + len(1, typeURL) + len(2, value)))
        wires.append(("value as a varint", len(1, typeURL) + varint(2, 5)))
        wires.append(("cut short", plainWire.dropLast(3)))
        wires.append(("not a message", Data([0xff, 0xff, 0xff])))
        wires.append(("no name", len(1, typeURL)))
        wires.append(("a slice", Data([0xaa]) + wires[0].1 + Data([0xbb])))
        wires[wires.count - 1].1 = wires[wires.count - 1].1.dropFirst().dropLast()
        for (what, wire) in wires {
            let viaAny = Result { () throws -> XDSReceivedResource in
                let any = try Google_Protobuf_Any(serializedBytes: wire)
                return try XDSResourceSet.decode(any, as: t)
            }
            let viaWire = Result { () throws -> XDSReceivedResource in try XDSResourceSet.decode(wire: wire, as: t) }
            switch (viaAny, viaWire) {
            case (.success(let a), .success(let w)):
                XCTAssertEqual([a.name, a.version], [w.name, w.version], what)
                XCTAssertEqual(a.bytes, w.bytes, what)
                XCTAssertEqual(w.wire, wire, what)
                XCTAssertEqual(try Envoy_Config_Endpoint_V3_ClusterLoadAssignment(serializedBytes: w.bytes), cla, what)
            case (.failure, .failure): break
            default: XCTFail("\(what): swift-protobuf \(viaAny), from the bytes \(viaWire)")
            }
        }
        // which of them are read, and which refused
        let read = wires.filter { (try? XDSResourceSet.decode(wire: $0.1, as: t)) != nil }.map(\.0)
        XCTAssertEqual(read, ["plain", "wrapped", "value first, unknown field", "type URL twice, the last one counts", "a slice"])
    }

    func testDeltaAcksEveryNonceAndResumesWithVersions() throws {
        var s = ADSSession(mode: .delta, node: makeNode(id: "n", cluster: "", metadata: []))
        _ = s.initialRequests()
        var r = DeltaDiscoveryResponse()
        r.typeURL = XDSResourceType.cluster.typeURL
        r.nonce = "d1"
        var res = Envoy_Service_Discovery_V3_Resource()
        res.name = "a"
        res.version = "ver-a"
        res.resource = try edsCluster("a")
        r.resources = [res]
        let eds = try XCTUnwrap(delta(s.receive(r)).first)
        XCTAssertEqual(eds.resourceNamesSubscribe, ["a"])
        var l = DeltaDiscoveryResponse()
        l.typeURL = XDSResourceType.listener.typeURL
        l.nonce = "d2"
        _ = s.receive(l)
        var e = DeltaDiscoveryResponse()
        e.typeURL = XDSResourceType.endpoint.typeURL
        e.nonce = "d3"
        var ea = Envoy_Service_Discovery_V3_Resource()
        ea.name = "a"
        ea.version = "ver-ea"
        ea.resource = try assignment("a")
        e.resources = [ea]
        _ = s.receive(e)
        let acks = delta(s.apply(.accept))
        XCTAssertEqual(Set(acks.map(\.responseNonce)), ["d1", "d2", "d3"])
        // A new stream resumes: everything asked for again with the versions held.
        var resumed = ADSSession(mode: .delta, node: makeNode(id: "n", cluster: "", metadata: []), resume: s.accepted)
        let again = delta(resumed.initialRequests())
        let cds = try XCTUnwrap(again.first { $0.typeURL == XDSResourceType.cluster.typeURL })
        XCTAssertEqual(cds.initialResourceVersions, ["a": "ver-a"])
        let edsAgain = try XCTUnwrap(again.first { $0.typeURL == XDSResourceType.endpoint.typeURL })
        XCTAssertEqual(edsAgain.resourceNamesSubscribe, ["a"])
        XCTAssertEqual(edsAgain.initialResourceVersions, ["a": "ver-ea"])
    }

    func testSnapshotStreamRoundTripsAndIsCanonical() throws {
        var a = XDSResourceSet()
        a.applyStateOfTheWorld(
            .cluster,
            [
                try XDSResourceSet.decode(try edsCluster("z"), as: .cluster),
                try XDSResourceSet.decode(try edsCluster("a"), as: .cluster),
            ], version: "7", nonce: "x")
        var b = XDSResourceSet()
        b.applyStateOfTheWorld(
            .cluster,
            [
                try XDSResourceSet.decode(try edsCluster("a"), as: .cluster),
                try XDSResourceSet.decode(try edsCluster("z"), as: .cluster),
            ], version: "7", nonce: "y")
        XCTAssertEqual(try a.discoveryStream(), try b.discoveryStream(), "order and nonce do not change the bytes")
        let back = try XDSResourceSet(discoveryStream: try a.discoveryStream())
        XCTAssertEqual(back.names(.cluster).sorted(), ["a", "z"])
        XCTAssertEqual(back.versions[.cluster], "7")
        XCTAssertThrowsError(try XDSResourceSet(discoveryStream: [0x05, 0x01]))
    }

    func testServerURLs() throws {
        XCTAssertEqual(try ADSServer(url: "grpc://127.0.0.1:18000").description, "grpc://127.0.0.1:18000")
        XCTAssertEqual(try ADSServer(url: "grpcs://[::1]:443").description, "grpcs://[::1]:443")
        for bad in ["http://x:1", "grpc://x", "grpc://x:0", "grpc://:80", "grpc://x:70000"] {
            XCTAssertThrowsError(try ADSServer(url: bad), bad)
        }
        XCTAssertEqual(try ADSServer(url: "unix:///etc/istio/proxy/XDS").description, "unix:/etc/istio/proxy/XDS")
        XCTAssertEqual(try ADSServer(url: "unix:./XDS").socketPath, "./XDS")
        XCTAssertThrowsError(try ADSServer(url: "unix:"))
        XCTAssertThrowsError(try ADSServer(url: "unix:/x", tls: .init(caFile: "ca.pem", certFile: nil, keyFile: nil)))
        XCTAssertEqual(try ADSServer(url: "grpcs://10.0.0.1:15012", authority: "istiod.istio-system.svc").authority, "istiod.istio-system.svc")
        for bad in ["", "a b", "x/y", "host\n"] {
            XCTAssertThrowsError(try ADSServer(url: "grpcs://10.0.0.1:15012", authority: bad), bad)
        }
    }

    /// The token file is read for every stream (a rotated token is the next stream's), under the
    /// header and prefix given; header names and values are checked before anything connects.
    func testStreamCredentialsReadTheTokenForEveryStream() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-cred-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let token = dir.appendingPathComponent("token").path
        try "tok-1\n".write(toFile: token, atomically: true, encoding: .utf8)
        let c = try StreamCredentials(headers: [("x-tenant", "t1")], tokenFile: token)
        func pairs(_ c: StreamCredentials) throws -> [String] { try c.streamHeaders().map { "\($0.name): \($0.value)" } }
        XCTAssertEqual(try pairs(c), ["x-tenant: t1", "authorization: Bearer tok-1"])
        try "tok-2".write(toFile: token, atomically: true, encoding: .utf8)
        XCTAssertEqual(try pairs(c), ["x-tenant: t1", "authorization: Bearer tok-2"], "read again, not cached")
        let kuma = try StreamCredentials(tokenFile: token, tokenHeader: "x-kuma-token", tokenPrefix: "")
        XCTAssertEqual(try pairs(kuma), ["x-kuma-token: tok-2"])
        // unreadable, empty or binary tokens, and headers gRPC owns or cannot carry, are refused
        XCTAssertThrowsError(try StreamCredentials(tokenFile: dir.appendingPathComponent("none").path))
        try "\n".write(toFile: token, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try c.streamHeaders(), "an empty token")
        try "a\u{1}b".write(toFile: token, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try c.streamHeaders(), "a control character")
        for (name, value) in [("Upper", "v"), ("te", "v"), ("grpc-status", "0"), ("x-bin", "v"), ("x", "line\nbreak"), ("", "v"), (":path", "/")] {
            XCTAssertThrowsError(try StreamCredentials(headers: [(name, value)]), "\(name)=\(value)")
        }
    }

    /// --node-metadata's typed values stay typed; --metadata strings go over them; the locality
    /// fills as many levels as given.
    func testNodeMetadataAndLocality() throws {
        let base = try Google_Protobuf_Struct(jsonString: #"{"LABELS": {"app": "a"}, "NAMESPACE": "x", "PORTS": [80]}"#)
        let n = makeNode(id: "n", cluster: "c", metadata: [("NAMESPACE", "y")], baseMetadata: base, locality: "r1/z1")
        XCTAssertEqual(n.metadata.fields["NAMESPACE"]?.stringValue, "y")
        XCTAssertEqual(n.metadata.fields["LABELS"]?.structValue.fields["app"]?.stringValue, "a")
        XCTAssertEqual(n.metadata.fields["PORTS"]?.listValue.values.first?.numberValue, 80)
        XCTAssertEqual([n.locality.region, n.locality.zone, n.locality.subZone], ["r1", "z1", ""])
        XCTAssertFalse(makeNode(id: "n", cluster: "", metadata: []).hasLocality)
        XCTAssertFalse(makeNode(id: "n", cluster: "", metadata: []).hasMetadata)
    }
}
