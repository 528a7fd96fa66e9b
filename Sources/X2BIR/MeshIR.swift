/// MeshIR: the lowered, protocol-neutral, canonically ordered model of a snapshot.
///
/// Everything the later passes need and nothing they do not: names are kept for
/// comments and counters, resource paths for diagnostics. Collections are sorted
/// (listeners by address, clusters by name) so equal snapshots give equal IR
/// whatever the input order.
public struct MeshIR: Sendable, Hashable {
    public var listeners: [IRListener] = []
    public var routeTables: [IRRouteTable] = []
    public var clusters: [IRCluster] = []

    public init(listeners: [IRListener] = [], routeTables: [IRRouteTable] = [], clusters: [IRCluster] = []) {
        self.listeners = listeners
        self.routeTables = routeTables
        self.clusters = clusters
    }

    public func cluster(named name: String) -> IRCluster? {
        clusters.first { $0.name == name }
    }

    public func routeTable(named name: String) -> IRRouteTable? {
        routeTables.first { $0.name == name }
    }
}

public enum IRFamily: Int, Sendable, Hashable, Comparable {
    case inet4 = 4
    case inet6 = 6

    public static func < (a: IRFamily, b: IRFamily) -> Bool { a.rawValue < b.rawValue }
}

/// An IPv4 or IPv6 address as raw bytes (4 or 16).
public struct IRAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var family: IRFamily
    public var bytes: [UInt8]

    public init(family: IRFamily, bytes: [UInt8]) {
        self.family = family
        self.bytes = bytes
    }

    public var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }

    public static func < (a: IRAddress, b: IRAddress) -> Bool {
        if a.family != b.family { return a.family < b.family }
        return a.bytes.lexicographicallyPrecedes(b.bytes)
    }

    public var description: String {
        family == .inet4 ? bytes.map(String.init).joined(separator: ".") : IPv6Text.format(bytes)
    }

    /// `ip:port`, with brackets for IPv6.
    public func withPort(_ port: UInt16) -> String {
        family == .inet4 ? "\(self):\(port)" : "[\(self)]:\(port)"
    }
}

/// A CIDR range, normalised (host bits cleared).
public struct IRCidr: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var address: IRAddress
    public var prefixLength: Int

    public init(address: IRAddress, prefixLength: Int) {
        var bytes = address.bytes
        for i in 0..<bytes.count {
            let bitsHere = max(0, min(8, prefixLength - i * 8))
            bytes[i] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
        }
        self.address = IRAddress(family: address.family, bytes: bytes)
        self.prefixLength = prefixLength
    }

    public func contains(_ a: IRAddress) -> Bool {
        guard a.family == address.family else { return false }
        return IRCidr(address: a, prefixLength: prefixLength).address == address
    }

    public static func < (a: IRCidr, b: IRCidr) -> Bool {
        (a.address, a.prefixLength) < (b.address, b.prefixLength)
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

// MARK: - Listeners

public enum IRDirection: String, Sendable, Hashable {
    case outbound, inbound, unspecified
}

public struct IRListener: Sendable, Hashable {
    public var name: String
    /// Resource path used in diagnostics and generated comments.
    public var path: String
    public var address: IRAddress
    public var port: UInt16
    public var direction: IRDirection
    /// Filter chains in config order; `defaultChain` applies when none matches.
    public var chains: [IRFilterChain]
    public var defaultChain: IRFilterChain?

    public init(
        name: String, path: String, address: IRAddress, port: UInt16, direction: IRDirection,
        chains: [IRFilterChain], defaultChain: IRFilterChain?
    ) {
        self.name = name
        self.path = path
        self.address = address
        self.port = port
        self.direction = direction
        self.chains = chains
        self.defaultChain = defaultChain
    }

    public var endpointText: String { address.withPort(port) }
}

/// The part of Envoy's FilterChainMatch that can be decided when a socket connects.
public struct IRChainMatch: Sendable, Hashable {
    public var destinationPort: UInt16?
    public var prefixRanges: [IRCidr] = []
    /// Empty, "raw_buffer" or "tls"; at connect time the protocol is taken to be raw_buffer.
    public var transportProtocol: String = ""
    public var serverNames: [String] = []
    public var applicationProtocols: [String] = []

    public init(
        destinationPort: UInt16? = nil, prefixRanges: [IRCidr] = [], transportProtocol: String = "",
        serverNames: [String] = [], applicationProtocols: [String] = []
    ) {
        self.destinationPort = destinationPort
        self.prefixRanges = prefixRanges
        self.transportProtocol = transportProtocol
        self.serverNames = serverNames
        self.applicationProtocols = applicationProtocols
    }

    public var isCatchAll: Bool {
        destinationPort == nil && prefixRanges.isEmpty && transportProtocol.isEmpty
            && serverNames.isEmpty && applicationProtocols.isEmpty
    }
}

public struct IRFilterChain: Sendable, Hashable {
    public var name: String
    public var path: String
    public var match: IRChainMatch
    public var action: IRChainAction

    public init(name: String, path: String, match: IRChainMatch, action: IRChainAction) {
        self.name = name
        self.path = path
        self.match = match
        self.action = action
    }
}

public struct IRWeightedCluster: Sendable, Hashable {
    public var cluster: String
    public var weight: UInt32

    public init(cluster: String, weight: UInt32) {
        self.cluster = cluster
        self.weight = weight
    }
}

/// What a filter chain does with a connection.
public enum IRChainAction: Sendable, Hashable {
    /// tcp_proxy to one cluster.
    case cluster(String)
    /// tcp_proxy weighted_clusters, config order, Envoy's cumulative weights.
    case weighted([IRWeightedCluster])
    /// HTTP connection manager with this route table (by name; inline tables get a synthetic name).
    case http(routeTable: String)
    /// Nothing to do at connect time (e.g. a chain whose filters do not route).
    case pass(reason: String)
    /// Refused (fail closed): the chain needs what the kernel cannot run — a network filter
    /// that can close connections, TLS termination — and `because` says what.
    case refuse(because: String)

    /// The refusal of what filters the kernel cannot run guard.
    public static func refuse(guardedBy filters: [String]) -> IRChainAction {
        .refuse(because: "guarded by \(filters.map { "\"\($0)\"" }.joined(separator: ", ")), which the kernel cannot run")
    }
}

