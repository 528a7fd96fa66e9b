import SwiftProtobuf

/// Type URLs the lowering dispatches on (current Envoy selects an extension by
/// its `typed_config` type, not by filter name).
enum TypeURL {
    static let hcm = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    static let tcpProxy = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
    static let router = "envoy.extensions.filters.http.router.v3.Router"

    /// The message name of an `Any` type URL (`type.googleapis.com/x.y.Z` → `x.y.Z`).
    static func messageName(_ url: String) -> String {
        guard let slash = url.lastIndex(of: "/") else { return url }
        return String(url[url.index(after: slash)...])
    }
}

/// Names of listener filters that only inspect traffic and do not change where
/// a connection is sent (safe to ignore at connect time).
private let inspectingListenerFilters: Set<String> = [
    "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
    "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
    "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
    "envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol",
]

/// Lower: the resolved snapshot → MeshIR, reporting every reference that does not
/// resolve and every feature that cannot be honoured, with its resource path.
public struct Lowerer {
    public private(set) var diagnostics: [Diagnostic] = []
    private let snapshot: ResolvedSnapshot
    private var routeTables: [String: IRRouteTable] = [:]
    private var referencedClusters: [String: String] = [:] // name → first referencing path

    /// `--resolve NAME=IP`: addresses for host names in DNS clusters, which an
    /// offline compiler cannot look up itself.
    private let hostAddresses: [String: String]
    /// Set while lowering a cluster no listener or route uses.
    private var loweringUnreferenced = false

    public init(_ snapshot: ResolvedSnapshot, hostAddresses: [String: String] = [:]) {
        self.snapshot = snapshot
        self.hostAddresses = hostAddresses
    }

    public static func lower(_ snapshot: ResolvedSnapshot, hostAddresses: [String: String] = [:]) -> (MeshIR, [Diagnostic]) {
        var l = Lowerer(snapshot, hostAddresses: hostAddresses)
        let ir = l.run()
        return (ir, l.diagnostics)
    }

    mutating func run() -> MeshIR {
        var listeners: [IRListener] = []
        for l in snapshot.listeners {
            if let lowered = lowerListener(l) { listeners.append(lowered) }
        }
        // Route configurations only reached by name still get checked and lowered,
        // so `route-check` and `explain` work on RDS-only inputs.
        for name in snapshot.routeConfigurations.keys.sorted() where routeTables[name] == nil {
            let r = snapshot.routeConfigurations[name]!
            routeTables[name] = lowerRouteConfiguration(r.message, path: ResourcePath.routeConfiguration(name))
        }
        var clusters: [IRCluster] = []
        for name in snapshot.clusters.keys.sorted() {
            loweringUnreferenced = referencedClusters[name] == nil
            if let c = lowerCluster(snapshot.clusters[name]!) { clusters.append(c) }
        }
        loweringUnreferenced = false
        let known = Set(clusters.map(\.name))
        for (name, path) in referencedClusters.sorted(by: { $0.key < $1.key }) where !known.contains(name) {
            if snapshot.clusters[name] == nil {
                diagnostics.append(Diagnostic(.danglingCluster, .warning, path: path,
                                              "references unknown cluster \(ResourcePath.quoted(name)); connections routed there are refused (Envoy closes them or answers 503)"))
            }
        }
        listeners.sort { ($0.address, $0.port, $0.name) < ($1.address, $1.port, $1.name) }
        checkListenerConflicts(listeners)
        return MeshIR(listeners: listeners,
                      routeTables: routeTables.keys.sorted().map { routeTables[$0]! },
                      clusters: clusters)
    }

    // MARK: Listeners

