import Foundation

/// An HTTP request head as routing sees it.
public struct HTTPRequest: Sendable, Hashable {
    public var authority: String
    public var path: String
    public var method: String
    /// Lowercased names; repeated names are joined with "," as Envoy does.
    public var headers: [(String, String)]

    public init(authority: String, path: String = "/", method: String = "GET", headers: [(String, String)] = []) {
        self.authority = authority
        self.path = path
        self.method = method
        self.headers = headers.map { ($0.0.lowercased(), $0.1) }
    }

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.authority == b.authority && a.path == b.path && a.method == b.method
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

    /// A header's value (pseudo-headers included), nil if absent.
    public func header(_ name: String) -> String? {
        switch name {
        case ":authority", "host": return authority
        case ":path": return path
        case ":method": return method
        default:
            let values = headers.filter { $0.0 == name }.map(\.1)
            return values.isEmpty ? nil : values.joined(separator: ",")
        }
    }

    /// The path without query string and fragment.
    public var pathOnly: String {
        var p = Substring(path)
        if let q = p.firstIndex(where: { $0 == "?" || $0 == "#" }) { p = p[..<q] }
        return String(p)
    }

    public var queryParameters: [(String, String)] {
        guard let q = path.firstIndex(of: "?") else { return [] }
        var query = path[path.index(after: q)...]
        if let f = query.firstIndex(of: "#") { query = query[..<f] }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { kv in
            if let eq = kv.firstIndex(of: "=") {
                return (String(kv[..<eq]), String(kv[kv.index(after: eq)...]))
            }
            return (String(kv), "")
        }
    }
}

