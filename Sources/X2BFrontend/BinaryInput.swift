import Foundation
import SwiftProtobuf
import X2BProtos

/// Binary protobuf inputs: a `DiscoveryResponse`, a length-delimited stream of
/// them (varint length + message, as protobuf's writeDelimitedTo), or an admin
/// `ConfigDump`.
extension ParseSession {
    typealias DiscoveryResponse = Envoy_Service_Discovery_V3_DiscoveryResponse

    /// Returns false (and reports nothing) when the bytes are none of the shapes.
    func parseBinary(_ data: [UInt8]) -> (recognised: Bool, error: String) {
        _ = XDSTypes.registered
        var firstError = ""
        // 1. A single DiscoveryResponse.
        do {
            let r = try DiscoveryResponse(serializedBytes: data, options: ParseSession.probeOptions)
            if ParseSession.plausible(r) {
                walkDiscoveryResponse(r, path: "")
                return (true, "")
            }
            firstError = "not a DiscoveryResponse"
        } catch {
            firstError = "as a DiscoveryResponse: \(ParseSession.describe(error))"
        }
        // 2. A length-delimited stream of DiscoveryResponses.
        if let responses = ParseSession.delimitedResponses(data) {
            for (i, r) in responses.enumerated() {
                walkDiscoveryResponse(r, path: "responses[\(i)]")
            }
            return (true, "")
        }
        // 3. An admin ConfigDump.
        if let dump = try? Envoy_Admin_V3_ConfigDump(serializedBytes: data, options: ParseSession.probeOptions),
            dump.unknownFields.data.isEmpty, !dump.configs.isEmpty,
            dump.configs.allSatisfy({ ParseSession.plausibleTypeURL($0.typeURL) })
        {
            for (i, c) in dump.configs.enumerated() {
                handleBinaryAny(c.typeURL, c.value, path: "configs[\(i)]")
            }
            return (true, "")
        }
        return (false, firstError)
    }

    static func plausibleTypeURL(_ url: String) -> Bool {
        !url.isEmpty && url.utf8.count < 512 && url.contains(".")
            && url.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    static func plausible(_ r: DiscoveryResponse) -> Bool {
        guard r.unknownFields.data.isEmpty else { return false }
        guard !r.typeURL.isEmpty || !r.resources.isEmpty else { return false }
        if !r.typeURL.isEmpty, !plausibleTypeURL(r.typeURL) { return false }
        return r.resources.allSatisfy { plausibleTypeURL($0.typeURL.isEmpty ? r.typeURL : $0.typeURL) }
    }

    /// Splits a varint-delimited stream; nil unless every frame is a plausible
    /// DiscoveryResponse and the frames cover the input exactly.
    static func delimitedResponses(_ data: [UInt8]) -> [DiscoveryResponse]? {
        var out: [DiscoveryResponse] = []
        var pos = 0
        while pos < data.count {
            var len: UInt64 = 0
            var shift: UInt64 = 0
            var ok = false
            while pos < data.count, shift < 64 {
                let b = data[pos]
                pos += 1
                len |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 {
                    ok = true
                    break
                }
                shift += 7
            }
            guard ok, len <= UInt64(data.count - pos) else { return nil }
            let end = pos + Int(len)
            guard let r = try? DiscoveryResponse(serializedBytes: Array(data[pos..<end]), options: probeOptions),
                plausible(r)
            else { return nil }
            out.append(r)
            pos = end
        }
        return out.isEmpty ? nil : out
    }

    func walkDiscoveryResponse(_ r: DiscoveryResponse, path: String) {
        let base = ParseSession.join(path, "resources")
        // The common case, a response of resources themselves (no wrappers): decoded
        // on every core, then added in order, so the result does not depend on it.
        if r.resources.count >= Self.concurrentDecodeMinimum {
            var kinds: [ResourceKind] = []
            kinds.reserveCapacity(r.resources.count)
            for (i, any) in r.resources.enumerated() {
                let url = any.typeURL.isEmpty ? r.typeURL : any.typeURL
                guard let kind = XDSTypes.kind(ofTypeName: canonicalTypeName(url, path: ParseSession.join(base, index: i))) else { break }
                kinds.append(kind)
            }
            if kinds.count == r.resources.count {
                let decoded = Self.decodeConcurrently(kinds, r.resources.map(\.value))
                for (i, d) in decoded.enumerated() { add(d, path: ParseSession.join(base, index: i)) }
                return
            }
        }
        for (i, any) in r.resources.enumerated() {
            let url = any.typeURL.isEmpty ? r.typeURL : any.typeURL
            handleBinaryAny(url, any.value, path: ParseSession.join(base, index: i))
        }
    }

    /// Below this many resources a response is decoded on one core.
    static let concurrentDecodeMinimum = 256

    /// Decodes resources on every core; the results in input order.
    static func decodeConcurrently(_ kinds: [ResourceKind], _ values: [Data]) -> [DecodedResource] {
        let n = values.count
        let chunks = min(n, max(1, ProcessInfo.processInfo.activeProcessorCount) * 4)
        let out = UnsafeMutableBufferPointer<DecodedResource>.allocate(capacity: n)
        defer { out.deallocate() }
        // Each chunk writes its own slots (initialized exactly once), then all are moved out.
        nonisolated(unsafe) let slots = out
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            for i in stride(from: c, to: n, by: chunks) {
                (slots.baseAddress! + i).initialize(to: DecodedResource(kinds[i], values[i]))
            }
        }
        return (0..<n).map { (out.baseAddress! + $0).move() }
    }

