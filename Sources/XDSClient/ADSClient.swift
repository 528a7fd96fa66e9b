import Codegen
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import SwiftProtobuf
import Synchronization

/// Where the control plane is: `grpc://HOST:PORT` (plaintext), `grpcs://HOST:PORT`
/// (TLS, with a CA to trust and, for mutual TLS, a client certificate and key), or
/// `unix:PATH` (plaintext over a local socket: an xDS proxy on the node, such as
/// pilot-agent's, that authenticates to the control plane itself).
public struct ADSServer: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// The socket's path for `unix:` servers (host and port are then unused).
    public var socketPath: String?
    public var tls: TLS?
    /// The server's name when it is not the host of the URL: the `:authority` of every
    /// request, and with TLS the SNI and the name its certificate is verified against
    /// (istiod's certificate names `istiod.istio-system.svc`, not the address a node dials).
    public var authority: String?

    public struct TLS: Sendable {
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public init(caFile: String?, certFile: String?, keyFile: String?) {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
        }
    }

    public init(url: String, tls: TLS? = nil, authority: String? = nil) throws(XDSClientError) {
        if let authority {
            // a host name or address, optionally with a port: what may stand in `:authority` and SNI
            guard !authority.isEmpty, authority.utf8.count <= 253,
                authority.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-.:_[]".contains($0)) })
            else { throw .usage("--authority \(authority): a host name (letters, digits, '-', '.', '_'), optionally :PORT") }
        }
        self.authority = authority
        if url.hasPrefix("unix:") {
            // gRPC's names: unix:relative/path, unix:/abs/path, unix:///abs/path
            var path = url.dropFirst("unix:".count)
            if path.hasPrefix("//") { path = path.dropFirst(2) }
            guard !path.isEmpty, path.utf8.count < 108 else {
                throw .usage("--server \(url): unix:PATH with a socket path of 1-107 bytes")
            }
            guard tls == nil else { throw .usage("--ca/--cert/--key need a grpcs:// server (unix: is plaintext)") }
            socketPath = String(path)
            host = "localhost"
            port = 0
            self.tls = nil
            return
        }
        socketPath = nil
        let secure: Bool
        var rest: Substring
        if url.hasPrefix("grpc://") {
            secure = false
            rest = url.dropFirst("grpc://".count)
        } else if url.hasPrefix("grpcs://") {
            secure = true
            rest = url.dropFirst("grpcs://".count)
        } else {
            throw .usage("--server takes grpc://HOST:PORT, grpcs://HOST:PORT or unix:PATH, got \(url)")
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        var hostPart: Substring
        var portPart: Substring
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            hostPart = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { throw .usage("--server \(url): no port") }
            portPart = after.dropFirst()
        } else if let colon = rest.lastIndex(of: ":") {
            hostPart = rest[..<colon]
            portPart = rest[rest.index(after: colon)...]
        } else {
            throw .usage("--server \(url): no port")
        }
        guard !hostPart.isEmpty, let p = Int(portPart), (1...65535).contains(p) else {
            throw .usage("--server \(url): expected HOST:PORT with a port in 1-65535")
        }
        host = String(hostPart)
        port = p
        if secure {
            self.tls = tls ?? TLS(caFile: nil, certFile: nil, keyFile: nil)
        } else {
            guard tls == nil else { throw .usage("--ca/--cert/--key need a grpcs:// server") }
            self.tls = nil
        }
    }

    public var description: String {
        if let socketPath { return "unix:\(socketPath)" }
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(tls == nil ? "grpc" : "grpcs")://\(h):\(port)"
    }

    func transport() throws -> HTTP2ClientTransport.Posix {
        let target: any ResolvableTarget
        if let socketPath {
            target = .unixDomainSocket(path: socketPath)
        } else if host.contains(":") {
            target = .ipv6(address: host, port: port)
        } else if host.split(separator: ".").count == 4, host.allSatisfy({ $0.isNumber || $0 == "." }) {
            target = .ipv4(address: host, port: port)
        } else {
            target = .dns(host: host, port: port)
        }
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if let tls {
            var config = HTTP2ClientTransport.Posix.TransportSecurity.TLS.defaults()
            if let ca = tls.caFile { config.trustRoots = .certificates([.file(path: ca, format: .pem)]) }
            if let cert = tls.certFile, let key = tls.keyFile {
                config.certificateChain = [.file(path: cert, format: .pem)]
                config.privateKey = .file(path: key, format: .pem)
            }
            security = .tls(config)
        } else {
            security = .plaintext
        }
        var config = HTTP2ClientTransport.Posix.Config.defaults
        // xDS responses of large meshes exceed gRPC's 4 MiB default.
        config.http2.maxFrameSize = 1 << 20
        config.http2.authority = authority
        return try HTTP2ClientTransport.Posix(
            target: target, transportSecurity: security, config: config,
            serviceConfig: ServiceConfig())
    }
}

