import SwiftProtobuf
import X2BDiagnostics
import X2BProtos

/// One decoded xDS resource and where it came from.
public struct XDSResource<Message: SwiftProtobuf.Message & Sendable>: Sendable {
    /// The resource name (`Listener.name`, `RouteConfiguration.name`, `Cluster.name`,
    /// `ClusterLoadAssignment.cluster_name`).
    public var name: String
    public var message: Message
    /// Where in the input it was found, e.g. `bookinfo.json: configs[2].dynamic_listeners[4]`.
    public var origin: String

    public init(name: String, message: Message, origin: String) {
        self.name = name
        self.message = message
        self.origin = origin
    }
}

/// Everything the parse stage found in one or more input files: the four routing
/// resource types, in input order. Linking and validation happen later (Resolve).
public struct XDSSnapshot: Sendable {
    public var listeners: [XDSResource<Envoy_Config_Listener_V3_Listener>] = []
    public var routeConfigurations: [XDSResource<Envoy_Config_Route_V3_RouteConfiguration>] = []
    public var clusters: [XDSResource<Envoy_Config_Cluster_V3_Cluster>] = []
    public var loadAssignments: [XDSResource<Envoy_Config_Endpoint_V3_ClusterLoadAssignment>] = []
    /// Problems and notes from parsing (unreadable input, skipped content...).
    public var diagnostics: [Diagnostic] = []
    /// sha256 (hex) of each input file's bytes, in input order.
    public var inputDigests: [String] = []

    public init() {}

    public mutating func merge(_ other: XDSSnapshot) {
        listeners += other.listeners
        routeConfigurations += other.routeConfigurations
        clusters += other.clusters
        loadAssignments += other.loadAssignments
        diagnostics += other.diagnostics
        inputDigests += other.inputDigests
    }
}