    private mutating func lowerListener(_ r: XDSResource<Envoy_Config_Listener_V3_Listener>) -> IRListener? {
        let l = r.message
        let path = ResourcePath.listener(r.name)
        if l.trafficDirection == .inbound {
            diagnostics.append(Diagnostic(.inboundSkipped, path: path,
                                          "inbound listener skipped: connect-time routing applies to outbound connections"))
            return nil
        }
        if l.hasUseOriginalDst, l.useOriginalDst.value {
            diagnostics.append(Diagnostic(.inboundSkipped, path: path,
                                          "use_original_dst listener skipped: connect-time routing already matches the original destination"))
            return nil
        }
        if case .internalListener? = l.listenerSpecifier {
            diagnostics.append(Diagnostic(.unsupportedListener, .warning, path: path,
                                          "internal listener skipped: it has no socket address to match at connect time"))
            return nil
        }
        if l.hasApiListener {
            diagnostics.append(Diagnostic(.unsupportedListener, .warning, path: path, "api_listener skipped: not a socket listener"))
            return nil
        }
        guard let (address, port) = socketAddress(l.address, path: "\(path).address", what: "listener") else { return nil }
        if l.address.socketAddress.protocol == .udp {
            diagnostics.append(Diagnostic(.unsupportedListener, .warning, path: "\(path).address",
                                          "UDP listener skipped: only TCP connects are routed"))
            return nil
        }
        if l.hasFilterChainMatcher {
            diagnostics.append(Diagnostic(.unsupportedRouting, path: "\(path).filter_chain_matcher",
                                          "filter_chain_matcher (xDS matcher API) is not supported; use filter_chain_match"))
        }
        for (i, lf) in l.listenerFilters.enumerated() {
            let type = TypeURL.messageName(lf.typedConfig.typeURL)
            if !inspectingListenerFilters.contains(type) {
                diagnostics.append(Diagnostic(.notEnforced, path: "\(path).listener_filters[\(i)]",
                                              "listener filter \(lf.name.isEmpty ? type : lf.name) is not enforced at connect time"))
            }
        }
        if l.hasUdpListenerConfig {
            diagnostics.append(Diagnostic(.unsupportedListener, .warning, path: path, "UDP listener skipped"))
            return nil
        }
        var chains: [IRFilterChain] = []
        for (i, fc) in l.filterChains.enumerated() {
            if let c = lowerChain(fc, listener: r.name, path: "\(path).filter_chains[\(i)]") { chains.append(c) }
        }
        var defaultChain: IRFilterChain?
        if l.hasDefaultFilterChain {
            defaultChain = lowerChain(l.defaultFilterChain, listener: r.name, path: "\(path).default_filter_chain")
            defaultChain?.match = IRChainMatch()
        }
        checkChainConflicts(chains, path: path)
        return IRListener(name: r.name, path: path, address: address, port: port,
                          direction: l.trafficDirection == .outbound ? .outbound : .unspecified,
                          chains: chains, defaultChain: defaultChain)
    }

    private mutating func socketAddress(_ a: Envoy_Config_Core_V3_Address, path: String, what: String) -> (IRAddress, UInt16)? {
        switch a.address {
        case .socketAddress(let sa):
            guard let ip = IRAddress(parsing: sa.address) ?? hostAddresses[sa.address].flatMap(IRAddress.init(parsing:)) else {
                if loweringUnreferenced {
                    diagnostics.append(Diagnostic(.invalidAddress, .note, path: path,
                                                  "\(what) address \(ResourcePath.quoted(sa.address)) is a host name; the cluster is not routed to by any listener, so it is left out"))
                } else {
                    diagnostics.append(Diagnostic(.invalidAddress, path: path,
                                                  "\(what) address \(ResourcePath.quoted(sa.address)) is a host name, resolved only at run time; give its address with --resolve \(sa.address)=IP"))
                }
                return nil
            }
            switch sa.portSpecifier {
            case .portValue(let p)?:
                guard p > 0, p <= 65535 else {
                    diagnostics.append(Diagnostic(.invalidPort, path: path, "\(what) port \(p) is out of range 1-65535"))
                    return nil
                }
                return (ip, UInt16(p))
            case .namedPort(let n)?:
                diagnostics.append(Diagnostic(.invalidPort, path: path, "named port \(ResourcePath.quoted(n)) is not supported"))
                return nil
            case nil:
                diagnostics.append(Diagnostic(.invalidPort, path: path, "\(what) address has no port"))
                return nil
            }
        case .pipe?:
            diagnostics.append(Diagnostic(.unsupportedListener, .warning, path: path, "\(what) on a unix socket (pipe) skipped: not routed at TCP connect"))
            return nil
        case .envoyInternalAddress?:
            diagnostics.append(Diagnostic(.unsupportedListener, .warning, path: path, "\(what) on an envoy internal address skipped"))
            return nil
        default:
            diagnostics.append(Diagnostic(.invalidAddress, path: path, "\(what) has no address"))
            return nil
        }
    }

    private mutating func lowerChainMatch(_ m: Envoy_Config_Listener_V3_FilterChainMatch, path: String) -> IRChainMatch? {
        var out = IRChainMatch()
        if m.hasDestinationPort {
            let p = m.destinationPort.value
            guard p > 0, p <= 65535 else {
                diagnostics.append(Diagnostic(.invalidPort, path: "\(path).destination_port", "destination_port \(p) is out of range"))
                return nil
            }
            out.destinationPort = UInt16(p)
        }
        for (i, cidr) in m.prefixRanges.enumerated() {
            guard let c = lowerCidr(cidr, path: "\(path).prefix_ranges[\(i)]") else { return nil }
            out.prefixRanges.append(c)
        }
        out.transportProtocol = m.transportProtocol
        out.serverNames = m.serverNames
        out.applicationProtocols = m.applicationProtocols
        var undecidable: [String] = []
        if !m.serverNames.isEmpty { undecidable.append("server_names (SNI)") }
        if m.transportProtocol == "tls" { undecidable.append("transport_protocol \"tls\"") }
        // Chains for plaintext HTTP detected by http_inspector (Istio's HTTP chains) are taken
        // to match: a client connecting to an HTTP listener speaks HTTP. Other ALPN values
        // (istio-peer-exchange, h2 over TLS) need the bytes.
        let httpProtocols: Set<String> = ["http/1.0", "http/1.1", "h2c"]
        if !m.applicationProtocols.isEmpty, !m.applicationProtocols.contains(where: httpProtocols.contains) {
            undecidable.append("application_protocols")
        }
        if !m.sourcePrefixRanges.isEmpty { undecidable.append("source_prefix_ranges") }
        if !m.directSourcePrefixRanges.isEmpty { undecidable.append("direct_source_prefix_ranges") }
        if !m.sourcePorts.isEmpty { undecidable.append("source_ports") }
        if m.sourceType != .any { undecidable.append("source_type") }
        if !undecidable.isEmpty {
            diagnostics.append(Diagnostic(.unsupportedRouting, path: path,
                                          "filter chain match on \(undecidable.joined(separator: ", ")) cannot be decided at connect time; the chain never matches"))
            return nil
        }
        return out
    }

