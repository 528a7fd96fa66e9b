import Foundation
import XCTest

@testable import Codegen

final class ProcessRunnerTests: XCTestCase {
    /// A child writing more than a pipe holds to stderr before stdout must not block
    /// (the runner reads stdout to its end while a thread drains stderr).
    func testLargeStderrAndStdoutAreReadConcurrently() throws {
        let script = "head -c 300000 /dev/zero | tr '\\0' e >&2; head -c 300000 /dev/zero | tr '\\0' o; exit 3"
        let r = try ProcessRunner("/bin/sh", ["-c", script]).run()
        XCTAssertEqual(r.status, 3)
        XCTAssertFalse(r.succeeded)
        XCTAssertEqual(r.stdout.count, 300_000)
        XCTAssertEqual(r.stderr.count, 300_000)
        XCTAssertTrue(r.stdout.allSatisfy { $0 == UInt8(ascii: "o") })
    }

    func testInputDirectoryEnvironmentAndMergedOutput() throws {
        let dir = FileManager.default.temporaryDirectory.path
        let r = try ProcessRunner(
            "/bin/sh", ["-c", "cat; pwd; echo \"$X2B_T\"; echo err >&2"], directory: dir,
            environment: ["X2B_T": "v"], input: Data("in\n".utf8), output: .merged
        ).run()
        XCTAssertTrue(r.succeeded)
        let resolved = URL(fileURLWithPath: dir).resolvingSymlinksInPath().path
        XCTAssertEqual(r.stdoutText, "in\n\(resolved)\nv\nerr\n")
        XCTAssertTrue(r.stderr.isEmpty)
    }

    func testMissingExecutableThrows() {
        XCTAssertThrowsError(try ProcessRunner("/nonexistent/x2b-tool", []).run())
    }
}