/// What a stream presents besides the node: headers sent with every stream (Envoy's
/// `GrpcService.initial_metadata`; a Kuma dataplane token, a tenant header) and a bearer token
/// read from a file at the start of every stream (istiod's `authorization: Bearer` with the pod's
/// projected service-account token, which the kubelet rotates: a reconnect presents the new one).
///
/// The token is sent as Envoy's `FileBasedMetadataConfig` sends a file: under `tokenHeader`
/// (`authorization`), after `tokenPrefix` (`Bearer ` for istiod; Kuma's dataplane token goes bare).
public struct StreamCredentials: Sendable {
    public var headers: [(name: String, value: String)]
    public var tokenFile: String?
    public var tokenHeader: String
    public var tokenPrefix: String

    public init(
        headers: [(name: String, value: String)] = [], tokenFile: String? = nil, tokenHeader: String = "authorization",
        tokenPrefix: String = "Bearer "
    ) throws(XDSClientError) {
        for (name, value) in headers {
            try Self.check(name: name, what: "--header \(name)")
            try Self.check(value: value, what: "--header \(name)")
        }
        try Self.check(name: tokenHeader, what: "--token-header \(tokenHeader)")
        guard tokenPrefix.utf8.allSatisfy({ (0x20...0x7e).contains($0) }), tokenPrefix.first != " " else {
            throw .usage("--token-prefix: printable ASCII, not starting with a space")
        }
        self.headers = headers
        self.tokenFile = tokenFile
        self.tokenHeader = tokenHeader
        self.tokenPrefix = tokenPrefix
        if tokenFile != nil { _ = try token() }
    }

    /// gRPC metadata names: lowercase letters, digits, `-`, `_`, `.`; not a pseudo-header, not one
    /// gRPC itself sets or reserves (`grpc-*`), not binary (`-bin` values are bytes, not text).
    static func check(name: String, what: String) throws(XDSClientError) {
        let reserved: Set<String> = ["te", "content-type", "user-agent", "host"]
        guard !name.isEmpty, name.utf8.allSatisfy({ (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d || $0 == 0x5f || $0 == 0x2e })
        else { throw .usage("\(what): a header name is lowercase letters, digits, '-', '_' and '.'") }
        guard !reserved.contains(name), !name.hasPrefix("grpc-"), !name.hasSuffix("-bin") else {
            throw .usage("\(what): gRPC sets this header itself (or it is binary)")
        }
    }

    /// Printable ASCII (and spaces/tabs inside): what an HTTP/2 header value may carry as text.
    static func check(value: String, what: String) throws(XDSClientError) {
        guard value.utf8.count <= 16384, value.utf8.allSatisfy({ (0x20...0x7e).contains($0) || $0 == 0x09 }),
            value.first != " ", value.last != " "
        else { throw .usage("\(what): the value must be printable ASCII, at most 16 KiB, without surrounding spaces") }
    }

    /// The token file's contents now, without the trailing newline.
    func token() throws(XDSClientError) -> String? {
        guard let tokenFile else { return nil }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: tokenFile)) } catch {
            throw .usage("--token-file \(tokenFile): cannot read: \(error.localizedDescription)")
        }
        guard data.count <= 16384, let text = String(data: data, encoding: .utf8) else {
            throw .usage("--token-file \(tokenFile): not a token (larger than 16 KiB or not text)")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw .usage("--token-file \(tokenFile): empty") }
        try Self.check(value: token, what: "--token-file \(tokenFile)")
        return token
    }

    /// The headers of one stream (the token file read now).
    func streamHeaders() throws(XDSClientError) -> [(name: String, value: String)] {
        var h = headers
        if let t = try token() { h.append((tokenHeader, tokenPrefix + t)) }
        return h
    }
}

