import SwiftProtobuf
import X2BDiagnostics
import X2BFrontend
import X2BIR
import X2BProtos
import X2BSemantics

/// Type URLs the lowering dispatches on (current Envoy selects an extension by
/// its `typed_config` type, not by filter name).
enum TypeURL {
    static let hcm = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    static let tcpProxy = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
    static let router = "envoy.extensions.filters.http.router.v3.Router"
}

/// A filter config packed in a TypedStruct (JSON inside an Any): the compiler
/// decodes only the typed messages of its schema.
struct TypedStructConfig: Error, CustomStringConvertible {
    var description: String { "the config is wrapped in a TypedStruct, which is not decoded" }
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
    /// RDS configurations lowered under a variant name only (`base@normalisation`): not lowered again bare.
    private var loweredVariants: Set<String> = []
    private let snapshot: ResolvedSnapshot
    private var routeTables: [String: IRRouteTable] = [:]
    private var referencedClusters: [String: String] = [:]  // name → first referencing path

    /// `--resolve NAME=IP[,IP...]`: addresses for host names in DNS clusters, which
    /// an offline compiler cannot look up itself (parsed once, by the CLI). A
    /// STRICT_DNS cluster makes every address an endpoint, other clusters the first.
    private let hostAddresses: [String: [IRAddress]]
    /// Set while lowering a cluster no listener or route uses.
    private var loweringUnreferenced = false
    /// Set while lowering the endpoints of a STRICT_DNS / LOGICAL_DNS cluster:
    /// host names are collected for the loader instead of rejected.
    private var dnsEndpoints: DNSEndpoints?

    /// The endpoints of a DNS cluster as the loader needs them, with what decides
    /// whether the node can resolve them (see `dnsResolution`).
    private struct DNSEndpoints {
        struct Entry {
            var host: IRDNSResolution.Host
            var isName: Bool
        }
        /// LOGICAL_DNS: a name given with --resolve uses its first address only.
        var logical: Bool
        var entries: [Entry] = []
        var localities: [IRDNSResolution.Locality] = []
        var hasNames: Bool { entries.contains(where: \.isName) }
    }

    /// What a filter the kernel cannot run guards (a deny-capable HTTP filter's routes, a
    /// deny-capable network filter's chain) is refused: fail closed (XDS210). False under
    /// `--unsupported=warn`: such filters are bypassed, and XDS209 says so.
    private let refuseGuarded: Bool

    public init(_ snapshot: ResolvedSnapshot, hostAddresses: [String: [IRAddress]] = [:], refuseGuarded: Bool = true) {
        self.snapshot = snapshot
        self.hostAddresses = hostAddresses
        self.refuseGuarded = refuseGuarded
    }

    public static func lower(
        _ snapshot: ResolvedSnapshot, hostAddresses: [String: [IRAddress]] = [:], refuseGuarded: Bool = true
    ) -> (MeshIR, [Diagnostic]) {
        lower(snapshot, hostAddresses: hostAddresses, refuseGuarded: refuseGuarded, concurrentClusters: true)
    }

    /// `concurrentClusters: false` lowers one cluster at a time (tests compare the two).
    static func lower(
        _ snapshot: ResolvedSnapshot, hostAddresses: [String: [IRAddress]] = [:], refuseGuarded: Bool = true,
        concurrentClusters: Bool
    ) -> (MeshIR, [Diagnostic]) {
        var l = Lowerer(snapshot, hostAddresses: hostAddresses, refuseGuarded: refuseGuarded)
        let ir = l.run(concurrentClusters: concurrentClusters)
        return (ir, l.diagnostics)
    }

    mutating func run(concurrentClusters: Bool = true) -> MeshIR {
        var listeners: [IRListener] = []
        for l in snapshot.listeners {
            if let lowered = lowerListener(l) { listeners.append(lowered) }
        }
        // Route configurations only reached by name still get checked and lowered,
        // so `route-check` and `explain` work on RDS-only inputs.
        for name in snapshot.routeConfigurations.keys.sorted() where routeTables[name] == nil && !loweredVariants.contains(name) {
            let r = snapshot.routeConfigurations[name]!
            routeTables[name] = lowerRouteConfiguration(r.message, path: ResourcePath.routeConfiguration(name))
        }
        var clusters: [IRCluster] = []
        for (c, d) in lowerClusters(snapshot.clusters.keys.sorted(), concurrent: concurrentClusters) {
            diagnostics += d
            if let c { clusters.append(c) }
        }
        let known = Set(clusters.map(\.name))
        for (name, path) in referencedClusters.sorted(by: { $0.key < $1.key }) where !known.contains(name) {
            if snapshot.clusters[name] == nil {
                diagnostics.append(
                    Diagnostic(
                        .danglingCluster, .warning, path: path,
                        "references unknown cluster \(ResourcePath.quoted(name)); connections routed there are refused (Envoy closes them or answers 503)"))
            }
        }
        listeners.sort { ($0.address, $0.port, $0.name) < ($1.address, $1.port, $1.name) }
        checkListenerConflicts(listeners)
        return MeshIR(
            listeners: listeners,
            routeTables: routeTables.keys.sorted().map { routeTables[$0]! },
            clusters: clusters)
    }

    /// Below this many clusters they are lowered on one core.
    static let concurrentClusterMinimum = 64

    /// Each cluster lowered by a copy of this lowerer (a cluster reads the snapshot and the
    /// references the listeners made, and writes only its own diagnostics and scratch
    /// state), on every core for large meshes; results and diagnostics in `names` order,
    /// so the IR and the diagnostics are the same as one by one.
    private func lowerClusters(_ names: [String], concurrent: Bool) -> [(IRCluster?, [Diagnostic])] {
        var template = self
        template.diagnostics = []
        func lowerOne(_ i: Int) -> (IRCluster?, [Diagnostic]) {
            var l = template
            l.loweringUnreferenced = template.referencedClusters[names[i]] == nil
            let c = l.lowerCluster(template.snapshot.clusters[names[i]]!)
            return (c, l.diagnostics)
        }
        if !concurrent || names.count < Self.concurrentClusterMinimum { return names.indices.map(lowerOne) }
        return concurrentMap(count: names.count, chunksPerCore: 4, lowerOne)
    }

    // MARK: Listeners

    private mutating func lowerListener(_ r: XDSResource<Envoy_Config_Listener_V3_Listener>) -> IRListener? {
        let l = r.message
        let path = ResourcePath.listener(r.name)
        if l.trafficDirection == .inbound {
            diagnostics.append(
                Diagnostic(
                    .inboundSkipped, path: path,
                    "inbound listener skipped: connect-time routing applies to outbound connections"))
            return nil
        }
        if l.hasUseOriginalDst, l.useOriginalDst.value {
            diagnostics.append(
                Diagnostic(
                    .inboundSkipped, path: path,
                    "use_original_dst listener skipped: connect-time routing already matches the original destination"))
            return nil
        }
        if case .internalListener? = l.listenerSpecifier {
            diagnostics.append(
                Diagnostic(
                    .unsupportedListener, .warning, path: path,
                    "internal listener skipped: it has no socket address to match at connect time"))
            return nil
        }
        if l.hasApiListener {
            diagnostics.append(Diagnostic(.unsupportedListener, .warning, path: path, "api_listener skipped: not a socket listener"))
            return nil
        }
        guard let (address, port) = socketAddress(l.address, path: "\(path).address", what: "listener") else { return nil }
        if l.address.socketAddress.protocol == .udp {
            diagnostics.append(
                Diagnostic(
                    .unsupportedListener, .warning, path: "\(path).address",
                    "UDP listener skipped: only TCP connects are routed"))
            return nil
        }
        if l.hasFilterChainMatcher {
            diagnostics.append(
                Diagnostic(
                    .unsupportedRouting, path: "\(path).filter_chain_matcher",
                    "filter_chain_matcher (xDS matcher API) is not supported; use filter_chain_match"))
        }
        for (i, lf) in l.listenerFilters.enumerated() {
            let type = lf.typedConfig.xdsTypeName
            if !inspectingListenerFilters.contains(type) {
                diagnostics.append(
                    Diagnostic(
                        .notEnforced, path: "\(path).listener_filters[\(i)]",
                        "listener filter \(lf.name.isEmpty ? type : lf.name) is not enforced at connect time"))
            }
        }
        if l.hasUdpListenerConfig {
            diagnostics.append(Diagnostic(.unsupportedListener, .warning, path: path, "UDP listener skipped"))
            return nil
        }
        var chains: [IRFilterChain] = []
        for (i, fc) in l.filterChains.enumerated() {
            if let c = lowerChain(fc, listener: r.name, port: port, path: "\(path).filter_chains[\(i)]") { chains.append(c) }
        }
        var defaultChain: IRFilterChain?
        if l.hasDefaultFilterChain {
            defaultChain = lowerChain(l.defaultFilterChain, listener: r.name, port: port, path: "\(path).default_filter_chain")
            defaultChain?.match = IRChainMatch()
        }
        checkChainConflicts(chains, path: path)
        return IRListener(
            name: r.name, path: path, address: address, port: port,
            direction: l.trafficDirection == .outbound ? .outbound : .unspecified,
            chains: chains, defaultChain: defaultChain)
    }