// MARK: - HTTP routes

/// What the HTTP connection manager does to the Host header before routing
/// (`strip_trailing_host_dot`, `strip_any_host_port`, `strip_matching_host_port`).
public struct IRHostNormalization: Sendable, Hashable {
    public enum StripPort: Sendable, Hashable {
        case none
        case any
        /// Only a port equal to the listener's.
        case matching(UInt16)
    }

    public var stripTrailingDot = false
    public var stripPort = StripPort.none

    public init(stripTrailingDot: Bool = false, stripPort: StripPort = .none) {
        self.stripTrailingDot = stripTrailingDot
        self.stripPort = stripPort
    }

    public var isIdentity: Bool { !stripTrailingDot && stripPort == .none }
}

/// What the HTTP connection manager does to `:path` before routing (`normalize_path`,
/// `merge_slashes`, `path_with_escaped_slashes_action`; `PathNormalization`).
public struct IRPathNormalization: Sendable, Hashable {
    public enum EscapedSlashes: String, Sendable, Hashable {
        /// KEEP_UNCHANGED (also IMPLEMENTATION_SPECIFIC_DEFAULT: Envoy's default).
        case keep = "keep_unchanged"
        case reject = "reject_request"
        case redirect = "unescape_and_redirect"
        case forward = "unescape_and_forward"
    }

    public var normalizePath = false
    public var mergeSlashes = false
    public var escapedSlashes = EscapedSlashes.keep

    public init(normalizePath: Bool = false, mergeSlashes: Bool = false, escapedSlashes: EscapedSlashes = .keep) {
        self.normalizePath = normalizePath
        self.mergeSlashes = mergeSlashes
        self.escapedSlashes = escapedSlashes
    }

    public var isIdentity: Bool { !normalizePath && !mergeSlashes && escapedSlashes == .keep }
}