public enum XDSClientError: Error, Sendable, CustomStringConvertible {
    case usage(String)
    case timeout(String)
    case stream(String)

    public var description: String {
        switch self {
        case .usage(let s), .timeout(let s), .stream(let s): s
        }
    }
}

/// The identity the client presents (Envoy's `node`): `metadata` strings go over the fields of
/// `baseMetadata` (a JSON object, as Istio's typed node metadata); `locality` is
/// `REGION[/ZONE[/SUBZONE]]` (control planes order a node's endpoints by it).
public func makeNode(
    id: String, cluster: String, metadata: [(String, String)], baseMetadata: Google_Protobuf_Struct? = nil,
    locality: String? = nil
) -> Envoy_Config_Core_V3_Node {
    var n = Envoy_Config_Core_V3_Node()
    n.id = id
    n.cluster = cluster
    n.userAgentName = "xds2bpf"
    n.userAgentVersion = XDS2BPFVersion.string
    n.clientFeatures = ["envoy.lb.does_not_support_overprovisioning"]
    if !metadata.isEmpty || baseMetadata != nil {
        var s = baseMetadata ?? Google_Protobuf_Struct()
        for (k, v) in metadata { s.fields[k] = Google_Protobuf_Value(stringValue: v) }
        n.metadata = s
    }
    if let locality {
        let parts = locality.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        n.locality.region = parts[0]
        if parts.count > 1 { n.locality.zone = parts[1] }
        if parts.count > 2 { n.locality.subZone = parts[2] }
    }
    return n
}

/// Runs ADS streams with grpc-swift: one stream per call of `run`, driving an
/// `ADSSession`. The consumer judges each complete candidate; `run` returns when
/// the consumer says so (`fetch`: after the first accepted configuration) or
/// throws when the stream ends.
public struct ADSClient: Sendable {
    public let server: ADSServer
    /// The largest message accepted from the server.
    public var maxMessageBytes: Int
    /// Headers and token presented at the start of every stream.
    public var credentials: StreamCredentials?

    public init(server: ADSServer, maxMessageBytes: Int = 64 << 20, credentials: StreamCredentials? = nil) {
        self.server = server
        self.maxMessageBytes = maxMessageBytes
        self.credentials = credentials
    }

    static let sotwMethod = MethodDescriptor(
        fullyQualifiedService: "envoy.service.discovery.v3.AggregatedDiscoveryService", method: "StreamAggregatedResources")
    static let deltaMethod = MethodDescriptor(
        fullyQualifiedService: "envoy.service.discovery.v3.AggregatedDiscoveryService", method: "DeltaAggregatedResources")

    /// What the consumer wants after a verdict.
    public enum Next: Sendable { case keepGoing, stop }