/// Which virtual host and route handle a request: Envoy's route matching,
/// the reference the generated BPF matcher is checked against.
public enum RouteSemantics {
    /// Envoy's virtual host order: exact domain, then `*.suffix` wildcards
    /// (longest suffix first), then `prefix.*` wildcards (longest first), then `*`.
    /// Case-insensitive; the port is kept unless the table ignores it.
    public static func virtualHost(in table: IRRouteTable, authority: String) -> IRVirtualHost? {
        var host = authority.lowercased()
        if table.ignorePortInHostMatching, let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") {
            host = String(host[..<colon])
        }
        for vh in table.virtualHosts where vh.domains.contains(host) { return vh }
        var bestSuffix: (Int, IRVirtualHost)?
        var bestPrefix: (Int, IRVirtualHost)?
        for vh in table.virtualHosts {
            for d in vh.domains where d != "*" {
                if d.hasPrefix("*") {
                    let suffix = d.dropFirst()
                    if host.count > suffix.count, host.hasSuffix(suffix), suffix.count > (bestSuffix?.0 ?? -1) {
                        bestSuffix = (suffix.count, vh)
                    }
                } else if d.hasSuffix("*") {
                    let prefix = d.dropLast()
                    if host.count > prefix.count, host.hasPrefix(prefix), prefix.count > (bestPrefix?.0 ?? -1) {
                        bestPrefix = (prefix.count, vh)
                    }
                }
            }
        }
        if let s = bestSuffix { return s.1 }
        if let p = bestPrefix { return p.1 }
        return table.virtualHosts.first { $0.domains.contains("*") }
    }

    public static func matches(_ s: IRStringMatch, _ value: String, ignoreCase: Bool) -> Bool {
        let v = ignoreCase ? value.lowercased() : value
        func c(_ x: String) -> String { ignoreCase ? x.lowercased() : x }
        switch s {
        case .exact(let x): return v == c(x)
        case .prefix(let x): return v.hasPrefix(c(x))
        case .suffix(let x): return v.hasSuffix(c(x))
        case .contains(let x): return v.contains(c(x))
        case .regex(let r): return RegexCache.fullMatch(r, value)
        }
    }

    public static func matches(_ h: IRHeaderMatch, _ request: HTTPRequest) -> Bool {
        var value = request.header(h.name)
        if value == nil, h.treatMissingAsEmpty { value = "" }
        let result: Bool
        switch h.kind {
        case .present(let p):
            result = (value != nil) == p
        case .string(let s, let ignoreCase):
            result = value.map { matches(s, $0, ignoreCase: ignoreCase) } ?? false
        case .range(let lo, let hi):
            if let v = value, let n = Int64(v) { result = n >= lo && n < hi } else { result = false }
        }
        return result != h.invert
    }

    /// Whether a route's match applies. `random` drives runtime_fraction.
    public static func matches(_ m: IRRouteMatch, _ request: HTTPRequest, random: UInt64) -> Bool {
        let cs = m.caseSensitive
        func eq(_ a: String, _ b: String) -> Bool { cs ? a == b : a.lowercased() == b.lowercased() }
        func starts(_ a: String, _ b: String) -> Bool { cs ? a.hasPrefix(b) : a.lowercased().hasPrefix(b.lowercased()) }
        let pathMatched: Bool
        switch m.path {
        case .prefix(let p): pathMatched = starts(request.path, p)
        case .exact(let p): pathMatched = eq(request.pathOnly, p)
        case .separatedPrefix(let p):
            let path = request.pathOnly
            pathMatched = eq(path, p) || starts(path, p.hasSuffix("/") ? p : p + "/")
        case .regex(let r): pathMatched = RegexCache.fullMatch(r, request.pathOnly)
        }
        guard pathMatched else { return false }
        if let f = m.runtimeFraction, f.denominator > 0, random % UInt64(f.denominator) >= UInt64(f.numerator) {
            return false
        }
        for h in m.headers where !matches(h, request) { return false }
        if !m.queryParameters.isEmpty {
            let params = request.queryParameters
            for q in m.queryParameters {
                guard let value = params.first(where: { $0.0 == q.name })?.1 else { return false }
                if let s = q.value, !matches(s, value, ignoreCase: q.ignoreCase) { return false }
            }
        }
        if m.grpcOnly {
            guard let ct = request.header("content-type"), ct.hasPrefix("application/grpc") else { return false }
        }
        return true
    }

    public struct Decision: Sendable {
        public var virtualHost: IRVirtualHost?
        public var route: IRRoute?
        public var routeIndex: Int?
        /// The cluster a forwarding route picked (weighted choice resolved with `random`).
        public var cluster: String?
    }

    public static func decide(_ table: IRRouteTable, _ request: HTTPRequest, random: UInt64) -> Decision {
        guard let vh = virtualHost(in: table, authority: request.authority) else {
            return Decision(virtualHost: nil, route: nil, routeIndex: nil, cluster: nil)
        }
        for (i, r) in vh.routes.enumerated() where matches(r.match, request, random: random) {
            var cluster: String?
            switch r.action {
            case .cluster(let c): cluster = c
            case .clusterHeader(let h): cluster = request.header(h)
            case .weighted(let entries, let total): cluster = pickWeighted(entries, total: total, random: random)
            default: break
            }
            return Decision(virtualHost: vh, route: r, routeIndex: i, cluster: cluster)
        }
        return Decision(virtualHost: vh, route: nil, routeIndex: nil, cluster: nil)
    }

    /// Envoy's weighted pick: `random % total`, first entry whose cumulative weight exceeds it.
    public static func pickWeighted(_ entries: [IRWeightedCluster], total: UInt32, random: UInt64) -> String? {
        guard total > 0 else { return nil }
        let r = random % UInt64(total)
        var cum: UInt64 = 0
        for e in entries {
            cum += UInt64(e.weight)
            if r < cum { return e.cluster }
        }
        return entries.last?.cluster
    }
}

/// Compiled regexes for the interpreter (RE2 syntax; the common subset is also
/// valid for Swift's regex engine).
enum RegexCache {
    nonisolated(unsafe) private static var cache: [String: NSRegularExpression] = [:]
    private static let lock = NSLock()

    static func fullMatch(_ pattern: String, _ value: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let re: NSRegularExpression
        if let c = cache[pattern] {
            re = c
        } else {
            guard let c = try? NSRegularExpression(pattern: "^(?:\(pattern))$") else { return false }
            cache[pattern] = c
            re = c
        }
        let range = NSRange(value.startIndex..., in: value)
        return re.firstMatch(in: value, options: [], range: range) != nil
    }
}
