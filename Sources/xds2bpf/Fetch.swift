import ArgumentParser
import Codegen
import Foundation
import SwiftProtobuf
import Synchronization
import XDSClient

/// Options every command that talks to a control plane shares.
struct ControlPlaneOptionGroup: ParsableArguments {
    @Option(help: "The control plane: grpc://HOST:PORT, grpcs://HOST:PORT for TLS, or unix:PATH (a local xDS proxy).")
    var server: String

    @Option(help: "The node id presented to the control plane.")
    var nodeId: String

    @Option(help: "The node's cluster (Envoy's --service-cluster).")
    var cluster: String = ""

    @Option(help: "KEY=VALUE node metadata (repeatable; over the fields of --node-metadata).")
    var metadata: [String] = []

    @Option(help: "A JSON object: the node's metadata with typed values (Istio's LABELS, NAMESPACE, ...).")
    var nodeMetadata: String?

    @Option(help: "The node's locality, REGION[/ZONE[/SUBZONE]] (control planes order endpoints by it).")
    var locality: String?

    @Option(help: "NAME=VALUE sent as gRPC metadata with every stream (repeatable; a dataplane token, a tenant).")
    var header: [String] = []

    @Option(help: "A file holding a token, sent as `authorization: Bearer TOKEN` and read again for every stream (istiod's service-account token).")
    var tokenFile: String?

    @Option(help: "The header that carries --token-file.")
    var tokenHeader: String = "authorization"

    @Option(help: "What goes before --token-file's token in its header ('' for Kuma's dataplane token).")
    var tokenPrefix: String = "Bearer "

    @Option(help: "The server's name when it is not the --server host: :authority, TLS server name and the name its certificate must show.")
    var authority: String?

    @Flag(help: "Incremental (delta) xDS instead of state of the world.")
    var delta = false

    @Option(help: "grpcs: PEM file of the CA that signed the server's certificate.")
    var ca: String?

    @Option(help: "grpcs: PEM client certificate (mutual TLS; with --key).")
    var cert: String?

    @Option(help: "grpcs: PEM private key of --cert.")
    var key: String?

    @Option(help: "The largest response accepted from the control plane, in bytes (a larger one ends the stream, as in Envoy).")
    var maxMessageBytes: Int = 64 << 20

    func validate() throws {
        for m in metadata where !m.contains("=") { throw ValidationError("--metadata takes KEY=VALUE, got \(m)") }
        guard maxMessageBytes >= 1024 else { throw ValidationError("--max-message-bytes: at least 1024") }
        if (cert == nil) != (key == nil) { throw ValidationError("--cert and --key go together") }
        if let locality, locality.isEmpty || locality.split(separator: "/", omittingEmptySubsequences: false).count > 3 {
            throw ValidationError("--locality takes REGION[/ZONE[/SUBZONE]], got \(locality)")
        }
        _ = try resolvedServer()
        _ = try credentials()
        _ = try baseMetadata()
    }

    func resolvedServer() throws -> ADSServer {
        let tls = (ca ?? cert ?? key) == nil ? nil : ADSServer.TLS(caFile: ca, certFile: cert, keyFile: key)
        do {
            return try ADSServer(url: server, tls: tls, authority: authority)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func credentials() throws -> StreamCredentials? {
        guard !header.isEmpty || tokenFile != nil else { return nil }
        var headers: [(name: String, value: String)] = []
        for h in header {
            guard let eq = h.firstIndex(of: "=") else { throw ValidationError("--header takes NAME=VALUE, got \(h)") }
            // gRPC metadata names are case-insensitive and sent lowercase
            headers.append((String(h[..<eq]).lowercased(), String(h[h.index(after: eq)...])))
        }
        do {
            return try StreamCredentials(headers: headers, tokenFile: tokenFile, tokenHeader: tokenHeader, tokenPrefix: tokenPrefix)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// --node-metadata as a Struct (nil without it).
    func baseMetadata() throws -> Google_Protobuf_Struct? {
        guard let path = nodeMetadata else { return nil }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ValidationError("--node-metadata \(path): cannot read: \(error.localizedDescription)")
        }
        guard data.count <= 1 << 20 else { throw ValidationError("--node-metadata \(path): larger than 1 MiB") }
        do { return try Google_Protobuf_Struct(jsonUTF8Data: data) } catch {
            throw ValidationError("--node-metadata \(path): not a JSON object: \(error)")
        }
    }

    var node: Envoy_Config_Core_V3_Node {
        get throws {
            makeNode(
                id: nodeId, cluster: cluster,
                metadata: metadata.map {
                    let kv = $0.split(separator: "=", maxSplits: 1)
                    return (String(kv[0]), kv.count > 1 ? String(kv[1]) : "")
                }, baseMetadata: try baseMetadata(), locality: locality)
        }
    }

    func client() throws -> ADSClient {
        ADSClient(server: try resolvedServer(), maxMessageBytes: maxMessageBytes, credentials: try credentials())
    }

    var mode: ADSMode { delta ? .delta : .stateOfTheWorld }
}

/// `30s`, `500ms`, `2m` or a number of seconds.
struct Seconds: ExpressibleByArgument {
    var value: Double
    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where argument.hasSuffix(suffix) {
            guard let v = Double(argument.dropLast(suffix.count)), v > 0 else { return nil }
            value = v * scale
            return
        }
        guard let v = Double(argument), v > 0 else { return nil }
        value = v
    }
    init(_ v: Double) { value = v }
    var defaultValueDescription: String { "\(value)s" }
}

/// Runs async work from the synchronous command entry point.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let result = Mutex<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let r: Result<T, any Error>
        do { r = .success(try await body()) } catch { r = .failure(error) }
        result.withLock { $0 = r }
        done.signal()
    }
    done.wait()
    return try result.withLock { $0! }.get()
}