    /// Decodes one binary `Any` payload by its type URL.
    func handleBinaryAny(_ url: String, _ value: Data, path: String) {
        let name = canonicalTypeName(url, path: path)
        if let kind = XDSTypes.kind(ofTypeName: name) {
            addBinaryResource(kind, value, path: path)
            return
        }
        func decode<M: Message>(_ t: M.Type) -> M? {
            do {
                return try M(serializedBytes: value, options: ParseSession.binaryOptions)
            } catch {
                diag(.invalidProtobuf, path: path, "cannot decode \(M.protoMessageName): \(ParseSession.describe(error))")
                return nil
            }
        }
        typealias A = Envoy_Admin_V3_ListenersConfigDump
        switch name {
        case "envoy.service.discovery.v3.Resource":
            if let r = decode(Envoy_Service_Discovery_V3_Resource.self), r.hasResource {
                handleBinaryAny(r.resource.typeURL, r.resource.value, path: ParseSession.join(path, "resource"))
            }
        case "envoy.service.discovery.v3.DiscoveryResponse":
            if let r = decode(DiscoveryResponse.self) { walkDiscoveryResponse(r, path: path) }
        case "envoy.admin.v3.ConfigDump":
            if let d = decode(Envoy_Admin_V3_ConfigDump.self) {
                for (i, c) in d.configs.enumerated() {
                    handleBinaryAny(c.typeURL, c.value, path: ParseSession.join(ParseSession.join(path, "configs"), index: i))
                }
            }
        case "envoy.admin.v3.ListenersConfigDump":
            guard let d = decode(A.self) else { return }
            for (i, e) in d.staticListeners.enumerated() where e.hasListener {
                handleBinaryAny(e.listener.typeURL, e.listener.value, path: ParseSession.join(path, "static_listeners") + "[\(i)]")
            }
            for (i, e) in d.dynamicListeners.enumerated() {
                binaryDynamicListener(e, path: ParseSession.join(path, "dynamic_listeners") + "[\(i)]")
            }
        case "envoy.admin.v3.ListenersConfigDump.DynamicListener":
            if let e = decode(A.DynamicListener.self) { binaryDynamicListener(e, path: path) }
        case "envoy.admin.v3.ListenersConfigDump.StaticListener":
            if let e = decode(A.StaticListener.self), e.hasListener {
                handleBinaryAny(e.listener.typeURL, e.listener.value, path: path)
            }
        case "envoy.admin.v3.ClustersConfigDump":
            guard let d = decode(Envoy_Admin_V3_ClustersConfigDump.self) else { return }
            for (i, e) in d.staticClusters.enumerated() where e.hasCluster {
                handleBinaryAny(e.cluster.typeURL, e.cluster.value, path: ParseSession.join(path, "static_clusters") + "[\(i)]")
            }
            var active = Set<String>()
            for (i, e) in d.dynamicActiveClusters.enumerated() where e.hasCluster {
                let p = ParseSession.join(path, "dynamic_active_clusters") + "[\(i)]"
                if let c = try? Envoy_Config_Cluster_V3_Cluster(serializedBytes: e.cluster.value, options: ParseSession.binaryOptions) {
                    active.insert(c.name)
                }
                binaryDumpEntry(e.cluster, errorState: e.hasErrorState ? e.errorState : nil, path: p)
            }
            for (i, e) in d.dynamicWarmingClusters.enumerated() where e.hasCluster {
                let p = ParseSession.join(path, "dynamic_warming_clusters") + "[\(i)]"
                let n = (try? Envoy_Config_Cluster_V3_Cluster(serializedBytes: e.cluster.value, options: ParseSession.binaryOptions))?.name ?? ""
                if active.contains(n) {
                    diag(.skippedContent, path: p, "cluster \"\(n)\": warming version ignored, the active one is used")
                } else {
                    diag(.skippedContent, path: p, "cluster \"\(n)\" is warming (not active yet); its warming version is used")
                    binaryDumpEntry(e.cluster, errorState: nil, path: p)
                }
            }
        case "envoy.admin.v3.ClustersConfigDump.DynamicCluster":
            if let e = decode(Envoy_Admin_V3_ClustersConfigDump.DynamicCluster.self), e.hasCluster {
                binaryDumpEntry(e.cluster, errorState: e.hasErrorState ? e.errorState : nil, path: path)
            }
        case "envoy.admin.v3.ClustersConfigDump.StaticCluster":
            if let e = decode(Envoy_Admin_V3_ClustersConfigDump.StaticCluster.self), e.hasCluster {
                handleBinaryAny(e.cluster.typeURL, e.cluster.value, path: path)
            }
        case "envoy.admin.v3.RoutesConfigDump":
            guard let d = decode(Envoy_Admin_V3_RoutesConfigDump.self) else { return }
            for (i, e) in d.staticRouteConfigs.enumerated() where e.hasRouteConfig {
                handleBinaryAny(e.routeConfig.typeURL, e.routeConfig.value, path: ParseSession.join(path, "static_route_configs") + "[\(i)]")
            }
            for (i, e) in d.dynamicRouteConfigs.enumerated() where e.hasRouteConfig {
                binaryDumpEntry(
                    e.routeConfig, errorState: e.hasErrorState ? e.errorState : nil,
                    path: ParseSession.join(path, "dynamic_route_configs") + "[\(i)]")
            }
        case "envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig":
            if let e = decode(Envoy_Admin_V3_RoutesConfigDump.DynamicRouteConfig.self), e.hasRouteConfig {
                binaryDumpEntry(e.routeConfig, errorState: e.hasErrorState ? e.errorState : nil, path: path)
            }
        case "envoy.admin.v3.RoutesConfigDump.StaticRouteConfig":
            if let e = decode(Envoy_Admin_V3_RoutesConfigDump.StaticRouteConfig.self), e.hasRouteConfig {
                handleBinaryAny(e.routeConfig.typeURL, e.routeConfig.value, path: path)
            }
        case "envoy.admin.v3.EndpointsConfigDump":
            guard let d = decode(Envoy_Admin_V3_EndpointsConfigDump.self) else { return }
            for (i, e) in d.staticEndpointConfigs.enumerated() where e.hasEndpointConfig {
                handleBinaryAny(
                    e.endpointConfig.typeURL, e.endpointConfig.value,
                    path: ParseSession.join(path, "static_endpoint_configs") + "[\(i)]")
            }
            for (i, e) in d.dynamicEndpointConfigs.enumerated() where e.hasEndpointConfig {
                binaryDumpEntry(
                    e.endpointConfig, errorState: e.hasErrorState ? e.errorState : nil,
                    path: ParseSession.join(path, "dynamic_endpoint_configs") + "[\(i)]")
            }
        case "envoy.admin.v3.EndpointsConfigDump.DynamicEndpointConfig":
            if let e = decode(Envoy_Admin_V3_EndpointsConfigDump.DynamicEndpointConfig.self), e.hasEndpointConfig {
                binaryDumpEntry(e.endpointConfig, errorState: e.hasErrorState ? e.errorState : nil, path: path)
            }
        case "envoy.admin.v3.EndpointsConfigDump.StaticEndpointConfig":
            if let e = decode(Envoy_Admin_V3_EndpointsConfigDump.StaticEndpointConfig.self), e.hasEndpointConfig {
                handleBinaryAny(e.endpointConfig.typeURL, e.endpointConfig.value, path: path)
            }
        default:
            skipTyped(name, path: path)
        }
    }

