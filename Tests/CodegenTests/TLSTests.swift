import Foundation
import XCTest

@testable import Codegen

/// TLS passthrough: filter chains chosen by the ClientHello (server names,
/// transport protocol, ALPN) as Envoy's TLS inspector and filter-chain manager
/// choose them; the interpreter, the plan, and the kernel's parser and chooser
/// (BPF_PROG_TEST_RUN, root).
final class TLSTests: XCTestCase {
    static var fixture: String { TestPaths.fixtures.appendingPathComponent("tls/passthrough.json").path }

    func frontEnd(_ files: [String]) -> FrontEndResult {
        Pipeline.frontEnd(files: files, options: FrontEndOptions())
    }

    /// The cluster the interpreter picks, or nil when the connection is refused.
    func cluster(_ ir: MeshIR, _ dst: String, _ hello: TLSHello?) -> String? {
        let colon = dst.lastIndex(of: ":")!
        let addr = IRAddress(parsing: String(dst[..<colon]))!
        let e = Interpreter.explain(ir, address: addr, port: UInt16(dst[dst.index(after: colon)...])!, request: nil, random: 0, hello: hello)
        return e.outcome == .refused ? nil : e.cluster
    }

    func hello(_ sni: String?, _ alpn: [String] = []) -> TLSHello {
        TLSHello(isTLS: true, serverName: sni ?? "", applicationProtocols: alpn)
    }

