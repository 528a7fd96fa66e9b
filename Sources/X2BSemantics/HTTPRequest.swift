import Foundation

/// Headers the way Envoy's header map keeps them: lowercased names, entries in
/// the order they arrived, several entries per name possible (one for an inline
/// header, below). Route header matchers see each value of a name (`RouteSemantics.matches`);
/// `cluster_header` and `host_rewrite_header` take the first.
public struct HTTPHeaderMap: Sendable, Hashable {
    public private(set) var entries: [HTTPHeaderEntry] = []

    /// Headers Envoy 1.40's header map keeps inline (its INLINE_REQ_*_HEADERS and those its
    /// extensions register): a repeated line is appended to the one entry with ",". Measured
    /// against the pinned Envoy (a matcher `exact: b` against the lines `a` and `b`).
    public static let inlineHeaders: Set<String> = [
        ":authority", ":method", ":path", ":scheme", ":protocol", "accept", "accept-encoding",
        "access-control-request-headers", "access-control-request-method", "access-control-request-private-network",
        "authorization", "cache-control", "connection", "content-encoding", "content-length", "content-type", "expect",
        "grpc-accept-encoding", "grpc-timeout", "if-match", "if-modified-since", "if-none-match", "if-range",
        "if-unmodified-since", "keep-alive", "origin", "pragma", "proxy-connection", "proxy-status", "referer", "te",
        "transfer-encoding", "upgrade", "user-agent", "via", "x-client-trace-id", "x-envoy-attempt-count",
        "x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node",
        "x-envoy-expected-rq-timeout-ms", "x-envoy-external-address", "x-envoy-force-trace",
        "x-envoy-hedge-on-per-try-timeout", "x-envoy-internal", "x-envoy-ip-tags", "x-envoy-is-timeout-retry",
        "x-envoy-max-retries", "x-envoy-original-path", "x-envoy-original-url", "x-envoy-retriable-header-names",
        "x-envoy-retriable-status-codes", "x-envoy-retry-grpc-on", "x-envoy-retry-on", "x-envoy-upstream-alt-stat-name",
        "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-rq-timeout-alt-response",
        "x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-stream-duration-ms", "x-forwarded-client-cert",
        "x-forwarded-for", "x-forwarded-host", "x-forwarded-port", "x-forwarded-proto", "x-request-id",
    ]

    public static func isInline(_ name: String) -> Bool { inlineHeaders.contains(canonical(name)) }

    public init(_ entries: [(String, String)] = []) {
        for (k, v) in entries { add(k, v) }
    }

    /// Envoy keeps `host` and `:authority` as one header.
    public static func canonical(_ name: String) -> String {
        let n = String(decoding: ASCII.lowered(Array(name.utf8)), as: UTF8.self)
        return n == "host" ? ":authority" : n
    }

    public func values(_ name: String) -> [String] {
        let n = Self.canonical(name)
        return entries.filter { $0.name == n }.map(\.value)
    }

    /// All values joined with ",", nil when the header is absent. `:authority` (the Host lines)
    /// as Envoy's `HeaderMapImpl::appendToHeader` builds it: an empty value adds nothing and the
    /// "," goes only after a value ("Host:" then "Host: b" is "b"; checked against Envoy 1.40).
    public func joined(_ name: String) -> String? {
        let v = values(name)
        if v.isEmpty { return nil }
        if Self.canonical(name) == ":authority" { return v.filter { !$0.isEmpty }.joined(separator: ",") }
        return v.joined(separator: ",")
    }

    /// The first value; Envoy keeps a pseudo-header as one entry, repeats joined with ",".
    public func first(_ name: String) -> String? {
        HTTPHeaderMap.canonical(name).hasPrefix(":") ? joined(name) : values(name).first
    }

    public func contains(_ name: String) -> Bool { !values(name).isEmpty }

    public mutating func add(_ name: String, _ value: String) {
        entries.append(HTTPHeaderEntry(name: Self.canonical(name), value: value))
    }

    /// Replaces every entry of the name by one (Envoy's setCopy/setReferenceKey).
    public mutating func set(_ name: String, _ value: String) {
        let n = Self.canonical(name)
        if let i = entries.firstIndex(where: { $0.name == n }) {
            entries[i].value = value
            entries = entries.enumerated().filter { $0.offset == i || $0.element.name != n }.map(\.element)
        } else {
            entries.append(HTTPHeaderEntry(name: n, value: value))
        }
    }

    public mutating func remove(_ name: String) {
        let n = Self.canonical(name)
        entries.removeAll { $0.name == n }
    }
}

public struct HTTPHeaderEntry: Sendable, Hashable {
    public var name: String
    public var value: String
}

/// A dynamic metadata value (a protobuf Struct value), for `dynamic_metadata` matchers.
public indirect enum MetadataValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case list([MetadataValue])
    case object([String: MetadataValue])
}

/// An HTTP request head as routing sees it.
public struct HTTPRequest: Sendable, Hashable {
    /// `:authority` (the Host header of HTTP/1).
    public var authority: String
    /// False: the request had no Host header (HTTP/1.0).
    public var hasAuthority = true
    /// `:path`, with query and fragment.
    public var path: String
    public var method: String
    /// The request line's version as sent ("" for none, HTTP/0.9); `HeadValidation` checks it.
    public var version = "HTTP/1.1"
    /// The scheme of the client's connection; `x-forwarded-proto` overrides it
    /// for routing, as Envoy's connection manager sets that header from it.
    public var scheme = "http"
    /// Other headers, lowercased names, in order.
    public var headers: [(String, String)]
    /// Dynamic metadata by filter namespace (set by HTTP filters; none at connect time).
    public var dynamicMetadata: [String: MetadataValue] = [:]

    public init(authority: String, path: String = "/", method: String = "GET", headers: [(String, String)] = []) {
        self.authority = authority
        self.path = path
        self.method = method
        self.headers = headers.map { (HTTPHeaderMap.canonical($0.0), $0.1) }
    }

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.authority == b.authority && a.hasAuthority == b.hasAuthority && a.path == b.path && a.method == b.method
            && a.version == b.version
            && a.scheme == b.scheme && a.dynamicMetadata == b.dynamicMetadata
            && a.headers.map { "\($0.0)\u{0}\($0.1)" } == b.headers.map { "\($0.0)\u{0}\($0.1)" }
    }

    public func hash(into h: inout Hasher) {
        h.combine(authority)
        h.combine(path)
        h.combine(method)
        for (k, v) in headers {
            h.combine(k)
            h.combine(v)
        }
    }

    /// The request as Envoy's header map holds it: pseudo-headers first.
    public var headerMap: HTTPHeaderMap {
        var m = HTTPHeaderMap()
        if hasAuthority { m.add(":authority", authority) }
        m.add(":path", path)
        m.add(":method", method)
        // The connection manager always sets :scheme (from the connection).
        if !headers.contains(where: { $0.0 == ":scheme" }) { m.add(":scheme", scheme) }
        for (k, v) in headers { m.add(k, v) }
        return m
    }

    /// A header's value as matchers see it (all values joined with ","), nil if absent.
    public func header(_ name: String) -> String? { headerMap.joined(name) }

    /// The path without query string and fragment.
    public var pathOnly: String { RouteSemantics.removeQueryAndFragment(path) }

    public var queryParameters: [(String, String)] { RouteSemantics.parseQuery(path) }
}
