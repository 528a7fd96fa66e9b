import Foundation
import X2BIR

/// How `runtime_fraction` is decided. In the kernel no runtime overrides exist:
/// the default fraction decides with the request's random value. Envoy's
/// router-check tool instead enables a route only when the test names its key.
public enum RuntimeMode: Sendable, Hashable {
    case defaults
    case routerCheck(activeKey: String)

    func enabled(_ f: IRFraction, random: UInt64) -> Bool {
        let fraction = f.denominator > 0 && random % UInt64(f.denominator) < UInt64(f.numerator)
        switch self {
        case .defaults: return fraction
        case .routerCheck(let key): return !key.isEmpty && key == f.runtimeKey && fraction
        }
    }
}

/// Which virtual host and route handle a request: Envoy's route matching
/// (source/common/router/config_impl.cc), the reference the generated BPF
/// matcher is checked against.
public enum RouteSemantics {
    // MARK: Host

    /// Envoy's `HeaderUtility::getPortStart`: the last ':' not inside an IPv6 literal.
    public static func portStart(_ host: [UInt8]) -> Int? {
        guard let colon = host.lastIndex(of: UInt8(ascii: ":")) else { return nil }
        if let bracket = host.lastIndex(of: UInt8(ascii: "]")), bracket > colon { return nil }
        return colon
    }

    /// absl::SimpleAtoi into an unsigned 32-bit value (the port check of Host stripping).
    static func simpleAtoiU32(_ s: ArraySlice<UInt8>) -> UInt32? {
        guard let v = simpleAtoi(s, allowMinus: false), v >= 0, v <= Int64(UInt32.max) else { return nil }
        return UInt32(v)
    }

    /// absl::SimpleAtoi for int64: surrounding ASCII whitespace, an optional sign, digits.
    static func simpleAtoi(_ s: ArraySlice<UInt8>, allowMinus: Bool = true) -> Int64? {
        func space(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }
        var lo = s.startIndex, hi = s.endIndex
        while lo < hi, space(s[lo]) { lo += 1 }
        while hi > lo, space(s[hi - 1]) { hi -= 1 }
        guard lo < hi else { return nil }
        var negative = false
        if s[lo] == UInt8(ascii: "+") || s[lo] == UInt8(ascii: "-") {
            negative = s[lo] == UInt8(ascii: "-")
            if negative && !allowMinus { return nil }
            lo += 1
        }
        guard lo < hi else { return nil }
        var v: Int64 = 0
        for i in lo..<hi {
            let c = s[i]
            guard c >= 0x30, c <= 0x39 else { return nil }
            let d = Int64(c - 0x30)
            if negative {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (r, o2) = m.subtractingReportingOverflow(d)
                if o1 || o2 { return nil }
                v = r
            } else {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (r, o2) = m.addingReportingOverflow(d)
                if o1 || o2 { return nil }
                v = r
            }
        }
        return v
    }

    /// The connection manager's Host normalisation before routing
    /// (`ConnectionManagerUtility::maybeNormalizeHost`).
    public static func normalizeHost(_ host: String, _ n: IRHostNormalization) -> String {
        var h = Array(host.utf8)
        if n.stripTrailingDot, let dot = h.lastIndex(of: UInt8(ascii: ".")) {
            if dot == h.count - 1 {
                h.removeLast()
            } else if h[dot + 1] == UInt8(ascii: ":") {
                h.remove(at: dot)
            }
        }
        switch n.stripPort {
        case .none:
            break
        case .any, .matching:
            if let p = portStart(h), let port = simpleAtoiU32(h[(p + 1)...]) {
                if case .matching(let listener) = n.stripPort, port != UInt32(listener) { break }
                h = Array(h[..<p])
            }
        }
        return String(decoding: h, as: UTF8.self)
    }

    /// The request after the connection manager's Host normalisation (of the whole
    /// `:authority`, repeated Host lines joined).
    public static func normalized(_ request: HTTPRequest, _ table: IRRouteTable) -> HTTPRequest {
        guard !table.hostNormalization.isIdentity, let host = request.headerMap.joined(":authority") else { return request }
        var r = request
        r.authority = normalizeHost(host, table.hostNormalization)
        r.hasAuthority = true
        r.headers = request.headers.filter { $0.0 != ":authority" }
        return r
    }

