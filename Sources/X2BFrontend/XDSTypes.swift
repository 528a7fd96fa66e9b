import SwiftProtobuf
import X2BProtos

/// The four routing resource types the parse stage collects.
enum ResourceKind: String, Sendable, CaseIterable {
    case listener, routeConfiguration, cluster, loadAssignment

    var messageName: String {
        switch self {
        case .listener: Envoy_Config_Listener_V3_Listener.protoMessageName
        case .routeConfiguration: Envoy_Config_Route_V3_RouteConfiguration.protoMessageName
        case .cluster: Envoy_Config_Cluster_V3_Cluster.protoMessageName
        case .loadAssignment: Envoy_Config_Endpoint_V3_ClusterLoadAssignment.protoMessageName
        }
    }

    var plural: String {
        switch self {
        case .listener: "listeners"
        case .routeConfiguration: "route configurations"
        case .cluster: "clusters"
        case .loadAssignment: "cluster load assignments"
        }
    }
}

/// Type URLs and names the parser recognises, and the registry of message
/// types that `google.protobuf.Any` can hold in JSON input.
enum XDSTypes {
    static let prefix = "type.googleapis.com/"

    /// `type.googleapis.com/a.b.C` -> `a.b.C` (also accepts a bare name).
    static func name(fromURL url: String) -> String {
        if let slash = url.lastIndex(of: "/") {
            return String(url[url.index(after: slash)...])
        }
        return url
    }

    static func url(_ name: String) -> String { prefix + name }

    /// The v3 name of a legacy v2 message name, else the name itself.
    static func canonicalName(_ name: String) -> String { legacyNames[name] ?? name }

    static func kind(ofTypeName name: String) -> ResourceKind? {
        switch name {
        case ResourceKind.listener.messageName: .listener
        case ResourceKind.routeConfiguration.messageName: .routeConfiguration
        case ResourceKind.cluster.messageName: .cluster
        case ResourceKind.loadAssignment.messageName: .loadAssignment
        default: nil
        }
    }

    /// Legacy (v2 / v2alpha) message names and their v3 equivalents. The v3
    /// messages kept the v2 field numbers and names of everything routing uses.
    static let legacyNames: [String: String] = [
        "envoy.api.v2.Listener": "envoy.config.listener.v3.Listener",
        "envoy.api.v2.RouteConfiguration": "envoy.config.route.v3.RouteConfiguration",
        "envoy.api.v2.Cluster": "envoy.config.cluster.v3.Cluster",
        "envoy.api.v2.ClusterLoadAssignment": "envoy.config.endpoint.v3.ClusterLoadAssignment",
        "envoy.api.v2.ScopedRouteConfiguration": "envoy.config.route.v3.ScopedRouteConfiguration",
        "envoy.api.v2.route.VirtualHost": "envoy.config.route.v3.VirtualHost",
        "envoy.api.v2.auth.Secret": "envoy.extensions.transport_sockets.tls.v3.Secret",
        "envoy.api.v2.DiscoveryResponse": "envoy.service.discovery.v3.DiscoveryResponse",
        "envoy.api.v2.Resource": "envoy.service.discovery.v3.Resource",
        "envoy.config.filter.network.http_connection_manager.v2.HttpConnectionManager":
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "envoy.config.filter.network.tcp_proxy.v2.TcpProxy":
            "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "envoy.config.filter.http.router.v2.Router": "envoy.extensions.filters.http.router.v3.Router",
        "envoy.config.filter.listener.tls_inspector.v2.TlsInspector":
            "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
        "envoy.config.filter.listener.original_dst.v2.OriginalDst":
            "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
        "envoy.config.filter.listener.http_inspector.v2.HttpInspector":
            "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
        "envoy.admin.v2alpha.ConfigDump": "envoy.admin.v3.ConfigDump",
        "envoy.admin.v2alpha.BootstrapConfigDump": "envoy.admin.v3.BootstrapConfigDump",
        "envoy.admin.v2alpha.ListenersConfigDump": "envoy.admin.v3.ListenersConfigDump",
        "envoy.admin.v2alpha.ClustersConfigDump": "envoy.admin.v3.ClustersConfigDump",
        "envoy.admin.v2alpha.RoutesConfigDump": "envoy.admin.v3.RoutesConfigDump",
        "envoy.admin.v2alpha.ScopedRoutesConfigDump": "envoy.admin.v3.ScopedRoutesConfigDump",
        "envoy.admin.v2alpha.SecretsConfigDump": "envoy.admin.v3.SecretsConfigDump",
    ]

