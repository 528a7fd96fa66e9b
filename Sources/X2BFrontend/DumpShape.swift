import Foundation
import SwiftProtobuf
import X2BProtos

// The shape rules of typed input, written once: which type holds resources,
// which config dump section holds which entries, active versus warming versus
// draining, Envoy's update failures, and their diagnostics. They read the small
// model below, which the two adapters fill: `JSONShape` (ParseSession.swift)
// from JSON and YAML trees, `BinaryShape` (BinaryInput.swift) from binary
// protobuf. Only what tells the two apart (list checks, decode failures,
// JSON's untyped and wrapped resources) stays in the adapters.

/// A typed value of the input, not decoded yet: a JSON object (its `@type`
/// removed) or the bytes of a binary `Any`.
enum TypedContent {
    case json(JSONObject)
    case binary(Data)
}

/// The resource one config dump entry holds.
enum DumpResource {
    /// A binary `Any`, or a JSON object with `@type`.
    case typed(url: String, TypedContent)
    /// A JSON object without `@type`: the section says what it is.
    case untyped(JSONObject)
    /// A binary cluster the adapter decoded to learn its name (decoded once).
    case decoded(url: String, DecodedResource)
}

/// One entry of a config dump section (`dynamic_active_clusters[3]`, a
/// listener's `active_state`, a `DynamicRouteConfig` on its own...).
struct DumpEntry {
    var path: String
    /// Nil for a resource that was requested but never received.
    var resource: DumpResource?
    /// The resource's name, where the adapter can tell it (clusters).
    var name: String? = nil
    /// Envoy's `error_state.details`: an update of this resource failed.
    var errorDetails: String? = nil
}

/// `ListenersConfigDump.DynamicListener`.
struct DynamicListenerEntry {
    var path: String
    var name: String
    var active: DumpEntry?
    var warming: DumpEntry?
    /// Whether a warming state is present at all (with or without a listener).
    var hasWarmingState: Bool
    var isDraining: Bool
    var errorDetails: String?
}

struct ListenersDump {
    var statics: [DumpEntry]
    var dynamics: [DynamicListenerEntry]
}

struct ClustersDump {
    var statics: [DumpEntry]
    var active: [DumpEntry]
    var warming: [DumpEntry]
}

/// The config dump entry types that hold one resource, and which.
enum DumpEntryType {
    case staticListener, staticCluster, dynamicCluster, staticRouteConfig, dynamicRouteConfig
    case staticEndpointConfig, dynamicEndpointConfig

    init?(typeName: String) {
        switch typeName {
        case "envoy.admin.v3.ListenersConfigDump.StaticListener": self = .staticListener
        case "envoy.admin.v3.ClustersConfigDump.StaticCluster": self = .staticCluster
        case "envoy.admin.v3.ClustersConfigDump.DynamicCluster": self = .dynamicCluster
        case "envoy.admin.v3.RoutesConfigDump.StaticRouteConfig": self = .staticRouteConfig
        case "envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig": self = .dynamicRouteConfig
        case "envoy.admin.v3.EndpointsConfigDump.StaticEndpointConfig": self = .staticEndpointConfig
        case "envoy.admin.v3.EndpointsConfigDump.DynamicEndpointConfig": self = .dynamicEndpointConfig
        default: return nil
        }
    }

    var kind: ResourceKind {
        switch self {
        case .staticListener: .listener
        case .staticCluster, .dynamicCluster: .cluster
        case .staticRouteConfig, .dynamicRouteConfig: .routeConfiguration
        case .staticEndpointConfig, .dynamicEndpointConfig: .loadAssignment
        }
    }
}

extension ParseSession {
    /// Dispatches a typed value: a routing resource, a config dump, one of its
    /// sections or entries, a discovery response, or something skipped.
    func walkTyped(url: String, _ content: TypedContent, path: String) {
        let name = canonicalTypeName(url, path: path)
        if let kind = XDSTypes.kind(ofTypeName: name) {
            switch content {
            case .json(let o): addResource(kind, o, path: path)
            case .binary(let value): addBinaryResource(kind, value, path: path)
            }
            return
        }
        if let type = DumpEntryType(typeName: name) {
            if let entry = dumpEntry(type, content, path: path) { addEntry(entry, kind: type.kind) }
            return
        }
        switch name {
        case "envoy.admin.v3.ConfigDump":
            for section in configDumpSections(content, path: path) {
                walkTyped(url: section.url, section.content, path: section.path)
            }
        case "envoy.admin.v3.ListenersConfigDump":
            guard let dump = listenersDump(content, path: path) else { return }
            for e in dump.statics { addEntry(e, kind: .listener) }
            for d in dump.dynamics { addDynamicListener(d) }
        case "envoy.admin.v3.ListenersConfigDump.DynamicListener":
            if let d = dynamicListener(content, path: path) { addDynamicListener(d) }
        case "envoy.admin.v3.ClustersConfigDump":
            if let dump = clustersDump(content, path: path) { addClustersDump(dump) }
        case "envoy.admin.v3.RoutesConfigDump":
            for e in routesDump(content, path: path) { addEntry(e, kind: .routeConfiguration) }
        case "envoy.admin.v3.EndpointsConfigDump":
            for e in endpointsDump(content, path: path) { addEntry(e, kind: .loadAssignment) }
        case "envoy.service.discovery.v3.DiscoveryResponse":
            walkDiscoveryResponse(content, path: path)
        case "envoy.service.discovery.v3.Resource":
            walkResourceWrapper(content, path: path)
        default:
            skipTyped(name, path: path)
        }
    }

