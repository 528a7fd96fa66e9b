import Foundation
import XCTest

@testable import Codegen

final class DeterminismTests: XCTestCase {
    func path(_ rel: String) -> String { TestPaths.root.appendingPathComponent(rel).path }

    func testSameSnapshotSameBundleBytes() throws {
        let clang = try TestPaths.requireClang()
        let input = [path("examples/bookinfo/bookinfo.json")]
        let a = try Pipeline.compile(Pipeline.frontEnd(files: input), clang: clang)
        let b = try Pipeline.compile(Pipeline.frontEnd(files: input), clang: clang)
        XCTAssertFalse(a.bundle.files.isEmpty)
        XCTAssertEqual(sha256Hex(a.bundle.tarBytes()), sha256Hex(b.bundle.tarBytes()))
        XCTAssertEqual(a.bundle.files, b.bundle.files)
    }

    /// The archive reads back to the same files; manifest.sha256 is the digest of manifest.pb;
    /// the reader refuses broken archives.
    func testTarRoundTripAndManifestDigest() throws {
        var b = BundleFiles()
        b.files["x2b.bpf.c"] = Array("int x;\n".utf8)
        b.files["maps/x2b_ep.bin"] = [1, 2, 3]
        b.setManifest([8, 1, 16, 7])
        XCTAssertEqual(b.files["manifest.sha256"], Array("\(sha256Hex([8, 1, 16, 7]))  manifest.pb\n".utf8))
        let tar = b.tarBytes()
        XCTAssertEqual(try BundleFiles.untar(tar).files, b.files)
        var bad = tar
        bad[512 + 10] ^= 1  // the second header's checksum no longer matches
        XCTAssertThrowsError(try BundleFiles.untar(bad))
        XCTAssertThrowsError(try BundleFiles.untar(Array(tar.prefix(1000))))
    }

    func testInputOrderDoesNotMatter() throws {
        let clang = try TestPaths.requireClang()
        let dir = "Tests/Fixtures/l4/multi-file"
        let files = try FileManager.default.contentsOfDirectory(atPath: path(dir)).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertGreaterThan(files.count, 1)
        let forward = try Pipeline.compile(Pipeline.frontEnd(files: files.map { path("\(dir)/\($0)") }), clang: clang)
        let backward = try Pipeline.compile(Pipeline.frontEnd(files: files.reversed().map { path("\(dir)/\($0)") }), clang: clang)
        XCTAssertEqual(forward.bundle.tarBytes(), backward.bundle.tarBytes())
    }

    func testJSONAndBinaryGiveTheSameIR() {
        let json = Pipeline.frontEnd(files: [path("examples/bookinfo/bookinfo.json")])
        let pb = Pipeline.frontEnd(files: [path("examples/bookinfo/bookinfo.pb")])
        XCTAssertFalse(json.ir.listeners.isEmpty)
        XCTAssertEqual(IRPrinter.render(json.ir), IRPrinter.render(pb.ir))
        XCTAssertEqual(json.ir, pb.ir)
    }

    func testDiscoveryStreamMatchesDumpForDynamicResources() {
        // The xDS stream holds only the dynamic resources (no bootstrap statics).
        let dump = Pipeline.frontEnd(files: [path("examples/bookinfo/bookinfo.json")])
        let stream = Pipeline.frontEnd(files: [path("examples/bookinfo/bookinfo.xds.pb")])
        XCTAssertFalse(stream.rejected)
        for l in stream.ir.listeners {
            XCTAssertEqual(dump.ir.listeners.first { $0.name == l.name }, l, l.name)
        }
        for c in stream.ir.clusters {
            XCTAssertEqual(dump.ir.cluster(named: c.name), c, c.name)
        }
    }

    func testEndpointOnlyChangeKeepsTheCode() throws {
        // Changing endpoints must not change the C source: the object is reused from the cache.
        let clang = try TestPaths.requireClang()
        let src = try String(contentsOfFile: path("Tests/Fixtures/l4/tcp-single.json"), encoding: .utf8)
        let changed = src.replacingOccurrences(of: "10.20.0.2", with: "10.20.0.9")
        XCTAssertNotEqual(src, changed)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-det-\(getpid())")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        try changed.write(to: tmp.appendingPathComponent("changed.json"), atomically: true, encoding: .utf8)
        let cache = tmp.appendingPathComponent("cache").path
        let a = try Pipeline.compile(
            Pipeline.frontEnd(files: [path("Tests/Fixtures/l4/tcp-single.json")]),
            options: CompileOptions(cacheDirectory: cache), clang: clang)
        let b = try Pipeline.compile(
            Pipeline.frontEnd(files: [tmp.appendingPathComponent("changed.json").path]),
            options: CompileOptions(cacheDirectory: cache), clang: clang)
        XCTAssertEqual(a.emitted.source, b.emitted.source)
        XCTAssertFalse(a.objectFromCache)
        XCTAssertTrue(b.objectFromCache)
        XCTAssertNotEqual(a.bundle.files["maps/x2b_ep.bin"], b.bundle.files["maps/x2b_ep.bin"])
    }
}