/// `request_headers_to_add`/`_remove` or `response_headers_to_add`/`_remove` of one
/// level (route configuration, virtual host or route). Not applied in the kernel;
/// kept for `route-check` and `explain`.
public struct IRHeaderMutation: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        case appendIfExistsOrAdd = "append"
        case addIfAbsent = "add_if_absent"
        case overwriteIfExistsOrAdd = "overwrite"
        case overwriteIfExists = "overwrite_if_exists"
    }

    public struct Add: Sendable, Hashable {
        /// Lowercased.
        public var key: String
        public var value: String
        public var action: Action
        public var keepEmptyValue: Bool

        public init(key: String, value: String, action: Action, keepEmptyValue: Bool = false) {
            self.key = key
            self.value = value
            self.action = action
            self.keepEmptyValue = keepEmptyValue
        }
    }

    public var add: [Add] = []
    /// Lowercased header names.
    public var remove: [String] = []

    public init(add: [Add] = [], remove: [String] = []) {
        self.add = add
        self.remove = remove
    }

    public var isEmpty: Bool { add.isEmpty && remove.isEmpty }
}

public struct IRRouteTable: Sendable, Hashable {
    public var name: String
    public var path: String
    public var virtualHosts: [IRVirtualHost]
    /// `ignore_port_in_host_matching`: strip `:port` from the host before matching domains.
    public var ignorePortInHostMatching: Bool
    /// `vhost_header`: select the virtual host by this header (lowercased) instead of `:authority`.
    public var vhostHeader: String?
    /// `ignore_path_parameters_in_path_matching`: paths are matched up to the first `;`.
    public var ignorePathParameters = false
    /// The connection manager's Host normalisation (per listener: an RDS table used by
    /// managers that normalise differently is lowered once per variant).
    public var hostNormalization = IRHostNormalization()
    /// The connection manager's path normalisation (per listener, as the Host's).
    public var pathNormalization = IRPathNormalization()
    public var requestHeaders = IRHeaderMutation()
    public var responseHeaders = IRHeaderMutation()
    /// `most_specific_header_mutations_wins`.
    public var mostSpecificHeaderMutationsWins = false
    /// `internal_only_headers` (lowercased): removed by Envoy from external requests.
    public var internalOnlyHeaders: [String] = []

    public init(name: String, path: String, virtualHosts: [IRVirtualHost], ignorePortInHostMatching: Bool = false) {
        self.name = name
        self.path = path
        self.virtualHosts = virtualHosts
        self.ignorePortInHostMatching = ignorePortInHostMatching
    }
}

public enum IRTLSRequirement: String, Sendable, Hashable {
    case none, externalOnly = "external_only", all
}

/// A virtual cluster: a name for requests matching headers (statistics only).
public struct IRVirtualCluster: Sendable, Hashable {
    public var name: String
    public var headers: [IRHeaderMatch]

    public init(name: String, headers: [IRHeaderMatch]) {
        self.name = name
        self.headers = headers
    }
}

public struct IRVirtualHost: Sendable, Hashable {
    public var name: String
    public var path: String
    /// Lowercased domains as written.
    public var domains: [String]
    public var routes: [IRRoute]
    /// `require_tls`: requests that are not HTTPS get a redirect to https.
    public var requireTLS = IRTLSRequirement.none
    public var virtualClusters: [IRVirtualCluster] = []
    public var requestHeaders = IRHeaderMutation()
    public var responseHeaders = IRHeaderMutation()

    public init(name: String, path: String, domains: [String], routes: [IRRoute]) {
        self.name = name
        self.path = path
        self.domains = domains
        self.routes = routes
    }
}

public enum IRPathMatch: Sendable, Hashable {
    case prefix(String)
    case exact(String)
    case separatedPrefix(String)
    case regex(String)
}

public enum IRStringMatch: Sendable, Hashable {
    case exact(String)
    case prefix(String)
    case suffix(String)
    case contains(String)
    case regex(String)
}

public struct IRHeaderMatch: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case string(IRStringMatch, ignoreCase: Bool)
        case present(Bool)
        case range(start: Int64, end: Int64)
        /// The deprecated `exact_match: ""`: any value, but a missing header does
        /// not match even when inverted (Envoy's value matchers, unlike presence).
        case anyValue
    }

    /// Lowercased header name (`:authority`, `:path`, `:method` included).
    public var name: String
    public var kind: Kind
    public var invert: Bool
    public var treatMissingAsEmpty: Bool

    public init(name: String, kind: Kind, invert: Bool = false, treatMissingAsEmpty: Bool = false) {
        self.name = name
        self.kind = kind
        self.invert = invert
        self.treatMissingAsEmpty = treatMissingAsEmpty
    }
}