    /// One dump entry: Envoy's update failure, then its resource.
    func addEntry(_ entry: DumpEntry, kind: ResourceKind) {
        if let details = entry.errorDetails {
            diag(
                .skippedContent, .warning, path: entry.path,
                "Envoy reported an update failure here: \(YAMLReader.truncate(details, limit: 200))")
        }
        switch entry.resource {
        case nil:
            // Requested but never received.
            break
        case .typed(let url, let content)?:
            walkTyped(url: url, content, path: entry.path)
        case .untyped(let o)?:
            addResource(kind, o, path: entry.path)
        case .decoded(let url, let resource)?:
            _ = canonicalTypeName(url, path: entry.path)
            add(resource, path: entry.path)
        }
    }

    /// Envoy serves the active version of a listener; a warming one only when
    /// there is no active one; a draining one not at all.
    func addDynamicListener(_ d: DynamicListenerEntry) {
        if let active = d.active {
            addEntry(active, kind: .listener)
            if d.hasWarmingState {
                diag(.skippedContent, path: d.path, "listener \"\(d.name)\": warming version ignored, the active one is used")
            }
        } else if let warming = d.warming {
            diag(.skippedContent, path: d.path, "listener \"\(d.name)\" is warming (not active yet); its warming version is used")
            addEntry(warming, kind: .listener)
        } else if d.isDraining {
            diag(.skippedContent, path: d.path, "listener \"\(d.name)\" is draining; skipped")
        }
        if let details = d.errorDetails {
            diag(
                .skippedContent, .warning, path: d.path,
                "Envoy rejected an update of listener \"\(d.name)\": \(YAMLReader.truncate(details, limit: 200))")
        }
    }

    /// Active clusters, then warming ones whose name has no active version.
    func addClustersDump(_ dump: ClustersDump) {
        for e in dump.statics { addEntry(e, kind: .cluster) }
        var active = Set<String>()
        for e in dump.active {
            if let name = e.name { active.insert(name) }
            addEntry(e, kind: .cluster)
        }
        for e in dump.warming {
            let name = e.name ?? ""
            if active.contains(name) {
                diag(.skippedContent, path: e.path, "cluster \"\(name)\": warming version ignored, the active one is used")
            } else {
                diag(.skippedContent, path: e.path, "cluster \"\(name)\" is warming (not active yet); its warming version is used")
                addEntry(e, kind: .cluster)
            }
        }
    }

    // MARK: Adapters

    private func configDumpSections(_ content: TypedContent, path: String) -> [(url: String, content: TypedContent, path: String)] {
        switch content {
        case .json(let o): jsonConfigDumpSections(o, path: path)
        case .binary(let value): binaryConfigDumpSections(value, path: path)
        }
    }

    private func listenersDump(_ content: TypedContent, path: String) -> ListenersDump? {
        switch content {
        case .json(let o): jsonListenersDump(o, path: path)
        case .binary(let value): binaryListenersDump(value, path: path)
        }
    }

    private func dynamicListener(_ content: TypedContent, path: String) -> DynamicListenerEntry? {
        switch content {
        case .json(let o): jsonDynamicListener(o, path: path)
        case .binary(let value): binaryDynamicListener(value, path: path)
        }
    }

    private func clustersDump(_ content: TypedContent, path: String) -> ClustersDump? {
        switch content {
        case .json(let o): jsonClustersDump(o, path: path)
        case .binary(let value): binaryClustersDump(value, path: path)
        }
    }

    private func routesDump(_ content: TypedContent, path: String) -> [DumpEntry] {
        switch content {
        case .json(let o): jsonEntries(o, ["static_route_configs", "dynamic_route_configs"], anyField: "route_config", path: path)
        case .binary(let value): binaryRoutesDump(value, path: path)
        }
    }

    private func endpointsDump(_ content: TypedContent, path: String) -> [DumpEntry] {
        switch content {
        case .json(let o):
            jsonEntries(o, ["static_endpoint_configs", "dynamic_endpoint_configs"], anyField: "endpoint_config", path: path)
        case .binary(let value): binaryEndpointsDump(value, path: path)
        }
    }

    private func dumpEntry(_ type: DumpEntryType, _ content: TypedContent, path: String) -> DumpEntry? {
        switch content {
        case .json(let o): jsonDumpEntry(o, anyField: type.jsonAnyField, path: path)
        case .binary(let value): binaryDumpEntry(type, value, path: path)
        }
    }

    private func walkDiscoveryResponse(_ content: TypedContent, path: String) {
        switch content {
        case .json(let o): walkJSONDiscoveryResponse(o, path: path)
        case .binary(let value):
            if let r = decodeSection(DiscoveryResponse.self, value, path: path) { walkDiscoveryResponse(r, path: path) }
        }
    }

    private func walkResourceWrapper(_ content: TypedContent, path: String) {
        switch content {
        case .json(let o):
            if case .object(let inner)? = o.field("resource") {
                walkResourceItem(inner, path: ParseSession.join(path, "resource"), defaultKind: fileHint)
            }
        case .binary(let value):
            if let r = decodeSection(Envoy_Service_Discovery_V3_Resource.self, value, path: path), r.hasResource {
                walkTyped(url: r.resource.typeURL, .binary(r.resource.value), path: ParseSession.join(path, "resource"))
            }
        }
    }
}

extension DumpEntryType {
    /// The JSON field of the entry that holds the resource.
    var jsonAnyField: String {
        switch kind {
        case .listener: "listener"
        case .cluster: "cluster"
        case .routeConfiguration: "route_config"
        case .loadAssignment: "endpoint_config"
        }
    }
}
