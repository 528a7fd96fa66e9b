import Foundation
import XCTest

@testable import Codegen
@testable import X2BDiff

/// `xds2bpf diff`: pairs of snapshots with one routing change each, reported with an
/// example request that the interpreter (`explain`) confirms on both sides; renames and
/// reordered independent routes report nothing.
final class DiffTests: XCTestCase {
    /// A TCP listener with weighted clusters and an HTTP listener with two virtual hosts.
    static let base = """
        static_resources:
          listeners:
          - name: tcp
            address: {socket_address: {address: 10.0.0.1, port_value: 80}}
            filter_chains:
            - filters:
              - name: envoy.filters.network.tcp_proxy
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                  stat_prefix: tcp
                  weighted_clusters:
                    clusters:
                    - {name: c1, weight: 50}
                    - {name: c2, weight: 50}
          - name: web
            address: {socket_address: {address: 10.0.0.2, port_value: 8080}}
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: web
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                  route_config:
                    name: routes
                    virtual_hosts:
                    - name: api
                      domains: [api.example.com, "*.api.example.com"]
                      routes:
                      - match: {prefix: /api, headers: [{name: x-canary, string_match: {exact: "yes"}}]}
                        route: {cluster: c2}
                      - match: {prefix: /api}
                        route: {cluster: c1}
                      - match: {path: /health}
                        route: {cluster: c3}
                      - match: {prefix: /}
                        route: {cluster: c3}
                    - name: shop
                      domains: [shop.example.com]
                      routes:
                      - match: {prefix: /}
                        route: {cluster: c1}
          clusters:
          - name: c1
            type: STATIC
            load_assignment:
              cluster_name: c1
              endpoints:
              - lb_endpoints:
                - endpoint: {address: {socket_address: {address: 10.1.0.1, port_value: 8080}}}
                - endpoint: {address: {socket_address: {address: 10.1.0.2, port_value: 8080}}}
          - name: c2
            type: STATIC
            load_assignment:
              cluster_name: c2
              endpoints:
              - lb_endpoints:
                - endpoint: {address: {socket_address: {address: 10.2.0.1, port_value: 8080}}}
          - name: c3
            type: STATIC
            load_assignment:
              cluster_name: c3
              endpoints:
              - lb_endpoints:
                - endpoint: {address: {socket_address: {address: 10.3.0.1, port_value: 8080}}}
        """

