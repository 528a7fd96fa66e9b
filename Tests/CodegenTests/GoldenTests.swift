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
            fm.fileExists(atPath: url.path, isDirectory: &isDir)
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

    func testCasesExist() {
        XCTAssertGreaterThanOrEqual(Self.cases.count, 14, "fixtures missing")
    }

    func testIRGoldens() {
        for (name, inputs) in Self.cases {
            let fe = Pipeline.frontEnd(files: files(inputs))
            XCTAssertFalse(fe.rejected, "\(name): \(fe.diagnostics.filter { $0.severity == .error }.map(\.rendered))")
            assertGolden(IRPrinter.render(fe.ir), "\(name)/ir.txt")
        }
    }

    func testBundleGoldens() throws {
        let clang = try Clang.locate()
        for (name, inputs) in Self.cases {
            let fe = Pipeline.frontEnd(files: files(inputs))
            let r = try Pipeline.compile(fe, clang: clang)
            XCTAssertFalse(r.diagnostics.hasErrors, "\(name)")
            assertGolden(r.emitted.source, "\(name)/x2b.bpf.c")
            assertGolden(ManifestText.render(r.manifest, stable: true), "\(name)/manifest.txt")
            for m in r.emitted.maps {
                guard let img = m.image, img.entries > 0 else { continue }
                assertGolden(
                    img.entries > 2000 ? "\(img.entries) records, sha256 \(sha256Hex(img.bytes))\n" : img.hexText,
                    "\(name)/maps/\(m.name).hex.txt")
            }
            XCTAssertNotNil(r.bundle.files["x2b.bpf.o"], "\(name): no object")
        }
    }
}