extension XDS2BPF {
    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch a snapshot from a control plane over ADS and write it as `compile` reads it.",
            discussion: """
                Subscribes as Envoy does (LDS and CDS by wildcard, then RDS and EDS by the names listeners \
                and clusters reference), ACKs each response whose resources decode (NACKs the others with \
                the reason), and waits until every referenced resource has arrived. Writes the \
                length-delimited DiscoveryResponse stream (one response per type, resources as served), \
                or with --format json an admin config dump. Exit 3 on a timeout or a stream error, naming \
                what was missing.
                """)

        @OptionGroup var controlPlane: ControlPlaneOptionGroup

        @Option(help: "Give up after this long (30s, 500ms, 2m).")
        var timeout: Seconds = Seconds(30)

        @Option(help: "Output: pb (DiscoveryResponse stream) or json (config dump).")
        var format: OutputFormat = .pb

        @Option(name: .shortAndLong, help: "Where to write the snapshot ('-' for stdout).")
        var output: String

        @Flag(help: "Print no progress lines.")
        var quiet = false

        enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case pb, json }

        func run() throws {
            let server = try controlPlane.resolvedServer()
            let session = ADSSession(mode: controlPlane.mode, node: try controlPlane.node)
            let quiet = self.quiet
            let latest = Mutex<XDSResourceSet>(XDSResourceSet())
            let client = try controlPlane.client()
            let set: XDSResourceSet
            do {
                set = try runBlocking {
                    try await withDeadline(
                        timeout.value,
                        what: {
                            let missing = latest.withLock { $0.missingSummary }
                            return "timed out after \(timeout.value) s waiting for \(missing.isEmpty ? "a response" : missing)"
                        }
                    ) {
                        let end = try await client.run(
                            session: session,
                            onEvent: { e in
                                if !quiet { printErr("xds2bpf fetch: \(e)") }
                            },
                            judge: { candidate in
                                latest.withLock { $0 = candidate }
                                return (.accept, .stop)
                            },
                            onCandidate: { candidate in
                                latest.withLock { $0 = candidate }
                            })
                        return end.accepted
                    }
                }
            } catch let e as XDSClientError {
                printErr("error: fetch from \(server): \(e)")
                throw Exit.internalError
            } catch {
                printErr("error: fetch from \(server): \(error)")
                throw Exit.internalError
            }
            let bytes: [UInt8]
            switch format {
            case .pb: bytes = try set.discoveryStream()
            case .json:
                registerXDSMessageTypes()
                do { bytes = Array((try set.configDumpJSON() + "\n").utf8) } catch {
                    printErr("error: \(error)")
                    throw Exit.internalError
                }
            }
            if output == "-" {
                FileHandle.standardOutput.write(Data(bytes))
            } else {
                do { try writeAtomically(bytes, to: output) } catch {
                    printErr("error: cannot write \(output): \(error)")
                    throw Exit.internalError
                }
            }
            if !quiet {
                let counts = XDSResourceType.allCases.sorted().map { "\(set.names($0).count) \($0.shortName)" }
                printErr("xds2bpf fetch: wrote \(output == "-" ? "stdout" : output): \(counts.joined(separator: ", "))")
            }
        }
    }
}
