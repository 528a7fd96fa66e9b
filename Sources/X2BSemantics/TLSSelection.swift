import X2BIR

/// What Envoy's TLS inspector learns from a connection's first bytes: whether
/// they are a ClientHello (transport protocol "tls", else "raw_buffer"), its
/// server name (SNI) and its ALPN list, in the client's order.
public struct TLSHello: Sendable, Hashable {
    /// A ClientHello was seen ("tls"); false: the bytes are not TLS ("raw_buffer").
    public var isTLS: Bool
    /// Lowercased, as Envoy's socket stores it; "" when the ClientHello has no SNI.
    public var serverName: String
    public var applicationProtocols: [String]

    public init(isTLS: Bool, serverName: String = "", applicationProtocols: [String] = []) {
        self.isTLS = isTLS
        self.serverName = isTLS ? serverName.lowercased() : ""
        self.applicationProtocols = isTLS ? applicationProtocols : []
    }

    /// Plain bytes (no ClientHello): the transport protocol is raw_buffer.
    public static let plaintext = TLSHello(isTLS: false)

    public var transportProtocol: String { isTLS ? "tls" : "raw_buffer" }
}

/// Envoy's filter-chain levels that need the first bytes (FilterChainManagerImpl:
/// server_names, then transport_protocol, then application_protocols), over the
/// chains left once the destination port and IP levels settled. Each level
/// narrows to the most specific value present and never backtracks, so a server
/// name that matches chains whose transport or ALPN then does not, leaves no
/// chain (the listener's default chain, else the connection is closed).
public enum TLSSelection {
    /// Server-name keys as Envoy stores them: "*.example.com" becomes ".example.com";
    /// a chain without server names is the catch-all "".
    public static func nameKeys(_ c: IRFilterChain) -> [String] {
        if c.match.serverNames.isEmpty { return [""] }
        return c.match.serverNames.map { $0.hasPrefix("*.") ? String($0.dropFirst()) : $0 }
    }

    /// Whether choosing among `chains` needs the ClientHello: some chain asks for a
    /// server name, the tls transport, or an ALPN value other than plaintext HTTP
    /// (which the HTTP path takes as matched, see ChainSelection).
    public static func needsClientHello(_ chains: [IRFilterChain]) -> Bool {
        chains.contains { c in
            !c.match.serverNames.isEmpty || c.match.transportProtocol == "tls"
                || c.match.applicationProtocols.contains { !ChainSelection.plaintextHTTPProtocols.contains($0) }
        }
    }

    /// The wildcard keys Envoy tries for `name`, most specific (longest) first:
    /// ".b.c" then ".c" for "a.b.c"; never the whole name nor a bare ".".
    public static func wildcardKeys(_ name: String) -> [String] {
        let bytes = Array(name.utf8)
        var out: [String] = []
        var pos = 1
        while pos < bytes.count - 1 {
            if bytes[pos] == UInt8(ascii: ".") { out.append(String(decoding: bytes[pos...], as: UTF8.self)) }
            pos += 1
        }
        return out
    }

    /// The chains the server-name level keeps: exact name, else the longest
    /// matching wildcard, else the chains without server names.
    public static func nameLevel(_ chains: [IRFilterChain], serverName: String) -> [IRFilterChain] {
        let keyed = chains.map { (chain: $0, keys: Set(nameKeys($0))) }
        func with(_ key: String) -> [IRFilterChain] { keyed.filter { $0.keys.contains(key) }.map(\.chain) }
        if !serverName.isEmpty {
            let exact = with(serverName)
            if !exact.isEmpty { return exact }
            for w in wildcardKeys(serverName) {
                let hit = with(w)
                if !hit.isEmpty { return hit }
            }
        }
        return with("")
    }

    /// The transport level: chains naming the detected protocol, else those naming none.
    public static func transportLevel(_ chains: [IRFilterChain], protocol p: String) -> [IRFilterChain] {
        let exact = chains.filter { $0.match.transportProtocol == p }
        return exact.isEmpty ? chains.filter { $0.match.transportProtocol.isEmpty } : exact
    }

    /// The ALPN level: the first of the client's protocols some chain names, else
    /// the chains naming none.
    public static func alpnLevel(_ chains: [IRFilterChain], protocols: [String]) -> IRFilterChain? {
        for p in protocols {
            if let c = chains.first(where: { $0.match.applicationProtocols.contains(p) }) { return c }
        }
        return chains.first { $0.match.applicationProtocols.isEmpty }
    }

    /// The chain among `chains` (the destination port and IP levels' survivors)
    /// for a connection whose first bytes are `hello`; nil: none matches.
    public static func chain(_ chains: [IRFilterChain], hello: TLSHello) -> IRFilterChain? {
        let named = nameLevel(chains, serverName: hello.serverName)
        let transported = transportLevel(named, protocol: hello.transportProtocol)
        return alpnLevel(transported, protocols: hello.applicationProtocols)
    }
}