public struct IRQueryMatch: Sendable, Hashable {
    public var name: String
    /// nil: present match.
    public var value: IRStringMatch?
    public var ignoreCase: Bool

    public init(name: String, value: IRStringMatch?, ignoreCase: Bool) {
        self.name = name
        self.value = value
        self.ignoreCase = ignoreCase
    }
}

public struct IRFraction: Sendable, Hashable {
    public var numerator: UInt32
    public var denominator: UInt32
    /// The runtime key that may override the default (none is set at connect time).
    public var runtimeKey: String

    public init(numerator: UInt32, denominator: UInt32, runtimeKey: String = "") {
        self.numerator = numerator
        self.denominator = denominator
        self.runtimeKey = runtimeKey
    }
}

/// Envoy's ValueMatcher, as far as route matching on dynamic metadata uses it.
public indirect enum IRValueMatch: Sendable, Hashable {
    case null
    case bool(Bool)
    case present(Bool)
    case string(IRStringMatch, ignoreCase: Bool)
    case doubleExact(Double)
    case doubleRange(start: Double, end: Double)
    case list(oneOf: IRValueMatch)
    case or([IRValueMatch])
}

/// `dynamic_metadata` route matcher. No HTTP filter runs before the kernel's
/// decision, so there the metadata is always absent.
public struct IRMetadataMatch: Sendable, Hashable {
    public var filter: String
    public var path: [String]
    public var value: IRValueMatch
    public var invert: Bool

    public init(filter: String, path: [String], value: IRValueMatch, invert: Bool) {
        self.filter = filter
        self.path = path
        self.value = value
        self.invert = invert
    }
}

public struct IRRouteMatch: Sendable, Hashable {
    public var path: IRPathMatch
    public var caseSensitive: Bool = true
    public var headers: [IRHeaderMatch] = []
    public var queryParameters: [IRQueryMatch] = []
    public var grpcOnly: Bool = false
    /// runtime_fraction's default value: matches when `random % denominator < numerator`.
    public var runtimeFraction: IRFraction?
    public var dynamicMetadata: [IRMetadataMatch] = []

    public init(path: IRPathMatch) {
        self.path = path
    }
}

public struct IRRedirect: Sendable, Hashable {
    public var scheme: String?
    public var host: String?
    public var port: UInt32?
    public var path: String?
    public var prefixRewrite: String?
    public var regexRewrite: IRRegexRewrite?
    public var responseCode: UInt32
    public var stripQuery: Bool

    public init(
        scheme: String? = nil, host: String? = nil, port: UInt32? = nil, path: String? = nil,
        prefixRewrite: String? = nil, responseCode: UInt32 = 301, stripQuery: Bool = false
    ) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.prefixRewrite = prefixRewrite
        self.responseCode = responseCode
        self.stripQuery = stripQuery
    }
}

public enum IRRouteAction: Sendable, Hashable {
    case cluster(String)
    case clusterHeader(String)
    case weighted([IRWeightedCluster], total: UInt32)
    case redirect(IRRedirect)
    case directResponse(status: UInt32, body: String?)
    case nonForwarding
    /// Refused in the kernel: HTTP filters that can deny requests run on this route in
    /// Envoy and the kernel cannot run them (fail closed; `filters` names them).
    case guarded(filters: [String])
}

/// `regex_rewrite`: RE2 pattern and substitution (`\1` groups).
public struct IRRegexRewrite: Sendable, Hashable {
    public var pattern: String
    public var substitution: String

    public init(pattern: String, substitution: String) {
        self.pattern = pattern
        self.substitution = substitution
    }
}

/// Route features recorded for `explain` that the kernel cannot enforce.
public struct IRRouteNotes: Sendable, Hashable {
    public var timeout: String?
    public var retries: String?
    public var prefixRewrite: String?
    public var hostRewrite: String?
    public var hostRewriteHeader: String?
    public var regexRewrite: IRRegexRewrite?
    public var other: [String] = []

    public init() {}

    public var isEmpty: Bool {
        timeout == nil && retries == nil && prefixRewrite == nil && hostRewrite == nil && hostRewriteHeader == nil
            && regexRewrite == nil && other.isEmpty
    }
}