    private func binaryDumpEntry(_ any: Google_Protobuf_Any, errorState: Envoy_Admin_V3_UpdateFailureState?, path: String) {
        if let err = errorState {
            diag(
                .skippedContent, .warning, path: path,
                "Envoy reported an update failure here: \(YAMLReader.truncate(err.details, limit: 200))")
        }
        handleBinaryAny(any.typeURL, any.value, path: path)
    }

    private func binaryDynamicListener(_ e: Envoy_Admin_V3_ListenersConfigDump.DynamicListener, path: String) {
        if e.hasActiveState, e.activeState.hasListener {
            handleBinaryAny(e.activeState.listener.typeURL, e.activeState.listener.value, path: path)
            if e.hasWarmingState {
                diag(.skippedContent, path: path, "listener \"\(e.name)\": warming version ignored, the active one is used")
            }
        } else if e.hasWarmingState, e.warmingState.hasListener {
            diag(.skippedContent, path: path, "listener \"\(e.name)\" is warming (not active yet); its warming version is used")
            handleBinaryAny(
                e.warmingState.listener.typeURL, e.warmingState.listener.value,
                path: ParseSession.join(path, "warming_state"))
        } else if e.hasDrainingState {
            diag(.skippedContent, path: path, "listener \"\(e.name)\" is draining; skipped")
        }
        if e.hasErrorState {
            diag(
                .skippedContent, .warning, path: path,
                "Envoy rejected an update of listener \"\(e.name)\": \(YAMLReader.truncate(e.errorState.details, limit: 200))")
        }
    }

