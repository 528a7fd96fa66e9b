import Crypto
import Foundation
import X2BDiagnostics

/// A toolchain failure: clang missing, or clang rejecting generated code.
public struct ToolchainError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public var description: String { diagnostics.map(\.rendered).joined(separator: "\n") }

    public init(diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
}

/// Runs clang with pinned, reproducible flags (after cilium/ebpf's bpf2go):
/// `-target bpf -O2 -g -Wall -Werror`, no ident, debug paths mapped to `.`,
/// then strips DWARF (BTF stays). `XDS2BPF_CLANG` overrides the compiler.
public struct Clang: Sendable {
    public var path: String
    public var version: String
    public var extraIncludes: [String]

    public static let pinnedFlags = [
        "-target", "bpf", "-mcpu=v3", "-O2", "-g", "-Wall", "-Werror",
        "-fno-ident", "-fdebug-compilation-dir=.", "-fno-stack-protector",
    ]

    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Clang {
        var candidates: [String] = []
        if let env = environment["XDS2BPF_CLANG"], !env.isEmpty {
            candidates = [env]
        } else {
            candidates = ["/opt/swift/usr/bin/clang", "/usr/bin/clang"]
            for dir in (environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(dir)/clang") }
        }
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) {
            let out = (try? ProcessRunner(c, ["--version"]).run())?.stdoutText ?? ""
            let first = out.split(separator: "\n").first.map(String.init) ?? "unknown"
            return Clang(path: c, version: first, extraIncludes: Self.systemIncludes())
        }
        throw ToolchainError(diagnostics: [
            Diagnostic(
                .toolMissing, path: "clang",
                "clang not found (set XDS2BPF_CLANG to a clang that targets BPF)")
        ])
    }

    static func systemIncludes() -> [String] {
        // Debian keeps asm/types.h under the multiarch directory.
        ["/usr/include/x86_64-linux-gnu", "/usr/include/aarch64-linux-gnu"].filter {
            FileManager.default.fileExists(atPath: $0)
        }
    }

    /// The cache key of an object: source, headers, compiler and flags.
    public func objectKey(files: [(String, String)]) -> String {
        var h = SHA256()
        h.update(data: Array(version.utf8))
        h.update(data: Array(Self.pinnedFlags.joined(separator: " ").utf8))
        for (name, text) in files.sorted(by: { $0.0 < $1.0 }) {
            h.update(data: Array("\(name)\u{0}\(text.utf8.count)\u{0}".utf8))
            h.update(data: Array(text.utf8))
        }
        return hexString(h.finalize())
    }

    /// Compiles `x2b.bpf.c` in `dir` (headers beside it) into `x2b.bpf.o`.
    /// `source` is the generated text, used to point errors at xDS resources.
    public func compile(in dir: String, source: String, defines: [String] = []) throws {
        let args =
            Self.pinnedFlags + ["-fdebug-prefix-map=\(dir)=."] + defines.map { "-D\($0)" } + extraIncludes.flatMap { ["-idirafter", $0] }
            + ["-I", ".", "-c", "x2b.bpf.c", "-o", "x2b.bpf.o"]
        let r = try ProcessRunner(path, args, directory: dir).run()
        guard r.succeeded else {
            throw ToolchainError(diagnostics: Self.mapErrors(r.stderrText, source: source))
        }
        let objcopy = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("llvm-objcopy").path
        if FileManager.default.isExecutableFile(atPath: objcopy) {
            let s = try ProcessRunner(objcopy, ["--strip-debug", "x2b.bpf.o"], directory: dir).run()
            if !s.succeeded {
                throw ToolchainError(diagnostics: [Diagnostic(.clangFailed, path: "x2b.bpf.o", "llvm-objcopy failed: \(s.stderrText)")])
            }
        }
    }

    /// clang's `file:line:col: error: msg` lines, each pointed at the nearest
    /// preceding resource comment in the generated source.
    public static func mapErrors(_ stderr: String, source: String) -> [Diagnostic] {
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        var out: [Diagnostic] = []
        for l in stderr.split(separator: "\n") where l.contains(": error:") {
            let parts = l.split(separator: ":", maxSplits: 4)
            var origin = "generated code"
            if parts.count >= 3, let n = Int(parts[1]), n >= 1, n <= lines.count {
                for i in stride(from: n - 1, through: 0, by: -1) {
                    let t = lines[i]
                    if let r = t.range(of: "listeners["), t.hasPrefix("\t/*") || t.hasPrefix("/*") {
                        origin = String(t[r.lowerBound...]).replacingOccurrences(of: " */", with: "")
                        break
                    }
                }
                out.append(Diagnostic(.clangFailed, path: "x2b.bpf.c:\(n)", "\(l) (generated from \(origin))"))
            } else {
                out.append(Diagnostic(.clangFailed, path: "x2b.bpf.c", String(l)))
            }
        }
        if out.isEmpty {
            out.append(Diagnostic(.clangFailed, path: "x2b.bpf.c", "clang failed: \(stderr.prefix(2000))"))
        }
        return out
    }
}