    private mutating func socketAddress(_ a: Envoy_Config_Core_V3_Address, path: String, what: String) -> (IRAddress, UInt16)? {
        switch a.address {
        case .socketAddress(let sa):
            guard let ip = IRAddress(parsing: sa.address) ?? hostAddresses[sa.address]?.first else {
                if what == "endpoint", dnsEndpoints != nil {
                    // A host name of a DNS cluster: resolved on the node (the caller records it).
                    return nil
                }
                if loweringUnreferenced {
                    diagnostics.append(
                        Diagnostic(
                            .invalidAddress, .note, path: path,
                            "\(what) address \(ResourcePath.quoted(sa.address)) is a host name; the cluster is not routed to by any listener, so it is left out"
                        ))
                } else {
                    diagnostics.append(
                        Diagnostic(
                            .invalidAddress, path: path,
                            "\(what) address \(ResourcePath.quoted(sa.address)) is a host name, resolved only at run time; give its address with --resolve \(sa.address)=IP"
                        ))
                }
                return nil
            }
            switch sa.portSpecifier {
            case .portValue(let p)?:
                guard p <= 65535 else {
                    diagnostics.append(Diagnostic(.invalidPort, path: path, "\(what) port \(p) is out of range 0-65535"))
                    return nil
                }
                guard p > 0 else {
                    // Envoy accepts port 0: an endpoint there is a host every connect to fails,
                    // a listener there binds an ephemeral port no client dials.
                    diagnostics.append(
                        Diagnostic(
                            .invalidPort, .warning, path: path,
                            what == "endpoint"
                                ? "endpoint port 0: connects to it would fail, so it is never chosen"
                                : "\(what) port 0 (an ephemeral port): no connect can match it, so it is skipped"))
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
        // server_names, transport_protocol "tls" and ALPN values are decided from the
        // ClientHello by the defer-connect module (TLSSelection); for a TLS-terminating
        // chain (a connection manager) lowerChain rejects them.
        var undecidable: [String] = []
        if !m.sourcePrefixRanges.isEmpty { undecidable.append("source_prefix_ranges") }
        if !m.directSourcePrefixRanges.isEmpty { undecidable.append("direct_source_prefix_ranges") }
        if !m.sourcePorts.isEmpty { undecidable.append("source_ports") }
        if m.sourceType != .any { undecidable.append("source_type") }
        if !undecidable.isEmpty {
            diagnostics.append(
                Diagnostic(
                    .unsupportedRouting, path: path,
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

    private mutating func lowerChain(
        _ fc: Envoy_Config_Listener_V3_FilterChain, listener: String, port: UInt16,
        path: String
    ) -> IRFilterChain? {
        var match = IRChainMatch()
        if fc.hasFilterChainMatch {
            guard let m = lowerChainMatch(fc.filterChainMatch, path: "\(path).filter_chain_match") else { return nil }
            match = m
        }
        if fc.hasTransportSocket {
            diagnostics.append(
                Diagnostic(
                    .notEnforced, path: "\(path).transport_socket",
                    "downstream transport socket (TLS termination) is not enforced: the kernel redirects the connection unchanged"))
        }
        var action: IRChainAction?
        var ignored: [String] = []
        var denying: [(index: Int, name: String, type: String)] = []
        var refusing: [String] = []
        var unknownTypes: [(path: String, message: String)] = []
        for (i, f) in fc.filters.enumerated() {
            let fpath = "\(path).filters[\(i)]"
            let type = f.typedConfig.xdsTypeName
            guard !(type.isEmpty && f.name.isEmpty) else {
                // Nothing says which filter it is (Envoy requires the name): not a filter to refuse by.
                diagnostics.append(Diagnostic(.invalidResource, path: fpath, "network filter has neither a name nor a typed_config"))
                return nil
            }
            if type == TypeURL.tcpProxy || (type.isEmpty && (f.name == "envoy.filters.network.tcp_proxy" || f.name == "envoy.tcp_proxy")) {
                guard !type.isEmpty else {
                    diagnostics.append(Diagnostic(.invalidResource, path: fpath, "tcp_proxy filter has no typed_config"))
                    return nil
                }
                do {
                    guard let tp = try f.typedConfig.unpackIfXDS(Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy.self) else {
                        throw TypedStructConfig()
                    }
                    action = lowerTcpProxy(tp, path: fpath)
                } catch {
                    diagnostics.append(Diagnostic(.invalidResource, path: fpath, "tcp_proxy typed_config does not decode: \(error)"))
                    return nil
                }
                break
            } else if type == TypeURL.hcm
                || (type.isEmpty && (f.name == "envoy.filters.network.http_connection_manager" || f.name == "envoy.http_connection_manager"))
            {
                guard !type.isEmpty else {
                    diagnostics.append(Diagnostic(.invalidResource, path: fpath, "http_connection_manager filter has no typed_config"))
                    return nil
                }
                do {
                    guard let hcm = try f.typedConfig.unpackIfXDS(Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.self) else {
                        throw TypedStructConfig()
                    }
                    guard let table = lowerHCM(hcm, listener: listener, port: port, path: fpath) else { return nil }
                    action = .http(routeTable: table)
                } catch {
                    diagnostics.append(Diagnostic(.invalidResource, path: fpath, "http_connection_manager typed_config does not decode: \(error)"))
                    return nil
                }
                break
            } else {
                let knownName = [
                    "envoy.filters.network.tcp_proxy", "envoy.tcp_proxy",
                    "envoy.filters.network.http_connection_manager", "envoy.http_connection_manager",
                ].contains(f.name)
                if knownName, !type.isEmpty {
                    // Named as a tcp_proxy or connection manager, but its typed_config is some other
                    // (often a truncated or misspelt) type: say so rather than "not found".
                    let url = f.typedConfig.isTypedStruct ? type : f.typedConfig.typeURL
                    let wanted = f.name.contains("tcp_proxy") ? TypeURL.tcpProxy : TypeURL.hcm
                    unknownTypes.append(
                        (
                            "\(fpath).typed_config",
                            "typed_config type \(ResourcePath.quoted(url)) is not a type this filter has (truncated or misspelt?): \(f.name) needs \(wanted); the chain cannot be routed"
                        ))
                } else if FilterSafety.networkFilterCanDeny(type: type, name: f.name) {
                    denying.append((i, f.name.isEmpty ? type : f.name, type))
                } else {
                    ignored.append(f.name.isEmpty ? type : f.name)
                }
            }
        }
        if !unknownTypes.isEmpty {
            for u in unknownTypes { diagnostics.append(Diagnostic(.unsupportedFilter, path: u.path, u.message)) }
            return nil
        }
        if action == nil, refuseGuarded, let last = denying.last, last.index == fc.filters.count - 1 {
            // Another terminal filter routes the connection (redis_proxy, kafka_mesh, a Go or
            // Wasm filter...): Envoy accepts the chain, the kernel cannot run it. Refuse it (fail
            // closed). A chain ending in an observing filter has no terminal one: Envoy rejects it.
            let found = denying.map(\.name).joined(separator: ", ")
            diagnostics.append(
                Diagnostic(
                    .refusedFailClosed, path: "\(path).filters[\(last.index)]",
                    "no tcp_proxy or http_connection_manager filter: the connection is handled by network filters \(found), which the kernel cannot run; connections to listener \(ResourcePath.quoted(listener)) that take this chain are refused (fail closed; --unsupported=warn drops the chain instead)"
                ))
            return IRFilterChain(
                name: fc.name, path: path, match: match, action: .refuse(because: "handled by network filters \(found), which the kernel cannot run"))
        }
        if action == nil, !(ignored.isEmpty && denying.isEmpty) {
            let found = (denying.map(\.name) + ignored).joined(separator: ", ")
            diagnostics.append(
                Diagnostic(
                    .unsupportedFilter, path: path,
                    "no tcp_proxy or http_connection_manager filter (found \(found)); the chain cannot be routed"))
        } else if action != nil {
            for d in denying {
                let filter = "network filter \(d.name)\(d.type.isEmpty || d.type == d.name ? "" : " (\(d.type))")"
                diagnostics.append(
                    refuseGuarded
                        ? Diagnostic(
                            .refusedFailClosed, path: "\(path).filters[\(d.index)]",
                            "\(filter) can refuse connections and the kernel cannot run it: connections to listener \(ResourcePath.quoted(listener)) that take this chain are refused (fail closed; --unsupported=warn bypasses the filter instead)"
                        )
                        : Diagnostic(
                            .bypassedFilter, path: "\(path).filters[\(d.index)]",
                            "\(filter) can refuse connections and is not enforced in the kernel: connections to listener \(ResourcePath.quoted(listener)) bypass it"
                        ))
            }
            if refuseGuarded { refusing = denying.map(\.name) }
            if !ignored.isEmpty {
                diagnostics.append(
                    Diagnostic(
                        .notEnforced, path: path,
                        "network filters \(ignored.joined(separator: ", ")) are not enforced in the kernel"))
            }
        }
        guard let action else {
            if fc.filters.isEmpty {
                diagnostics.append(Diagnostic(.unsupportedFilter, path: path, "filter chain has no filters"))
            }
            return nil
        }
        if case .http = action, TLSSelection.needsClientHello([IRFilterChain(name: fc.name, path: path, match: match, action: action)]) {
            if refuseGuarded {
                // Envoy accepts it; the kernel cannot terminate TLS: refuse what takes the chain
                // (chosen from the ClientHello with the module, as TLS passthrough chains are).
                diagnostics.append(
                    Diagnostic(
                        .refusedFailClosed, path: "\(path).filter_chain_match",
                        "filter chain match on server_names, transport_protocol \"tls\" or application_protocols selects an HTTP connection manager behind TLS termination, which the kernel cannot do: connections that take this chain are refused (fail closed; TLS passthrough chains with tcp_proxy are routed by SNI; --unsupported=warn drops the chain instead)"
                    ))
                return IRFilterChain(
                    name: fc.name, path: path, match: match,
                    action: .refuse(because: "an HTTP connection manager behind TLS termination, which the kernel cannot do"))
            }
            diagnostics.append(
                Diagnostic(
                    .unsupportedRouting, path: "\(path).filter_chain_match",
                    "filter chain match on server_names, transport_protocol \"tls\" or application_protocols selects an HTTP connection manager behind TLS termination; the kernel cannot terminate TLS, so the chain never matches (TLS passthrough with tcp_proxy is routed by SNI)"
                ))
            return nil
        }
        return IRFilterChain(name: fc.name, path: path, match: match, action: refusing.isEmpty ? action : .refuse(guardedBy: refusing))
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
            // As for a route's weighted clusters: the total must fit the 32-bit weights the data plane draws from.
            let sum = entries.reduce(UInt64(0)) { $0 + UInt64($1.weight) }
            guard sum <= UInt64(UInt32.max) else {
                diagnostics.append(
                    Diagnostic(
                        .invalidResource, path: "\(path).weighted_clusters",
                        "weighted cluster weights sum to \(sum), over the maximum total weight of \(UInt32.max)"))
                return nil
            }
            return .weighted(entries)
        default:
            diagnostics.append(Diagnostic(.invalidResource, path: path, "tcp_proxy has no cluster"))
            return nil
        }
    }

    /// The places of the route table of `hcm` that configure the HTTP filter `name`
    /// per route (`typed_per_filter_config` of the table, a virtual host, a route or a
    /// weighted cluster): each enables a filter that is disabled by default, as Envoy
    /// reads them (only a `FilterConfig` with `disabled` keeps it off; counting that too
    /// errs on the side of enforcing). Nil when the table is not in the snapshot's hands
    /// (scoped routes): then any route may enable it.
    private func enablingPerFilterConfigs(
        _ name: String, _ hcm: Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager,
        path: String
    ) -> [String]? {
        let table: Envoy_Config_Route_V3_RouteConfiguration
        let base: String
        switch hcm.routeSpecifier {
        case .rds(let rds)?:
            // A table not in the snapshot routes nothing (XDS102): no route enables anything.
            guard let rc = snapshot.routeConfigurations[rds.routeConfigName] else { return [] }
            table = rc.message
            base = ResourcePath.routeConfiguration(rds.routeConfigName)
        case .routeConfig(let rc)?:
            table = rc
            base = "\(path).route_config"
        default:
            return nil
        }
        var places: [String] = []
        if table.typedPerFilterConfig[name] != nil { places.append(base) }
        for (v, vh) in table.virtualHosts.enumerated() {
            if vh.typedPerFilterConfig[name] != nil { places.append("\(base).virtual_hosts[\(v)]") }
            for (r, route) in vh.routes.enumerated() {
                if route.typedPerFilterConfig[name] != nil { places.append("\(base).virtual_hosts[\(v)].routes[\(r)]") }
                for (w, c) in route.route.weightedClusters.clusters.enumerated() where c.typedPerFilterConfig[name] != nil {
                    places.append("\(base).virtual_hosts[\(v)].routes[\(r)].route.weighted_clusters.clusters[\(w)]")
                }
            }
        }
        return places
    }

    /// What a deny-capable filter guards: the whole table, or where a filter disabled by
    /// default is enabled.
    private static func guarded(_ routes: String, _ enabledAt: [String]?) -> String {
        guard let enabledAt, !enabledAt.isEmpty else { return routes }
        let shown = enabledAt.prefix(3).joined(separator: ", ")
        return "\(routes), where it is enabled: \(shown)\(enabledAt.count > 3 ? " and \(enabledAt.count - 3) more" : "")"
    }

    private mutating func referenceCluster(_ name: String, path: String) -> IRChainAction {
        if referencedClusters[name] == nil { referencedClusters[name] = path }
        return .cluster(name)
    }

    private mutating func lowerHCM(
        _ hcm: Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager,
        listener: String, port: UInt16, path: String
    ) -> String? {
        var filters: [String] = []
        var guards: [RouteGuard] = []
        let routes: String =
            switch hcm.routeSpecifier {
            case .rds(let rds)?: "route configuration \(ResourcePath.quoted(rds.routeConfigName))"
            case .routeConfig(let rc)?: rc.name.isEmpty ? "its inline routes" : "inline route configuration \(ResourcePath.quoted(rc.name))"
            default: "its routes"
            }
        for (i, f) in hcm.httpFilters.enumerated() {
            let type = f.typedConfig.xdsTypeName
            guard !(type.isEmpty && f.name.isEmpty) else {
                diagnostics.append(
                    Diagnostic(.invalidResource, path: "\(path).http_filters[\(i)]", "HTTP filter has neither a name nor a typed_config"))
                return nil
            }
            if type == TypeURL.router || f.name == "envoy.filters.http.router" || f.name == "envoy.router" { continue }
            let name = f.name.isEmpty ? type : f.name
            let enabledAt = f.disabled && !f.name.isEmpty ? enablingPerFilterConfigs(f.name, hcm, path: path) : nil
            if let enabledAt, enabledAt.isEmpty {
                // Disabled by default and enabled by no route, virtual host or table: it never runs.
                diagnostics.append(
                    Diagnostic(
                        .notEnforced, .note, path: "\(path).http_filters[\(i)]",
                        "HTTP filter \(name) is disabled and no route enables it (typed_per_filter_config): it never runs"))
                continue
            }
            if FilterSafety.httpFilterCanDeny(type: type, name: f.name) {
                let filter = "HTTP filter \(name)\(type.isEmpty || type == name ? "" : " (\(type))")"
                let requests = "requests to listener \(ResourcePath.quoted(listener)) (\(Self.guarded(routes, enabledAt)))"
                if refuseGuarded {
                    guards.append(RouteGuard(filter: name, places: enabledAt))
                    diagnostics.append(
                        Diagnostic(
                            .refusedFailClosed, path: "\(path).http_filters[\(i)]",
                            "\(filter) can deny requests and the kernel cannot run it: \(requests) are refused (fail closed; --unsupported=warn bypasses the filter instead)"
                        ))
                } else {
                    diagnostics.append(
                        Diagnostic(
                            .bypassedFilter, path: "\(path).http_filters[\(i)]",
                            "\(filter) can deny requests and is not enforced in the kernel: \(requests) bypass it"))
                }
            } else {
                filters.append(name)
            }
        }
        if !filters.isEmpty {
            diagnostics.append(
                Diagnostic(
                    .notEnforced, path: "\(path).http_filters",
                    "HTTP filters \(filters.joined(separator: ", ")) are not enforced in the kernel"))
        }
        // The manager normalises the Host header before routing; it belongs to the route
        // table the kernel evaluates, so an RDS table shared by managers that normalise
        // differently is lowered once per variant.
        var norm = IRHostNormalization(stripTrailingDot: hcm.stripTrailingHostDot)
        if case .stripAnyHostPort(true)? = hcm.stripPortMode {
            norm.stripPort = .any
        } else if hcm.stripMatchingHostPort {
            norm.stripPort = .matching(port)
        }
        // The path normalisation (PathNormalization): the kernel routes a path no enabled
        // option changes and refuses the others.
        var pathNorm = IRPathNormalization(
            normalizePath: hcm.hasNormalizePath && hcm.normalizePath.value,
            mergeSlashes: hcm.mergeSlashes)
        switch hcm.pathWithEscapedSlashesAction {
        case .rejectRequest: pathNorm.escapedSlashes = .reject
        case .unescapeAndRedirect: pathNorm.escapedSlashes = .redirect
        case .unescapeAndForward: pathNorm.escapedSlashes = .forward
        default: break
        }
        switch hcm.routeSpecifier {
        case .rds(let rds)?:
            let base = rds.routeConfigName
            guard let rc = snapshot.routeConfigurations[base] else {
                // Envoy accepts the listener and waits for the table (initial_fetch_timeout);
                // until it arrives, no route matches and every request gets a 404. An empty
                // table refuses every request alike (a listener-only dump compiles).
                diagnostics.append(
                    Diagnostic(
                        .danglingRoute, .warning, path: "\(path).rds",
                        "references unknown route configuration \(ResourcePath.quoted(base)); Envoy answers 404 to every request until it arrives, and requests here are refused"
                    ))
                if routeTables[base] == nil {
                    var t = lowerRouteConfiguration(
                        Envoy_Config_Route_V3_RouteConfiguration.with { $0.name = base },
                        path: ResourcePath.routeConfiguration(base))
                    t.name = base
                    routeTables[base] = t
                }
                return base
            }
            // Named after the Host normalisation as before; the path normalisation joins the
            // name only when managers sharing the table differ in it, and the filters that
            // guard routes (refused) whenever there are any.
            var name = norm.isIdentity ? base : "\(base)@\(Self.variantSuffix(norm))"
            if let other = routeTables[name + Self.guardSuffix(guards)], other.pathNormalization != pathNorm {
                let suffix = Self.variantSuffix(norm, pathNorm)
                name = "\(base)@\(suffix.isEmpty ? "path_as_sent" : suffix)"
            }
            name += Self.guardSuffix(guards)
            if routeTables[name] == nil {
                if name != base { loweredVariants.insert(base) }
                var t = lowerRouteConfiguration(rc.message, path: ResourcePath.routeConfiguration(base))
                validateClusters(t, enabled: rc.message.hasValidateClusters && rc.message.validateClusters.value)
                Self.refuseGuardedRoutes(&t, guards)
                t.name = name
                t.hostNormalization = norm
                t.pathNormalization = pathNorm
                routeTables[name] = t
            }
            return name
        case .routeConfig(let rc)?:
            // Inline tables are named after their place: `listener/filter_chains[i].filters[j]`
            // (their own name is usually empty, and must not make two tables one).
            let prefix = ResourcePath.listener(listener) + "."
            let name = "\(listener)/\(path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path)"
            var t = lowerRouteConfiguration(rc, path: "\(path).route_config")
            // Envoy validates an inline table's clusters unless told not to
            // (validate_clusters defaults to true for route_config, false for RDS).
            validateClusters(t, enabled: rc.hasValidateClusters ? rc.validateClusters.value : true)
            Self.refuseGuardedRoutes(&t, guards)
            t.name = name
            t.hostNormalization = norm
            t.pathNormalization = pathNorm
            routeTables[name] = t
            return name
        case .scopedRoutes?:
            diagnostics.append(Diagnostic(.unsupportedRouting, path: "\(path).scoped_routes", "scoped routes (SRDS) are not supported"))
            return nil
        default:
            diagnostics.append(Diagnostic(.invalidResource, path: path, "http_connection_manager has neither rds nor route_config"))
            return nil
        }
    }

    /// A deny-capable HTTP filter of a connection manager: everywhere (`places` nil) or
    /// where the route table's `typed_per_filter_config` enables it (resource paths).
    struct RouteGuard {
        var filter: String
        /// The places as route paths and their ancestors (a weighted cluster's place stands
        /// for its route), in a set: a table can have thousands of routes and places.
        private var places: Set<String>?

        init(filter: String, places: [String]?) {
            self.filter = filter
            self.places = places.map { list in
                Set(list.map { p in p.range(of: ".route.weighted_clusters.", options: .backwards).map { String(p[..<$0.lowerBound]) } ?? p })
            }
        }

        var everywhere: Bool { places == nil }

        /// Whether it runs on the route at `path` (`TABLE.virtual_hosts[i].routes[j]`): a place
        /// is the route, its virtual host, its table, or one of its weighted clusters.
        func guards(_ path: String) -> Bool {
            guard let places else { return true }
            if places.contains(path) { return true }
            guard let r = path.range(of: ".routes[", options: .backwards) else { return false }
            let vhost = path[..<r.lowerBound]
            if places.contains(String(vhost)) { return true }
            guard let v = vhost.range(of: ".virtual_hosts[", options: .backwards) else { return false }
            return places.contains(String(vhost[..<v.lowerBound]))
        }
    }

    /// The name suffix of a route table lowered under guards (managers sharing an RDS
    /// table may differ in their filters): `@guarded:` and the guards in order.
    static func guardSuffix(_ guards: [RouteGuard]) -> String {
        guards.isEmpty ? "" : "@guarded:" + guards.map { $0.everywhere ? $0.filter : "\($0.filter)(per-route)" }.joined(separator: ",")
    }

    /// Fail closed: a route that a deny-capable filter guards is refused in the kernel
    /// (`.guarded`); where it would have gone stays in its notes for `explain`. A filter
    /// enabled only on one weighted cluster refuses the whole route.
    static func refuseGuardedRoutes(_ t: inout IRRouteTable, _ guards: [RouteGuard]) {
        guard !guards.isEmpty else { return }
        for v in t.virtualHosts.indices {
            for r in t.virtualHosts[v].routes.indices {
                let route = t.virtualHosts[v].routes[r]
                let by = guards.filter { $0.guards(route.path) }.map(\.filter)
                guard !by.isEmpty else { continue }
                t.virtualHosts[v].routes[r].notes.other.append("once \(by.joined(separator: ", ")) admits it: \(IRPrinter.action(route.action))")
                t.virtualHosts[v].routes[r].action = .guarded(filters: by)
            }
        }
    }

    static func variantSuffix(_ n: IRHostNormalization, _ path: IRPathNormalization = IRPathNormalization()) -> String {
        var parts: [String] = []
        if path.normalizePath { parts.append("normalize_path") }
        if path.mergeSlashes { parts.append("merge_slashes") }
        if path.escapedSlashes != .keep { parts.append(path.escapedSlashes.rawValue) }
        if n.stripTrailingDot { parts.append("strip_dot") }
        switch n.stripPort {
        case .none: break
        case .any: parts.append("strip_port")
        case .matching(let p): parts.append("strip_port_\(p)")
        }
        return parts.joined(separator: "+")
    }

    // MARK: Routes

    /// Envoy's LowerCaseString: ASCII letters only.
    static func asciiLower(_ s: String) -> String {
        String(decoding: s.utf8.map { ($0 >= 0x41 && $0 <= 0x5A) ? $0 + 32 : $0 }, as: UTF8.self)
    }

    private mutating func lowerHeaderMutation(_ add: [Envoy_Config_Core_V3_HeaderValueOption], _ remove: [String]) -> IRHeaderMutation {
        var m = IRHeaderMutation(remove: remove.map(Self.asciiLower))
        for o in add {
            var action: IRHeaderMutation.Action =
                switch o.appendAction {
                case .addIfAbsent: .addIfAbsent
                case .overwriteIfExistsOrAdd: .overwriteIfExistsOrAdd
                case .overwriteIfExists: .overwriteIfExists
                default: .appendIfExistsOrAdd
                }
            // The deprecated `append` flag, when set, decides (HeaderParser::configure).
            if o.hasAppend { action = o.append.value ? .appendIfExistsOrAdd : .overwriteIfExistsOrAdd }
            m.add.append(
                IRHeaderMutation.Add(
                    key: Self.asciiLower(o.header.key), value: o.header.value, action: action,
                    keepEmptyValue: o.keepEmptyValue))
        }
        return m
    }

    /// With validate_clusters in effect, Envoy refuses a route table (and so the
    /// listener that carries it) whose routes name a cluster it does not have.
    private mutating func validateClusters(_ t: IRRouteTable, enabled: Bool) {
        guard enabled else { return }
        for vh in t.virtualHosts {
            for r in vh.routes {
                let names: [String] =
                    switch r.action {
                    case .cluster(let c): [c]
                    case .weighted(let w, _): w.map(\.cluster)
                    default: []
                    }
                for n in names where snapshot.clusters[n] == nil {
                    diagnostics.append(
                        Diagnostic(
                            .danglingCluster, .error, path: r.path,
                            "references unknown cluster \(ResourcePath.quoted(n)) and the route table validates its clusters (validate_clusters, true by default for an inline route_config): Envoy rejects it"
                        ))
                }
            }
        }
    }

    private mutating func lowerRouteConfiguration(_ rc: Envoy_Config_Route_V3_RouteConfiguration, path: String) -> IRRouteTable {
        if rc.hasVhds {
            diagnostics.append(Diagnostic(.unsupportedRouting, path: "\(path).vhds", "virtual host discovery (VHDS) is not supported"))
        }
        var vhosts: [IRVirtualHost] = []
        var seenDomains: [String: String] = [:]
        for (i, vh) in rc.virtualHosts.enumerated() {
            let vpath = "\(path).virtual_hosts[\(i)]"
            var notEnforced: [String] = []
            if vh.requireTls != .none { notEnforced.append("require_tls (the redirect to https is Envoy's answer)") }
            if vh.hasRetryPolicy { notEnforced.append("retry_policy") }
            if !vh.rateLimits.isEmpty { notEnforced.append("rate_limits") }
            if !notEnforced.isEmpty {
                diagnostics.append(Diagnostic(.notEnforced, path: vpath, "virtual host \(notEnforced.joined(separator: ", ")) not enforced in the kernel"))
            }
            let domains = vh.domains.map(Self.asciiLower)
            for d in domains {
                if let other = seenDomains[d] {
                    diagnostics.append(
                        Diagnostic(
                            .duplicateName, path: vpath, "domain \(ResourcePath.quoted(d)) is also in \(other); Envoy rejects such a route configuration"))
                } else {
                    seenDomains[d] = vpath
                }
            }
            var routes: [IRRoute] = []
            for (j, r) in vh.routes.enumerated() {
                if let lowered = lowerRoute(r, path: "\(vpath).routes[\(j)]") { routes.append(lowered) }
            }
            var out = IRVirtualHost(name: vh.name, path: vpath, domains: domains, routes: routes)
            out.requireTLS =
                switch vh.requireTls {
                case .all: .all
                case .externalOnly: .externalOnly
                default: .none
                }
            out.requestHeaders = lowerHeaderMutation(vh.requestHeadersToAdd, vh.requestHeadersToRemove)
            out.responseHeaders = lowerHeaderMutation(vh.responseHeadersToAdd, vh.responseHeadersToRemove)
            for (j, vc) in vh.virtualClusters.enumerated() {
                var headers: [IRHeaderMatch] = []
                for (k, h) in vc.headers.enumerated() {
                    if let hm = lowerHeaderMatcher(h, path: "\(vpath).virtual_clusters[\(j)].headers[\(k)]") { headers.append(hm) }
                }
                out.virtualClusters.append(IRVirtualCluster(name: vc.name, headers: headers))
            }
            vhosts.append(out)
        }
        var table = IRRouteTable(
            name: rc.name, path: path, virtualHosts: vhosts,
            ignorePortInHostMatching: rc.ignorePortInHostMatching)
        if !rc.vhostHeader.isEmpty { table.vhostHeader = Self.asciiLower(rc.vhostHeader) }
        table.ignorePathParameters = rc.ignorePathParametersInPathMatching
        table.requestHeaders = lowerHeaderMutation(rc.requestHeadersToAdd, rc.requestHeadersToRemove)
        table.responseHeaders = lowerHeaderMutation(rc.responseHeadersToAdd, rc.responseHeadersToRemove)
        table.mostSpecificHeaderMutationsWins = rc.mostSpecificHeaderMutationsWins
        table.internalOnlyHeaders = rc.internalOnlyHeaders.map(Self.asciiLower)
        return table
    }

    /// A `safe_regex` is checked against the RE2 subset the compiler turns into
    /// automata; the diagnostic names the construct it cannot compile.
    private mutating func checkRegex(_ pattern: String, path: String) -> Bool {
        if case .failure(let e) = RegexCache.compile(pattern) {
            diagnostics.append(
                Diagnostic(
                    e.unsupported ? .unsupportedMatcher : .invalidResource, path: path,
                    "regex \(ResourcePath.quoted(pattern)): \(e.description)"))
            return false
        }
        return true
    }

    private mutating func lowerStringMatch(_ m: Envoy_Type_Matcher_V3_StringMatcher, path: String) -> IRStringMatch? {
        switch m.matchPattern {
        case .exact(let s)?: return .exact(s)
        case .prefix(let s)?: return .prefix(s)
        case .suffix(let s)?: return .suffix(s)
        case .contains(let s)?: return .contains(s)
        case .safeRegex(let r)?:
            if m.ignoreCase {
                diagnostics.append(Diagnostic(.invalidResource, path: path, "ignore_case has no effect for safe_regex; Envoy rejects it"))
                return nil
            }
            guard checkRegex(r.regex, path: "\(path).safe_regex") else { return nil }
            return .regex(r.regex)
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
        case .safeRegex(let re)?:
            guard checkRegex(re.regex, path: "\(mpath).safe_regex") else { return nil }
            match = IRRouteMatch(path: .regex(re.regex))
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
            let denominator: UInt32 =
                switch d.denominator {
                case .hundred: 100
                case .tenThousand: 10_000
                case .million: 1_000_000
                default: 100
                }
            match.runtimeFraction = IRFraction(
                numerator: d.numerator, denominator: denominator,
                runtimeKey: m.runtimeFraction.runtimeKey)
        }
        if !m.cookies.isEmpty {
            diagnostics.append(Diagnostic(.unsupportedMatcher, path: "\(mpath).cookies", "cookie matchers are not supported"))
            return nil
        }
        if !m.filterState.isEmpty {
            diagnostics.append(Diagnostic(.unsupportedMatcher, path: "\(mpath).filter_state", "filter_state matchers are not supported"))
            return nil
        }
        if m.hasTlsContext {
            diagnostics.append(Diagnostic(.unsupportedMatcher, path: "\(mpath).tls_context", "tls_context match is not supported"))
            return nil
        }
        for (i, dm) in m.dynamicMetadata.enumerated() {
            guard let v = lowerValueMatch(dm.value, path: "\(mpath).dynamic_metadata[\(i)].value") else { return nil }
            var keys: [String] = []
            for seg in dm.path {
                if case .key(let k)? = seg.segment { keys.append(k) }
            }
            match.dynamicMetadata.append(IRMetadataMatch(filter: dm.filter, path: keys, value: v, invert: dm.invert))
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
            guard rd.portRedirect <= 65535 else {
                diagnostics.append(Diagnostic(.invalidPort, path: "\(path).redirect.port_redirect", "port_redirect \(rd.portRedirect) is out of range 0-65535"))
                return nil
            }
            if rd.portRedirect != 0 { out.port = rd.portRedirect }
            switch rd.pathRewriteSpecifier {
            case .pathRedirect(let p)?: out.path = p
            case .prefixRewrite(let p)?: out.prefixRewrite = p
            case .regexRewrite(let rr)?:
                guard checkRegex(rr.pattern.regex, path: "\(path).redirect.regex_rewrite.pattern") else { return nil }
                out.regexRewrite = IRRegexRewrite(pattern: rr.pattern.regex, substitution: rr.substitution)
            default: break
            }
            out.responseCode =
                switch rd.responseCode {
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
            guard dr.status >= 200, dr.status < 600 else {
                diagnostics.append(
                    Diagnostic(
                        .invalidResource, path: "\(path).direct_response.status",
                        "direct_response status \(dr.status) is outside 200-599; Envoy rejects it"))
                return nil
            }
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
        var route = IRRoute(name: r.name, path: path, match: match, action: action, notes: notes)
        route.requestHeaders = lowerHeaderMutation(r.requestHeadersToAdd, r.requestHeadersToRemove)
        route.responseHeaders = lowerHeaderMutation(r.responseHeadersToAdd, r.responseHeadersToRemove)
        return route
    }

    private mutating func lowerValueMatch(_ v: Envoy_Type_Matcher_V3_ValueMatcher, path: String) -> IRValueMatch? {
        switch v.matchPattern {
        case .nullMatch?: return .null
        case .boolMatch(let b)?: return .bool(b)
        case .presentMatch(let p)?: return .present(p)
        case .stringMatch(let sm)?:
            guard let s = lowerStringMatch(sm, path: "\(path).string_match") else { return nil }
            return .string(s, ignoreCase: sm.ignoreCase)
        case .doubleMatch(let d)?:
            switch d.matchPattern {
            case .exact(let x)?: return .doubleExact(x)
            case .range(let r)?: return .doubleRange(start: r.start, end: r.end)
            default: break
            }
        case .listMatch(let l)?:
            if case .oneOf(let inner)? = l.matchPattern, let one = lowerValueMatch(inner, path: "\(path).list_match.one_of") {
                return .list(oneOf: one)
            }
            return nil
        case .orMatch(let o)?:
            var out: [IRValueMatch] = []
            for (i, m) in o.valueMatchers.enumerated() {
                guard let x = lowerValueMatch(m, path: "\(path).or_match.value_matchers[\(i)]") else { return nil }
                out.append(x)
            }
            return .or(out)
        default:
            break
        }
        diagnostics.append(Diagnostic(.invalidResource, path: path, "value matcher has no supported pattern"))
        return nil
    }

    /// Header matchers outside a route (route-check's expectations), lowered the same way.
    public static func lowerHeaderMatchers(_ hs: [Envoy_Config_Route_V3_HeaderMatcher], path: String) -> ([IRHeaderMatch], [Diagnostic]) {
        var l = Lowerer(ResolvedSnapshot())
        var out: [IRHeaderMatch] = []
        for (i, h) in hs.enumerated() {
            if let m = l.lowerHeaderMatcher(h, path: "\(path)[\(i)]") { out.append(m) }
        }
        return (out, l.diagnostics)
    }

    private mutating func lowerHeaderMatcher(_ h: Envoy_Config_Route_V3_HeaderMatcher, path: String) -> IRHeaderMatch? {
        let name = Self.asciiLower(h.name)
        let kind: IRHeaderMatch.Kind
        switch h.headerMatchSpecifier {
        case .exactMatch(let s)?:
            // An empty deprecated exact_match accepts any value (HeaderDataExactMatch).
            kind = s.isEmpty ? .anyValue : .string(.exact(s), ignoreCase: false)
        case .safeRegexMatch(let r)?:
            guard checkRegex(r.regex, path: "\(path).safe_regex_match") else { return nil }
            kind = .string(.regex(r.regex), ignoreCase: false)
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
        if ra.hasRegexRewrite {
            guard checkRegex(ra.regexRewrite.pattern.regex, path: "\(path).regex_rewrite.pattern") else { return nil }
            notes.regexRewrite = IRRegexRewrite(pattern: ra.regexRewrite.pattern.regex, substitution: ra.regexRewrite.substitution)
            notEnforced.append("regex_rewrite")
        }
        if ra.hasPathRewritePolicy { notes.other.append("path_rewrite_policy"); notEnforced.append("path_rewrite_policy") }
        switch ra.hostRewriteSpecifier {
        case .hostRewriteLiteral(let h)?: notes.hostRewrite = h; notEnforced.append("host_rewrite_literal")
        case .autoHostRewrite?: notes.other.append("auto_host_rewrite"); notEnforced.append("auto_host_rewrite")
        case .hostRewriteHeader(let h)?: notes.hostRewriteHeader = Self.asciiLower(h); notEnforced.append("host_rewrite_header")
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
            return .clusterHeader(Self.asciiLower(h))
        case .weightedClusters(let wc)?:
            var chosenBy = false
            switch wc.randomValueSpecifier {
            case .headerName(let h)?: chosenBy = !h.isEmpty
            case .useHashPolicy(let b)?: chosenBy = b.value
            default: break
            }
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
            // A value taken from a header or the hash policy decides only between
            // clusters that carry weight: with one such cluster (Envoy Gateway
            // writes use_hash_policy over a single backend) the pick is that
            // cluster whatever the value, which the kernel routes exactly.
            if chosenBy, entries.filter({ $0.weight > 0 }).count > 1 {
                diagnostics.append(
                    Diagnostic(
                        .unsupportedRouting, path: "\(path).weighted_clusters",
                        "weighted clusters chosen by a header or a hash policy are not supported (more than one cluster has weight)"))
                return nil
            }
            let sum = entries.reduce(UInt64(0)) { $0 + UInt64($1.weight) }
            let total = wc.hasTotalWeight ? UInt64(wc.totalWeight.value) : sum
            guard sum > 0, sum <= UInt64(UInt32.max) else {
                diagnostics.append(Diagnostic(.invalidResource, path: "\(path).weighted_clusters", "weighted clusters must have a positive total weight"))
                return nil
            }
            if wc.hasTotalWeight, total != sum {
                diagnostics.append(
                    Diagnostic(
                        .invalidResource, path: "\(path).weighted_clusters.total_weight",
                        "total_weight \(total) differs from the sum of weights \(sum); Envoy rejects this"))
                return nil
            }
            return .weighted(entries, total: UInt32(sum))
        default:
            diagnostics.append(
                Diagnostic(
                    .unsupportedRouting, path: path,
                    "route action without cluster, cluster_header or weighted_clusters (cluster specifier plugins are not supported)"))
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
                diagnostics.append(
                    Diagnostic(
                        .unsupportedCluster, path: "\(path).lb_policy",
                        "CLUSTER_PROVIDED load balancing is not supported; with --unsupported=warn the cluster uses round robin"))
            }
        case .loadBalancingPolicyConfig:
            break
        default:
            diagnostics.append(Diagnostic(.unsupportedCluster, path: "\(path).lb_policy", "unknown lb_policy \(c.lbPolicy.rawValue)"))
            return nil
        }
        var localityWeighted = false
        var equalEndpointWeights = false
        if case .localityWeightedLbConfig? = c.commonLbConfig.localityConfigSpecifier { localityWeighted = true }
        if c.hasLoadBalancingPolicy {
            guard let (policy, locality, equal) = typedLBPolicy(c.loadBalancingPolicy, path: "\(path).load_balancing_policy") else { return nil }
            lb = policy
            localityWeighted = localityWeighted || locality
            equalEndpointWeights = equal
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
        var dnsKind: Envoy_Config_Cluster_V3_Cluster.DiscoveryType?
        var dnsSettings = DNSSettings(legacy: c, path: path)
        switch c.clusterDiscoveryType {
        case .type(let t)?:
            switch t {
            case .static, .strictDns, .logicalDns:
                if c.hasLoadAssignment { cla = c.loadAssignment }
                if t != .static { dnsKind = t }
            case .eds:
                let service = c.edsClusterConfig.serviceName.isEmpty ? r.name : c.edsClusterConfig.serviceName
                if let found = snapshot.loadAssignments[service] {
                    cla = found.message
                    claPath = ResourcePath.loadAssignment(service)
                } else if c.hasLoadAssignment {
                    cla = c.loadAssignment
                } else {
                    diagnostics.append(
                        Diagnostic(
                            .missingEndpoints, .warning, path: path,
                            "EDS cluster has no ClusterLoadAssignment \(ResourcePath.quoted(service)) in the snapshot; it has no endpoints"))
                }
            case .originalDst:
                return IRCluster(name: r.name, path: path, lb: lb, priorities: [])
                    .withOriginalDestination()
            default:
                diagnostics.append(Diagnostic(.unsupportedCluster, path: "\(path).type", "cluster discovery type \(t.rawValue) is not supported"))
                return nil
            }
        case .clusterType(let ct)? where ct.name == "envoy.cluster.dns":
            // The DNS cluster extension (Envoy Gateway writes it): its settings are
            // in a DnsCluster; all_addresses_in_single_endpoint makes it LOGICAL_DNS.
            let ctPath = "\(path).cluster_type.typed_config"
            let dnsType = "envoy.extensions.clusters.dns.v3.DnsCluster"
            guard ct.typedConfig.xdsTypeName == dnsType else {
                let got = ct.typedConfig.xdsTypeName.isEmpty ? "none" : ct.typedConfig.xdsTypeName
                diagnostics.append(
                    Diagnostic(.invalidResource, path: ctPath, "envoy.cluster.dns needs a typed_config of type \(dnsType) (got \(got)); Envoy rejects this"))
                return nil
            }
            do {
                guard let dns = try ct.typedConfig.unpackIfXDS(Envoy_Extensions_Clusters_Dns_V3_DnsCluster.self) else {
                    throw TypedStructConfig()
                }
                dnsSettings = DNSSettings(extension: dns, path: ctPath)
                dnsKind = dns.allAddressesInSingleEndpoint ? .logicalDns : .strictDns
            } catch {
                diagnostics.append(
                    Diagnostic(
                        .invalidResource, path: ctPath,
                        "the DnsCluster of envoy.cluster.dns does not decode: \(error)"
                    ))
                return nil
            }
            if c.hasLoadAssignment { cla = c.loadAssignment }
        case .clusterType(let ct)? where ct.name == "envoy.cluster.strict_dns" || ct.name == "envoy.cluster.logical_dns":
            // The registered names of the legacy types: the cluster's own DNS fields.
            dnsKind = ct.name == "envoy.cluster.logical_dns" ? .logicalDns : .strictDns
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
            let rpath = "\(path).ring_hash_lb_config"
            if rh.hasMinimumRingSize { out.ringMinimumSize = rh.minimumRingSize.value }
            if rh.hasMaximumRingSize { out.ringMaximumSize = rh.maximumRingSize.value }
            // Envoy's validation: both sizes at most 8M entries, the minimum not above the maximum.
            for (field, v) in [("minimum_ring_size", out.ringMinimumSize), ("maximum_ring_size", out.ringMaximumSize)]
            where v > LBTables.maxRingSize {
                diagnostics.append(
                    Diagnostic(
                        .invalidResource, path: "\(rpath).\(field)",
                        "\(field) \(v) exceeds Envoy's limit of \(LBTables.maxRingSize)"))
                return nil
            }
            guard out.ringMinimumSize <= out.ringMaximumSize else {
                diagnostics.append(
                    Diagnostic(
                        .invalidResource, path: rpath,
                        "minimum_ring_size \(out.ringMinimumSize) is greater than maximum_ring_size \(out.ringMaximumSize); Envoy rejects this"))
                return nil
            }
        case .maglevLbConfig(let m)?:
            if m.hasTableSize {
                let size = m.tableSize.value
                let mpath = "\(path).maglev_lb_config.table_size"
                guard size <= LBTables.maxMaglevTableSize else {
                    diagnostics.append(
                        Diagnostic(
                            .invalidResource, path: mpath,
                            "maglev table_size \(size) exceeds Envoy's limit of \(LBTables.maxMaglevTableSize)"))
                    return nil
                }
                guard LBTables.isPrime(size) else {
                    diagnostics.append(
                        Diagnostic(
                            .invalidResource, path: mpath,
                            "maglev table_size \(size) is not a prime number; Envoy requires a prime"))
                    return nil
                }
                out.maglevTableSize = size
            }
        default:
            break
        }
        if let cla {
            if cla.hasPolicy, cla.policy.hasOverprovisioningFactor {
                let factor = cla.policy.overprovisioningFactor.value
                guard factor > 0 else {
                    diagnostics.append(
                        Diagnostic(
                            .invalidResource, path: "\(claPath).policy.overprovisioning_factor",
                            "overprovisioning_factor must be greater than 0"))
                    return nil
                }
                out.overprovisioningFactor = factor
            }
            if dnsKind == .logicalDns, cla.endpoints.count != 1 || cla.endpoints[0].lbEndpoints.count != 1 {
                diagnostics.append(
                    Diagnostic(
                        .invalidResource, path: claPath,
                        "a LOGICAL_DNS cluster must have exactly one locality with one endpoint; Envoy rejects this"))
                return nil
            }
            dnsEndpoints = dnsKind == nil ? nil : DNSEndpoints(logical: dnsKind == .logicalDns)
            defer { dnsEndpoints = nil }
            guard let priorities = lowerEndpoints(cla, path: claPath) else { return nil }
            out.priorities = priorities
            if equalEndpointWeights {
                for p in out.priorities.indices {
                    for l in out.priorities[p].localities.indices {
                        for e in out.priorities[p].localities[l].endpoints.indices { out.priorities[p].localities[l].endpoints[e].weight = 1 }
                    }
                }
                for i in dnsEndpoints?.entries.indices ?? 0..<0 { dnsEndpoints?.entries[i].host.weight = 1 }
            }
            if let found = dnsEndpoints, found.hasNames {
                dnsSettings.logical = dnsKind == .logicalDns
                guard let dns = dnsResolution(dnsSettings, found, lowered: out) else { return nil }
                out.dns = dns
            }
        }
        return out
    }

    /// Envoy's default `dns_refresh_rate`.
    static let defaultDNSRefreshMs: UInt32 = 5000

    /// How the loader resolves the host names of a DNS cluster, or nil (diagnosed):
    /// after the lookups it builds the priority levels and every LB table as the
    /// compiler does (`ClusterSemantics`, `LBTables`), so it needs the cluster's
    /// settings, not its addresses.
    private mutating func dnsResolution(_ settings: DNSSettings, _ found: DNSEndpoints, lowered: IRCluster) -> IRDNSResolution? {
        var refresh = Self.defaultDNSRefreshMs
        if let rate = settings.refreshRate {
            // Envoy requires more than 1 ms; the loader counts whole milliseconds, within a u32.
            guard rate.seconds > 0 || (rate.seconds == 0 && rate.nanos > 1_000_000) else {
                diagnostics.append(
                    Diagnostic(.invalidResource, path: "\(settings.path).dns_refresh_rate", "dns_refresh_rate must be greater than 1ms; Envoy rejects this"))
                return nil
            }
            refresh = UInt32(clamping: rate.seconds * 1000 + Int64(rate.nanos / 1_000_000))
        }
        var out = IRDNSResolution(
            logical: settings.logical, lookupFamily: settings.family, refreshRateMs: refresh,
            respectDNSTTL: settings.respectTTL, hosts: found.entries.map(\.host))
        out.localities = found.localities
        out.localityWeighted = lowered.localityWeighted
        out.overprovisioningFactor = lowered.overprovisioningFactor
        out.maglevTableSize = lowered.maglevTableSize
        out.ringMinimumSize = lowered.ringMinimumSize
        out.ringMaximumSize = lowered.ringMaximumSize
        return out
    }

    /// A DNS cluster's settings: the cluster's own fields (STRICT_DNS, LOGICAL_DNS)
    /// or the `envoy.cluster.dns` extension's DnsCluster (Envoy reads only the
    /// extension's then).
    struct DNSSettings {
        var logical = false
        var family: IRDNSResolution.LookupFamily
        var refreshRate: Google_Protobuf_Duration?
        var respectTTL: Bool
        /// Where the settings are, for diagnostics.
        var path: String

        init(legacy c: Envoy_Config_Cluster_V3_Cluster, path: String) {
            family =
                switch c.dnsLookupFamily {
                case .v4Only: .v4Only
                case .v6Only: .v6Only
                case .v4Preferred: .v4Preferred
                case .all: .all
                default: .auto
                }
            refreshRate = c.hasDnsRefreshRate ? c.dnsRefreshRate : nil
            respectTTL = c.respectDnsTtl
            self.path = path
        }

        init(extension d: Envoy_Extensions_Clusters_Dns_V3_DnsCluster, path: String) {
            // The extension's own enum: UNSPECIFIED is AUTO (Envoy's DnsUtils).
            family =
                switch d.dnsLookupFamily {
                case .v4Only: .v4Only
                case .v6Only: .v6Only
                case .v4Preferred: .v4Preferred
                case .all: .all
                default: .auto
                }
            refreshRate = d.hasDnsRefreshRate ? d.dnsRefreshRate : nil
            respectTTL = d.respectDnsTtl
            self.path = path
        }
    }

    /// The policy, whether locality weights apply, and whether the endpoints'
    /// own weights are replaced by equal ones.
    private mutating func typedLBPolicy(_ p: Envoy_Config_Cluster_V3_LoadBalancingPolicy, path: String) -> (IRLBPolicy, Bool, Bool)? {
        // Envoy uses the first policy in the list it supports.
        for (index, pol) in p.policies.enumerated() {
            let any = pol.typedExtensionConfig.typedConfig
            let type = any.xdsTypeName
            // Each policy's own locality_lb_config (Envoy Gateway sets locality_weighted_lb_config
            // on every cluster: its backend weights are locality weights).
            func weighted(_ spec: Envoy_Extensions_LoadBalancingPolicies_Common_V3_LocalityLbConfig.OneOf_LocalityConfigSpecifier?) -> Bool {
                if case .localityWeightedLbConfig? = spec { return true }
                return false
            }
            switch type {
            case "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin":
                let m = try? any.unpackIfXDS(Envoy_Extensions_LoadBalancingPolicies_RoundRobin_V3_RoundRobin.self)
                return (.roundRobin, weighted(m?.localityLbConfig.localityConfigSpecifier), false)
            case "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest":
                let m = try? any.unpackIfXDS(Envoy_Extensions_LoadBalancingPolicies_LeastRequest_V3_LeastRequest.self)
                return (.leastRequest, weighted(m?.localityLbConfig.localityConfigSpecifier), false)
            case "envoy.extensions.load_balancing_policies.random.v3.Random":
                let m = try? any.unpackIfXDS(Envoy_Extensions_LoadBalancingPolicies_Random_V3_Random.self)
                return (.random, weighted(m?.localityLbConfig.localityConfigSpecifier), false)
            case "envoy.extensions.load_balancing_policies.maglev.v3.Maglev":
                let m = try? any.unpackIfXDS(Envoy_Extensions_LoadBalancingPolicies_Maglev_V3_Maglev.self)
                return (.maglev, m?.hasLocalityWeightedLbConfig ?? false, false)
            case "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash":
                let m = try? any.unpackIfXDS(Envoy_Extensions_LoadBalancingPolicies_RingHash_V3_RingHash.self)
                return (.ringHash, m?.hasLocalityWeightedLbConfig ?? false, false)
            case "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality":
                // Locality-weighted round robin: locality weights apply, endpoints picked by the inner policy (RR here).
                return (.roundRobin, true, false)
            case "envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin":
                // Weights from the endpoints' ORCA load reports, which never reach the kernel.
                // Until an endpoint has reported, Envoy gives every endpoint the same weight
                // (not its load_balancing_weight): round robin over equal weights.
                diagnostics.append(
                    Diagnostic(
                        .notEnforced, path: "\(path).policies[\(index)]",
                        "client_side_weighted_round_robin: weights from ORCA load reports are not applied in the kernel; endpoints are picked by round robin with equal weights, as Envoy does while no endpoint has reported load"
                    ))
                return (.roundRobin, false, true)
            default:
                continue
            }
        }
        diagnostics.append(
            Diagnostic(
                .unsupportedCluster, path: path,
                "no supported policy in load_balancing_policy (\(p.policies.map { $0.typedExtensionConfig.name }.joined(separator: ", "))); with --unsupported=warn the cluster uses round robin"
            ))
        return (.roundRobin, false, false)
    }

    /// Envoy's limit on endpoint priorities (`LocalityLbEndpoints.priority`, lte 128).
    static let maxPriority: UInt32 = 128

    /// The endpoints by priority, or nil when a value is out of its domain (diagnosed).
    private mutating func lowerEndpoints(_ cla: Envoy_Config_Endpoint_V3_ClusterLoadAssignment, path: String) -> [IRPriority]? {
        var byLevel: [UInt32: [IRLocality]] = [:]
        var localityWeightSums: [UInt32: UInt64] = [:]
        var valid = true
        for (i, lle) in cla.endpoints.enumerated() {
            let lpath = "\(path).endpoints[\(i)]"
            let locality = UInt32(dnsEndpoints?.localities.count ?? 0)
            dnsEndpoints?.localities.append(
                .init(priority: lle.priority, weight: lle.hasLoadBalancingWeight ? lle.loadBalancingWeight.value : nil))
            guard lle.priority <= Self.maxPriority else {
                diagnostics.append(
                    Diagnostic(
                        .invalidResource, path: "\(lpath).priority",
                        "priority \(lle.priority) exceeds Envoy's maximum of \(Self.maxPriority)"))
                valid = false
                continue
            }
            if lle.hasLoadBalancingWeight {
                let sum = localityWeightSums[lle.priority, default: 0] + UInt64(lle.loadBalancingWeight.value)
                localityWeightSums[lle.priority] = sum
                if sum > UInt64(UInt32.max) {
                    diagnostics.append(
                        Diagnostic(
                            .invalidResource, path: "\(lpath).load_balancing_weight",
                            "the locality weights of priority \(lle.priority) sum to more than \(UInt32.max); Envoy rejects this"))
                    valid = false
                    continue
                }
            }
            var eps: [IREndpoint] = []
            for (j, le) in lle.lbEndpoints.enumerated() {
                let epath = "\(lpath).lb_endpoints[\(j)]"
                guard case .endpoint(let e)? = le.hostIdentifier else {
                    diagnostics.append(Diagnostic(.unsupportedCluster, path: epath, "endpoint by endpoint_name (named endpoints) is not supported"))
                    continue
                }
                let weight = le.hasLoadBalancingWeight ? le.loadBalancingWeight.value : 1
                let health: IRHealth =
                    switch le.healthStatus {
                    case .healthy: .healthy
                    case .unhealthy: .unhealthy
                    case .draining: .draining
                    case .timeout: .timeout
                    case .degraded: .degraded
                    default: .unknown
                    }
                guard let (ip, port) = socketAddress(e.address, path: "\(epath).endpoint.address", what: "endpoint") else {
                    recordDNSName(
                        e.address, weight: weight, priority: lle.priority, locality: locality, health: health, path: "\(epath).endpoint.address")
                    continue
                }
                if weight == 0 {
                    diagnostics.append(Diagnostic(.invalidResource, path: "\(epath).load_balancing_weight", "endpoint weight must be at least 1"))
                    continue
                }
                // A name given with --resolve: STRICT_DNS makes every address an endpoint (as the loader does).
                var addresses = [ip]
                if let found = dnsEndpoints, !found.logical, case .socketAddress(let sa)? = e.address.address,
                    IRAddress(parsing: sa.address) == nil, let given = hostAddresses[sa.address]
                {
                    addresses = given
                }
                for ip in addresses {
                    dnsEndpoints?.entries.append(
                        .init(
                            host: .init(
                                host: ip.description, port: port, weight: weight, priority: lle.priority, locality: locality,
                                routable: health.isRoutable), isName: false))
                    eps.append(IREndpoint(address: ip, port: port, weight: weight, health: health))
                }
            }
            if eps.reduce(UInt64(0), { $0 + UInt64($1.weight) }) > UInt64(UInt32.max) {
                diagnostics.append(
                    Diagnostic(
                        .invalidResource, path: "\(lpath).lb_endpoints",
                        "the endpoint weights of this locality sum to more than \(UInt32.max); Envoy rejects this"))
                valid = false
                continue
            }
            let loc = IRLocality(
                region: lle.locality.region, zone: lle.locality.zone, subZone: lle.locality.subZone,
                weight: lle.hasLoadBalancingWeight ? lle.loadBalancingWeight.value : nil, endpoints: eps)
            byLevel[lle.priority, default: []].append(loc)
        }
        let levels = byLevel.keys.sorted()
        if let last = levels.last, last + 1 != UInt32(levels.count) {
            // Envoy's docs ask for priorities without gaps, but Envoy accepts them: its priority
            // set grows to the highest level and a level nobody names stays empty, with no health
            // and so no load (ClusterSemantics skips it alike).
            let missing = (0...last).filter { byLevel[$0] == nil }.map(String.init).joined(separator: ", ")
            diagnostics.append(
                Diagnostic(
                    .noEndpoints, .note, path: path,
                    "endpoint priorities skip \(missing) (found \(levels.map(String.init).joined(separator: ", "))): as in Envoy, a skipped level is empty and takes no traffic"
                ))
        }
        guard valid else { return nil }
        return levels.map { IRPriority(level: $0, localities: byLevel[$0]!) }
    }

    /// A host name of a DNS cluster's endpoint (`socketAddress` returned nil for it
    /// without a diagnostic): its port is checked here and the name kept for the loader.
    private mutating func recordDNSName(
        _ a: Envoy_Config_Core_V3_Address, weight: UInt32, priority: UInt32, locality: UInt32, health: IRHealth, path: String
    ) {
        guard dnsEndpoints != nil, case .socketAddress(let sa)? = a.address,
            IRAddress(parsing: sa.address) == nil, hostAddresses[sa.address] == nil
        else { return }
        switch sa.portSpecifier {
        case .portValue(let p)? where p > 0 && p <= 65535:
            if weight == 0 {
                diagnostics.append(Diagnostic(.invalidResource, path: path, "endpoint weight must be at least 1"))
                return
            }
            dnsEndpoints?.entries.append(
                .init(
                    host: .init(
                        host: sa.address, port: UInt16(p), weight: weight, priority: priority, locality: locality, routable: health.isRoutable),
                    isName: true))
        case .portValue(let p)? where p == 0:
            diagnostics.append(Diagnostic(.invalidPort, .warning, path: path, "endpoint port 0: connects to it would fail, so it is never chosen"))
        case .portValue(let p)?:
            diagnostics.append(Diagnostic(.invalidPort, path: path, "endpoint port \(p) is out of range 0-65535"))
        case .namedPort(let n)?:
            diagnostics.append(Diagnostic(.invalidPort, path: path, "named port \(ResourcePath.quoted(n)) is not supported"))
        case nil:
            diagnostics.append(Diagnostic(.invalidPort, path: path, "endpoint address has no port"))
        }
    }

    // MARK: Conflicts

    private mutating func checkChainConflicts(_ chains: [IRFilterChain], path: String) {
        // Envoy files a chain under every server name and ALPN value it lists: two
        // chains sharing one of them (and every other criterion) conflict.
        var seen: [IRChainMatch: String] = [:]
        for c in chains {
            var base = c.match
            base.prefixRanges.sort()
            var conflict: String?
            for name in c.match.serverNames.isEmpty ? [""] : c.match.serverNames {
                for alpn in c.match.applicationProtocols.isEmpty ? [""] : c.match.applicationProtocols {
                    var key = base
                    key.serverNames = name.isEmpty ? [] : [name]
                    key.applicationProtocols = alpn.isEmpty ? [] : [alpn]
                    if let other = seen[key], other != c.path {
                        conflict = conflict ?? other
                    } else {
                        seen[key] = c.path
                    }
                }
            }
            if let other = conflict {
                diagnostics.append(Diagnostic(.conflictingChains, path: c.path, "filter chain has the same match as \(other); Envoy rejects such a listener"))
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