    func addBinaryResource(_ kind: ResourceKind, _ value: Data, path: String) {
        add(DecodedResource(kind, value), path: path)
    }

    /// Adds a decoded resource to the snapshot, or says why it did not decode.
    func add(_ d: DecodedResource, path: String) {
        switch d {
        case .listener(let m): snapshot.listeners.append(XDSResource(name: m.name, message: m, origin: location(path)))
        case .routeConfiguration(let m):
            snapshot.routeConfigurations.append(XDSResource(name: m.name, message: m, origin: location(path)))
        case .cluster(let m): snapshot.clusters.append(XDSResource(name: m.name, message: m, origin: location(path)))
        case .loadAssignment(let m):
            snapshot.loadAssignments.append(XDSResource(name: m.clusterName, message: m, origin: location(path)))
        case .failed(let message, let error): diag(.invalidProtobuf, path: path, "cannot decode \(message): \(error)")
        }
    }
}

/// One resource decoded from its wire bytes (a pure function of kind and bytes:
/// safe to run on any thread).
enum DecodedResource: Sendable {
    case listener(Envoy_Config_Listener_V3_Listener)
    case routeConfiguration(Envoy_Config_Route_V3_RouteConfiguration)
    case cluster(Envoy_Config_Cluster_V3_Cluster)
    case loadAssignment(Envoy_Config_Endpoint_V3_ClusterLoadAssignment)
    /// The message's name and why it did not decode.
    case failed(String, String)

    init(_ kind: ResourceKind, _ value: Data) {
        func decode<M: Message>(_ t: M.Type, _ wrap: (M) -> DecodedResource) -> DecodedResource {
            do {
                var message = try M(serializedBytes: value, options: ParseSession.binaryOptions)
                AnyFields.rewrite(&message, DecodedResource.decodeAny)
                return wrap(message)
            } catch {
                return .failed(M.protoMessageName, ParseSession.describe(error))
            }
        }
        switch kind {
        case .listener: self = decode(Envoy_Config_Listener_V3_Listener.self, DecodedResource.listener)
        case .routeConfiguration: self = decode(Envoy_Config_Route_V3_RouteConfiguration.self, DecodedResource.routeConfiguration)
        case .cluster: self = decode(Envoy_Config_Cluster_V3_Cluster.self, DecodedResource.cluster)
        case .loadAssignment: self = decode(Envoy_Config_Endpoint_V3_ClusterLoadAssignment.self, DecodedResource.loadAssignment)
        }
    }

    /// Gives a binary `Any` of a modelled type its decoded message (its own
    /// `Any`s first), so that it is decoded once, here, however often later
    /// passes unpack it. One the schema does not model, a legacy v2 one, or one
    /// that does not decode keeps its bytes: the pass that unpacks it reports it.
    static func decodeAny(_ any: inout Google_Protobuf_Any) {
        guard let type = Google_Protobuf_Any.messageType(forTypeURL: any.typeURL),
            let decoded = try? decoded(type, any)
        else { return }
        any = decoded
    }

    private static func decoded<M: Message>(_ type: M.Type, _ any: Google_Protobuf_Any) throws -> Google_Protobuf_Any {
        // Unknown fields are dropped, as in the resource around it and on the JSON path.
        var message = try M(unpackingAny: any, options: ParseSession.binaryOptions)
        AnyFields.rewrite(&message, decodeAny)
        var out = try Google_Protobuf_Any(message: message, partial: true)
        out.typeURL = any.typeURL
        return out
    }
}
