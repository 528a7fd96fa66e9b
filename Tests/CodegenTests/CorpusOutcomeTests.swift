import Foundation
import XCTest

@testable import Codegen

/// Every file (and multi-file case) of the shared corpus goes through the front
/// end: it lowers, or is rejected with diagnostics naming the resource and the
/// feature. The outcome of each case is kept in a golden, so a regression shows.
final class CorpusOutcomeTests: XCTestCase {
    /// Corpus cases: a single file, or a directory whose files form one snapshot.
    static func cases(_ root: URL) -> [(String, [String])] {
        let fm = FileManager.default
        var out: [(String, [String])] = []
        let multiFileParents = ["envoy-gateway/xds-ir", "kuma/per-type"]
        guard let walker = fm.enumerator(atPath: root.path) else { return [] }
        var files: [String] = []
        for case let rel as String in walker {
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: root.appendingPathComponent(rel).path, isDirectory: &isDir)
            if !isDir.boolValue, rel.hasSuffix(".json") || rel.hasSuffix(".yaml") || rel.hasSuffix(".yml") { files.append(rel) }
        }
        var grouped: [String: [String]] = [:]
        for f in files.sorted() {
            // Router-check inputs are route-check's business (a bare RouteConfiguration and its tests).
            if f.hasPrefix("envoy-router-check/") { continue }
            let dir = (f as NSString).deletingLastPathComponent
            if multiFileParents.contains((dir as NSString).deletingLastPathComponent) {
                grouped[dir, default: []].append(root.appendingPathComponent(f).path)
            } else {
                out.append((f, [root.appendingPathComponent(f).path]))
            }
        }
        for (dir, fs) in grouped { out.append((dir + "/", fs.sorted())) }
        return out.sorted { $0.0 < $1.0 }
    }

    func testCorpusOutcomes() throws {
        let corpus = try TestPaths.requireCorpus()
        let cases = Self.cases(corpus)
        XCTAssertGreaterThan(cases.count, 40, "corpus cases missing")
        var report = ""
        for (name, files) in cases {
            let fe = Pipeline.frontEnd(files: files)
            let errors = fe.diagnostics.filter { $0.severity == .error }
            let warnings = fe.diagnostics.filter { $0.severity == .warning }.count
            let base = corpus.path + "/"
            if errors.isEmpty {
                report +=
                    "ok       \(name): \(fe.ir.listeners.count) listeners, \(fe.ir.routeTables.count) route tables, \(fe.ir.clusters.count) clusters, \(warnings) warnings\n"
            } else {
                report += "rejected \(name): \(errors.count) errors\n"
                for e in errors.prefix(6) {
                    // Every rejection names a resource path and a feature or problem.
                    XCTAssertFalse(e.path.isEmpty, "\(name): diagnostic without a path")
                    report += "  \(e.rendered.replacingOccurrences(of: base, with: ""))\n"
                }
                if errors.count > 6 { report += "  ...\n" }
            }
        }
        assertGolden(report, "corpus-outcomes.txt")
    }
}