extension IRRouteTable {
    /// The filters that guard (refuse) routes of this table, in first-seen order; nil
    /// when none do. Without the request (the connect-time fallback) such a table refuses.
    public var guardingFilters: [String]? {
        var out: [String] = []
        for vh in virtualHosts {
            for r in vh.routes {
                if case .guarded(let filters) = r.action {
                    for f in filters where !out.contains(f) { out.append(f) }
                }
            }
        }
        return out.isEmpty ? nil : out
    }
}

public struct IRRoute: Sendable, Hashable {
    public var name: String
    public var path: String
    public var match: IRRouteMatch
    public var action: IRRouteAction
    public var notes: IRRouteNotes
    public var requestHeaders = IRHeaderMutation()
    public var responseHeaders = IRHeaderMutation()

    public init(name: String, path: String, match: IRRouteMatch, action: IRRouteAction, notes: IRRouteNotes = IRRouteNotes()) {
        self.name = name
        self.path = path
        self.match = match
        self.action = action
        self.notes = notes
    }
}

// MARK: - Clusters

public enum IRLBPolicy: String, Sendable, Hashable, CaseIterable {
    case roundRobin = "round_robin"
    case random
    case leastRequest = "least_request"
    case maglev
    case ringHash = "ring_hash"
}

public enum IRHealth: String, Sendable, Hashable {
    case unknown, healthy, unhealthy, draining, timeout, degraded

    /// Envoy routes to UNKNOWN, HEALTHY and DEGRADED hosts (degraded only as a last
    /// resort, which this compiler treats as healthy); never to the others.
    public var isRoutable: Bool {
        switch self {
        case .unknown, .healthy, .degraded: true
        case .unhealthy, .draining, .timeout: false
        }
    }
}

public struct IREndpoint: Sendable, Hashable {
    public var address: IRAddress
    public var port: UInt16
    public var weight: UInt32
    public var health: IRHealth

    public init(address: IRAddress, port: UInt16, weight: UInt32, health: IRHealth) {
        self.address = address
        self.port = port
        self.weight = weight
        self.health = health
    }

    public var text: String { address.withPort(port) }
}

/// How the loader resolves a DNS cluster's host names on the node (Envoy's
/// STRICT_DNS and LOGICAL_DNS clusters): every endpoint of the cluster in
/// config order, names and addresses, with its locality and health. After the
/// lookups the loader builds the rows as `ClusterSemantics` and `LBTables` build
/// them from addresses (each address of a name an endpoint of its lb_endpoint).
public struct IRDNSResolution: Sendable, Hashable {
    /// Envoy's `dns_lookup_family`.
    public enum LookupFamily: String, Sendable, Hashable {
        case auto, v4Only = "v4_only", v6Only = "v6_only", v4Preferred = "v4_preferred", all
    }

    public struct Host: Sendable, Hashable {
        /// A host name, or an address given as text.
        public var host: String
        public var port: UInt16
        public var weight: UInt32
        /// `LocalityLbEndpoints.priority`.
        public var priority: UInt32
        /// Index into `localities` (the cluster's LocalityLbEndpoints in config order).
        public var locality: UInt32
        /// HEALTHY, UNKNOWN or DEGRADED: may be chosen (`IRHealth.isRoutable`).
        public var routable: Bool

        public init(host: String, port: UInt16, weight: UInt32, priority: UInt32 = 0, locality: UInt32 = 0, routable: Bool = true) {
            self.host = host
            self.port = port
            self.weight = weight
            self.priority = priority
            self.locality = locality
            self.routable = routable
        }
    }

    /// One LocalityLbEndpoints of the cluster.
    public struct Locality: Sendable, Hashable {
        public var priority: UInt32
        /// `load_balancing_weight`; nil when unset.
        public var weight: UInt32?

        public init(priority: UInt32, weight: UInt32?) {
            self.priority = priority
            self.weight = weight
        }
    }