    private mutating func lowerCidr(_ c: Envoy_Config_Core_V3_CidrRange, path: String) -> IRCidr? {
        guard let a = IRAddress(parsing: c.addressPrefix) else {
            diagnostics.append(Diagnostic(.invalidAddress, path: path, "address_prefix \(ResourcePath.quoted(c.addressPrefix)) is not an IP address"))
            return nil
        }
        let maxLen = a.family == .inet4 ? 32 : 128
        let len = c.hasPrefixLen ? Int(c.prefixLen.value) : 0
        guard len <= maxLen else {
            diagnostics.append(Diagnostic(.invalidAddress, path: path, "prefix_len \(len) exceeds \(maxLen)"))
            return nil
        }
        return IRCidr(address: a, prefixLength: len)
    }

    private mutating func lowerChain(_ fc: Envoy_Config_Listener_V3_FilterChain, listener: String, path: String) -> IRFilterChain? {
        var match = IRChainMatch()
        if fc.hasFilterChainMatch {
            guard let m = lowerChainMatch(fc.filterChainMatch, path: "\(path).filter_chain_match") else { return nil }
            match = m
        }
        if fc.hasTransportSocket {
            diagnostics.append(Diagnostic(.notEnforced, path: "\(path).transport_socket",
                                          "downstream transport socket (TLS termination) is not enforced: the kernel redirects the connection unchanged"))
        }
        var action: IRChainAction?
        var ignored: [String] = []
        for (i, f) in fc.filters.enumerated() {
            let fpath = "\(path).filters[\(i)]"
            let type = TypeURL.messageName(f.typedConfig.typeURL)
            if type == TypeURL.tcpProxy || (type.isEmpty && (f.name == "envoy.filters.network.tcp_proxy" || f.name == "envoy.tcp_proxy")) {
                guard !type.isEmpty else {
                    diagnostics.append(Diagnostic(.invalidResource, path: fpath, "tcp_proxy filter has no typed_config"))
                    return nil
                }
                do {
                    let tp = try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: f.typedConfig)
                    action = lowerTcpProxy(tp, path: fpath)
                } catch {
                    diagnostics.append(Diagnostic(.invalidResource, path: fpath, "tcp_proxy typed_config does not decode: \(error)"))
                    return nil
                }
                break
            } else if type == TypeURL.hcm || (type.isEmpty && (f.name == "envoy.filters.network.http_connection_manager" || f.name == "envoy.http_connection_manager")) {
                guard !type.isEmpty else {
                    diagnostics.append(Diagnostic(.invalidResource, path: fpath, "http_connection_manager filter has no typed_config"))
                    return nil
                }
                do {
                    let hcm = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: f.typedConfig)
                    guard let table = lowerHCM(hcm, listener: listener, path: fpath) else { return nil }
                    action = .http(routeTable: table)
                } catch {
                    diagnostics.append(Diagnostic(.invalidResource, path: fpath, "http_connection_manager typed_config does not decode: \(error)"))
                    return nil
                }
                break
            } else {
                ignored.append(f.name.isEmpty ? type : f.name)
            }
        }
        if !ignored.isEmpty {
            diagnostics.append(Diagnostic(action == nil ? .unsupportedFilter : .notEnforced, path: path,
                                          action == nil
                                            ? "no tcp_proxy or http_connection_manager filter (found \(ignored.joined(separator: ", "))); the chain cannot be routed"
                                            : "network filters \(ignored.joined(separator: ", ")) are not enforced in the kernel"))
        }
        guard let action else {
            if fc.filters.isEmpty {
                diagnostics.append(Diagnostic(.unsupportedFilter, path: path, "filter chain has no filters"))
            }
            return nil
        }
        return IRFilterChain(name: fc.name, path: path, match: match, action: action)
    }

    private mutating func lowerTcpProxy(_ tp: Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy, path: String) -> IRChainAction? {
        var notEnforced: [String] = []
        if tp.hasIdleTimeout { notEnforced.append("idle_timeout") }
        if tp.hasMaxConnectAttempts { notEnforced.append("max_connect_attempts") }
        if !tp.hashPolicy.isEmpty { notEnforced.append("hash_policy (ring hash and maglev hash a random key at connect time)") }
        if tp.hasTunnelingConfig {
            diagnostics.append(Diagnostic(.unsupportedRouting, path: path, "tcp_proxy tunneling_config (CONNECT tunnelling) is not supported"))
        }
        if !notEnforced.isEmpty {
            diagnostics.append(Diagnostic(.notEnforced, path: path, "tcp_proxy \(notEnforced.joined(separator: ", ")) not enforced in the kernel"))
        }
        switch tp.clusterSpecifier {
        case .cluster(let name)?:
            return referenceCluster(name, path: "\(path).cluster")
        case .weightedClusters(let wc)?:
            var entries: [IRWeightedCluster] = []
            for (i, c) in wc.clusters.enumerated() {
                guard case .cluster = referenceCluster(c.name, path: "\(path).weighted_clusters.clusters[\(i)]") else { continue }
                entries.append(IRWeightedCluster(cluster: c.name, weight: c.weight))
            }
            guard entries.contains(where: { $0.weight > 0 }) else {
                diagnostics.append(Diagnostic(.invalidResource, path: "\(path).weighted_clusters", "weighted clusters have no positive weight"))
                return nil
            }
            return .weighted(entries)
        default:
            diagnostics.append(Diagnostic(.invalidResource, path: path, "tcp_proxy has no cluster"))
            return nil
        }
    }

    private mutating func referenceCluster(_ name: String, path: String) -> IRChainAction {
        if referencedClusters[name] == nil { referencedClusters[name] = path }
        return .cluster(name)
    }

    private mutating func lowerHCM(_ hcm: Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager,
                                   listener: String, path: String) -> String? {
        var filters: [String] = []
        for f in hcm.httpFilters {
            let type = TypeURL.messageName(f.typedConfig.typeURL)
            if type == TypeURL.router || f.name == "envoy.filters.http.router" || f.name == "envoy.router" { continue }
            filters.append(f.name.isEmpty ? type : f.name)
        }
        if !filters.isEmpty {
            diagnostics.append(Diagnostic(.notEnforced, path: "\(path).http_filters",
                                          "HTTP filters \(filters.joined(separator: ", ")) are not enforced in the kernel"))
        }
        switch hcm.routeSpecifier {
        case .rds(let rds)?:
            let name = rds.routeConfigName
            guard let rc = snapshot.routeConfigurations[name] else {
                diagnostics.append(Diagnostic(.danglingRoute, path: "\(path).rds",
                                              "references unknown route configuration \(ResourcePath.quoted(name))"))
                return nil
            }
            if routeTables[name] == nil {
                routeTables[name] = lowerRouteConfiguration(rc.message, path: ResourcePath.routeConfiguration(name))
            }
            return name
        case .routeConfig(let rc)?:
            let name = "\(listener)/\(path.split(separator: ".").dropFirst().joined(separator: "."))"
            routeTables[name] = lowerRouteConfiguration(rc, path: "\(path).route_config")
            return name
        case .scopedRoutes?:
            diagnostics.append(Diagnostic(.unsupportedRouting, path: "\(path).scoped_routes", "scoped routes (SRDS) are not supported"))
            return nil
        default:
            diagnostics.append(Diagnostic(.invalidResource, path: path, "http_connection_manager has neither rds nor route_config"))
            return nil
        }
    }

    // MARK: Routes

    private mutating func lowerRouteConfiguration(_ rc: Envoy_Config_Route_V3_RouteConfiguration, path: String) -> IRRouteTable {
        if rc.hasVhds {
            diagnostics.append(Diagnostic(.unsupportedRouting, path: "\(path).vhds", "virtual host discovery (VHDS) is not supported"))
        }
        var vhosts: [IRVirtualHost] = []
        var seenDomains: [String: String] = [:]
        for (i, vh) in rc.virtualHosts.enumerated() {
            let vpath = "\(path).virtual_hosts[\(i)]"
            var notEnforced: [String] = []
            if vh.requireTls != .none { notEnforced.append("require_tls") }
            if vh.hasRetryPolicy { notEnforced.append("retry_policy") }
            if !vh.rateLimits.isEmpty { notEnforced.append("rate_limits") }
            if !notEnforced.isEmpty {
                diagnostics.append(Diagnostic(.notEnforced, path: vpath, "virtual host \(notEnforced.joined(separator: ", ")) not enforced in the kernel"))
            }
            let domains = vh.domains.map { $0.lowercased() }
            for d in domains {
                if let other = seenDomains[d] {
                    diagnostics.append(Diagnostic(.duplicateName, path: vpath, "domain \(ResourcePath.quoted(d)) is also in \(other); Envoy rejects such a route configuration"))
                } else {
                    seenDomains[d] = vpath
                }
            }
            var routes: [IRRoute] = []
            for (j, r) in vh.routes.enumerated() {
                if let lowered = lowerRoute(r, path: "\(vpath).routes[\(j)]") { routes.append(lowered) }
            }
            vhosts.append(IRVirtualHost(name: vh.name, path: vpath, domains: domains, routes: routes))
        }
        return IRRouteTable(name: rc.name, path: path, virtualHosts: vhosts,
                            ignorePortInHostMatching: rc.ignorePortInHostMatching)
    }

    private mutating func lowerStringMatch(_ m: Envoy_Type_Matcher_V3_StringMatcher, path: String) -> IRStringMatch? {
        switch m.matchPattern {
        case .exact(let s)?: return .exact(s)
        case .prefix(let s)?: return .prefix(s)
        case .suffix(let s)?: return .suffix(s)
        case .contains(let s)?: return .contains(s)
        case .safeRegex(let r)?: return .regex(r.regex)
        default:
            diagnostics.append(Diagnostic(.unsupportedMatcher, path: path, "string matcher without a supported pattern (custom matchers are not supported)"))
            return nil
        }
    }

    private mutating func lowerRoute(_ r: Envoy_Config_Route_V3_Route, path: String) -> IRRoute? {
        let m = r.match
        let mpath = "\(path).match"
        var match: IRRouteMatch
        switch m.pathSpecifier {
        case .prefix(let p)?: match = IRRouteMatch(path: .prefix(p))
        case .path(let p)?: match = IRRouteMatch(path: .exact(p))
        case .safeRegex(let re)?: match = IRRouteMatch(path: .regex(re.regex))
        case .pathSeparatedPrefix(let p)?: match = IRRouteMatch(path: .separatedPrefix(p))
        case .connectMatcher?:
            diagnostics.append(Diagnostic(.unsupportedMatcher, path: mpath, "connect_matcher (HTTP CONNECT) is not supported"))
            return nil
        case .pathMatchPolicy?:
            diagnostics.append(Diagnostic(.unsupportedMatcher, path: mpath, "path_match_policy (URI template) is not supported"))
            return nil
        default:
            diagnostics.append(Diagnostic(.invalidResource, path: mpath, "route match has no path specifier"))
            return nil
        }
        if m.hasCaseSensitive { match.caseSensitive = m.caseSensitive.value }
        for (i, h) in m.headers.enumerated() {
            guard let hm = lowerHeaderMatcher(h, path: "\(mpath).headers[\(i)]") else { return nil }
            match.headers.append(hm)
        }
        for (i, q) in m.queryParameters.enumerated() {
            let qpath = "\(mpath).query_parameters[\(i)]"
            switch q.queryParameterMatchSpecifier {
            case .stringMatch(let sm)?:
                guard let s = lowerStringMatch(sm, path: qpath) else { return nil }
                match.queryParameters.append(IRQueryMatch(name: q.name, value: s, ignoreCase: sm.ignoreCase))
            case .presentMatch(let present)?:
                if !present {
                    diagnostics.append(Diagnostic(.unsupportedMatcher, path: qpath, "present_match: false is not supported"))
                    return nil
                }
                match.queryParameters.append(IRQueryMatch(name: q.name, value: nil, ignoreCase: false))
            default:
                match.queryParameters.append(IRQueryMatch(name: q.name, value: nil, ignoreCase: false))
            }
        }
        if m.hasGrpc { match.grpcOnly = true }
        if m.hasRuntimeFraction {
            let d = m.runtimeFraction.defaultValue
            let denominator: UInt32 = switch d.denominator {
            case .hundred: 100
            case .tenThousand: 10_000
            case .million: 1_000_000
            default: 100
            }
            match.runtimeFraction = IRFraction(numerator: d.numerator, denominator: denominator)
        }
        if m.hasTlsContext {
            diagnostics.append(Diagnostic(.unsupportedMatcher, path: "\(mpath).tls_context", "tls_context match is not supported"))
            return nil
        }
        if !m.dynamicMetadata.isEmpty {
            diagnostics.append(Diagnostic(.unsupportedMatcher, path: "\(mpath).dynamic_metadata", "dynamic_metadata match is not supported"))
            return nil
        }
        var notes = IRRouteNotes()
        let action: IRRouteAction
        switch r.action {
        case .route(let ra)?:
            guard let a = lowerRouteAction(ra, path: "\(path).route", notes: &notes) else { return nil }
            action = a
        case .redirect(let rd)?:
            var out = IRRedirect()
            switch rd.schemeRewriteSpecifier {
            case .httpsRedirect(let https)?: if https { out.scheme = "https" }
            case .schemeRedirect(let s)?: out.scheme = s
            default: break
            }
            if !rd.hostRedirect.isEmpty { out.host = rd.hostRedirect }
            if rd.portRedirect != 0 { out.port = rd.portRedirect }
            switch rd.pathRewriteSpecifier {
            case .pathRedirect(let p)?: out.path = p
            case .prefixRewrite(let p)?: out.prefixRewrite = p
            case .regexRewrite?:
                diagnostics.append(Diagnostic(.notEnforced, path: "\(path).redirect.regex_rewrite", "redirect regex_rewrite is recorded but not applied"))
            default: break
            }
            out.responseCode = switch rd.responseCode {
            case .movedPermanently: 301
            case .found: 302
            case .seeOther: 303
            case .temporaryRedirect: 307
            case .permanentRedirect: 308
            default: 301
            }
            out.stripQuery = rd.stripQuery
            action = .redirect(out)
        case .directResponse(let dr)?:
            var body: String?
            if dr.hasBody {
                switch dr.body.specifier {
                case .inlineString(let s)?: body = s
                case .inlineBytes(let b)?: body = String(decoding: b, as: UTF8.self)
                default: body = nil
                }
            }
            action = .directResponse(status: dr.status, body: body)
        case .nonForwardingAction?:
            action = .nonForwarding
        default:
            diagnostics.append(Diagnostic(.unsupportedRouting, path: path, "route without route, redirect or direct_response action is not supported"))
            return nil
        }
        return IRRoute(name: r.name, path: path, match: match, action: action, notes: notes)
    }

    private mutating func lowerHeaderMatcher(_ h: Envoy_Config_Route_V3_HeaderMatcher, path: String) -> IRHeaderMatch? {
        let name = h.name.lowercased()
        let kind: IRHeaderMatch.Kind
        switch h.headerMatchSpecifier {
        case .exactMatch(let s)?: kind = .string(.exact(s), ignoreCase: false)
        case .safeRegexMatch(let r)?: kind = .string(.regex(r.regex), ignoreCase: false)
        case .rangeMatch(let r)?: kind = .range(start: r.start, end: r.end)
        case .presentMatch(let p)?: kind = .present(p)
        case .prefixMatch(let s)?: kind = .string(.prefix(s), ignoreCase: false)
        case .suffixMatch(let s)?: kind = .string(.suffix(s), ignoreCase: false)
        case .containsMatch(let s)?: kind = .string(.contains(s), ignoreCase: false)
        case .stringMatch(let sm)?:
            guard let s = lowerStringMatch(sm, path: "\(path).string_match") else { return nil }
            kind = .string(s, ignoreCase: sm.ignoreCase)
        default:
            // No specifier: Envoy treats it as a presence match.
            kind = .present(true)
        }
        return IRHeaderMatch(name: name, kind: kind, invert: h.invertMatch, treatMissingAsEmpty: h.treatMissingHeaderAsEmpty)
    }

    private mutating func lowerRouteAction(_ ra: Envoy_Config_Route_V3_RouteAction, path: String, notes: inout IRRouteNotes) -> IRRouteAction? {
        var notEnforced: [String] = []
        if ra.hasTimeout { notes.timeout = Self.durationText(ra.timeout); notEnforced.append("timeout") }
        if ra.hasIdleTimeout { notEnforced.append("idle_timeout") }
        if ra.hasRetryPolicy {
            notes.retries = "\(ra.retryPolicy.retryOn) x\(ra.retryPolicy.hasNumRetries ? ra.retryPolicy.numRetries.value : 1)"
            notEnforced.append("retry_policy")
        }
        if !ra.prefixRewrite.isEmpty { notes.prefixRewrite = ra.prefixRewrite; notEnforced.append("prefix_rewrite") }
        if ra.hasRegexRewrite { notes.other.append("regex_rewrite"); notEnforced.append("regex_rewrite") }
        switch ra.hostRewriteSpecifier {
        case .hostRewriteLiteral(let h)?: notes.hostRewrite = h; notEnforced.append("host_rewrite_literal")
        case .autoHostRewrite?: notes.other.append("auto_host_rewrite"); notEnforced.append("auto_host_rewrite")
        case .hostRewriteHeader(let h)?: notes.other.append("host_rewrite_header \(h)"); notEnforced.append("host_rewrite_header")
        case .hostRewritePathRegex?: notes.other.append("host_rewrite_path_regex"); notEnforced.append("host_rewrite_path_regex")
        default: break
        }
        if !ra.requestMirrorPolicies.isEmpty { notes.other.append("request_mirror_policies"); notEnforced.append("request_mirror_policies") }
        if !ra.hashPolicy.isEmpty { notes.other.append("hash_policy"); notEnforced.append("hash_policy") }
        if !notEnforced.isEmpty {
            diagnostics.append(Diagnostic(.notEnforced, path: path, "route \(notEnforced.joined(separator: ", ")) not enforced in the kernel"))
        }
        switch ra.clusterSpecifier {
        case .cluster(let name)?:
            _ = referenceCluster(name, path: "\(path).cluster")
            return .cluster(name)
        case .clusterHeader(let h)?:
            return .clusterHeader(h.lowercased())
        case .weightedClusters(let wc)?:
            var entries: [IRWeightedCluster] = []
            for (i, c) in wc.clusters.enumerated() {
                let cpath = "\(path).weighted_clusters.clusters[\(i)]"
                if !c.clusterHeader.isEmpty {
                    diagnostics.append(Diagnostic(.unsupportedRouting, path: cpath, "weighted cluster_header is not supported"))
                    return nil
                }
                _ = referenceCluster(c.name, path: cpath)
                entries.append(IRWeightedCluster(cluster: c.name, weight: c.hasWeight ? c.weight.value : 0))
            }
            let sum = entries.reduce(UInt64(0)) { $0 + UInt64($1.weight) }
            let total = wc.hasTotalWeight ? UInt64(wc.totalWeight.value) : sum
            guard sum > 0, sum <= UInt64(UInt32.max) else {
                diagnostics.append(Diagnostic(.invalidResource, path: "\(path).weighted_clusters", "weighted clusters must have a positive total weight"))
                return nil
            }
            if wc.hasTotalWeight, total != sum {
                diagnostics.append(Diagnostic(.invalidResource, path: "\(path).weighted_clusters.total_weight",
                                              "total_weight \(total) differs from the sum of weights \(sum); Envoy rejects this"))
                return nil
            }
            return .weighted(entries, total: UInt32(sum))
        default:
            diagnostics.append(Diagnostic(.unsupportedRouting, path: path, "route action without cluster, cluster_header or weighted_clusters (cluster specifier plugins are not supported)"))
            return nil
        }
    }

    static func durationText(_ d: Google_Protobuf_Duration) -> String {
        if d.nanos == 0 { return "\(d.seconds)s" }
        let ms = d.seconds * 1000 + Int64(d.nanos / 1_000_000)
        return "\(ms)ms"
    }

    // MARK: Clusters

    private mutating func lowerCluster(_ r: XDSResource<Envoy_Config_Cluster_V3_Cluster>) -> IRCluster? {
        let c = r.message
        let path = ResourcePath.cluster(r.name)
        var lb: IRLBPolicy = .roundRobin
        switch c.lbPolicy {
        case .roundRobin: lb = .roundRobin
        case .leastRequest: lb = .leastRequest
        case .ringHash: lb = .ringHash
        case .random: lb = .random
        case .maglev: lb = .maglev
        case .clusterProvided:
            if c.type != .originalDst {
                diagnostics.append(Diagnostic(.unsupportedCluster, path: "\(path).lb_policy",
                                              "CLUSTER_PROVIDED load balancing is not supported; with --unsupported=warn the cluster uses round robin"))
            }
        case .loadBalancingPolicyConfig:
            break
        default:
            diagnostics.append(Diagnostic(.unsupportedCluster, path: "\(path).lb_policy", "unknown lb_policy \(c.lbPolicy.rawValue)"))
            return nil
        }
        var localityWeighted = false
        if case .localityWeightedLbConfig? = c.commonLbConfig.localityConfigSpecifier { localityWeighted = true }
        if c.hasLoadBalancingPolicy {
            guard let (policy, locality) = typedLBPolicy(c.loadBalancingPolicy, path: "\(path).load_balancing_policy") else { return nil }
            lb = policy
            localityWeighted = localityWeighted || locality
        }
        if case .zoneAwareLbConfig? = c.commonLbConfig.localityConfigSpecifier {
            diagnostics.append(Diagnostic(.notEnforced, path: "\(path).common_lb_config", "zone aware routing is not enforced"))
        }
        var notEnforced: [String] = []
        if c.hasCircuitBreakers { notEnforced.append("circuit_breakers") }
        if c.hasOutlierDetection { notEnforced.append("outlier_detection") }
        if !c.healthChecks.isEmpty { notEnforced.append("active health_checks (the snapshot's health_status is used)") }
        if c.hasTransportSocket || !c.transportSocketMatches.isEmpty { notEnforced.append("upstream transport socket (TLS origination)") }
        if !notEnforced.isEmpty {
            diagnostics.append(Diagnostic(.notEnforced, path: path, "cluster \(notEnforced.joined(separator: ", ")) not enforced in the kernel"))
        }
        var cla: Envoy_Config_Endpoint_V3_ClusterLoadAssignment?
        var claPath = "\(path).load_assignment"
        switch c.clusterDiscoveryType {
        case .type(let t)?:
            switch t {
            case .static, .strictDns, .logicalDns:
                if c.hasLoadAssignment { cla = c.loadAssignment }
            case .eds:
                let service = c.edsClusterConfig.serviceName.isEmpty ? r.name : c.edsClusterConfig.serviceName
                if let found = snapshot.loadAssignments[service] {
                    cla = found.message
                    claPath = ResourcePath.loadAssignment(service)
                } else if c.hasLoadAssignment {
                    cla = c.loadAssignment
                } else {
                    diagnostics.append(Diagnostic(.missingEndpoints, .warning, path: path,
                                                  "EDS cluster has no ClusterLoadAssignment \(ResourcePath.quoted(service)) in the snapshot; it has no endpoints"))
                }
            case .originalDst:
                return IRCluster(name: r.name, path: path, lb: lb, priorities: [])
                    .withOriginalDestination()
            default:
                diagnostics.append(Diagnostic(.unsupportedCluster, path: "\(path).type", "cluster discovery type \(t.rawValue) is not supported"))
                return nil
            }
        case .clusterType(let ct)? where ct.name == "envoy.cluster.dns" || ct.name == "envoy.cluster.strict_dns" || ct.name == "envoy.cluster.logical_dns":
            // The DNS cluster extension: endpoints are names (see --resolve) or addresses.
            if c.hasLoadAssignment { cla = c.loadAssignment }
        case .clusterType(let ct)?:
            diagnostics.append(Diagnostic(.unsupportedCluster, path: "\(path).cluster_type", "custom cluster type \(ct.name) is not supported"))
            return nil
        case nil:
            if c.hasLoadAssignment { cla = c.loadAssignment }
        }
        var out = IRCluster(name: r.name, path: path, lb: lb, localityWeighted: localityWeighted, priorities: [])
        switch c.lbConfig {
        case .ringHashLbConfig(let rh)?:
            if rh.hasMinimumRingSize { out.ringMinimumSize = rh.minimumRingSize.value }
            if rh.hasMaximumRingSize { out.ringMaximumSize = rh.maximumRingSize.value }
        case .maglevLbConfig(let m)?:
            if m.hasTableSize { out.maglevTableSize = m.tableSize.value }
        default:
            break
        }
        if let cla {
            if cla.hasPolicy, cla.policy.hasOverprovisioningFactor {
                out.overprovisioningFactor = cla.policy.overprovisioningFactor.value
            }
            out.priorities = lowerEndpoints(cla, path: claPath)
        }
        return out
    }

    private mutating func typedLBPolicy(_ p: Envoy_Config_Cluster_V3_LoadBalancingPolicy, path: String) -> (IRLBPolicy, Bool)? {
        // Envoy uses the first policy in the list it supports.
        for pol in p.policies {
            let type = TypeURL.messageName(pol.typedExtensionConfig.typedConfig.typeURL)
            switch type {
            case "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin": return (.roundRobin, false)
            case "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest": return (.leastRequest, false)
            case "envoy.extensions.load_balancing_policies.random.v3.Random": return (.random, false)
            case "envoy.extensions.load_balancing_policies.maglev.v3.Maglev": return (.maglev, false)
            case "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash": return (.ringHash, false)
            case "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality":
                // Locality-weighted round robin: locality weights apply, endpoints picked by the inner policy (RR here).
                return (.roundRobin, true)
            default:
                continue
            }
        }
        diagnostics.append(Diagnostic(.unsupportedCluster, path: path,
                                      "no supported policy in load_balancing_policy (\(p.policies.map { $0.typedExtensionConfig.name }.joined(separator: ", "))); with --unsupported=warn the cluster uses round robin"))
        return (.roundRobin, false)
    }

    private mutating func lowerEndpoints(_ cla: Envoy_Config_Endpoint_V3_ClusterLoadAssignment, path: String) -> [IRPriority] {
        var byLevel: [UInt32: [IRLocality]] = [:]
        for (i, lle) in cla.endpoints.enumerated() {
            let lpath = "\(path).endpoints[\(i)]"
            var eps: [IREndpoint] = []
            for (j, le) in lle.lbEndpoints.enumerated() {
                let epath = "\(lpath).lb_endpoints[\(j)]"
                guard case .endpoint(let e)? = le.hostIdentifier else {
                    diagnostics.append(Diagnostic(.unsupportedCluster, path: epath, "endpoint by endpoint_name (named endpoints) is not supported"))
                    continue
                }
                guard let (ip, port) = socketAddress(e.address, path: "\(epath).endpoint.address", what: "endpoint") else { continue }
                let weight = le.hasLoadBalancingWeight ? le.loadBalancingWeight.value : 1
                if weight == 0 {
                    diagnostics.append(Diagnostic(.invalidResource, path: "\(epath).load_balancing_weight", "endpoint weight must be at least 1"))
                    continue
                }
                let health: IRHealth = switch le.healthStatus {
                case .healthy: .healthy
                case .unhealthy: .unhealthy
                case .draining: .draining
                case .timeout: .timeout
                case .degraded: .degraded
                default: .unknown
                }
                eps.append(IREndpoint(address: ip, port: port, weight: weight, health: health))
            }
            let loc = IRLocality(region: lle.locality.region, zone: lle.locality.zone, subZone: lle.locality.subZone,
                                 weight: lle.hasLoadBalancingWeight ? lle.loadBalancingWeight.value : nil, endpoints: eps)
            byLevel[lle.priority, default: []].append(loc)
        }
        let levels = byLevel.keys.sorted()
        if let last = levels.last, last + 1 != UInt32(levels.count) {
            diagnostics.append(Diagnostic(.invalidResource, path: path, "endpoint priorities must be contiguous from 0 (found \(levels.map(String.init).joined(separator: ", ")))"))
        }
        return levels.map { IRPriority(level: $0, localities: byLevel[$0]!) }
    }

    // MARK: Conflicts

    private mutating func checkChainConflicts(_ chains: [IRFilterChain], path: String) {
        var seen: [IRChainMatch: String] = [:]
        for c in chains {
            var key = c.match
            key.prefixRanges.sort()
            if let other = seen[key] {
                diagnostics.append(Diagnostic(.conflictingChains, path: c.path, "filter chain has the same match as \(other); Envoy rejects such a listener"))
            } else {
                seen[key] = c.path
            }
        }
    }

    private mutating func checkListenerConflicts(_ listeners: [IRListener]) {
        var seen: [String: String] = [:]
        for l in listeners {
            let key = l.endpointText
            if let other = seen[key] {
                diagnostics.append(Diagnostic(.conflictingChains, path: l.path, "listener address \(key) is also used by \(other)"))
            } else {
                seen[key] = l.path
            }
        }
    }
}

extension IRCluster {
    func withOriginalDestination() -> IRCluster {
        var c = self
        c.originalDestination = true
        return c
    }
}
