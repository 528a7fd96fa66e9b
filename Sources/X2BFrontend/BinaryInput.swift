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
        concurrentMap(count: values.count, chunksPerCore: 4) { DecodedResource(kinds[$0], values[$0]) }
    }

    /// Decodes one binary `Any` payload by its type URL.
    func handleBinaryAny(_ url: String, _ value: Data, path: String) {
        walkTyped(url: url, .binary(value), path: path)
    }

    /// A config dump message, or nil and a diagnostic.
    func decodeSection<M: Message>(_ type: M.Type, _ value: Data, path: String) -> M? {
        do {
            return try M(serializedBytes: value, options: ParseSession.binaryOptions)
        } catch {
            diag(.invalidProtobuf, path: path, "cannot decode \(M.protoMessageName): \(ParseSession.describe(error))")
            return nil
        }
    }

    // MARK: Config dumps (the binary adapter of DumpShape.swift)

    func binaryConfigDumpSections(_ value: Data, path: String) -> [(url: String, content: TypedContent, path: String)] {
        guard let d = decodeSection(Envoy_Admin_V3_ConfigDump.self, value, path: path) else { return [] }
        return d.configs.enumerated().map { i, c in
            (c.typeURL, .binary(c.value), ParseSession.join(ParseSession.join(path, "configs"), index: i))
        }
    }

    /// An entry of a dump; entries without a resource are left out.
    private func entry(_ any: Google_Protobuf_Any, has: Bool, path: String, error: Envoy_Admin_V3_UpdateFailureState? = nil) -> DumpEntry? {
        guard has else { return nil }
        return DumpEntry(path: path, resource: .typed(url: any.typeURL, .binary(any.value)), errorDetails: error?.details)
    }

    private static func item(_ path: String, _ section: String, _ i: Int) -> String {
        ParseSession.join(ParseSession.join(path, section), index: i)
    }

    func binaryListenersDump(_ value: Data, path: String) -> ListenersDump? {
        guard let d = decodeSection(Envoy_Admin_V3_ListenersConfigDump.self, value, path: path) else { return nil }
        return ListenersDump(
            statics: d.staticListeners.enumerated().compactMap { i, e in
                entry(e.listener, has: e.hasListener, path: Self.item(path, "static_listeners", i))
            },
            dynamics: d.dynamicListeners.enumerated().map { i, e in dynamicListener(e, path: Self.item(path, "dynamic_listeners", i)) })
    }

    func binaryDynamicListener(_ value: Data, path: String) -> DynamicListenerEntry? {
        decodeSection(Envoy_Admin_V3_ListenersConfigDump.DynamicListener.self, value, path: path).map { dynamicListener($0, path: path) }
    }

    private func dynamicListener(_ e: Envoy_Admin_V3_ListenersConfigDump.DynamicListener, path: String) -> DynamicListenerEntry {
        DynamicListenerEntry(
            path: path, name: e.name,
            active: e.hasActiveState ? entry(e.activeState.listener, has: e.activeState.hasListener, path: path) : nil,
            warming: e.hasWarmingState
                ? entry(e.warmingState.listener, has: e.warmingState.hasListener, path: ParseSession.join(path, "warming_state")) : nil,
            hasWarmingState: e.hasWarmingState, isDraining: e.hasDrainingState,
            errorDetails: e.hasErrorState ? e.errorState.details : nil)
    }

    func binaryClustersDump(_ value: Data, path: String) -> ClustersDump? {
        guard let d = decodeSection(Envoy_Admin_V3_ClustersConfigDump.self, value, path: path) else { return nil }
        return ClustersDump(
            statics: d.staticClusters.enumerated().compactMap { i, e in
                entry(e.cluster, has: e.hasCluster, path: Self.item(path, "static_clusters", i))
            },
            active: d.dynamicActiveClusters.enumerated().compactMap { i, e in
                cluster(e, path: Self.item(path, "dynamic_active_clusters", i), error: e.hasErrorState ? e.errorState : nil)
            },
            // A warming cluster's update failure is not reported (that of its active version is).
            warming: d.dynamicWarmingClusters.enumerated().compactMap { i, e in
                cluster(e, path: Self.item(path, "dynamic_warming_clusters", i), error: nil)
            })
    }

    /// A dynamic cluster, decoded here once when it is one, since the rules need its name.
    private func cluster(
        _ e: Envoy_Admin_V3_ClustersConfigDump.DynamicCluster, path: String, error: Envoy_Admin_V3_UpdateFailureState?
    ) -> DumpEntry? {
        guard var out = entry(e.cluster, has: e.hasCluster, path: path, error: error) else { return nil }
        let url = e.cluster.typeURL
        if XDSTypes.kind(ofTypeName: XDSTypes.canonicalName(XDSTypes.name(fromURL: url))) == .cluster {
            let decoded = DecodedResource(.cluster, e.cluster.value)
            if case .cluster(let c) = decoded { out.name = c.name }
            out.resource = .decoded(url: url, decoded)
        }
        return out
    }

    func binaryRoutesDump(_ value: Data, path: String) -> [DumpEntry] {
        guard let d = decodeSection(Envoy_Admin_V3_RoutesConfigDump.self, value, path: path) else { return [] }
        return d.staticRouteConfigs.enumerated().compactMap { i, e in
            entry(e.routeConfig, has: e.hasRouteConfig, path: Self.item(path, "static_route_configs", i))
        }
            + d.dynamicRouteConfigs.enumerated().compactMap { i, e in
                entry(
                    e.routeConfig, has: e.hasRouteConfig, path: Self.item(path, "dynamic_route_configs", i),
                    error: e.hasErrorState ? e.errorState : nil)
            }
    }

    func binaryEndpointsDump(_ value: Data, path: String) -> [DumpEntry] {
        guard let d = decodeSection(Envoy_Admin_V3_EndpointsConfigDump.self, value, path: path) else { return [] }
        return d.staticEndpointConfigs.enumerated().compactMap { i, e in
            entry(e.endpointConfig, has: e.hasEndpointConfig, path: Self.item(path, "static_endpoint_configs", i))
        }
            + d.dynamicEndpointConfigs.enumerated().compactMap { i, e in
                entry(
                    e.endpointConfig, has: e.hasEndpointConfig, path: Self.item(path, "dynamic_endpoint_configs", i),
                    error: e.hasErrorState ? e.errorState : nil)
            }
    }

    func binaryDumpEntry(_ type: DumpEntryType, _ value: Data, path: String) -> DumpEntry? {
        typealias L = Envoy_Admin_V3_ListenersConfigDump
        typealias C = Envoy_Admin_V3_ClustersConfigDump
        typealias R = Envoy_Admin_V3_RoutesConfigDump
        typealias E = Envoy_Admin_V3_EndpointsConfigDump
        switch type {
        case .staticListener: return entry(L.StaticListener.self, value, path: path, \.listener, \.hasListener)
        case .staticCluster: return entry(C.StaticCluster.self, value, path: path, \.cluster, \.hasCluster)
        case .dynamicCluster:
            return entry(C.DynamicCluster.self, value, path: path, \.cluster, \.hasCluster) { $0.hasErrorState ? $0.errorState : nil }
        case .staticRouteConfig: return entry(R.StaticRouteConfig.self, value, path: path, \.routeConfig, \.hasRouteConfig)
        case .dynamicRouteConfig:
            return entry(R.DynamicRouteConfig.self, value, path: path, \.routeConfig, \.hasRouteConfig) {
                $0.hasErrorState ? $0.errorState : nil
            }
        case .staticEndpointConfig:
            return entry(E.StaticEndpointConfig.self, value, path: path, \.endpointConfig, \.hasEndpointConfig)
        case .dynamicEndpointConfig:
            return entry(E.DynamicEndpointConfig.self, value, path: path, \.endpointConfig, \.hasEndpointConfig) {
                $0.hasErrorState ? $0.errorState : nil
            }
        }
    }

    /// A dump entry message on its own: decoded, then read as an entry.
    private func entry<M: Message>(
        _ type: M.Type, _ value: Data, path: String, _ resource: KeyPath<M, Google_Protobuf_Any>, _ has: KeyPath<M, Bool>,
        error: (M) -> Envoy_Admin_V3_UpdateFailureState? = { _ in nil }
    ) -> DumpEntry? {
        guard let e = decodeSection(M.self, value, path: path) else { return nil }
        return entry(e[keyPath: resource], has: e[keyPath: has], path: path, error: error(e))
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
                if DecodedResource.mayHoldModelledAny(value) {
                    AnyFields.rewrite(&message, where: DecodedResource.isModelled, DecodedResource.decodeAny)
                }
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

    /// Whether a resource's bytes name a modelled type after `type.googleapis.com/`:
    /// an `Any`'s type URL is in its bytes as it is, so without one the walk of
    /// the decoded message finds nothing to decode (istio's clusters carry only
    /// their own filters' types; assignments none), and it was an eighth of a
    /// 10k-service parse. An `Any` under another host name is left as bytes: the
    /// pass that reads it unpacks it, as it does any `Any` not decoded here.
    static func mayHoldModelledAny(_ bytes: Data) -> Bool {
        bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Bool in
            guard let base = raw.baseAddress else { return false }
            var at = 0
            while at < raw.count,
                let hit = typeURLPrefix.withUnsafeBytes({ memmem(base + at, raw.count - at, $0.baseAddress!, $0.count) })
            {
                var end = hit - base + typeURLPrefix.count
                let start = end
                while end < raw.count, isTypeNameByte(raw[end]) { end += 1 }
                let name = String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<end]), as: UTF8.self)
                if XDSTypes.isModelled(typeName: name) { return true }
                at = end
            }
            return false
        }
    }

    private static let typeURLPrefix = Array(XDSTypes.prefix.utf8)

    private static func isTypeNameByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F
    }

    /// Gives a binary `Any` of a modelled type its decoded message (its own
    /// `Any`s first), so that it is decoded once, here, however often later
    /// passes unpack it. One the schema does not model, a legacy v2 one, or one
    /// that does not decode keeps its bytes: the pass that unpacks it reports it.
    static func isModelled(_ any: Google_Protobuf_Any) -> Bool {
        XDSTypes.messageType(forTypeURL: any.typeURL) != nil
    }

    static func decodeAny(_ any: inout Google_Protobuf_Any) {
        guard let type = XDSTypes.messageType(forTypeURL: any.typeURL),
            let decoded = try? decoded(type, any)
        else { return }
        any = decoded
    }

    private static func decoded<M: Message>(_ type: M.Type, _ any: Google_Protobuf_Any) throws -> Google_Protobuf_Any {
        // Unknown fields are dropped, as in the resource around it and on the JSON path.
        var message = try M(unpackingAny: any, options: ParseSession.binaryOptions)
        AnyFields.rewrite(&message, where: isModelled, decodeAny)
        var out = try Google_Protobuf_Any(message: message, partial: true)
        out.typeURL = any.typeURL
        return out
    }
}

/// glibc's memmem(3) (a GNU extension Swift's Glibc module leaves out).
@_silgen_name("memmem")
private func memmem(_ haystack: UnsafeRawPointer, _ haystackLength: Int, _ needle: UnsafeRawPointer, _ needleLength: Int)
    -> UnsafeRawPointer?
