import Foundation
import SwiftProtobuf
import XCTest

@testable import Codegen

/// Bad input never crashes or hangs the parse stage: it becomes diagnostics.
final class FrontendBadInputTests: XCTestCase {
    func parse(_ bytes: [UInt8], _ name: String = "bad", format: InputFormat = .auto) -> XDSSnapshot {
        SnapshotParser(format: format).parse(bytes, sourceName: name)
    }

    func parse(_ text: String, _ name: String = "bad", format: InputFormat = .auto) -> XDSSnapshot {
        parse(Array(text.utf8), name, format: format)
    }

    func assertError(_ s: XDSSnapshot, _ id: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(
            s.diagnostics.contains { $0.id == id && $0.severity == .error },
            "expected error \(id), got \(s.diagnostics.map(\.rendered))", file: file, line: line)
    }

    /// A small valid snapshot in binary form (stream of two responses).
    static func validStream() throws -> [UInt8] {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/frontend")
        return [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("weighted-zones.xds.pb")))
    }

    func testEmptyInputs() {
        assertError(parse([UInt8]()), "XDS008")
        assertError(parse("  \n\t\r\n"), "XDS008")
        assertError(parse("# only a comment\n---\n"), "XDS008")
        assertError(parse([UInt8](), format: .pb), "XDS008")
        // Empty lists and mappings are valid, empty snapshots.
        XCTAssertEqual(parse("[]").diagnostics.count, 0)
        XCTAssertEqual(parse("{}").diagnostics.count, 0)
        XCTAssertEqual(parse("resources: []\n").diagnostics.count, 0)
    }

    func testInvalidJSONAndYAML() {
        assertError(parse(#"{"resources": [ {"name": "x", }"#), "XDS003")
        assertError(parse(#"{"a": "unterminated"#), "XDS003")
        assertError(parse(#"[1, 2"#), "XDS003")
        assertError(parse("{\"a\": \"\\uD800\"}"), "XDS003")
        assertError(parse("a: [b\nc: d\n"), "XDS004")
        assertError(parse("a: b\n  c: d\n\t- e"), "XDS004")
        assertError(parse("key: @reserved\n"), "XDS004")
        assertError(parse("{", format: .json), "XDS003")
    }

    func testWrongTypes() {
        assertError(parse("just a string"), "XDS005")
        assertError(parse("42"), "XDS005")
        assertError(parse(#"{"resources": 5}"#), "XDS005")
        let items = parse("[1, \"x\", null, true]", "list.clusters.json")
        XCTAssertEqual(items.diagnostics.filter { $0.id == "XDS006" }.count, 4)
        assertError(parse(#"{"name": "l", "filter_chains": "nope"}"#, "l.listeners.json"), "XDS006")
        assertError(parse(#"{"name": 5, "address": {"socket_address": {"port_value": "eighty"}}}"#, "l.listeners.json"), "XDS006")
        assertError(parse(#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "dynamic_listeners": {"x": 1}}]}"#), "XDS006")
        assertError(parse(#"{"configs": [3, {"no": "type"}]}"#), "XDS006")
        assertError(parse(#"{"unknown": "shape", "more": [1]}"#), "XDS005")
        assertError(parse(#"{"static_resources": [1]}"#), "XDS006")
    }

    func testTruncatedProtobuf() throws {
        let bytes = try Self.validStream()
        var recognised = 0
        for n in stride(from: 1, to: bytes.count, by: 7) {
            let s = parse(Array(bytes[0..<n]), "t.pb")
            // Either a prefix happens to be a complete stream, or it is reported.
            if !s.diagnostics.isEmpty { XCTAssertTrue(s.diagnostics.hasErrors, "\(n): \(s.diagnostics.map(\.rendered))") }
            if s.diagnostics.isEmpty { recognised += 1 }
        }
        XCTAssertLessThan(recognised, 10)
        assertError(parse(Array(bytes.dropLast()), "t.pb"), "XDS002")
    }

    func testBitFlippedProtobuf() throws {
        let bytes = try Self.validStream()
        var rng = SplitMix64(seed: 42)
        for _ in 0..<1500 {
            var b = bytes
            let flips = Int(rng.next() % 3) + 1
            for _ in 0..<flips {
                let i = Int(rng.next() % UInt64(b.count))
                b[i] ^= UInt8(1) << UInt8(rng.next() % 8)
            }
            let s = parse(b, "flip.pb")
            // Whatever survives decodes into messages; nothing traps.
            _ = s.listeners.count + s.clusters.count
        }
        // Every single-byte corruption of the first response's length prefix.
        for v in 0...255 {
            var b = bytes
            b[0] = UInt8(v)
            _ = parse(b, "len.pb")
        }
    }

    func testRandomBytesAndTextFuzz() {
        var rng = SplitMix64(seed: 7)
        let alphabet = Array("{}[]\":,-0123456789.eE truefalsnul\\/\n\t#&*!|>'@type name filter_chains configs resources".utf8)
        for i in 0..<3000 {
            let n = Int(rng.next() % 300)
            var b = [UInt8](repeating: 0, count: n)
            for k in 0..<n {
                b[k] = i % 2 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : alphabet[Int(rng.next() % UInt64(alphabet.count))]
            }
            let s = parse(b, "fuzz")
            if n > 0, s.listeners.isEmpty, s.clusters.isEmpty, s.routeConfigurations.isEmpty, s.loadAssignments.isEmpty {
                // Nothing decoded: fine, as long as there is no trap.
            }
        }
    }

    func testMutatedJSONFuzz() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/frontend")
        let base = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("case.listeners.yaml")))
        let json = Array(
            #"{"resources":[{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"c","connect_timeout":"1s","load_assignment":{"cluster_name":"c","endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"1.2.3.4","port_value":80}}}}]}]}}]}"#
                .utf8)
        var rng = SplitMix64(seed: 99)
        let junk = Array("{}[]\":,0x-. \n@".utf8)
        for input in [base, json] {
            for _ in 0..<800 {
                var b = input
                for _ in 0..<(Int(rng.next() % 4) + 1) {
                    let i = Int(rng.next() % UInt64(b.count))
                    switch rng.next() % 3 {
                    case 0: b[i] = junk[Int(rng.next() % UInt64(junk.count))]
                    case 1: b.remove(at: i)
                    default: b.insert(junk[Int(rng.next() % UInt64(junk.count))], at: i)
                    }
                }
                _ = parse(b, "m.yaml")
            }
        }
    }

    func testDeepNesting() {
        let start = Date()
        assertError(parse(String(repeating: "[", count: 200_000)), "XDS003")
        assertError(parse(String(repeating: "{\"a\":", count: 100_000) + "1" + String(repeating: "}", count: 100_000)), "XDS003")
        assertError(parse(String(repeating: "[", count: 200_000), format: .yaml), "XDS004")
        var yaml = ""
        for d in 0..<3000 { yaml += String(repeating: " ", count: d) + "k\(d):\n" }
        assertError(parse(yaml, "deep.yaml"), "XDS004")
        var seq = ""
        for d in 0..<2000 { seq += String(repeating: "  ", count: d) + "-\n" }
        assertError(parse(seq, "deep.yaml"), "XDS004")
        // Within the JSON limit but deeper than the protobuf decoder's limit.
        let nested = String(repeating: "{\"a\":", count: 200) + "1" + String(repeating: "}", count: 200)
        let s = parse("{\"name\": \"c\", \"metadata\": {\"filter_metadata\": {\"x\": \(nested)}}}", "c.clusters.json")
        assertError(s, "XDS006")
        XCTAssertLessThan(Date().timeIntervalSince(start), 30)
    }

    func testAliasBomb() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1..<12 {
            yaml += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        yaml += "resources: *a11\n"
        let start = Date()
        assertError(parse(yaml, "bomb.yaml"), "XDS004")
        XCTAssertLessThan(Date().timeIntervalSince(start), 30)
    }

    func testEncodingsAndCompression() {
        assertError(parse([0xFF, 0xFE, 0x7B, 0x00, 0x7D, 0x00]), "XDS001")
        assertError(parse([0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00]), "XDS002")
        // Latin-1 text is neither UTF-8 text nor protobuf.
        let latin1: [UInt8] = Array("name: caf".utf8) + [0xE9, 0x0A]
        assertError(parse(latin1), "XDS002")
        // UTF-8 text with a stray control character is reported by the text reader.
        let ctl = parse(Array("name: a\u{01}b\n".utf8))
        XCTAssertTrue(ctl.diagnostics.contains { $0.id == "XDS004" }, "\(ctl.diagnostics.map(\.rendered))")
        // A BOM is fine.
        XCTAssertEqual(parse([0xEF, 0xBB, 0xBF] + Array("[]".utf8)).diagnostics.count, 0)
    }

    func testHundredMegabyteFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("xds2bpf-big-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("big.pb").path
        var rng = SplitMix64(seed: 1)
        var bytes = [UInt8](repeating: 0, count: 100 << 20)
        bytes.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in words.indices { words[i] = rng.next() }
        }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        bytes = []
        let start = Date()
        let s = SnapshotParser().parse(files: [path])
        let elapsed = Date().timeIntervalSince(start)
        assertError(s, "XDS002")
        XCTAssertEqual(s.inputDigests.count, 1)
        XCTAssertLessThan(elapsed, 60, "took \(elapsed) s")
    }

    func testLargeValidJSON() throws {
        // 1,000 listeners with nested typed configs, as JSON: linear, not exponential.
        var items: [String] = []
        for i in 0..<1000 {
            items.append(
                """
                {"@type":"type.googleapis.com/envoy.config.listener.v3.Listener","name":"l\(i)",
                 "address":{"socket_address":{"address":"10.0.\(i / 256).\(i % 256)","port_value":\(1000 + i)}},
                 "filter_chains":[{"filters":[{"name":"hcm","typed_config":{"@type":"\(FrontendShapeTests.hcmURL)",
                   "stat_prefix":"s\(i)","route_config":{"name":"r\(i)","virtual_hosts":[{"name":"v","domains":["*"],
                   "typed_per_filter_config":{"f":{"@type":"type.googleapis.com/some.Unknown","x":[1,2,3]}},
                   "routes":[{"match":{"prefix":"/"},"route":{"cluster":"c\(i)"}}]}]},
                   "http_filters":[{"name":"w","typed_config":{"@type":"type.googleapis.com/udpa.type.v1.TypedStruct","type_url":"x.Y","value":{"k":"v"}}},
                                   {"name":"r","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}
                """)
        }
        let text = "{\"resources\": [" + items.joined(separator: ",") + "]}"
        let start = Date()
        let s = parse(text, "big.json")
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(s.listeners.count, 1000)
        XCTAssertFalse(s.diagnostics.hasErrors, "\(s.diagnostics.prefix(3).map(\.rendered))")
        let hcm = try s.listeners[999].message.filterChains[0].filters[0].typedConfig.unpackIfXDS(
            Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.self)
        XCTAssertEqual(hcm?.routeConfig.virtualHosts.first?.routes.first?.route.cluster, "c999")
        XCTAssertEqual(hcm?.routeConfig.virtualHosts.first?.typedPerFilterConfig["f"]?.xdsTypeName, "some.Unknown")
        print("frontend: \(text.utf8.count) bytes of JSON (1000 listeners) parsed in \(String(format: "%.3f", elapsed)) s")
        #if DEBUG
            XCTAssertLessThan(elapsed, 60)
        #else
            XCTAssertLessThan(elapsed, 5)
        #endif
    }
}

/// Deterministic test randomness.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