    /// LOGICAL_DNS: only the first address of a name is used; STRICT_DNS: every address.
    public var logical: Bool
    public var lookupFamily: LookupFamily
    /// `dns_refresh_rate`, Envoy's default 5 s.
    public var refreshRateMs: UInt32
    public var respectDNSTTL: Bool
    public var hosts: [Host]
    /// The cluster's localities in config order (hosts name them by index).
    public var localities: [Locality] = []
    /// Locality weights apply (`IRCluster.localityWeighted`).
    public var localityWeighted = false
    /// Percent (`IRCluster.overprovisioningFactor`).
    public var overprovisioningFactor: UInt32 = 140
    /// The tables of maglev and ring hash (`IRCluster`'s sizes).
    public var maglevTableSize: UInt64 = 65537
    public var ringMinimumSize: UInt64 = 1024
    public var ringMaximumSize: UInt64 = 8 * 1024 * 1024

    /// Addresses kept per host name of a STRICT_DNS cluster: its endpoint slots
    /// are planned for this many (more are dropped with a warning in `status`).
    public static let strictMaxAddresses: UInt32 = 16

    public var maxAddresses: UInt32 { logical ? 1 : Self.strictMaxAddresses }

    /// Host names (not addresses) among the hosts.
    public var names: [Host] { hosts.filter { IRAddress(parsing: $0.host) == nil } }

    /// Endpoint records the cluster can need at most once every name resolved.
    public var maxEndpoints: Int { hosts.reduce(0) { $0 + (IRAddress(parsing: $1.host) == nil ? Int(maxAddresses) : 1) } }

    public init(logical: Bool, lookupFamily: LookupFamily, refreshRateMs: UInt32, respectDNSTTL: Bool, hosts: [Host]) {
        self.logical = logical
        self.lookupFamily = lookupFamily
        self.refreshRateMs = refreshRateMs
        self.respectDNSTTL = respectDNSTTL
        self.hosts = hosts
    }
}

public struct IRLocality: Sendable, Hashable {
    public var region: String
    public var zone: String
    public var subZone: String
    /// `load_balancing_weight`; nil when unset.
    public var weight: UInt32?
    public var endpoints: [IREndpoint]

    public init(region: String, zone: String, subZone: String, weight: UInt32?, endpoints: [IREndpoint]) {
        self.region = region
        self.zone = zone
        self.subZone = subZone
        self.weight = weight
        self.endpoints = endpoints
    }

    public var label: String {
        [region, zone, subZone].allSatisfy(\.isEmpty) ? "-" : "\(region)/\(zone)/\(subZone)"
    }
}

public struct IRPriority: Sendable, Hashable {
    public var level: UInt32
    public var localities: [IRLocality]

    public init(level: UInt32, localities: [IRLocality]) {
        self.level = level
        self.localities = localities
    }
}

public struct IRCluster: Sendable, Hashable {
    public var name: String
    public var path: String
    public var lb: IRLBPolicy
    /// Locality weights apply (Envoy's `locality_weighted_lb_config`).
    public var localityWeighted: Bool
    /// Percent, Envoy's default 140.
    public var overprovisioningFactor: UInt32
    public var ringMinimumSize: UInt64
    public var ringMaximumSize: UInt64
    public var maglevTableSize: UInt64
    /// Priorities sorted by level.
    public var priorities: [IRPriority]
    /// ORIGINAL_DST: connections keep their destination (Istio's PassthroughCluster).
    public var originalDestination: Bool = false
    /// STRICT_DNS / LOGICAL_DNS with host names: resolved on the node by the loader.
    /// `priorities` then hold only the endpoints given as addresses (what routes
    /// until the first resolution).
    public var dns: IRDNSResolution?

    public init(
        name: String, path: String, lb: IRLBPolicy, localityWeighted: Bool = false,
        overprovisioningFactor: UInt32 = 140, ringMinimumSize: UInt64 = 1024,
        ringMaximumSize: UInt64 = 8 * 1024 * 1024, maglevTableSize: UInt64 = 65537,
        priorities: [IRPriority]
    ) {
        self.name = name
        self.path = path
        self.lb = lb
        self.localityWeighted = localityWeighted
        self.overprovisioningFactor = overprovisioningFactor
        self.ringMinimumSize = ringMinimumSize
        self.ringMaximumSize = ringMaximumSize
        self.maglevTableSize = maglevTableSize
        self.priorities = priorities
    }

    public var endpointCount: Int {
        priorities.reduce(0) { $0 + $1.localities.reduce(0) { $0 + $1.endpoints.count } }
    }
}
