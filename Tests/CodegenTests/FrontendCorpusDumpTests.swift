import XCTest
@testable import Codegen

final class FrontendCorpusDumpTests: XCTestCase {
    func testDump() throws {
        let root = "/work/shared/corpus"
        let fm = FileManager.default
        let files = fm.enumerator(atPath: root)!.compactMap { $0 as? String }.filter { $0.hasSuffix(".json") || $0.hasSuffix(".yaml") }.sorted()
        for f in files {
            let t0 = Date()
            let s = SnapshotParser().parse(files: [root + "/" + f])
            let dt = Date().timeIntervalSince(t0)
            print("ROW \(f) L=\(s.listeners.count) R=\(s.routeConfigurations.count) C=\(s.clusters.count) E=\(s.loadAssignments.count) err=\(s.diagnostics.filter{$0.severity == .error}.count) t=\(String(format: "%.3f", dt))")
            for d in s.diagnostics { print("   DIAG \(d.rendered)") }
        }
    }
}