    func tmpDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-diff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }

    /// The snapshot text with `edit` applied once (it must apply: a test that edits nothing cannot fail).
    func edited(_ text: String, _ from: String, _ to: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        XCTAssertTrue(text.contains(from), "edit does not apply: \(from)", file: file, line: line)
        guard let r = text.range(of: from) else { return text }
        return text.replacingCharacters(in: r, with: to)
    }

    func lower(_ text: String, ext: String = "yaml") throws -> MeshIR {
        let f = try tmpDir().appendingPathComponent("snapshot.\(ext)")
        try Data(text.utf8).write(to: f)
        let fe = Pipeline.frontEnd(files: [f.path])
        XCTAssertFalse(fe.rejected, fe.diagnostics.map(\.rendered).joined(separator: "\n"))
        return fe.ir
    }

    /// Diffs two snapshots and checks every change against `explain` on both sides.
    func diff(_ old: String, _ new: String, ext: String = "yaml", file: StaticString = #filePath, line: UInt = #line) throws -> RoutingDiff {
        let a = try lower(old, ext: ext)
        let b = try lower(new, ext: ext)
        let d = RoutingDiff.compare(old: a, new: b)
        for c in d.changes {
            confirm(c, c.old, a, file: file, line: line)
            confirm(c, c.new, b, file: file, line: line)
            XCTAssertNotEqual(c.old, c.new, "a change whose sides are equal: \(c)", file: file, line: line)
        }
        return d
    }

    /// explain, with the change's example request, lands where the report says.
    func confirm(_ c: RoutingDiff.Change, _ side: RoutingDiff.Side, _ ir: MeshIR, file: StaticString, line: UInt) {
        guard let (addr, port) = Self.endpoint(c.example.dst) else {
            XCTFail("example dst \(c.example.dst)", file: file, line: line)
            return
        }
        var request: HTTPRequest?
        if c.kind == .request {
            request = HTTPRequest(
                authority: c.example.authority ?? c.example.dst, path: c.example.path ?? "/", method: c.example.method ?? "GET",
                headers: (c.example.headers ?? []).map { ($0[0], $0[1]) })
        }
        let e = Interpreter.explain(ir, address: addr, port: port, request: request, random: c.example.random)
        XCTAssertEqual(e.outcome.rawValue, side.outcome, "\(c.example) outcome\n\(e.text)", file: file, line: line)
        XCTAssertEqual(e.cluster, side.cluster, "\(c.example) cluster\n\(e.text)", file: file, line: line)
        XCTAssertEqual(
            e.candidates.map { "\($0.endpoint) p\($0.priority) \(String(format: "%.3f", $0.share))" },
            side.endpoints.map { "\($0.endpoint) p\($0.priority) \(String(format: "%.3f", $0.share))" },
            "\(c.example) endpoints", file: file, line: line)
    }

    static func endpoint(_ s: String) -> (IRAddress, UInt16)? {
        guard let colon = s.lastIndex(of: ":"), let port = UInt16(s[s.index(after: colon)...]) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        return IRAddress(parsing: host).map { ($0, port) }
    }

    func endpoints(_ s: RoutingDiff.Side) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: s.endpoints.map { ($0.endpoint, ($0.share * 10).rounded() / 10) })
    }

    // MARK: one change each

    func testIdenticalSnapshotsReportNothing() throws {
        let d = try diff(Self.base, Self.base)
        XCTAssertFalse(d.changed)
        XCTAssertEqual(d.text, "routing unchanged\n")
    }

    func testWeightChange() throws {
        let new = edited(edited(Self.base, "{name: c1, weight: 50}", "{name: c1, weight: 80}"), "{name: c2, weight: 50}", "{name: c2, weight: 20}")
        let d = try diff(Self.base, new)
        XCTAssertEqual(d.changes.count, 1, d.text)
        let c = try XCTUnwrap(d.changes.first)
        XCTAssertEqual(c.service, "10.0.0.1:80")
        XCTAssertEqual(c.kind, .connect)
        XCTAssertEqual(endpoints(c.old), ["10.1.0.1:8080": 25, "10.1.0.2:8080": 25, "10.2.0.1:8080": 50])
        XCTAssertEqual(endpoints(c.new), ["10.1.0.1:8080": 40, "10.1.0.2:8080": 40, "10.2.0.1:8080": 20])
    }

    func testNewRouteShadowsPartOfAnOldOne() throws {
        let new = edited(
            Self.base, "      - match: {prefix: /api}\n",
            "      - match: {prefix: /api/v2}\n                route: {cluster: c3}\n              - match: {prefix: /api}\n")
        let d = try diff(Self.base, new)
        XCTAssertEqual(d.changes.count, 1, d.text)
        let c = try XCTUnwrap(d.changes.first)
        XCTAssertEqual(c.service, "10.0.0.2:8080")
        XCTAssertEqual(c.kind, .request)
        XCTAssertEqual(c.host, "api.example.com")
        XCTAssertTrue(c.example.path?.hasPrefix("/api/v2") == true, "\(c.example)")
        XCTAssertNil(c.example.headers, "the canary requests keep their route: \(c.example)")
        XCTAssertEqual(c.old.route, 1)
        XCTAssertEqual(c.old.cluster, "c1")
        XCTAssertEqual(c.new.route, 1)
        XCTAssertEqual(c.new.match, "prefix \"/api/v2\"")
        XCTAssertEqual(c.new.cluster, "c3")
    }

    func testRegexRouteExampleFromItsDFA() throws {
        let new = edited(
            Self.base, "      - match: {prefix: /api}\n",
            "      - match: {safe_regex: {regex: \"/api/[0-9]+/items\"}}\n                route: {cluster: c3}\n              - match: {prefix: /api}\n")
        let d = try diff(Self.base, new)
        XCTAssertEqual(d.changes.count, 1, d.text)
        let c = try XCTUnwrap(d.changes.first)
        XCTAssertEqual(c.example.path, "/api/0/items")
        XCTAssertEqual(c.old.cluster, "c1")
        XCTAssertEqual(c.new.cluster, "c3")
        XCTAssertEqual(RegexExample.shortest("[a-z]{3}\\.(com|org)"), "aaa.com")
    }

    func testHeaderMatcherChange() throws {
        let new = edited(Self.base, "string_match: {exact: \"yes\"}", "string_match: {exact: \"true\"}")
        let d = try diff(Self.base, new)
        // Requests with `x-canary: yes` leave the canary; those with `x-canary: true` join it.
        let regions = d.changes.map { "\($0.example.headers ?? []) \($0.old.cluster ?? "-")->\($0.new.cluster ?? "-")" }
        XCTAssertEqual(Set(regions), ["[[\"x-canary\", \"yes\"]] c2->c1", "[[\"x-canary\", \"true\"]] c1->c2"], d.text)
        for c in d.changes {
            XCTAssertEqual(c.host, "api.example.com")
            XCTAssertTrue(c.example.path?.hasPrefix("/api") == true, "\(c.example)")
        }
    }

    func testDomainMovedBetweenVirtualHosts() throws {
        let new = edited(
            edited(Self.base, "domains: [api.example.com, \"*.api.example.com\"]", "domains: [\"*.api.example.com\"]"),
            "domains: [shop.example.com]", "domains: [shop.example.com, api.example.com]")
        let d = try diff(Self.base, new)
        XCTAssertFalse(d.changes.isEmpty)
        for c in d.changes {
            XCTAssertEqual(c.host, "api.example.com", d.text)
            XCTAssertEqual(c.old.virtualHost, "api")
            XCTAssertEqual(c.new.virtualHost, "shop")
            XCTAssertEqual(c.new.cluster, "c1")
        }
        // The old routes that did not send to c1: the canary, /health and the catch-all.
        XCTAssertEqual(Set(d.changes.compactMap(\.old.route)), [0, 2, 3], d.text)
        XCTAssertTrue(d.changes.contains { $0.example.path == "/health" && $0.old.cluster == "c3" }, d.text)
    }

    func testEndpointDrained() throws {
        let new = edited(
            Self.base, "        - endpoint: {address: {socket_address: {address: 10.1.0.2, port_value: 8080}}}\n",
            "        - endpoint: {address: {socket_address: {address: 10.1.0.2, port_value: 8080}}}\n          health_status: DRAINING\n")
        let d = try diff(Self.base, new)
        // Everything that reaches c1: the TCP listener's share, /api on api.example.com, all of shop.example.com.
        XCTAssertEqual(d.changes.map(\.service), ["10.0.0.1:80", "10.0.0.2:8080", "10.0.0.2:8080"], d.text)
        XCTAssertEqual(Set(d.changes.compactMap(\.host)), ["api.example.com", "shop.example.com"])
        for c in d.changes {
            XCTAssertNotNil(endpoints(c.old)["10.1.0.2:8080"], d.text)
            XCTAssertNil(endpoints(c.new)["10.1.0.2:8080"], d.text)
        }
        let api = try XCTUnwrap(d.changes.first { $0.host == "api.example.com" })
        XCTAssertEqual(api.old.route, 1)
        XCTAssertEqual(endpoints(api.new), ["10.1.0.1:8080": 100])
    }

    func testListenerPortChange() throws {
        let new = edited(Self.base, "address: 10.0.0.1, port_value: 80}", "address: 10.0.0.1, port_value: 81}")
        let d = try diff(Self.base, new)
        XCTAssertEqual(d.changes.map(\.service), ["10.0.0.1:80", "10.0.0.1:81"], d.text)
        XCTAssertEqual(d.changes.map(\.old.outcome), ["redirect", "untouched"])
        XCTAssertEqual(d.changes.map(\.new.outcome), ["untouched", "redirect"])
    }

    func testRenamesAndReorderedIndependentRoutesAreNoChange() throws {
        var new = Self.base.replacingOccurrences(of: "c1", with: "alpha")
        new = edited(new, "- name: api\n", "- name: api-renamed\n")
        new = edited(new, "- name: tcp\n", "- name: tcp-renamed\n")
        new = edited(new, "name: routes\n", "name: routes-renamed\n")
        // /health is independent of the two /api routes: it may go first.
        new = edited(new, "              - match: {path: /health}\n                route: {cluster: c3}\n", "")
        new = edited(
            new, "              routes:\n              - match: {prefix: /api, headers",
            "              routes:\n              - match: {path: /health}\n                route: {cluster: c3}\n              - match: {prefix: /api, headers"
        )
        let d = try diff(Self.base, new)
        XCTAssertFalse(d.changed, d.text)
        // Reordering dependent routes is a change: the catch-all first shadows everything.
        let shadowed = edited(
            edited(Self.base, "              - match: {prefix: /}\n                route: {cluster: c3}\n", ""),
            "              routes:\n              - match: {prefix: /api, headers",
            "              routes:\n              - match: {prefix: /}\n                route: {cluster: c3}\n              - match: {prefix: /api, headers")
        XCTAssertTrue(try diff(Self.base, shadowed).changed)
    }

    func testJSONSchema() throws {
        let new = edited(Self.base, "string_match: {exact: \"yes\"}", "string_match: {exact: \"true\"}")
        let d = try diff(Self.base, new)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: enc.encode(d)) as? [String: Any])
        XCTAssertEqual(obj["changed"] as? Bool, true)
        let first = try XCTUnwrap((obj["changes"] as? [[String: Any]])?.first)
        XCTAssertEqual(Set(first.keys), ["service", "kind", "host", "old", "new", "example", "evidence"])
        let old = try XCTUnwrap(first["old"] as? [String: Any])
        XCTAssertNotNil(old["virtual_host"])
        let back = try JSONDecoder().decode(RoutingDiff.self, from: enc.encode(d))
        XCTAssertEqual(back, d)
    }

    // MARK: real snapshots

    /// bookinfo (an Istio config dump): every cluster renamed is no change; the priority-0
    /// endpoint of `reviews` v1 drained is reported for the traffic that reaches it (the
    /// weighted route; priority 1 takes over), confirmed by explain.
    func testBookinfoRenamesAndDrain() throws {
        let path = TestPaths.root.appendingPathComponent("examples/bookinfo/bookinfo.json").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let renamed = text.replacingOccurrences(of: "outbound|", with: "renamed|")
        XCTAssertNotEqual(renamed, text)
        XCTAssertFalse(try diff(text, renamed, ext: "json").changed)

        var dump = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        var configs = try XCTUnwrap(dump["configs"] as? [[String: Any]])
        let e = try XCTUnwrap(configs.firstIndex { ($0["@type"] as? String)?.hasSuffix("EndpointsConfigDump") == true })
        var cla = try XCTUnwrap(configs[e]["dynamic_endpoint_configs"] as? [[String: Any]])
        // reviews v1: half of the weighted route's traffic for every host of reviews.
        let target = "outbound|9080|v1|reviews.default.svc.cluster.local"
        let i = try XCTUnwrap(cla.firstIndex { ($0["endpoint_config"] as? [String: Any])?["cluster_name"] as? String == target })
        var config = try XCTUnwrap(cla[i]["endpoint_config"] as? [String: Any])
        var localities = try XCTUnwrap(config["endpoints"] as? [[String: Any]])
        var lbs = try XCTUnwrap(localities[0]["lb_endpoints"] as? [[String: Any]])
        lbs[0]["health_status"] = "DRAINING"
        let address = try XCTUnwrap(
            (((lbs[0]["endpoint"] as? [String: Any])?["address"] as? [String: Any])?["socket_address"] as? [String: Any])?["address"] as? String)
        localities[0]["lb_endpoints"] = lbs
        config["endpoints"] = localities
        cla[i]["endpoint_config"] = config
        configs[e]["dynamic_endpoint_configs"] = cla
        dump["configs"] = configs
        let drained = String(decoding: try JSONSerialization.data(withJSONObject: dump), as: UTF8.self)
        let d = try diff(text, drained, ext: "json")
        XCTAssertTrue(d.changed)
        XCTAssertEqual(d.changes.count, 1, d.text)
        for c in d.changes {
            XCTAssertEqual(c.kind, .request)
            XCTAssertEqual(c.host, "reviews.default.svc.cluster.local", d.text)
            XCTAssertNil(c.example.headers, "the end-user: jason route goes to v2 only: \(c.example)")
            XCTAssertTrue(c.old.endpoints.contains { $0.endpoint.hasPrefix(address + ":") }, d.text)
            XCTAssertFalse(c.new.endpoints.contains { $0.endpoint.hasPrefix(address + ":") }, d.text)
        }
        // v1's other endpoint is at priority 1: it takes v1's whole share.
        XCTAssertTrue(d.changes.first?.new.endpoints.contains { $0.priority == 1 && ($0.share - 50).magnitude < 0.01 } == true, d.text)
    }
}
