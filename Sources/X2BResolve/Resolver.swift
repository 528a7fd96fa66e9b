import SwiftProtobuf
import X2BDiagnostics
import X2BFrontend
import X2BProtos

/// The snapshot indexed by name, with duplicates and unnamed resources diagnosed.
/// Later passes look resources up here; the first definition of a name wins, as
/// a later duplicate is reported, not silently merged.
public struct ResolvedSnapshot: Sendable {
    public var listeners: [XDSResource<Envoy_Config_Listener_V3_Listener>] = []
    public var routeConfigurations: [String: XDSResource<Envoy_Config_Route_V3_RouteConfiguration>] = [:]
    public var clusters: [String: XDSResource<Envoy_Config_Cluster_V3_Cluster>] = [:]
    public var loadAssignments: [String: XDSResource<Envoy_Config_Endpoint_V3_ClusterLoadAssignment>] = [:]
    public var diagnostics: [Diagnostic] = []

    public init() {}
}

/// Resolve, pass 1: index resources by name and report duplicates.
/// Reference checks (dangling RDS names, clusters, EDS) happen in `Lowerer`,
/// where each reference is met with its full path.
public struct Resolver: Sendable {
    public init() {}

    public func resolve(_ snapshot: XDSSnapshot) -> ResolvedSnapshot {
        var out = ResolvedSnapshot()
        var listenerNames: Set<String> = []
        for (i, var l) in snapshot.listeners.enumerated() {
            if l.name.isEmpty {
                // Envoy names an unnamed listener itself; use its address, as Istio names listeners.
                let sa = l.message.address.socketAddress
                l.name = sa.address.isEmpty ? "listener-\(i)" : "\(sa.address)_\(sa.portValue)"
                out.diagnostics.append(
                    Diagnostic(
                        .unnamedResource, .note, path: "listeners[\(i)]",
                        "listener has no name (\(l.origin)); called \(ResourcePath.quoted(l.name))"))
            }
            if !listenerNames.insert(l.name).inserted {
                out.diagnostics.append(
                    Diagnostic(
                        .duplicateName, path: ResourcePath.listener(l.name),
                        "duplicate listener name; the later definition (\(l.origin)) is ignored"))
                continue
            }
            out.listeners.append(l)
        }
        index(
            snapshot.routeConfigurations, into: &out.routeConfigurations, kind: "route configuration",
            path: ResourcePath.routeConfiguration, diagnostics: &out.diagnostics)
        index(
            snapshot.clusters, into: &out.clusters, kind: "cluster",
            path: ResourcePath.cluster, diagnostics: &out.diagnostics)
        index(
            snapshot.loadAssignments, into: &out.loadAssignments, kind: "cluster load assignment",
            path: ResourcePath.loadAssignment, diagnostics: &out.diagnostics)
        return out
    }

    private func index<M>(
        _ resources: [XDSResource<M>], into table: inout [String: XDSResource<M>], kind: String,
        path: (String) -> String, diagnostics: inout [Diagnostic]
    ) {
        for (i, r) in resources.enumerated() {
            if r.name.isEmpty {
                // Nothing can reference it by name; inline copies are lowered where they are used.
                diagnostics.append(
                    Diagnostic(
                        .unnamedResource, .note, path: "\(path("").dropLast(4))[\(i)]",
                        "\(kind) has no name (\(r.origin)); nothing can reference it, skipped"))
                continue
            }
            if let first = table[r.name] {
                // Identical duplicates (the same resource in two dumps) are harmless.
                if first.message.isEqualTo(message: r.message) { continue }
                diagnostics.append(
                    Diagnostic(
                        .duplicateName, path: path(r.name),
                        "duplicate \(kind) name with different content; the later definition (\(r.origin)) is ignored"))
                continue
            }
            table[r.name] = r
        }
    }
}