    /// How a domain of a virtual host matches (Envoy's RouteMatcher maps).
    public enum DomainKind: Sendable, Hashable {
        case exact(String)
        /// `*.suffix` (the text after `*`).
        case suffix(String)
        /// `prefix.*` (the text before `*`).
        case prefix(String)
        case any
    }

    public static func domainKind(_ d: String) -> DomainKind {
        if d == "*" { return .any }
        if d.hasPrefix("*") { return .suffix(String(d.dropFirst())) }
        if d.hasSuffix("*") { return .prefix(String(d.dropLast())) }
        return .exact(d)
    }

    /// The host value virtual host selection looks at, or nil when there is none.
    public static func selectionHost(_ table: IRRouteTable, _ request: HTTPRequest) -> [UInt8]? {
        var value: [UInt8]
        if let vh = table.vhostHeader {
            guard let v = request.headerMap.first(vh) else { return nil }
            value = Array(v.utf8)
        } else {
            guard let a = request.headerMap.joined(":authority") else { return nil }
            value = Array(a.utf8)
        }
        return selectionHost(table, value: value)
    }

    /// The selection host of a host value (the authority or the `vhost_header`'s value).
    public static func selectionHost(_ table: IRRouteTable, value: [UInt8]) -> [UInt8] {
        var value = value
        if table.ignorePortInHostMatching, let p = portStart(value) { value = Array(value[..<p]) }
        return ASCII.lowered(value)
    }

    /// Envoy's virtual host order: exact domain, then `*.suffix` wildcards
    /// (longest suffix first), then `prefix.*` wildcards (longest first), then `*`.
    /// Case-insensitive (ASCII); the port is kept unless the table ignores it.
    public static func virtualHost(in table: IRRouteTable, request: HTTPRequest) -> IRVirtualHost? {
        virtualHostIndex(in: table, request: request).map { table.virtualHosts[$0] }
    }

    public static func virtualHostIndex(in table: IRRouteTable, request: HTTPRequest) -> Int? {
        DomainIndex(table).virtualHostIndex(in: table, request: request)
    }

    /// A table's domains by kind, built once: virtual host selection for many requests
    /// against one table (`xds2bpf diff` on tables of thousands of virtual hosts) costs
    /// a few hash lookups each instead of a pass over every domain.
    public struct DomainIndex: Sendable {
        var exact: [[UInt8]: Int] = [:]
        var suffixes: [[UInt8]: Int] = [:]
        var prefixes: [[UInt8]: Int] = [:]
        /// Distinct key lengths, longest first (Envoy tries the longest wildcard first).
        var suffixLengths: [Int] = []
        var prefixLengths: [Int] = []
        var fallback: Int?

        public init(_ table: IRRouteTable) {
            for (i, vh) in table.virtualHosts.enumerated() {
                for d in vh.domains {
                    // The first definition wins; duplicates were diagnosed by the lowering.
                    switch RouteSemantics.domainKind(d) {
                    case .any: if fallback == nil { fallback = i }
                    case .exact(let e): if exact[Array(e.utf8)] == nil { exact[Array(e.utf8)] = i }
                    case .suffix(let s): if suffixes[Array(s.utf8)] == nil { suffixes[Array(s.utf8)] = i }
                    case .prefix(let p): if prefixes[Array(p.utf8)] == nil { prefixes[Array(p.utf8)] = i }
                    }
                }
            }
            suffixLengths = Set(suffixes.keys.map(\.count)).sorted(by: >)
            prefixLengths = Set(prefixes.keys.map(\.count)).sorted(by: >)
        }

        /// The index of the virtual host `request` selects in `table` (the table this index was built from).
        public func virtualHostIndex(in table: IRRouteTable, request: HTTPRequest) -> Int? {
            // Fast path of Envoy: only a default virtual host, chosen even without a Host.
            if exact.isEmpty && suffixes.isEmpty && prefixes.isEmpty { return fallback }
            guard let host = RouteSemantics.selectionHost(table, request) else { return nil }
            return virtualHostIndex(selectionHost: host)
        }

