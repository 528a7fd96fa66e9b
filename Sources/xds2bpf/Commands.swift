import ArgumentParser
import Codegen
import Foundation
import SwiftProtobuf

extension XDS2BPF {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the front end only (parse, resolve, validate, lower) and report diagnostics.")

        @OptionGroup var input: FrontEndOptionGroup

        func run() throws {
            let fe = Pipeline.frontEnd(files: input.snapshot, options: input.options)
            input.report(fe.diagnostics, toStdout: input.diagnostics == .json)
            let errors = fe.diagnostics.filter { $0.severity == .error }.count
            let warnings = fe.diagnostics.filter { $0.severity == .warning }.count
            if input.diagnostics == .text {
                print(
                    "\(fe.ir.listeners.count) listeners, \(fe.ir.routeTables.count) route tables, \(fe.ir.clusters.count) clusters; \(errors) errors, \(warnings) warnings"
                )
            }
            if fe.rejected { throw Exit.rejected }
        }
    }

    struct DumpIR: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dump-ir", abstract: "Print the lowered MeshIR in its stable text form.")

        @OptionGroup var input: FrontEndOptionGroup

        func run() throws {
            let fe = Pipeline.frontEnd(files: input.snapshot, options: input.options)
            input.report(fe.diagnostics)
            if fe.rejected { throw Exit.rejected }
            print(IRPrinter.render(fe.ir), terminator: "")
        }
    }

    struct Compile: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Compile a snapshot into a BPF bundle (directory, or a deterministic .tar).")

        @OptionGroup var input: FrontEndOptionGroup

        @Option(name: .shortAndLong, help: "Output bundle directory, or a path ending in .tar for one archive.")
        var output: String

        @Option(help: "Object cache directory (default: $XDS2BPF_CACHE_DIR or ~/.cache/xds2bpf); 'none' disables it.")
        var cacheDir: String?

        @Flag(help: "Print no summary.")
        var quiet = false

        @Option(help: "Write per-phase wall time and peak RSS as JSON to this file (benchmarks).")
        var timingsJson: String?

        @Option(help: "A bundle compiled before (directory or .tar): with --delta, also write the endpoint delta from it.")
        var base: String?

        @Option(help: "With --base: where to write the endpoint delta (`xds2bpf-loader update` applies it in place) when only endpoints changed.")
        var delta: String?

        @Option(
            help: ArgumentHelp(
                "Listener rows per address family matched by straight-line code, at most (default 16); more are looked up in the maps. 0: always the maps.",
                valueName: "N"))
        var inlineListeners: Int?

        @Option(
            help: ArgumentHelp(
                "Bench only: comma-separated data-path pieces to leave out (\(BenchKnob.allCases.map(\.rawValue).joined(separator: ", "))).",
                visibility: .hidden))
        var benchVariant: String?

        func validate() throws {
            if (base == nil) != (delta == nil) { throw ValidationError("--base and --delta go together") }
            if let inlineListeners, inlineListeners < 0 { throw ValidationError("--inline-listeners: a count, 0 or more") }
            _ = try benchKnobs()
        }

        func benchKnobs() throws -> Set<BenchKnob> {
            guard let benchVariant, !benchVariant.isEmpty else { return [] }
            return Set(
                try benchVariant.split(separator: ",").map { name in
                    guard let k = BenchKnob(rawValue: String(name)) else {
                        throw ValidationError("--bench-variant: unknown piece '\(name)'")
                    }
                    return k
                })
        }

        func run() throws {
            let start = Date()
            var progressShown = false
            let fe = Pipeline.frontEnd(files: input.snapshot, options: input.options)
            input.report(fe.diagnostics)
            if fe.rejected {
                printErr("error: input rejected; no bundle written")
                throw Exit.rejected
            }
            if Date().timeIntervalSince(start) > 1 {
                printErr("xds2bpf: front end done in \(String(format: "%.2f", Date().timeIntervalSince(start))) s; planning and compiling...")
                progressShown = true
            }
            let result: CompileResult
            do {
                var options = CompileOptions(cacheDirectory: resolvedCacheDir())
                options.plan.benchKnobs = try benchKnobs()
                if let inlineListeners { options.plan.inlineListenerLimit = inlineListeners }
                if !options.plan.benchKnobs.isEmpty {
                    let pieces = options.plan.benchKnobs.sorted().map(\.rawValue).joined(separator: ",")
                    printErr("xds2bpf: warning: bench-only data-path variant (\(pieces)): not for production")
                }
                result = try Pipeline.compile(fe, options: options)
            } catch let e as ToolchainError {
                input.report(e.diagnostics)
                throw Exit.internalError
            }
            let planDiags = result.diagnostics.dropFirst(fe.diagnostics.count)
            input.report(Array(planDiags))
            if result.diagnostics.hasErrors {
                printErr("error: the plan exceeds kernel limits; no bundle written")
                throw Exit.rejected
            }
            var timings = result.timings
            do {
                try timings.measure("write") {
                    if output.hasSuffix(".tar") {
                        try result.bundle.writeTar(to: output)
                    } else {
                        try result.bundle.writeDirectory(to: output)
                    }
                }
            } catch {
                printErr("error: cannot write bundle \(output): \(error)")
                throw Exit.internalError
            }
            if let base, let delta {
                let old: BundleFiles
                do { old = try EndpointDelta.readBundle(base) } catch {
                    printErr("error: --base \(base): \(error)")
                    throw Exit.internalError
                }
                switch EndpointDelta.make(base: old, new: result.bundle) {
                case .success(let d):
                    do { try writeAtomically(try d.serializedBytes(), to: delta) } catch {
                        printErr("error: cannot write \(delta): \(error)")
                        throw Exit.internalError
                    }
                    printErr("xds2bpf: endpoint delta: \(d.clusters.count) cluster\(d.clusters.count == 1 ? "" : "s") changed → \(delta)")
                case .failure(let why):
                    try? FileManager.default.removeItem(atPath: delta)
                    printErr("xds2bpf: no endpoint delta (a full replace is needed): \(why)")
                }
            }
            if progressShown { printErr("xds2bpf: done") }
            if let path = timingsJson {
                try Data(timings.json.utf8).write(to: URL(fileURLWithPath: path))
            }
            if !quiet { print(Summary.render(result, timings: timings, output: output)) }
        }

        func resolvedCacheDir() -> String? {
            if let c = cacheDir { return c == "none" ? nil : c }
            let env = ProcessInfo.processInfo.environment
            if let c = env["XDS2BPF_CACHE_DIR"] { return c.isEmpty || c == "none" ? nil : c }
            if let home = env["HOME"] { return "\(home)/.cache/xds2bpf" }
            return nil
        }
    }

    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explain where a connection (and HTTP request) goes: listener, chain, virtual host, route, cluster, endpoint.")

        @OptionGroup var input: FrontEndOptionGroup

        @Option(help: "Destination IP:PORT (IPv6 as [addr]:port).")
        var dst: String?

        @Option(
            help: ArgumentHelp(
                "Answer many requests in one run: a file of JSON lines (\"-\": standard input), each {\"dst\", \"authority\", \"path\", \"method\", \"headers\": [[NAME, VALUE], ...], \"version\", \"no_host\", \"random\", \"sni\", \"alpn\": [...], \"tls\"} (all but dst optional; no authority: the destination); prints one JSON explanation per line, in order.",
                valueName: "FILE"))
        var requests: String?

        @Option(help: "HTTP :authority / Host.")
        var authority: String?

        @Option(help: "HTTP path.")
        var path: String = "/"

        @Option(help: "HTTP method.")
        var method: String = "GET"

        @Option(name: .customLong("header"), help: "HTTP header NAME:VALUE (repeatable).")
        var headers: [String] = []

        @Option(name: .customLong("http-version"), help: "The request line's version (\"\" for none); Envoy's codec refuses all but HTTP/1.1 by default.")
        var httpVersion = "HTTP/1.1"

        @Flag(name: .customLong("no-host"), help: "Send no Host header.")
        var noHost = false

        @Option(help: "The random value for weighted and LB choices.")
        var random: UInt64 = 0

        @Option(help: "TLS: the ClientHello's server name (SNI), for listeners whose chains match server_names.")
        var sni: String?

        @Option(help: "TLS: an ALPN value of the ClientHello, in the client's order (repeatable).")
        var alpn: [String] = []

        @Flag(help: "TLS: the connection starts with a ClientHello (implied by --sni and --alpn); without any, the first bytes are plain (raw_buffer).")
        var tls = false

        @Flag(help: "JSON output.")
        var json = false

        @Option(
            help: ArgumentHelp(
                "Who answers --requests: ir (the interpreter) or bpf (the compiled HTTP matcher in the kernel through BPF_PROG_TEST_RUN, as route-check --engine bpf; root; one JSON decision per line).",
                valueName: "ENGINE"))
        var engine: XDS2BPF.RouteCheck.Engine = .ir

        func run() throws {
            if requests == nil && dst == nil { throw ValidationError("--dst IP:PORT is required (or --requests FILE)") }
            if engine == .bpf && requests == nil { throw ValidationError("--engine bpf needs --requests FILE") }
            for path in input.snapshot where path != "-" {
                var isDir: ObjCBool = false
                let bundleLike =
                    FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
                    || (path.hasSuffix(".tar") && (try? BundleFiles.readManifest(bundle: path)) != nil)
                if bundleLike {
                    let what =
                        FileManager.default.fileExists(atPath: "\(path)/manifest.pb") || !isDir.boolValue
                        ? "a bundle" : "a directory"
                    printErr(
                        "error: \(path) is \(what); explain takes an xDS snapshot (JSON, YAML or protobuf), "
                            + "not a bundle: pass the snapshot the bundle was compiled from")
                    throw Exit.usage
                }
            }
            let fe = Pipeline.frontEnd(files: input.snapshot, options: input.options)
            input.report(fe.diagnostics)
            if fe.rejected { throw Exit.rejected }
            if let file = requests {
                try runBatch(fe.ir, file: file)
                return
            }
            guard let dst, let (addr, port) = parseEndpoint(dst) else {
                throw ValidationError("--dst must be IP:PORT, got \(dst ?? "")")
            }
            var request: HTTPRequest?
            if authority != nil || !headers.isEmpty || path != "/" || method != "GET" || httpVersion != "HTTP/1.1" || noHost {
                var hs: [(String, String)] = []
                for h in headers {
                    guard let colon = h.firstIndex(of: ":") else { throw ValidationError("--header must be NAME:VALUE") }
                    hs.append((String(h[..<colon]), String(h[h.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
                }
                var r = HTTPRequest(authority: authority ?? addr.withPort(port), path: path, method: method, headers: hs)
                r.version = httpVersion
                r.hasAuthority = !noHost
                request = r
            }
            let hello = sni != nil || !alpn.isEmpty || tls ? TLSHello(isTLS: true, serverName: sni ?? "", applicationProtocols: alpn) : nil
            let e = Interpreter.explain(fe.ir, address: addr, port: port, request: request, random: random, hello: hello)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(e), as: UTF8.self))
            } else {
                print(e.text, terminator: "")
            }
        }

        /// `--requests FILE`: one request per JSON line, one compact JSON explanation per line.
        func runBatch(_ ir: MeshIR, file: String) throws {
            let text: String
            if file == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                guard let d = FileManager.default.contents(atPath: file) else {
                    printErr("error: cannot read \(file)")
                    throw Exit.usage
                }
                text = String(decoding: d, as: UTF8.self)
            }
            var batch: [BatchRequest] = []
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let d = obj["dst"] as? String, let (addr, port) = parseEndpoint(d)
                else {
                    printErr("error: \(file) line \(n + 1): not a JSON object with \"dst\": \"IP:PORT\"")
                    throw Exit.usage
                }
                var hs: [(String, String)] = []
                for h in obj["headers"] as? [[String]] ?? [] where h.count == 2 { hs.append((h[0], h[1])) }
                var r = HTTPRequest(
                    authority: obj["authority"] as? String ?? addr.withPort(port), path: obj["path"] as? String ?? "/",
                    method: obj["method"] as? String ?? "GET", headers: hs)
                r.version = obj["version"] as? String ?? "HTTP/1.1"
                r.hasAuthority = !(obj["no_host"] as? Bool ?? false)
                let rv = (obj["random"] as? NSNumber)?.uint64Value ?? random
                var b = BatchRequest(address: addr, port: port, request: r, random: rv)
                let bSNI = obj["sni"] as? String
                let bALPN = obj["alpn"] as? [String] ?? []
                if bSNI != nil || !bALPN.isEmpty || (obj["tls"] as? Bool ?? false) {
                    b.hello = TLSHello(isTLS: true, serverName: bSNI ?? "", applicationProtocols: bALPN)
                }
                batch.append(b)
            }
            if engine == .bpf {
                try BPFBatch.run(ir, batch)
                return
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var out = ""
            for b in batch {
                let e = Interpreter.explain(ir, address: b.address, port: b.port, request: b.request, random: b.random, hello: b.hello)
                out += String(decoding: try enc.encode(e), as: UTF8.self) + "\n"
                if out.utf8.count > 1 << 16 {
                    FileHandle.standardOutput.write(Data(out.utf8))
                    out = ""
                }
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a bundle's programs, maps, sizes and what they serve.")

        @Argument(help: "Bundle directory, or a bundle archive (.tar) written by compile.")
        var bundle: String

        @Flag(help: "Print the manifest as JSON.")
        var json = false

        func run() throws {
            let data: [UInt8]
            do {
                data = try BundleFiles.readManifest(bundle: bundle)
            } catch {
                printErr("error: \(error)")
                throw Exit.rejected
            }
            let m: Xds2bpf_Bundle_V1_Manifest
            do {
                m = try Xds2bpf_Bundle_V1_Manifest(serializedBytes: data)
            } catch {
                printErr("error: \(bundle)/manifest.pb does not decode: \(error)")
                throw Exit.rejected
            }
            if json {
                var opts = JSONEncodingOptions()
                opts.preserveProtoFieldNames = true
                print(try m.jsonString(options: opts))
            } else {
                print(ManifestText.render(m), terminator: "")
            }
        }
    }

    struct Load: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the node loader (xds2bpf-loader): load, replace, unload, status, stats, verify.",
            discussion: "Arguments are passed to xds2bpf-loader unchanged, e.g. `xds2bpf load load BUNDLE --cgroup PATH`. XDS2BPF_LOADER names the loader.")

        @Argument(parsing: .captureForPassthrough, help: "Loader arguments.")
        var arguments: [String] = []

        func run() throws {
            guard let loader = Self.findLoaderPath() else {
                printErr("error: xds2bpf-loader not found (build it with `make loader`, or set XDS2BPF_LOADER)")
                throw Exit.internalError
            }
            let r = try ProcessRunner(loader, arguments, output: .inherit).run()
            if !r.succeeded { throw ExitCode(r.status) }
        }

        static func findLoaderPath() -> String? {
            let env = ProcessInfo.processInfo.environment
            if let l = env["XDS2BPF_LOADER"] { return l }
            let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            var candidates = [me.appendingPathComponent("xds2bpf-loader").path]
            // In a checkout: .build/<config>/xds2bpf → bpf-runtime/loader/xds2bpf-loader
            var dir = me
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("bpf-runtime/loader/xds2bpf-loader").path)
                dir = dir.deletingLastPathComponent()
            }
            for p in (env["PATH"] ?? "").split(separator: ":") { candidates.append("\(p)/xds2bpf-loader") }
            return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
        }
    }
}

func parseEndpoint(_ s: String) -> (IRAddress, UInt16)? {
    var host = s
    var portText = ""
    if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
        host = String(s[s.index(after: s.startIndex)..<close])
        let rest = s[s.index(after: close)...]
        guard rest.hasPrefix(":") else { return nil }
        portText = String(rest.dropFirst())
    } else if let colon = s.lastIndex(of: ":") {
        host = String(s[..<colon])
        portText = String(s[s.index(after: colon)...])
    }
    guard let a = IRAddress(parsing: host), let p = UInt16(portText), p > 0 else { return nil }
    return (a, p)
}
