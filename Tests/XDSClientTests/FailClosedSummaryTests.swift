import Codegen
import Foundation
import XCTest

@testable import XDSClient

/// `watch` logs what an accepted configuration refuses because the kernel cannot run it:
/// a policy the control plane adds must show on the node, not only in the bundle manifest.
final class FailClosedSummaryTests: XCTestCase {
    func diagnostic(_ id: DiagnosticID, _ n: Int) -> Diagnostic {
        Diagnostic(id, .warning, path: "listeners[\"l\"].filter_chains[0].filters[0].http_filters[\(n)]", "filter \(n)")
    }

    func testSummarisesRefusedAndBypassedFilters() throws {
        XCTAssertNil(NodeAgent.failClosedSummary([Diagnostic(.notEnforced, .warning, path: "p", "timeouts")]))
        let refused = (0..<5).map { diagnostic(.refusedFailClosed, $0) }
        let summary = try XCTUnwrap(NodeAgent.failClosedSummary(refused + [diagnostic(.bypassedFilter, 9)]))
        XCTAssertTrue(summary.contains("refuses (fail closed) what the kernel cannot run, 5 place(s)"), summary)
        XCTAssertTrue(summary.contains("http_filters[2]"), summary)
        XCTAssertFalse(summary.contains("http_filters[3]"), "only the first three are listed: \(summary)")
        XCTAssertTrue(summary.contains("... and 2 more"), summary)
        XCTAssertTrue(summary.contains("bypasses (--unsupported=warn) what the kernel cannot run, 1 place(s)"), summary)
    }

    /// From a real front end: Envoy Gateway's per-route policies (Tests/Fixtures/guarded).
    func testFromTheFrontEnd() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/guarded")
        let fe = Pipeline.frontEnd(files: ["eg-policies.yaml", "eg-policies-routes.yaml"].map { dir.appendingPathComponent($0).path })
        XCTAssertFalse(fe.rejected)
        let summary = try XCTUnwrap(NodeAgent.failClosedSummary(fe.diagnostics))
        XCTAssertTrue(summary.contains("2 place(s)") && summary.contains("jwt_authn"), summary)
    }
}
