import X2BIR

/// Envoy's listener and filter-chain selection for a connecting socket, the one
/// implementation both the planner (to build the match table) and the
/// interpreter (`explain`) use, so the kernel table and the reference agree.
///
/// Envoy narrows the candidate chains level by level, most specific first, and
/// never backtracks to a less specific level: destination port, then
/// destination IP (longest prefix), then transport protocol (raw_buffer), then
/// application protocol (plaintext HTTP where a chain asks for it). Server
/// names, the tls transport and other ALPN values need the connection's first
/// bytes: such chain sets are chosen by `TLSSelection` once the ClientHello is
/// known (with the defer-connect module). Source criteria cannot be known;
/// chains that need them were rejected by the lowering with a diagnostic.
public enum ChainSelection {
    /// The listener a connect to `address:port` reaches: an exact listener, else
    /// the wildcard (`0.0.0.0` / `::`) listener of the same family and port.
    public static func listener(in ir: MeshIR, address: IRAddress, port: UInt16) -> IRListener? {
        if let exact = ir.listeners.first(where: { $0.port == port && $0.address == address }) {
            return exact
        }
        return ir.listeners.first { $0.port == port && $0.address.isUnspecified && $0.address.family == address.family }
    }

    /// Chains that survive the destination-port level for a listener on `port`.
    public static func portCandidates(_ listener: IRListener) -> [IRFilterChain] {
        let exact = listener.chains.filter { $0.match.destinationPort == listener.port }
        return exact.isEmpty ? listener.chains.filter { $0.match.destinationPort == nil } : exact
    }

    /// The most specific prefix among the candidates' ranges that contains `address`.
    public static func longestPrefix(_ candidates: [IRFilterChain], containing address: IRAddress) -> IRCidr? {
        var best: IRCidr?
        for c in candidates {
            for p in c.match.prefixRanges where p.contains(address) {
                if best == nil || p.prefixLength > best!.prefixLength { best = p }
            }
        }
        return best
    }

    /// The chain chosen once the destination IP level settled on `prefix`
    /// (nil: the chains without prefix ranges). Falls back to the listener's
    /// default filter chain when nothing matches.
    public static func chain(_ listener: IRListener, candidates: [IRFilterChain], prefix: IRCidr?) -> IRFilterChain? {
        var c = ipLevel(candidates, prefix: prefix)
        // Transport protocol: at connect time the bytes are unknown, so a socket
        // counts as raw_buffer (what Envoy reports without a TLS inspector).
        let raw = c.filter { $0.match.transportProtocol == "raw_buffer" }
        c = raw.isEmpty ? c.filter { $0.match.transportProtocol.isEmpty } : raw
        // Application protocol: a chain serving detected plaintext HTTP is taken for a
        // client of an HTTP listener (see docs/semantics.md); otherwise chains without one.
        let http = c.filter { $0.match.applicationProtocols.contains("http/1.1") }
        c = http.isEmpty ? c.filter { $0.match.applicationProtocols.isEmpty } : http
        return c.first ?? listener.defaultChain
    }

    /// The chains the destination IP level keeps once it settled on `prefix`
    /// (nil: the chains without prefix ranges).
    public static func ipLevel(_ candidates: [IRFilterChain], prefix: IRCidr?) -> [IRFilterChain] {
        if let prefix { return candidates.filter { $0.match.prefixRanges.contains(prefix) } }
        return candidates.filter { $0.match.prefixRanges.isEmpty }
    }

    /// Application protocols http_inspector reports for plaintext HTTP: a chain asking
    /// for one of them is taken for a client of an HTTP listener.
    public static let plaintextHTTPProtocols: Set<String> = ["http/1.0", "http/1.1", "h2c"]

    /// The chains a connect to `address` on `listener` chooses among once the
    /// destination port and IP levels settled.
    public static func ipSurvivors(_ listener: IRListener, destination address: IRAddress) -> [IRFilterChain] {
        let candidates = portCandidates(listener)
        return ipLevel(candidates, prefix: longestPrefix(candidates, containing: address))
    }

    /// The chain a connect to `address` on `listener` uses when its first bytes
    /// are `hello` (listeners whose chains need the ClientHello); falls back to
    /// the default filter chain.
    public static func chain(_ listener: IRListener, destination address: IRAddress, hello: TLSHello) -> IRFilterChain? {
        TLSSelection.chain(ipSurvivors(listener, destination: address), hello: hello) ?? listener.defaultChain
    }

    /// The chain a connect to `address` on `listener` uses.
    public static func chain(_ listener: IRListener, destination address: IRAddress) -> IRFilterChain? {
        let candidates = portCandidates(listener)
        return chain(listener, candidates: candidates, prefix: longestPrefix(candidates, containing: address))
    }
}
