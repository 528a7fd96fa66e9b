import ArgumentParser
import Codegen
import Foundation

/// Exit codes every subcommand keeps (a CI contract): 0 success (warnings
/// allowed), 1 input rejected with diagnostics, 2 usage error, 3 internal or
/// toolchain error.
enum Exit {
    static let rejected = ExitCode(1)
    static let usage = ExitCode(2)
    static let internalError = ExitCode(3)
}

struct XDS2BPF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xds2bpf",
        abstract: "Compile an Envoy xDS snapshot into a BPF bundle that routes connections in the kernel.",
        discussion: """
            Exit codes: 0 success (warnings allowed), 1 input rejected with diagnostics, \
            2 usage error, 3 internal or toolchain error.
            Environment: XDS2BPF_CLANG overrides the clang used for BPF; XDS2BPF_LOADER the loader \
            that `load` runs; XDS2BPF_CACHE_DIR the object cache.
            """,
        version: XDS2BPFVersion.string,
        subcommands: [
            Compile.self, Check.self, DumpIR.self, Explain.self, Diff.self, Inspect.self, Load.self, Fetch.self, Watch.self, RouteCheck.self, HTTPDiff.self,
            HTTPBench.self,
        ],
        defaultSubcommand: Compile.self
    )
}

enum DiagnosticsFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

extension InputFormat: ExpressibleByArgument {}
extension UnsupportedPolicy: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "error": self = .error
        case "warn": self = .warn
        case "default": self = .default
        default: return nil
        }
    }
}

struct FrontEndOptionGroup: ParsableArguments {
    @Argument(help: "Snapshot files (protobuf, JSON or YAML); several form one snapshot; '-' reads stdin.")
    var snapshot: [String] = []

    @Option(help: "Input format: auto, pb, json or yaml.")
    var format: InputFormat = .auto

    @Option(
        help:
            "Unsupported features: error (all are errors), warn (all are warnings); by default routing-changing ones are errors and unenforceable ones warnings."
    )
    var unsupported: UnsupportedPolicy = .default

    @Option(help: "Diagnostics output: text or json.")
    var diagnostics: DiagnosticsFormat = .text

    @Option(
        name: .customLong("resolve"),
        help: "NAME=IP[,IP...]: the addresses of a host name used by a DNS cluster (repeatable; STRICT_DNS uses every address).",
        transform: HostAddress.parse)
    var resolve: [HostAddress] = []

    func validate() throws {
        if snapshot.isEmpty { throw ValidationError("no snapshot file given") }
    }

    var options: FrontEndOptions {
        FrontEndOptions(format: format, unsupported: unsupported, hostAddresses: resolve.byName)
    }

    /// Prints diagnostics; returns whether the input was rejected.
    func report(_ diags: [Diagnostic], toStdout: Bool = false) {
        let sorted = diags.sorted { ($1.severity, $0.path, $0.id) < ($0.severity, $1.path, $1.id) }
        switch diagnostics {
        case .text:
            // Real meshes repeat the same finding for thousands of resources: show
            // the first few of each kind and count the rest (json lists them all).
            var shown: [String: Int] = [:]
            var lines: [String] = []
            for d in sorted {
                let key = "\(d.severity)|\(d.id)|\(d.message)"
                shown[key, default: 0] += 1
                if shown[key]! <= 3 { lines.append(d.rendered) }
            }
            for (key, n) in shown.sorted(by: { $0.key < $1.key }) where n > 3 {
                let parts = key.split(separator: "|", maxSplits: 2)
                lines.append("\(parts[0])[\(parts[1])]: ... and \(n - 3) more: \(parts[2]) (--diagnostics json lists all)")
            }
            if !lines.isEmpty { printErr(lines.joined(separator: "\n")) }
        case .json:
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let text = String(decoding: (try? enc.encode(["diagnostics": sorted])) ?? Data(), as: UTF8.self)
            if toStdout { print(text) } else { printErr(text) }
        }
    }
}

func printErr(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

func runMain() -> Never {
    do {
        var command = try XDS2BPF.parseAsRoot()
        try command.run()
        exit(0)
    } catch let code as ExitCode {
        exit(code.rawValue)
    } catch {
        let code = XDS2BPF.exitCode(for: error)
        if code == .success {
            print(XDS2BPF.fullMessage(for: error))
            exit(0)
        }
        printErr(XDS2BPF.fullMessage(for: error))
        // swift-argument-parser reports usage errors as EX_USAGE (64); the contract says 2.
        exit(code.rawValue == 64 ? Exit.usage.rawValue : Exit.internalError.rawValue)
    }
}

runMain()