    /// One stream: sends the session's requests, feeds it the responses, asks the
    /// consumer for a verdict whenever the candidate is complete. Returns the
    /// session as it stood when the consumer said stop (or the stream ended).
    public func run(
        session initial: ADSSession,
        onEvent: @escaping @Sendable (ADSEvent) -> Void,
        judge: @escaping @Sendable (XDSResourceSet) async -> (ADSVerdict, Next),
        onCandidate: @escaping @Sendable (XDSResourceSet) -> Void = { _ in }
    ) async throws -> ADSSession {
        // read before connecting: a rotated token file is presented by the next stream
        var metadata: Metadata = [:]
        for (name, value) in try credentials?.streamHeaders() ?? [] { metadata.addString(value, forKey: name) }
        let transport = try server.transport()
        var session = initial
        let first = session.initialRequests()
        let mode = session.mode
        let (sotwOut, sotwIn) = AsyncStream.makeStream(of: DiscoveryRequest.self)
        let (deltaOut, deltaIn) = AsyncStream.makeStream(of: DeltaDiscoveryRequest.self)
        @Sendable func send(_ msgs: [ADSOutgoing]) {
            for m in msgs {
                switch m {
                case .sotw(let r): sotwIn.yield(r)
                case .delta(let r): deltaIn.yield(r)
                }
            }
        }
        send(first)
        for e in session.drainEvents() { onEvent(e) }
        let start = session
        var options = CallOptions.defaults
        options.maxResponseMessageBytes = maxMessageBytes
        // grpc-swift-nio-transport 2.9 sizes the client stream's inbound message
        // decoder from maxRequestMessageBytes (4 MiB by default): a 10k-service CDS
        // response is larger.
        options.maxRequestMessageBytes = maxMessageBytes
        let callOptions = options
        let limit = maxMessageBytes
        do {
            return try await withGRPCClient(transport: transport) { client in
                // Each response is handled to the end (verdict, requests) before the next.
                @Sendable func handle(_ s: inout ADSSession, arrived: UInt64, received: UInt64, _ out: [ADSOutgoing]) async -> Next {
                    send(out)
                    for e in s.drainEvents() { onEvent(e) }
                    onCandidate(s.candidate)
                    guard s.needsVerdict else { return .keepGoing }
                    let judging = DispatchTime.now().uptimeNanoseconds
                    let (verdict, next) = await judge(s.candidate)
                    send(s.apply(verdict))
                    let ms = { (ns: UInt64) in String(format: "%.1f", Double(ns) / 1e6) }
                    let now = DispatchTime.now().uptimeNanoseconds
                    for var e in s.drainEvents() {
                        // the client's share of an update: the response in hand → the verdict sent
                        if e.description.hasPrefix("ACK ") || e.description.hasPrefix("NACK ") {
                            e.description +=
                                " (\(ms(now - arrived)) ms after the response arrived; \(ms(received - arrived)) ms taking it in, "
                                + "\(ms(judging - arrived)) ms before judging)"
                        }
                        onEvent(e)
                    }
                    return next
                }
                switch mode {
                case .stateOfTheWorld:
                    let request = StreamingClientRequest<DiscoveryRequest>(
                        metadata: metadata,
                        producer: { writer in
                            for await r in sotwOut { try await writer.write(r) }
                        })
                    return try await client.bidirectionalStreaming(
                        request: request, descriptor: Self.sotwMethod,
                        serializer: ProtobufSerializer<DiscoveryRequest>(),
                        deserializer: ProtobufDeserializer<DiscoveryResponseEnvelope>(), options: callOptions
                    ) { response in
                        try await Self.consume(response.messages, from: start, finish: { sotwIn.finish() }) { s, msg in
                            let arrived = DispatchTime.now().uptimeNanoseconds
                            let out = s.receive(msg)
                            return await handle(&s, arrived: arrived, received: DispatchTime.now().uptimeNanoseconds, out)
                        }
                    }
                case .delta:
                    let request = StreamingClientRequest<DeltaDiscoveryRequest>(
                        metadata: metadata,
                        producer: { writer in
                            for await r in deltaOut { try await writer.write(r) }
                        })
                    return try await client.bidirectionalStreaming(
                        request: request, descriptor: Self.deltaMethod,
                        serializer: ProtobufSerializer<DeltaDiscoveryRequest>(),
                        deserializer: ProtobufDeserializer<DeltaDiscoveryResponse>(), options: callOptions
                    ) { response in
                        try await Self.consume(response.messages, from: start, finish: { deltaIn.finish() }) { s, msg in
                            let arrived = DispatchTime.now().uptimeNanoseconds
                            let out = s.receive(msg)
                            return await handle(&s, arrived: arrived, received: DispatchTime.now().uptimeNanoseconds, out)
                        }
                    }
                }
            }
        } catch let e as RPCError where e.code == .unauthenticated || e.code == .permissionDenied {
            // The control plane's verdict on who we are: say so, not just "stream ended".
            let presented =
                credentials.map { c in
                    (c.headers.map { "header \($0.name)" } + (c.tokenFile.map { ["the token in \($0)"] } ?? []))
                        .joined(separator: ", ")
                } ?? ""
            throw XDSClientError.stream(
                "the control plane refused the stream (\(e.code == .unauthenticated ? "unauthenticated" : "permission denied"): "
                    + "\(e.message)); presented: \(presented.isEmpty ? "no credentials (--token-file, --header)" : presented)")
        } catch let e as RPCError where String(describing: e).contains("failedToValidateHostname") {
            let name = server.authority ?? server.host
            throw XDSClientError.stream(
                "TLS: the server's certificate does not name \(name)"
                    + (server.authority == nil ? "; give the name it shows with --authority" : "") + " (\(e.message))")
        } catch let e as RPCError where e.code == .internalError && e.message.hasPrefix("Failed to decode message") {
            // grpc-swift's words for a response over the size limit (or not a DiscoveryResponse)
            throw XDSClientError.stream(
                "a response from the server could not be decoded: larger than the limit of \(limit) bytes "
                    + "(--max-message-bytes), or not a DiscoveryResponse (\(e.message))")
        }
    }
}