    func testFixtureCompilesWithoutDiagnosticsOfTLS() {
        let fe = frontEnd([Self.fixture])
        XCTAssertFalse(fe.diagnostics.contains { $0.id == DiagnosticID.unsupportedRouting.code }, "\(fe.diagnostics)")
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics)")
        let ir = IRPrinter.render(fe.ir)
        XCTAssertTrue(ir.contains("server_names [\"*.b.example.com\", \"bar.test\"]"), ir)
        XCTAssertTrue(ir.contains("alpn [\"http/1.1\", \"acme\"]"), ir)
    }

    func testInterpreterFollowsEnvoysLevels() {
        let ir = frontEnd([Self.fixture]).ir
        let d = "10.96.2.1:443"
        let cases: [(TLSHello?, String?)] = [
            (hello("foo.example.com"), "foo"),
            (hello("FOO.example.COM"), "foo"),  // the socket's SNI is lowercased
            (hello("x.example.com"), "wild"),
            (hello("a.b.example.com"), "wild-b"),  // the longest wildcard first
            (hello("b.example.com"), "wild"),
            (hello("bar.test"), "wild-b"),
            (hello("alpn.example.com", ["h2"]), "h2"),
            (hello("alpn.example.com", ["x", "acme", "h2"]), "h1"),  // the client's order
            (hello("alpn.example.com", ["x"]), "alpn-any"),
            (hello("alpn.example.com"), "alpn-any"),
            (hello("strict.example.com", ["http/1.1"]), "dflt"),  // no backtracking: default chain
            (hello("strict.example.com", ["h2"]), "h2"),
            (hello(nil), "nosni"),
            (hello("other.test"), "nosni"),
            (hello("example.com"), "nosni"),  // "*.example.com" needs a label before it
            (TLSHello.plaintext, "plain"),
            (nil, "plain"),
        ]
        for (h, want) in cases {
            XCTAssertEqual(cluster(ir, d, h), want, "\(String(describing: h))")
        }
        // No default chain: what matches no chain is refused.
        XCTAssertEqual(cluster(ir, "10.1.2.3:8443", hello("foo.gw.test")), "foo")
        XCTAssertEqual(cluster(ir, "10.1.2.3:8443", hello("x.bar.gw.test")), "wild")
        XCTAssertNil(cluster(ir, "10.1.2.3:8443", hello("bar.gw.test")))
        XCTAssertNil(cluster(ir, "10.1.2.3:8443", hello(nil)))
        XCTAssertNil(cluster(ir, "10.1.2.3:8443", .plaintext))
    }

    func testWildcardKeysAsEnvoyTriesThem() {
        XCTAssertEqual(TLSSelection.wildcardKeys("a.b.example.com"), [".b.example.com", ".example.com", ".com"])
        XCTAssertEqual(TLSSelection.wildcardKeys("example.com"), [".com"])
        XCTAssertEqual(TLSSelection.wildcardKeys(".com"), [])
        XCTAssertEqual(TLSSelection.wildcardKeys("com."), [])
    }

    func write(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-tls-\(UUID().uuidString).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    func testTerminatingChainIsRefused() throws {
        let path = try write(
            """
            static_resources:
              listeners:
              - name: https
                address: {socket_address: {address: 10.96.2.2, port_value: 443}}
                filter_chains:
                - filter_chain_match: {server_names: [www.example.com]}
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: https
                      route_config:
                        virtual_hosts:
                        - {name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: backend}}]}
              clusters:
              - name: backend
                type: STATIC
                load_assignment:
                  cluster_name: backend
                  endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 10.20.0.1, port_value: 80}}}}]}]
            """)
        // Envoy accepts it; the kernel cannot terminate TLS: the chain refuses (fail closed).
        let fe = frontEnd([path])
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics)")
        let d = fe.diagnostics.first { $0.id == DiagnosticID.refusedFailClosed.code }
        XCTAssertNotNil(d, "\(fe.diagnostics)")
        XCTAssertEqual(d?.severity, .warning)
        XCTAssertEqual(d?.path, "listeners[\"https\"].filter_chains[0].filter_chain_match")
        XCTAssertTrue(d?.message.contains("behind TLS termination, which the kernel cannot do") == true, d?.message ?? "")
        guard case .refuse? = fe.ir.listeners.first?.chains.first?.action else {
            return XCTFail("\(String(describing: fe.ir.listeners.first?.chains))")
        }
        let vip = IRAddress(family: .inet4, bytes: [10, 96, 2, 2])
        let hello = TLSHello(isTLS: true, serverName: "www.example.com", applicationProtocols: [])
        XCTAssertEqual(Interpreter.explain(fe.ir, address: vip, port: 443, request: nil, random: 0, hello: hello).outcome, .refused)
        // --unsupported=error rejects it; --unsupported=warn drops the chain (it never matches).
        let strict = Pipeline.frontEnd(files: [path], options: FrontEndOptions(unsupported: .error))
        XCTAssertTrue(strict.rejected)
        let warn = Pipeline.frontEnd(files: [path], options: FrontEndOptions(unsupported: .warn))
        XCTAssertTrue(warn.diagnostics.contains { $0.id == DiagnosticID.unsupportedRouting.code && $0.message.contains("cannot terminate TLS") })
        XCTAssertTrue(warn.ir.listeners.allSatisfy(\.chains.isEmpty), "\(warn.ir.listeners)")
    }

    func testPlanDefersAndRefusesWithoutTheModule() {
        let fe = frontEnd([Self.fixture])
        let (plan, diags) = Planner.plan(fe.ir)
        XCTAssertEqual(plan.tlsTables.count, 2)
        XCTAssertTrue(plan.needsHTTP, "TLS rows need the defer-connect build")
        XCTAssertEqual(diags.filter { $0.id == DiagnosticID.httpNeedsModule.code }.count, 2, "\(diags)")
        for a in plan.actions where a.kind == .tls {
            XCTAssertEqual(plan.actions[Int(a.fallback)].kind, .refuse, "without the module a TLS row refuses")
        }
        let header = CEmitter.emit(plan).routesHeader ?? ""
        XCTAssertTrue(header.contains("#include \"x2b_tls.h\""))
        XCTAssertTrue(header.contains("x2b_tls_leaf"))
    }

    // MARK: Kernel (root): the parser and chooser through BPF_PROG_TEST_RUN

    /// Many server names (an Istio mesh's ServiceEntry hosts): the straight-line chooser
    /// still passes the verifier and picks the right chain at both ends of the table.
    func testKernelChooserScalesToManyServerNames() throws {
        try TestPaths.requireKernel()
        let n = 2000
        var chains: [String] = []
        var clusters: [String] = []
        for i in 0..<n {
            let name = i % 2 == 0 ? "svc\(i).example.test" : "*.zone\(i).example.test"
            chains.append(
                """
                {"filter_chain_match": {"server_names": ["\(name)"]}, "filters": [{"name": "tcp", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "s", "cluster": "c\(i)"}}]}
                """)
            clusters.append(
                """
                {"name": "c\(i)", "type": "STATIC", "load_assignment": {"cluster_name": "c\(i)", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.30.\(i / 250).\(i % 250 + 1)", "port_value": 443}}}}]}]}}
                """)
        }
        let path = try write(
            """
            {"static_resources": {"listeners": [{"name": "many", "address": {"socket_address": {"address": "10.96.4.1", "port_value": 443}},
            "filter_chains": [\(chains.joined(separator: ","))]}], "clusters": [\(clusters.joined(separator: ","))]}}
            """)
        let fe = frontEnd([path])
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics.prefix(3))")
        let (build, plan) = try TLSTestRun.build(fe.ir)
        let heads = ["svc0.example.test", "svc\(n - 2).example.test", "a.b.zone1.example.test", "x.zone\(n - 1).example.test", "zone1.example.test"]
        let got = try TLSTestRun.run(build, table: 0, heads: heads.map { TLSTestRun.clientHello(serverName: $0, alpn: ["h2"]) })
        let names = got.map { g in g.action.map { plan.clusters[Int(plan.actions[Int($0)].target)].name } }
        XCTAssertEqual(names, ["c0", "c\(n - 2)", "c1", "c\(n - 1)", nil])
        for h in heads { XCTAssertEqual(cluster(fe.ir, "10.96.4.1:443", hello(h)), names[heads.firstIndex(of: h)!]) }
    }

    func testKernelChooserAgreesWithInterpreter() throws {
        try TestPaths.requireKernel()
        let fe = frontEnd([Self.fixture])
        let (build, plan) = try TLSTestRun.build(fe.ir)
        func name(_ action: UInt32?) -> String? {
            guard let action else { return nil }
            let a = plan.actions[Int(action)]
            return a.kind == .cluster ? plan.clusters[Int(a.target)].name : "kind \(a.kind)"
        }
        let snis: [String?] = [
            "foo.example.com", "FOO.Example.Com", "x.example.com", "a.b.example.com", "b.example.com", "bar.test", "example.com",
            "alpn.example.com", "strict.example.com", "other.test", "foo.gw.test", "x.bar.gw.test", "bar.gw.test", ".example.com",
            String(repeating: "a.", count: 40) + "example.com", nil,
        ]
        let alpns: [[String]?] = [nil, ["h2"], ["x", "acme", "h2"], ["x"], ["http/1.1"], (1...9).map { "p\($0)" } + ["h2"]]
        for (table, dst) in [(0, "10.96.2.1:443"), (1, "10.1.2.3:8443")] {
            let parts = dst.split(separator: ":")
            let l = ChainSelection.listener(in: fe.ir, address: IRAddress(parsing: String(parts[0]))!, port: UInt16(parts[1])!)!
            XCTAssertEqual(plan.tlsTables[table].source, l.path)
            var heads: [[UInt8]] = []
            var want: [String?] = []
            var labels: [String] = []
            for sni in snis {
                for alpn in alpns {
                    for split in [[], [3], [40, 41]] {
                        heads.append(TLSTestRun.clientHello(serverName: sni, alpn: alpn, splitAt: split))
                        labels.append("\(sni ?? "-") \(alpn ?? []) split \(split)")
                        var w = cluster(fe.ir, dst, hello(sni, alpn ?? []))
                        if sni.map({ $0.split(separator: ".").count > 33 }) == true { w = nil }  // wildcard keys past 32: refused
                        if (alpn?.count ?? 0) > 8, w == "h2" || w == "h1" || w == "alpn-any" { w = nil }  // ALPN values past 8: refused
                        want.append(w)
                    }
                }
            }
            // Plain bytes, a ClientHello cut short, malformed ones.
            let full = TLSTestRun.clientHello(serverName: "foo.example.com", alpn: ["h2"])
            let extras: [([UInt8], String?, String)] = [
                (Array("GET / HTTP/1.1\r\nHost: foo.example.com\r\n\r\n".utf8), cluster(fe.ir, dst, .plaintext), "plaintext"),
                (Array(full.prefix(60)), nil, "cut short"),
                (Array(full.prefix(3)), nil, "three bytes"),
                ([0x16, 0x02, 0x00, 0x00, 0x01, 0x01], cluster(fe.ir, dst, .plaintext), "record version 2"),
                ([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00], cluster(fe.ir, dst, .plaintext), "a ServerHello"),
                (TLSTestRun.clientHello(serverName: "bad\u{0}.example.com", alpn: nil), cluster(fe.ir, dst, .plaintext), "NUL in the name"),
                ([UInt8](), cluster(fe.ir, dst, .plaintext), "nothing"),
            ]
            for (h, w, label) in extras {
                heads.append(h)
                want.append(w)
                labels.append(label)
            }
            let got = try TLSTestRun.run(build, table: UInt32(table), heads: heads)
            XCTAssertEqual(got.count, heads.count)
            for (i, g) in got.enumerated() {
                XCTAssertEqual(name(g.action), want[i], "\(dst) \(labels[i]) (state \(g.state), sni \(g.serverNameLength), alpn \(g.alpnCount))")
            }
        }
    }

    /// ClientHellos of post-quantum clients (X25519MLKEM768 key shares: 1.5-1.9 KB) fit in
    /// X2B_HEAD_MAX and are routed by server name, also over several records; one larger
    /// than the head is not seen whole and is refused.
    func testLargePostQuantumClientHelloRoutedByServerName() throws {
        try TestPaths.requireKernel()
        let fe = frontEnd([Self.fixture])
        let (build, plan) = try TLSTestRun.build(fe.ir)
        let dst = "10.96.2.1:443"
        let parts = dst.split(separator: ":")
        let l = ChainSelection.listener(in: fe.ir, address: IRAddress(parsing: String(parts[0]))!, port: UInt16(parts[1])!)!
        let table = try XCTUnwrap(plan.tlsTables.firstIndex { $0.source == l.path })
        let pq = TLSTestRun.clientHello(serverName: "foo.example.com", alpn: ["h2"], postQuantum: true)
        let chrome = TLSTestRun.clientHello(serverName: "foo.example.com", alpn: ["h2", "http/1.1"], postQuantum: true, padding: 500)
        let split = TLSTestRun.clientHello(serverName: "x.example.com", alpn: ["h2"], splitAt: [700, 1400], postQuantum: true, padding: 400)
        let near = TLSTestRun.clientHello(serverName: "foo.example.com", alpn: ["h2"], padding: Int(ABI.headMax) - 180)
        let over = TLSTestRun.clientHello(serverName: "foo.example.com", alpn: ["h2"], postQuantum: true, padding: Int(ABI.headMax))
        XCTAssertGreaterThan(pq.count, 1400)
        XCTAssertGreaterThan(chrome.count, 1900)
        XCTAssertGreaterThan(split.count, 1800)
        XCTAssertLessThanOrEqual(near.count, Int(ABI.headMax))
        XCTAssertGreaterThan(near.count, Int(ABI.headMax) - 100)
        XCTAssertGreaterThan(over.count, Int(ABI.headMax))
        // the driver takes at most X2B_HEAD_MAX + 1 bytes, as the module keeps X2B_HEAD_MAX
        let heads = [pq, chrome, split, near, Array(over.prefix(Int(ABI.headMax) + 1))]
        let got = try TLSTestRun.run(build, table: UInt32(table), heads: heads)
        func name(_ action: UInt32?) -> String? {
            guard let action else { return nil }
            let a = plan.actions[Int(action)]
            return a.kind == .cluster ? plan.clusters[Int(a.target)].name : "kind \(a.kind)"
        }
        let foo = cluster(fe.ir, dst, hello("foo.example.com", ["h2"]))
        XCTAssertNotNil(foo)
        let want: [String?] = [
            foo, cluster(fe.ir, dst, hello("foo.example.com", ["h2", "http/1.1"])), cluster(fe.ir, dst, hello("x.example.com", ["h2"])), foo, nil,
        ]
        for (i, g) in got.enumerated() {
            XCTAssertEqual(name(g.action), want[i], "head \(i) of \(heads[i].count) bytes (state \(g.state))")
        }
        XCTAssertEqual(got.map(\.state), [1, 1, 1, 1, 2])  // X2B_TLS_HELLO; the last X2B_TLS_PARTIAL
        XCTAssertEqual(got[0].serverNameLength, "foo.example.com".utf8.count)
    }
}