        /// The same for a request whose selection host (`RouteSemantics.selectionHost`) is known.
        public func virtualHostIndex(selectionHost host: [UInt8]) -> Int? {
            if exact.isEmpty && suffixes.isEmpty && prefixes.isEmpty { return fallback }
            if let i = exact[host] { return i }
            // `>=`: "*.foo.com" does not match ".foo.com".
            for len in suffixLengths where len < host.count {
                if let i = suffixes[Array(host[(host.count - len)...])] { return i }
            }
            for len in prefixLengths where len < host.count {
                if let i = prefixes[Array(host[..<len])] { return i }
            }
            return fallback
        }
    }

    /// Kept for callers that have only an authority.
    public static func virtualHost(in table: IRRouteTable, authority: String) -> IRVirtualHost? {
        virtualHost(in: table, request: HTTPRequest(authority: authority))
    }

    // MARK: Paths and queries

    /// `Http::PathUtil::removeQueryAndFragment`.
    public static func removeQueryAndFragment(_ path: String) -> String {
        let b = Array(path.utf8)
        if let i = b.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            return String(decoding: b[..<i], as: UTF8.self)
        }
        return path
    }

    /// `QueryParamsMulti::parseQueryString`: from the first '?' to the end (a
    /// fragment included), split on '&', undecoded; empty pieces count.
    public static func parseQuery(_ path: String) -> [(String, String)] {
        let b = Array(path.utf8)
        guard let q = b.firstIndex(of: UInt8(ascii: "?")) else { return [] }
        var out: [(String, String)] = []
        var start = q + 1
        while start < b.count {
            let end = b[start...].firstIndex(of: UInt8(ascii: "&")) ?? b.count
            let param = b[start..<end]
            if let eq = param.firstIndex(of: UInt8(ascii: "=")) {
                out.append((String(decoding: b[start..<eq], as: UTF8.self), String(decoding: b[(eq + 1)..<end], as: UTF8.self)))
            } else {
                out.append((String(decoding: param, as: UTF8.self), ""))
            }
            start = end + 1
        }
        return out
    }

    /// The path route matchers look at: without query and fragment, and without
    /// `;parameters` when the table ignores them.
    public static func matchPath(_ request: HTTPRequest, _ table: IRRouteTable?) -> [UInt8] {
        var p = Array(removeQueryAndFragment(request.path).utf8)
        if table?.ignorePathParameters == true, let semi = p.firstIndex(of: UInt8(ascii: ";")) {
            p = Array(p[..<semi])
        }
        return p
    }

    // MARK: String matchers

    /// Envoy's StringMatcher on bytes: `ignore_case` folds ASCII only.
    public static func matches(_ s: IRStringMatch, _ value: [UInt8], ignoreCase: Bool) -> Bool {
        func c(_ x: String) -> [UInt8] { ignoreCase ? ASCII.lowered(Array(x.utf8)) : Array(x.utf8) }
        let v = ignoreCase ? ASCII.lowered(value) : value
        switch s {
        case .exact(let x): return v == c(x)
        case .prefix(let x): return v.starts(with: c(x))
        case .suffix(let x):
            let t = c(x)
            return v.count >= t.count && Array(v[(v.count - t.count)...]) == t
        case .contains(let x):
            let t = c(x)
            if t.isEmpty { return true }
            guard v.count >= t.count else { return false }
            for i in 0...(v.count - t.count) where Array(v[i..<(i + t.count)]) == t { return true }
            return false
        case .regex(let r): return RegexCache.fullMatch(r, value)
        }
    }

    public static func matches(_ s: IRStringMatch, _ value: String, ignoreCase: Bool) -> Bool {
        matches(s, Array(value.utf8), ignoreCase: ignoreCase)
    }

    // MARK: Header matchers

    /// `HeaderUtility::matchHeaders` for one matcher. A header Envoy's header map keeps inline
    /// (`HTTPHeaderMap.inlineHeaders`) holds its repeated lines as one value joined with ","; any
    /// other header has an entry per line, and the matcher matches when one of them does
    /// (inverted: when none does), as a real Envoy 1.40 answers.
    public static func matches(_ h: IRHeaderMatch, _ headers: HTTPHeaderMap) -> Bool {
        let values = HTTPHeaderMap.isInline(h.name) ? (headers.joined(h.name).map { [$0] } ?? []) : headers.values(h.name)
        if values.isEmpty && !h.treatMissingAsEmpty {
            // A missing header matches only a presence test that asks for absence
            // (or, inverted, for presence); every value matcher fails, inverted or not.
            if case .present(let p) = h.kind { return h.invert ? p : !p }
            return false
        }
        let result = (values.isEmpty ? [""] : values).contains { value in
            let v = Array(value.utf8)
            switch h.kind {
            case .present(let p): return p
            case .anyValue: return true
            case .string(let s, let ignoreCase): return matches(s, v, ignoreCase: ignoreCase)
            case .range(let lo, let hi):
                if let n = simpleAtoi(v[...]) { return n >= lo && n < hi }
                return false
            }
        }
        return result != h.invert
    }

    public static func matches(_ h: IRHeaderMatch, _ request: HTTPRequest) -> Bool {
        matches(h, request.headerMap)
    }

    /// gRPC requests: content-type "application/grpc" or "application/grpc+...".
    static func isGRPC(_ headers: HTTPHeaderMap) -> Bool {
        guard headers.contains(":path"), let ct = headers.joined("content-type") else { return false }
        let b = Array(ct.utf8), g = Array("application/grpc".utf8)
        return b.starts(with: g) && (b.count == g.count || b[g.count] == UInt8(ascii: "+"))
    }

    // MARK: Dynamic metadata

    static func metadataValue(_ md: [String: MetadataValue], filter: String, path: [String]) -> MetadataValue? {
        guard var cur = md[filter] else { return nil }
        for key in path {
            guard case .object(let o) = cur, let next = o[key] else { return nil }
            cur = next
        }
        return cur
    }

    static func matches(_ m: IRValueMatch, _ v: MetadataValue?) -> Bool {
        switch m {
        case .null: if case .null? = v { return true } else { return false }
        case .bool(let b): if case .bool(let x)? = v { return x == b } else { return false }
        case .present(let p): return p && v != nil
        case .string(let s, let ic): if case .string(let x)? = v { return matches(s, x, ignoreCase: ic) } else { return false }
        case .doubleExact(let d): if case .number(let x)? = v { return x == d } else { return false }
        case .doubleRange(let lo, let hi): if case .number(let x)? = v { return lo <= x && x < hi } else { return false }
        case .list(let one):
            guard case .list(let xs)? = v else { return false }
            return xs.contains { matches(one, $0) }
        case .or(let ms): return ms.contains { matches($0, v) }
        }
    }

    public static func matches(_ m: IRMetadataMatch, _ md: [String: MetadataValue]) -> Bool {
        matches(m.value, metadataValue(md, filter: m.filter, path: m.path)) != m.invert
    }

    // MARK: Routes

    /// Whether a route's match applies (`RouteEntryImplBase::matchRoute` and the
    /// path matcher). `random` drives runtime_fraction.
    public static func matches(
        _ m: IRRouteMatch, _ request: HTTPRequest, random: UInt64,
        runtime: RuntimeMode = .defaults, table: IRRouteTable? = nil
    ) -> Bool {
        if let f = m.runtimeFraction, !runtime.enabled(f, random: random) { return false }
        let headers = request.headerMap
        if m.grpcOnly, !isGRPC(headers) { return false }
        for h in m.headers where !matches(h, headers) { return false }
        if !m.queryParameters.isEmpty {
            let params = request.queryParameters
            for q in m.queryParameters {
                // The first value of a repeated parameter decides.
                guard let value = params.first(where: { $0.0 == q.name })?.1 else { return false }
                if let s = q.value, !matches(s, Array(value.utf8), ignoreCase: q.ignoreCase) { return false }
            }
        }
        for d in m.dynamicMetadata where !matches(d, request.dynamicMetadata) { return false }
        let path = matchPath(request, table)
        let ic = !m.caseSensitive
        switch m.path {
        case .prefix(let p): return matches(.prefix(p), path, ignoreCase: ic)
        case .exact(let p): return matches(.exact(p), path, ignoreCase: ic)
        case .separatedPrefix(let p):
            let pb = Array(p.utf8)
            return path.count >= pb.count && matches(.prefix(p), path, ignoreCase: ic)
                && (path.count == pb.count || path[pb.count] == UInt8(ascii: "/"))
        case .regex(let r): return RegexCache.fullMatch(r, path)
        }
    }

    public enum Outcome: Sendable, Hashable {
        case noVirtualHost
        /// The virtual host requires TLS and the request is not HTTPS: Envoy answers
        /// with a redirect to https (no route is consulted).
        case tlsRedirect
        case noRoute
        case route(Int)
    }

    public struct Decision: Sendable {
        public var virtualHost: IRVirtualHost?
        public var virtualHostIndex: Int?
        public var route: IRRoute?
        public var routeIndex: Int?
        /// The cluster a forwarding route picked (weighted choice resolved with
        /// `random`; for cluster_header the header's first value, "" if absent).
        public var cluster: String?
        public var outcome: Outcome = .noVirtualHost

        public init(
            virtualHost: IRVirtualHost? = nil, virtualHostIndex: Int? = nil, route: IRRoute? = nil, routeIndex: Int? = nil,
            cluster: String? = nil, outcome: Outcome = .noVirtualHost
        ) {
            self.virtualHost = virtualHost
            self.virtualHostIndex = virtualHostIndex
            self.route = route
            self.routeIndex = routeIndex
            self.cluster = cluster
            self.outcome = outcome
        }
    }

    /// The request's scheme as routing sees it: `x-forwarded-proto`.
    static func forwardedProto(_ request: HTTPRequest) -> String {
        request.header("x-forwarded-proto") ?? request.scheme
    }

    /// Whether `table` gives every request it routes the same decision: one
    /// virtual host that takes every host (`*`), no `require_tls`, and a first
    /// route that matches every path with no other condition and forwards. Only
    /// then may a request head the kernel cannot read whole take the listener's
    /// L4 fallback (X2B_HT_UNIFORM); otherwise the part it cannot see might lead
    /// to a route that denies the request, so the kernel refuses it.
    public static func routesEveryRequestAlike(_ table: IRRouteTable) -> Bool {
        guard table.virtualHosts.count == 1, let vh = table.virtualHosts.first, vh.domains.contains("*"),
            vh.requireTLS == .none, let first = vh.routes.first
        else { return false }
        let m = first.match
        guard case .prefix(let p) = m.path, p.isEmpty || p == "/",
            m.headers.isEmpty, m.queryParameters.isEmpty, !m.grpcOnly, m.runtimeFraction == nil, m.dynamicMetadata.isEmpty
        else { return false }
        switch first.action {
        case .cluster, .weighted: return true
        default: return false
        }
    }

    /// `domains`: the table's `DomainIndex`, when the caller decides many requests against one table.
    public static func decide(
        _ table: IRRouteTable, _ request: HTTPRequest, random: UInt64,
        runtime: RuntimeMode = .defaults, domains: DomainIndex? = nil
    ) -> Decision {
        let request = normalized(request, table)
        guard let vi = (domains ?? DomainIndex(table)).virtualHostIndex(in: table, request: request) else {
            return Decision(outcome: .noVirtualHost)
        }
        let vh = table.virtualHosts[vi]
        var d = Decision(virtualHost: vh, virtualHostIndex: vi, outcome: .noRoute)
        let proto = forwardedProto(request)
        // Envoy routes nothing without a scheme (an empty x-forwarded-proto).
        if proto.isEmpty { return d }
        switch vh.requireTLS {
        case .all where proto != "https":
            d.outcome = .tlsRedirect
            return d
        case .externalOnly where proto != "https" && request.header("x-envoy-internal") != "true":
            d.outcome = .tlsRedirect
            return d
        default:
            break
        }
        for (i, r) in vh.routes.enumerated() where matches(r.match, request, random: random, runtime: runtime, table: table) {
            d.route = r
            d.routeIndex = i
            d.outcome = .route(i)
            switch r.action {
            case .cluster(let c): d.cluster = c
            case .clusterHeader(let h): d.cluster = request.headerMap.first(h) ?? ""
            case .weighted(let entries, let total): d.cluster = pickWeighted(entries, total: total, random: random)
            default: break
            }
            return d
        }
        return d
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