extension ADSClient {
    /// Feeds the responses to the session until the consumer says stop; then
    /// half-closes the request stream (`finish`) and keeps reading until the
    /// server ends the stream, at most `drainSeconds`, so that the last ACKs
    /// reach the server before the call ends (ending it at once cancels the
    /// RPC, and with it requests still queued).
    static func consume<Messages: AsyncSequence & Sendable>(
        _ messages: Messages, from start: ADSSession, finish: @escaping @Sendable () -> Void,
        drainSeconds: Double = 2,
        _ step: @escaping @Sendable (inout ADSSession, Messages.Element) async -> Next
    ) async throws -> ADSSession {
        let result = SessionBox()
        let (stopped, stop) = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var s = start
                var stopping = false
                do {
                    for try await msg in messages {
                        if stopping { continue }
                        if await step(&s, msg) == .stop {
                            stopping = true
                            result.value.withLock { $0 = s }
                            finish()
                            stop.yield()
                        }
                    }
                } catch {
                    // The call failed (a response over the size limit, a reset stream):
                    // the request side ends too, or the call waits for it forever.
                    finish()
                    throw error
                }
                if !stopping {
                    finish()
                    throw XDSClientError.stream("the server closed the stream")
                }
            }
            group.addTask {
                for await _ in stopped { break }
                try await Task.sleep(nanoseconds: UInt64(drainSeconds * 1e9))
            }
            defer { group.cancelAll() }
            try await group.next()
        }
        guard let s = result.value.withLock({ $0 }) else { throw XDSClientError.stream("the stream ended") }
        return s
    }
}

/// The session a stream ended with, handed from the reading task.
final class SessionBox: Sendable {
    let value = Mutex<ADSSession?>(nil)
}

/// Runs `body` with a deadline: its result, or `XDSClientError.timeout(what())`.
public func withDeadline<T: Sendable>(
    _ seconds: Double, what: @escaping @Sendable () -> String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw XDSClientError.timeout(what())
        }
        return value
    }
}
