import Foundation
import XCTest

@testable import Codegen

/// Whole-output snapshots per case: the IR text, the generated C, the manifest
/// (toolchain-independent rendering) and a hex rendering of every map image.
/// Every case is also compiled with clang -Werror (Pipeline.compile runs it).
final class GoldenTests: XCTestCase {
    /// name → input files, relative to the checkout.
    static let cases: [(String, [String])] = {
        var out: [(String, [String])] = []
        let l4 = TestPaths.fixtures.appendingPathComponent("l4")
        let fm = FileManager.default
        for entry in ((try? fm.contentsOfDirectory(atPath: l4.path)) ?? []).sorted() {
            let url = l4.appendingPathComponent(entry)
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: url.path, isDirectory: &isDir)
            if isDir.boolValue {
                let files = ((try? fm.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
                    .filter { $0.hasSuffix(".json") || $0.hasSuffix(".yaml") }
                    .map { "Tests/Fixtures/l4/\(entry)/\($0)" }
                out.append(("l4-\(entry)", files))
            } else if entry.hasSuffix(".json") {
                out.append(("l4-\(entry.dropLast(5))", ["Tests/Fixtures/l4/\(entry)"]))
            }
        }
        out.append(("bookinfo", ["examples/bookinfo/bookinfo.json"]))
        return out
    }()

    func files(_ rel: [String]) -> [String] { rel.map { TestPaths.root.appendingPathComponent($0).path } }

    /// Every case has its own two tests below, so a failure names the case;
    /// `testEveryCaseHasItsTests` fails when a fixture is added without them.
    static let listed = [
        "bookinfo",
        "l4-eds-separate",
        "l4-health",
        "l4-ipv6",
        "l4-lb-least-request",
        "l4-lb-maglev",
        "l4-lb-random",
        "l4-lb-ring-hash",
        "l4-lb-round-robin-weighted",
        "l4-locality-weights",
        "l4-locality-weights-random-lr",
        "l4-multi-file",
        "l4-priorities",
        "l4-shared-endpoints",
        "l4-tcp-single",
        "l4-tcp-weighted",
        "l4-wildcard-listener",
    ]

    func testEveryCaseHasItsTests() {
        XCTAssertGreaterThanOrEqual(Self.cases.count, 14, "fixtures missing")
        XCTAssertEqual(
            Self.cases.map(\.0).sorted(), Self.listed.sorted(),
            "add testIR_<case> and testBundle_<case> for a new fixture, and the case to `listed`")
    }

    func inputs(_ name: String) -> [String] {
        guard let c = Self.cases.first(where: { $0.0 == name }) else {
            XCTFail("no golden case \(name)")
            return []
        }
        return files(c.1)
    }

    /// The IR text; no toolchain needed.
    func checkIR(_ name: String, file: StaticString = #filePath, line: UInt = #line) {
        let fe = Pipeline.frontEnd(files: inputs(name))
        XCTAssertFalse(fe.rejected, "\(name): \(fe.diagnostics.filter { $0.severity == .error }.map(\.rendered))", file: file, line: line)
        assertGolden(IRPrinter.render(fe.ir), "\(name)/ir.txt", file: file, line: line)
    }

    /// The C, the manifest and the map images; compiled with clang (skipped without it).
    func checkBundle(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let clang = try TestPaths.requireClang()
        let fe = Pipeline.frontEnd(files: inputs(name))
        let r = try Pipeline.compile(fe, clang: clang)
        XCTAssertFalse(r.diagnostics.hasErrors, "\(name)", file: file, line: line)
        assertGolden(r.emitted.source, "\(name)/x2b.bpf.c", file: file, line: line)
        assertGolden(ManifestText.render(r.manifest, stable: true), "\(name)/manifest.txt", file: file, line: line)
        for m in r.emitted.maps {
            guard let img = m.image, img.entries > 0 else { continue }
            assertGolden(
                img.entries > 2000 ? "\(img.entries) records, sha256 \(sha256Hex(img.bytes))\n" : img.hexText,
                "\(name)/maps/\(m.name).hex.txt", file: file, line: line)
        }
        XCTAssertNotNil(r.bundle.files["x2b.bpf.o"], "\(name): no object", file: file, line: line)
    }

    func testIR_bookinfo() { checkIR("bookinfo") }
    func testIR_l4_eds_separate() { checkIR("l4-eds-separate") }
    func testIR_l4_health() { checkIR("l4-health") }
    func testIR_l4_ipv6() { checkIR("l4-ipv6") }
    func testIR_l4_lb_least_request() { checkIR("l4-lb-least-request") }
    func testIR_l4_lb_maglev() { checkIR("l4-lb-maglev") }
    func testIR_l4_lb_random() { checkIR("l4-lb-random") }
    func testIR_l4_lb_ring_hash() { checkIR("l4-lb-ring-hash") }
    func testIR_l4_lb_round_robin_weighted() { checkIR("l4-lb-round-robin-weighted") }
    func testIR_l4_locality_weights() { checkIR("l4-locality-weights") }
    func testIR_l4_locality_weights_random_lr() { checkIR("l4-locality-weights-random-lr") }
    func testIR_l4_multi_file() { checkIR("l4-multi-file") }
    func testIR_l4_priorities() { checkIR("l4-priorities") }
    func testIR_l4_shared_endpoints() { checkIR("l4-shared-endpoints") }
    func testIR_l4_tcp_single() { checkIR("l4-tcp-single") }
    func testIR_l4_tcp_weighted() { checkIR("l4-tcp-weighted") }
    func testIR_l4_wildcard_listener() { checkIR("l4-wildcard-listener") }

    func testBundle_bookinfo() throws { try checkBundle("bookinfo") }
    func testBundle_l4_eds_separate() throws { try checkBundle("l4-eds-separate") }
    func testBundle_l4_health() throws { try checkBundle("l4-health") }
    func testBundle_l4_ipv6() throws { try checkBundle("l4-ipv6") }
    func testBundle_l4_lb_least_request() throws { try checkBundle("l4-lb-least-request") }
    func testBundle_l4_lb_maglev() throws { try checkBundle("l4-lb-maglev") }
    func testBundle_l4_lb_random() throws { try checkBundle("l4-lb-random") }
    func testBundle_l4_lb_ring_hash() throws { try checkBundle("l4-lb-ring-hash") }
    func testBundle_l4_lb_round_robin_weighted() throws { try checkBundle("l4-lb-round-robin-weighted") }
    func testBundle_l4_locality_weights() throws { try checkBundle("l4-locality-weights") }
    func testBundle_l4_locality_weights_random_lr() throws { try checkBundle("l4-locality-weights-random-lr") }
    func testBundle_l4_multi_file() throws { try checkBundle("l4-multi-file") }
    func testBundle_l4_priorities() throws { try checkBundle("l4-priorities") }
    func testBundle_l4_shared_endpoints() throws { try checkBundle("l4-shared-endpoints") }
    func testBundle_l4_tcp_single() throws { try checkBundle("l4-tcp-single") }
    func testBundle_l4_tcp_weighted() throws { try checkBundle("l4-tcp-weighted") }
    func testBundle_l4_wildcard_listener() throws { try checkBundle("l4-wildcard-listener") }
}