    /// Message types whose JSON `Any` content is decoded (everything else is
    /// carried as an `xds.type.v3.TypedStruct` holding the original type URL).
    static var anyTypes: [any Message.Type] {
        [
            Envoy_Config_Listener_V3_Listener.self,
            Envoy_Config_Route_V3_RouteConfiguration.self,
            Envoy_Config_Cluster_V3_Cluster.self,
            Envoy_Config_Endpoint_V3_ClusterLoadAssignment.self,
            Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.self,
            Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy.self,
            Envoy_Extensions_Filters_Http_Router_V3_Router.self,
            Envoy_Extensions_Filters_Listener_TlsInspector_V3_TlsInspector.self,
            Envoy_Extensions_Filters_Listener_HttpInspector_V3_HttpInspector.self,
            Envoy_Extensions_Filters_Listener_OriginalDst_V3_OriginalDst.self,
            Envoy_Extensions_LoadBalancingPolicies_RoundRobin_V3_RoundRobin.self,
            Envoy_Extensions_LoadBalancingPolicies_LeastRequest_V3_LeastRequest.self,
            Envoy_Extensions_LoadBalancingPolicies_Random_V3_Random.self,
            Envoy_Extensions_LoadBalancingPolicies_Maglev_V3_Maglev.self,
            Envoy_Extensions_LoadBalancingPolicies_RingHash_V3_RingHash.self,
            Envoy_Extensions_LoadBalancingPolicies_WrrLocality_V3_WrrLocality.self,
            Envoy_Extensions_LoadBalancingPolicies_ClusterProvided_V3_ClusterProvided.self,
            Envoy_Extensions_LoadBalancingPolicies_OverrideHost_V3_OverrideHost.self,
            Envoy_Extensions_LoadBalancingPolicies_ClientSideWeightedRoundRobin_V3_ClientSideWeightedRoundRobin.self,
            Envoy_Extensions_Clusters_Aggregate_V3_ClusterConfig.self,
            Envoy_Extensions_Clusters_Dns_V3_DnsCluster.self,
            Xds_Type_V3_TypedStruct.self,
            Udpa_Type_V1_TypedStruct.self,
            Envoy_Service_Discovery_V3_DiscoveryResponse.self,
            Envoy_Service_Discovery_V3_Resource.self,
            Envoy_Admin_V3_ConfigDump.self,
            Envoy_Admin_V3_BootstrapConfigDump.self,
            Envoy_Admin_V3_ListenersConfigDump.self,
            Envoy_Admin_V3_ClustersConfigDump.self,
            Envoy_Admin_V3_RoutesConfigDump.self,
            Envoy_Admin_V3_EndpointsConfigDump.self,
            Envoy_Admin_V3_SecretsConfigDump.self,
            Envoy_Admin_V3_ScopedRoutesConfigDump.self,
            Envoy_Admin_V3_EcdsConfigDump.self,
        ]
    }

    /// Registers `anyTypes` with swift-protobuf's `Any` registry (idempotent).
    static let registered: Bool = {
        for t in anyTypes {
            _ = Google_Protobuf_Any.register(messageType: t)
        }
        return true
    }()

    /// `anyTypes` by message name: read without the lock of swift-protobuf's
    /// registry, which every `Any` of every resource would otherwise take.
    private static let anyTypesByName: [String: any Message.Type] = Dictionary(
        anyTypes.map { ($0.protoMessageName, $0) }, uniquingKeysWith: { first, _ in first })

    /// The message type an `Any` of this type URL holds, if the schema models it
    /// (`anyTypes`, then swift-protobuf's registry: the well-known types).
    static func messageType(forTypeURL url: String) -> (any Message.Type)? {
        _ = registered
        return anyTypesByName[name(fromURL: url)] ?? Google_Protobuf_Any.messageType(forTypeURL: url)
    }

    /// Whether `messageType(forTypeURL:)` knows this type name.
    static func isModelled(typeName: String) -> Bool {
        _ = registered
        return anyTypesByName[typeName] != nil || Google_Protobuf_Any.messageType(forMessageName: typeName) != nil
    }

    /// Whether JSON content of this type can be decoded (registered or a
    /// well-known type).
    static func isKnown(typeURL: String) -> Bool {
        _ = registered
        return Google_Protobuf_Any.messageType(forTypeURL: typeURL) != nil
    }

    static let typedStructURL = url(Xds_Type_V3_TypedStruct.protoMessageName)
    static let udpaTypedStructURL = url(Udpa_Type_V1_TypedStruct.protoMessageName)

    /// Admin dump sections that hold nothing routing-relevant.
    static let skippedDumps: [String: String] = [
        "envoy.admin.v3.BootstrapConfigDump": "bootstrap",
        "envoy.admin.v3.SecretsConfigDump": "secrets",
        "envoy.admin.v3.ScopedRoutesConfigDump": "scoped routes",
        "envoy.admin.v3.EcdsConfigDump": "extension configs (ECDS)",
        "envoy.admin.v3.EcdsConfigDump.EcdsFilterConfig": "extension configs (ECDS)",
    ]

    /// Resource types that are understood but not routing input here.
    static let nonRoutingResources: [String: String] = [
        "envoy.extensions.transport_sockets.tls.v3.Secret": "secret",
        "envoy.config.route.v3.ScopedRouteConfiguration": "scoped route configuration",
        "envoy.config.route.v3.VirtualHost": "VHDS virtual host",
        "envoy.config.core.v3.TypedExtensionConfig": "extension config (ECDS)",
        "envoy.service.runtime.v3.Runtime": "runtime layer",
        "envoy.config.bootstrap.v3.Bootstrap": "bootstrap",
    ]
}

/// Registers every message type an xDS `Any` may hold with swift-protobuf, so
/// that `Any` fields encode to and decode from JSON (idempotent). The parse
/// stage does this itself; other users of the messages (the xDS client writing
/// a config dump as JSON) call it first.
public func registerXDSMessageTypes() {
    _ = XDSTypes.registered
}
