import Foundation
import XCTest

@testable import Codegen

/// The CLI contract other tools rely on: exit codes 0 (success, warnings
/// allowed), 1 (input rejected), 2 (usage), 3 (internal or toolchain error).
final class CLITests: XCTestCase {
    var bin: String { TestPaths.binary }
    func fixture(_ rel: String) -> String { TestPaths.root.appendingPathComponent(rel).path }

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: bin), "xds2bpf not built at \(bin)")
    }

    func tmpDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }

    func testCheckSucceeds() throws {
        let (rc, out, _) = try runProcess(bin, ["check", fixture("Tests/Fixtures/l4/tcp-single.json")])
        XCTAssertEqual(rc, 0)
        XCTAssertTrue(out.contains("1 listeners"), out)
    }

    func testUsageErrorsExit2() throws {
        XCTAssertEqual(try runProcess(bin, ["check"]).0, 2)
        XCTAssertEqual(try runProcess(bin, ["compile", "--no-such-flag", "x"]).0, 2)
        XCTAssertEqual(try runProcess(bin, ["explain", fixture("Tests/Fixtures/l4/tcp-single.json"), "--dst", "nonsense"]).0, 2)
        XCTAssertEqual(try runProcess(bin, ["check", "--format", "xml", "x"]).0, 2)
    }

    func testHelpExits0() throws {
        XCTAssertEqual(try runProcess(bin, ["--help"]).0, 0)
        XCTAssertEqual(try runProcess(bin, ["compile", "--help"]).0, 0)
    }

    func testBadInputsExit1WithADiagnostic() throws {
        let d = try tmpDir()
        let cases: [(String, Data)] = [
            ("empty.json", Data()),
            ("invalid.json", Data("{\"static_resources\": {".utf8)),
            ("invalid.yaml", Data("static_resources: [\n  - : :\n\t- x".utf8)),
            ("truncated.pb", try Data(contentsOf: URL(fileURLWithPath: fixture("examples/bookinfo/bookinfo.pb"))).prefix(777)),
            ("wrongtype.json", Data("{\"static_resources\": {\"listeners\": 42}}".utf8)),
            ("deep.json", Data((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8)),
            (
                "dangling.json",
                Data(
                    """
                    {"static_resources": {"listeners": [{"name": "l", "address": {"socket_address": {"address": "10.0.0.1", "port_value": 80}},
                     "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                     "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                     "stat_prefix": "s", "route_config": {"virtual_hosts": [{"name": "v", "domains": ["*"],
                     "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "missing"}}]}]}}}]}]}]}}
                    """.utf8)
            ),
        ]
        for (name, data) in cases {
            let url = d.appendingPathComponent(name)
            try data.write(to: url)
            let (rc, _, err) = try runProcess(bin, ["check", url.path])
            XCTAssertEqual(rc, 1, "\(name): \(err.prefix(500))")
            XCTAssertTrue(err.contains("error[XDS"), "\(name): no diagnostic in \(err.prefix(500))")
        }
        let (rc, _, err) = try runProcess(bin, ["check", d.appendingPathComponent("no-such-file.json").path])
        XCTAssertEqual(rc, 1, err)
    }

    func testBitFlippedProtobufNeverCrashes() throws {
        let d = try tmpDir()
        var data = try Data(contentsOf: URL(fileURLWithPath: fixture("examples/bookinfo/bookinfo.pb")))
        var rng = SystemRandomNumberGenerator()
        for i in 0..<20 {
            var copy = data
            for _ in 0..<8 {
                let at = Int.random(in: 0..<copy.count, using: &rng)
                copy[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            }
            let url = d.appendingPathComponent("flip\(i).pb")
            try copy.write(to: url)
            let (rc, _, err) = try runProcess(bin, ["check", url.path])
            XCTAssertTrue(rc == 0 || rc == 1, "flip\(i): exit \(rc): \(err.prefix(300))")
        }
        data.removeAll()
    }

    func testHugeFileIsRejectedWithoutHanging() throws {
        let d = try tmpDir()
        let url = d.appendingPathComponent("big.json")
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        let h = try FileHandle(forWritingTo: url)
        let chunk = Data(repeating: UInt8(ascii: "x"), count: 1 << 20)
        for _ in 0..<100 { h.write(chunk) }
        try h.close()
        let start = Date()
        let (rc, _, err) = try runProcess(bin, ["check", url.path])
        XCTAssertEqual(rc, 1, err.prefix(300).description)
        XCTAssertLessThan(Date().timeIntervalSince(start), 60)
    }

    func testCompileRejectedInputWritesNothing() throws {
        let d = try tmpDir()
        let bad = d.appendingPathComponent("bad.json")
        try Data("{\"static_resources\": {\"listeners\": 42}}".utf8).write(to: bad)
        let out = d.appendingPathComponent("bundle")
        let (rc, _, _) = try runProcess(bin, ["compile", bad.path, "-o", out.path])
        XCTAssertEqual(rc, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: d.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [])
    }

    func testMissingClangExits3() throws {
        let d = try tmpDir()
        var env = ProcessInfo.processInfo.environment
        env["XDS2BPF_CLANG"] = "/nonexistent/clang"
        let (rc, _, err) = try runProcess(
            bin,
            [
                "compile", "--cache-dir", "none", fixture("Tests/Fixtures/l4/tcp-single.json"),
                "-o", d.appendingPathComponent("b").path,
            ], environment: env)
        XCTAssertEqual(rc, 3, err)
        XCTAssertTrue(err.contains("XDS402"), err)
    }

    func testCompileStdinAndTarAreDeterministic() throws {
        let d = try tmpDir()
        let input = try Data(contentsOf: URL(fileURLWithPath: fixture("Tests/Fixtures/l4/tcp-weighted.json")))
        let t1 = d.appendingPathComponent("a.tar").path, t2 = d.appendingPathComponent("b.tar").path
        XCTAssertEqual(try runProcess(bin, ["compile", "--quiet", "-", "-o", t1], stdin: input).0, 0)
        XCTAssertEqual(try runProcess(bin, ["compile", "--quiet", fixture("Tests/Fixtures/l4/tcp-weighted.json"), "-o", t2]).0, 0)
        let a = try Data(contentsOf: URL(fileURLWithPath: t1)), b = try Data(contentsOf: URL(fileURLWithPath: t2))
        XCTAssertGreaterThan(a.count, 1024)
        XCTAssertEqual(a, b)
    }

    func testInspectAndExplain() throws {
        let d = try tmpDir()
        let out = d.appendingPathComponent("bundle").path
        XCTAssertEqual(try runProcess(bin, ["compile", "--quiet", fixture("Tests/Fixtures/l4/tcp-weighted.json"), "-o", out]).0, 0)
        let (rc, text, _) = try runProcess(bin, ["inspect", out])
        XCTAssertEqual(rc, 0)
        XCTAssertTrue(text.contains("x2b_connect4"), text)
        let (rc2, json, _) = try runProcess(bin, ["inspect", "--json", out])
        XCTAssertEqual(rc2, 0)
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(json.utf8)))
        let (rc3, ex, _) = try runProcess(bin, ["explain", fixture("Tests/Fixtures/l4/tcp-weighted.json"), "--dst", "10.96.1.2:5000", "--random", "45"])
        XCTAssertEqual(rc3, 0)
        // 45 % 100 falls in backend-b's cumulative range [10, 40)? No: 45 is in backend-c's [40, 100).
        XCTAssertTrue(ex.contains("10.20.3.1:8080"), ex)
        XCTAssertEqual(try runProcess(bin, ["inspect", d.path]).0, 1)
    }

    /// `compile -o bundle.tar` output is accepted by inspect; explain given a bundle says what it takes.
    func testInspectTarAndExplainOfABundle() throws {
        let d = try tmpDir()
        let tar = d.appendingPathComponent("bundle.tar").path, dir = d.appendingPathComponent("bundle").path
        let snapshot = fixture("Tests/Fixtures/l4/tcp-weighted.json")
        XCTAssertEqual(try runProcess(bin, ["compile", "--quiet", snapshot, "-o", tar]).0, 0)
        XCTAssertEqual(try runProcess(bin, ["compile", "--quiet", snapshot, "-o", dir]).0, 0)
        let (rc, text, err) = try runProcess(bin, ["inspect", tar])
        XCTAssertEqual(rc, 0, err)
        XCTAssertEqual(text, try runProcess(bin, ["inspect", dir]).1)
        XCTAssertTrue(text.contains("x2b_connect4"), text)
        // a flipped byte inside manifest.pb of the archive is caught by manifest.sha256
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.pb"))
        bytes[bytes.count / 2] ^= 0x20
        try bytes.write(to: URL(fileURLWithPath: dir + "/manifest.pb"))
        let (rc2, _, err2) = try runProcess(bin, ["inspect", dir])
        XCTAssertEqual(rc2, 1)
        XCTAssertTrue(err2.contains("manifest.sha256"), err2)
        for bundle in [dir, tar] {
            let (rc3, _, err3) = try runProcess(bin, ["explain", bundle, "--dst", "10.96.1.2:5000"])
            XCTAssertEqual(rc3, 2, err3)
            XCTAssertTrue(err3.contains("explain takes an xDS snapshot"), err3)
        }
    }
}
