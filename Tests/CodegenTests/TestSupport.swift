import Foundation
import XCTest

@testable import Codegen

/// Paths shared by the tests: the checkout root, fixtures, goldens, the corpus.
enum TestPaths {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var fixtures: URL { root.appendingPathComponent("Tests/Fixtures") }
    static var goldens: URL { root.appendingPathComponent("Tests/Goldens") }
    /// The shared xDS corpus: `$XDS2BPF_CORPUS` (the one documented variable), or
    /// `../shared/corpus` beside the checkout; nil when neither exists. A set
    /// variable that names no directory is a setup error, not a skip.
    static let corpus: URL? = {
        if let c = ProcessInfo.processInfo.environment["XDS2BPF_CORPUS"], !c.isEmpty {
            var isDir: ObjCBool = false
            precondition(
                FileManager.default.fileExists(atPath: c, isDirectory: &isDir) && isDir.boolValue,
                "XDS2BPF_CORPUS=\(c) is not a directory")
            return URL(fileURLWithPath: c)
        }
        let beside = root.deletingLastPathComponent().appendingPathComponent("shared/corpus")
        return FileManager.default.fileExists(atPath: beside.path) ? beside : nil
    }()

    /// The corpus, or a skip that says in one line why the test did not run.
    static func requireCorpus() throws -> URL {
        guard let c = corpus else {
            throw XCTSkip("shared corpus not found: set XDS2BPF_CORPUS to a copy of shared/corpus")
        }
        return c
    }

    /// clang, or a skip that names what is missing; under `CI=1` a missing clang fails.
    static func requireClang() throws -> Clang {
        do {
            return try Clang.locate()
        } catch {
            if ProcessInfo.processInfo.environment["CI"] == "1" { XCTFail("clang is required in CI: \(error)") }
            throw XCTSkip("clang not found (\(error)); set XDS2BPF_CLANG")
        }
    }

    /// Root, the x2b-testrun driver and clang for the BPF_PROG_TEST_RUN tests, or a skip
    /// that says which is missing; under `CI=1` a missing one fails.
    static func requireKernel() throws {
        let ci = ProcessInfo.processInfo.environment["CI"] == "1"
        if getuid() != 0 {
            if ci { XCTFail("the kernel tests need root in CI") }
            throw XCTSkip("not root: BPF_PROG_TEST_RUN needs CAP_BPF")
        }
        do {
            _ = try HTTPTestRun.locateDriver()
            _ = try Clang.locate()
        } catch {
            if ci { XCTFail("\(error)") }
            throw XCTSkip("\(error)")
        }
    }

    /// The built CLI for tests that run the binary.
    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["XDS2BPF_BIN"] { return b }
        for c in [".build/debug/xds2bpf", ".build/release/xds2bpf"] {
            let p = root.appendingPathComponent(c).path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return root.appendingPathComponent(".build/debug/xds2bpf").path
    }

    static var updateGoldens: Bool { ProcessInfo.processInfo.environment["XDS2BPF_UPDATE_GOLDENS"] == "1" }
}

/// Compares `actual` with the golden file, or rewrites it under
/// XDS2BPF_UPDATE_GOLDENS=1 (and then fails, so a rewrite is never silent).
func assertGolden(_ actual: String, _ relativePath: String, file: StaticString = #filePath, line: UInt = #line) {
    let url = TestPaths.goldens.appendingPathComponent(relativePath)
    let expected = try? String(contentsOf: url, encoding: .utf8)
    if TestPaths.updateGoldens {
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if expected != actual {
            try? actual.write(to: url, atomically: true, encoding: .utf8)
            XCTFail("Recorded new golden \(relativePath); review `git diff Tests/Goldens`", file: file, line: line)
        }
        return
    }
    guard let expected else {
        XCTFail("missing golden \(relativePath); run with XDS2BPF_UPDATE_GOLDENS=1", file: file, line: line)
        return
    }
    if expected != actual {
        let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
        var diff = ""
        for i in 0..<max(e.count, a.count) where (i < e.count ? e[i] : nil) != (i < a.count ? a[i] : nil) {
            diff += "line \(i + 1):\n- \(i < e.count ? String(e[i]) : "<none>")\n+ \(i < a.count ? String(a[i]) : "<none>")\n"
            if diff.count > 2000 { break }
        }
        XCTFail("golden \(relativePath) differs (XDS2BPF_UPDATE_GOLDENS=1 rewrites it):\n\(diff)", file: file, line: line)
    }
}

/// Runs a process (Codegen's ProcessRunner) and returns (exit status, stdout, stderr);
/// stdin is empty unless given.
func runProcess(_ exe: String, _ args: [String], stdin: Data? = nil, environment: [String: String]? = nil) throws -> (Int32, String, String) {
    let r = try ProcessRunner(exe, args, environment: environment, input: stdin ?? Data()).run()
    return (r.status, r.stdoutText, r.stderrText)
}

extension XCTestCase {
    /// `text` as a file named `name` in a directory of its own, removed when the test ends.
    func temporaryFile(_ name: String, _ text: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }
}
