import Codegen
import Foundation
import SwiftProtobuf

/// The four xDS resource types a node subscribes to, in the order Envoy's client
/// brings them up (clusters and their endpoints before listeners and their routes)
/// and, for writing a snapshot, in the order `compile` lists them.
public enum XDSResourceType: String, CaseIterable, Sendable, Comparable {
    case listener, route, cluster, endpoint

    public var typeURL: String {
        switch self {
        case .listener: "type.googleapis.com/envoy.config.listener.v3.Listener"
        case .route: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
        case .cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster"
        case .endpoint: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
        }
    }

    /// The short name a person reads in status lines: LDS, RDS, CDS, EDS.
    public var shortName: String {
        switch self {
        case .listener: "LDS"
        case .route: "RDS"
        case .cluster: "CDS"
        case .endpoint: "EDS"
        }
    }

    /// LDS and CDS are subscribed by wildcard; RDS and EDS by the names that
    /// listeners and clusters reference.
    public var isWildcard: Bool { self == .listener || self == .cluster }

    public init?(typeURL: String) {
        guard let t = Self.allCases.first(where: { $0.typeURL == typeURL }) else { return nil }
        self = t
    }

    /// Order of a written snapshot: listeners, routes, clusters, endpoints.
    public static func < (a: Self, b: Self) -> Bool { a.ordinal < b.ordinal }
    private var ordinal: Int { Self.allCases.firstIndex(of: self)! }
}

/// One resource as the control plane sent it: its name, its version (delta xDS
/// gives one per resource) and its bytes, kept exactly as received so that a
/// written snapshot is what the server served.
public struct XDSReceivedResource: Sendable, Equatable {
    public var name: String
    public var version: String
    public let type: XDSResourceType
    /// The serialized resource. With `type` (whose type URL it was sent under),
    /// all of the `Any` it arrived in: kept as plain fields, as a push of 10k
    /// resources compares and copies them one by one. May be a slice of `wire`
    /// (indices then start where the resource starts in it).
    public let bytes: Data
    /// The `Any` exactly as a state-of-the-world response carried it (nil for a
    /// resource from a delta response): the next push repeats those bytes when the
    /// resource is unchanged, and the session recognises it by them alone.
    public let wire: Data?

    public init(name: String, version: String, type: XDSResourceType, bytes: Data, wire: Data? = nil) {
        self.name = name
        self.version = version
        self.type = type
        self.bytes = bytes
        self.wire = wire
    }

    /// The same resource, however it arrived (`wire` is not compared).
    public static func == (a: Self, b: Self) -> Bool {
        a.name == b.name && a.version == b.version && a.type == b.type && a.bytes == b.bytes
    }

    /// The resource as the `Any` it arrived in.
    public var any: Google_Protobuf_Any {
        var a = Google_Protobuf_Any()
        a.typeURL = type.typeURL
        a.value = bytes
        return a
    }
}

/// What a resource references: the route configurations an HTTP connection
/// manager names (RDS) and the endpoint sets an EDS cluster names.
enum XDSReferences {
    static let hcmName = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.protoMessageName

    static func routeNames(of listener: Envoy_Config_Listener_V3_Listener) -> [String] {
        var out: [String] = []
        var chains = listener.filterChains
        if listener.hasDefaultFilterChain { chains.append(listener.defaultFilterChain) }
        for chain in chains {
            for f in chain.filters where f.typedConfig.xdsTypeName == hcmName {
                guard
                    let hcm = try? f.typedConfig.unpackIfXDS(
                        Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.self),
                    case .rds(let rds)? = hcm.routeSpecifier, !rds.routeConfigName.isEmpty
                else { continue }
                out.append(rds.routeConfigName)
            }
        }
        return out
    }

    static func endpointName(of cluster: Envoy_Config_Cluster_V3_Cluster) -> String? {
        guard case .type(.eds)? = cluster.clusterDiscoveryType else { return nil }
        return cluster.edsClusterConfig.serviceName.isEmpty ? cluster.name : cluster.edsClusterConfig.serviceName
    }
}

/// The RDS/EDS names each listener/cluster references, remembered with the bytes
/// they were read from. Not part of a set's value (equal sets may have read
/// their references at different times).
struct ReferenceCache: Sendable, Equatable {
    struct Entry: Sendable {
        var bytes: Data
        var names: [String]
    }
    private var entries: [XDSResourceType: [String: Entry]] = [:]

    static func == (_: Self, _: Self) -> Bool { true }

    /// The names `list` references, in first-seen order; `read` decodes a
    /// resource whose bytes the cache does not hold.
    mutating func references(
        _ list: [XDSReceivedResource], of type: XDSResourceType, read: (XDSReceivedResource) -> [String]
    ) -> [String] {
        let old = entries[type] ?? [:]
        var new: [String: Entry] = [:]
        new.reserveCapacity(list.count)
        var seen = Set<String>(), out: [String] = []
        for r in list {
            let names: [String]
            if let e = old[r.name], XDSResourceSet.sameBytes(e.bytes, r.bytes) {
                names = e.names
            } else {
                names = read(r)
            }
            new[r.name] = Entry(bytes: r.bytes, names: names)
            for n in names where seen.insert(n).inserted { out.append(n) }
        }
        entries[type] = new
        return out
    }
}

/// A resource that cannot be taken: the reason goes into a NACK's error_detail.
public struct XDSResourceError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Everything a node holds of one control plane's configuration: per type, the
/// resources in the order they arrived, the type's version and the last nonce.
/// A value type: the client builds a candidate from the accepted set, and keeps
/// the accepted set when the candidate is rejected.
public struct XDSResourceSet: Sendable, Equatable {
    public private(set) var resources: [XDSResourceType: [XDSReceivedResource]] = [:]
    /// SotW `version_info`, or delta `system_version_info`, per type.
    public internal(set) var versions: [XDSResourceType: String] = [:]
    /// The nonce of the last response of each type.
    public internal(set) var nonces: [XDSResourceType: String] = [:]
    /// Types from which at least one response arrived (an empty response counts).
    public private(set) var received: Set<XDSResourceType> = []
    /// RDS names the listeners reference and EDS names the clusters reference, kept
    /// up to date when listeners or clusters change (decoding 10k listeners for
    /// every response would cost more than the response).
    private var routeRefs: [String] = []
    private var endpointRefs: [String] = []
    /// What each listener and cluster referenced, with the bytes it was read
    /// from: a push that repeats 10k unchanged clusters decodes none of them.
    private var referenceCache = ReferenceCache()

    public init() {}

    /// Decodes one resource of `type` from an `Any` (a bare resource, or an
    /// `envoy.service.discovery.v3.Resource` wrapper as some servers send in
    /// state of the world). Throws when the type URL or the bytes are wrong.
    public static func decode(_ any: Google_Protobuf_Any, as type: XDSResourceType, version: String = "")
        throws(XDSResourceError) -> XDSReceivedResource
    {
        var payload = any
        var version = version
        if any.typeURL == "type.googleapis.com/" + Envoy_Service_Discovery_V3_Resource.protoMessageName {
            guard let wrapped = try? Envoy_Service_Discovery_V3_Resource(serializedBytes: any.value) else {
                throw XDSResourceError(message: "a Resource wrapper that does not decode")
            }
            payload = wrapped.resource
            if version.isEmpty { version = wrapped.version }
        }
        guard payload.typeURL == type.typeURL else {
            throw XDSResourceError(
                message:
                    "type URL \(payload.typeURL.isEmpty ? "(empty)" : payload.typeURL) embedded in a resource does not match the response's type URL \(type.typeURL)"
            )
        }
        // The name is field 1 of all four messages. Reading it (and checking the
        // top level of the wire format) is enough here: the whole message is
        // decoded by the front end when the configuration is judged, and a
        // 10k-service response would otherwise be decoded twice.
        guard let name = Self.fieldOneString(payload.value) else {
            throw XDSResourceError(message: "a \(type.typeURL.split(separator: "/").last!) that does not decode (malformed wire format)")
        }
        guard !name.isEmpty else { throw XDSResourceError(message: "a \(type.shortName) resource without a name") }
        return XDSReceivedResource(name: name, version: version, type: type, bytes: payload.value)
    }

    /// Decodes one resource of `type` from the bytes of the `Any` a state-of-the-world
    /// response carried. The usual `Any` (the resource itself under its type URL) is
    /// taken apart by its framing alone, the resource kept as a slice of `wire`;
    /// anything else (a Resource wrapper, a wrong type URL, bytes that are not
    /// well-formed) goes through swift-protobuf and `decode(_:as:)`, which decides.
    public static func decode(wire: Data, as type: XDSResourceType) throws(XDSResourceError) -> XDSReceivedResource {
        var typeURL: String?
        var value: Range<Int>?
        var plain = true  // no field 1 or 2 of another wire type, no type URL that is not UTF-8
        let framed = topLevelFields(wire) { field, wireType, range in
            guard field == 1 || field == 2 else { return }
            guard wireType == 2 else { plain = false; return }
            if field == 2 { value = range; return }
            typeURL = String(bytes: wire[(wire.startIndex + range.lowerBound)..<(wire.startIndex + range.upperBound)], encoding: .utf8)
            if typeURL == nil { plain = false }
        }
        if framed, plain, typeURL == type.typeURL {
            let r = value ?? 0..<0
            let bytes = wire[(wire.startIndex + r.lowerBound)..<(wire.startIndex + r.upperBound)]
            guard let name = fieldOneString(bytes) else {
                throw XDSResourceError(message: "a \(type.typeURL.split(separator: "/").last!) that does not decode (malformed wire format)")
            }
            guard !name.isEmpty else { throw XDSResourceError(message: "a \(type.shortName) resource without a name") }
            return XDSReceivedResource(name: name, version: "", type: type, bytes: bytes, wire: wire)
        }
        guard let any = try? Google_Protobuf_Any(serializedBytes: wire) else {
            throw XDSResourceError(message: "a resource that is not a google.protobuf.Any (malformed wire format)")
        }
        let r = try decode(any, as: type)
        return XDSReceivedResource(name: r.name, version: r.version, type: type, bytes: r.bytes, wire: wire)
    }

    /// Walks the top-level fields of a serialized protobuf message, checking their
    /// framing, and hands each to `body`: field number, wire type, and its bytes as a
    /// range from the start of `data` (a length-delimited field's content). False if
    /// the bytes are not a well-formed message: a key or length out of bounds, field
    /// number 0, or a group.
    static func topLevelFields(_ data: Data, _ body: (UInt64, UInt64, Range<Int>) -> Void) -> Bool {
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Bool in
            let b = raw.bindMemory(to: UInt8.self)
            var i = 0
            func varint() -> UInt64? {
                var v: UInt64 = 0
                var shift: UInt64 = 0
                while i < b.count, shift < 64 {
                    let x = b[i]
                    i += 1
                    v |= UInt64(x & 0x7f) << shift
                    if x & 0x80 == 0 { return v }
                    shift += 7
                }
                return nil
            }
            while i < b.count {
                guard let key = varint(), key >> 3 != 0 else { return false }
                let start = i
                switch key & 7 {
                case 0: guard varint() != nil else { return false }
                case 1: guard i + 8 <= b.count else { return false }; i += 8
                case 5: guard i + 4 <= b.count else { return false }; i += 4
                case 2:
                    guard let len = varint(), len <= UInt64(b.count - i) else { return false }
                    body(key >> 3, 2, i..<(i + Int(len)))
                    i += Int(len)
                    continue
                default: return false
                }
                body(key >> 3, key & 7, start..<i)
            }
            return true
        }
    }

    /// Field 1 (a string) of a protobuf message, walking the top-level fields and
    /// checking their framing; nil if the bytes are not a well-formed message.
    static func fieldOneString(_ data: Data) -> String? {
        var name: String? = ""
        let framed = topLevelFields(data) { field, wireType, range in
            guard field == 1, wireType == 2, name != nil else { return }
            name = String(bytes: data[(data.startIndex + range.lowerBound)..<(data.startIndex + range.upperBound)], encoding: .utf8)
        }
        return framed ? name : nil
    }

    /// Byte equality, answered at once for the same buffer: in delta ADS every
    /// resource a response did not update is the very bytes the set holds, and so
    /// is every unchanged resource of a state-of-the-world push (ADSSession).
    static func sameBytes(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in
                pa.baseAddress == pb.baseAddress || pa.count == 0 || memcmp(pa.baseAddress!, pb.baseAddress!, pa.count) == 0
            }
        }
    }

    public func names(_ type: XDSResourceType) -> [String] { (resources[type] ?? []).map(\.name) }

    /// State of the world: the response is the whole set for LDS and CDS; for
    /// RDS and EDS it updates the resources it carries and keeps the others
    /// (Envoy's behaviour for non-wildcard types).
    /// `sameNames`: the caller knows `list` has the names the set holds, in the
    /// same order (a push that changed resources in place), and nothing is compared.
    mutating func applyStateOfTheWorld(
        _ type: XDSResourceType, _ list: [XDSReceivedResource], version: String, nonce: String, sameNames: Bool = false
    ) {
        if type.isWildcard || sameNames {
            resources[type] = list
        } else {
            upsert(type, list)
        }
        versions[type] = version
        nonces[type] = nonce
        received.insert(type)
        refreshReferences(type)
    }

    /// Delta: add or replace what came, drop what was removed.
    mutating func applyDelta(_ type: XDSResourceType, _ list: [XDSReceivedResource], removed: [String], version: String, nonce: String) {
        upsert(type, list)
        if !removed.isEmpty {
            let gone = Set(removed)
            resources[type] = (resources[type] ?? []).filter { !gone.contains($0.name) }
        }
        versions[type] = version
        nonces[type] = nonce
        received.insert(type)
        refreshReferences(type)
    }

    private mutating func refreshReferences(_ type: XDSResourceType) {
        switch type {
        case .listener:
            routeRefs = referenceCache.references(resources[.listener] ?? [], of: type) { r in
                (try? Envoy_Config_Listener_V3_Listener(serializedBytes: r.bytes)).map(XDSReferences.routeNames) ?? []
            }
        case .cluster:
            endpointRefs = referenceCache.references(resources[.cluster] ?? [], of: type) { r in
                (try? Envoy_Config_Cluster_V3_Cluster(serializedBytes: r.bytes)).flatMap(XDSReferences.endpointName).map { [$0] } ?? []
            }
        case .route, .endpoint: break
        }
    }

    /// Keeps only the RDS/EDS resources still referenced (an unsubscribed name is
    /// forgotten, as Envoy forgets it).
    mutating func retain(_ type: XDSResourceType, names keep: Set<String>) {
        resources[type] = (resources[type] ?? []).filter { keep.contains($0.name) }
    }

    /// Replaces the resources of the same name, appends the new ones (one pass:
    /// a state-of-the-world EDS response at 10k services carries 10k assignments).
    private mutating func upsert(_ type: XDSResourceType, _ updates: [XDSReceivedResource]) {
        // taken out of the dictionary: mutated in place, not copied
        var list = resources.removeValue(forKey: type) ?? []
        // the common case: the same names in the same order (a state-of-the-world push)
        if list.count == updates.count, zip(list, updates).allSatisfy({ $0.name == $1.name }) {
            resources[type] = updates
            return
        }
        var index: [String: Int] = [:]
        index.reserveCapacity(list.count + updates.count)
        for (i, r) in list.enumerated() { index[r.name] = i }
        for r in updates {
            if let i = index[r.name] {
                list[i] = r
            } else {
                index[r.name] = list.count
                list.append(r)
            }
        }
        resources[type] = list
    }

    /// Route configuration names the listeners reference, in first-seen order.
    public var referencedRoutes: [String] { routeRefs }

    /// Endpoint set names the EDS clusters reference, in first-seen order.
    public var referencedEndpoints: [String] { endpointRefs }

    public func referenced(_ type: XDSResourceType) -> [String] {
        switch type {
        case .route: referencedRoutes
        case .endpoint: referencedEndpoints
        case .listener, .cluster: []
        }
    }

    /// What is still missing before the set is a whole configuration: wildcard
    /// types never answered, and referenced RDS/EDS names not (yet) received.
    public var missing: [String] {
        var out: [String] = []
        for t in [XDSResourceType.listener, .cluster] where !received.contains(t) {
            out.append("\(t.shortName) (no response yet)")
        }
        for t in [XDSResourceType.route, .endpoint] {
            let names = names(t)
            if names == referenced(t) { continue }
            let have = Set(names)
            for n in referenced(t) where !have.contains(n) { out.append("\(t.shortName) \(ResourcePath.quoted(n))") }
        }
        return out
    }

    /// `missing`, for a person: the first few, then how many more.
    public var missingSummary: String {
        let m = missing
        return m.count <= 8 ? m.joined(separator: ", ") : m.prefix(8).joined(separator: ", ") + " and \(m.count - 8) more"
    }

    public var isComplete: Bool { missing.isEmpty }

    /// The snapshot `compile` reads: one DiscoveryResponse per type that answered
    /// (listeners, routes, clusters, endpoints), each length-delimited, with the
    /// resources (sorted by name: xDS sets are unordered, and servers order them
    /// as they like) and version as the server sent them. No nonce: a nonce
    /// belongs to one stream. The same configuration fetched twice, over state
    /// of the world or delta, gives the same bytes, and so the same bundle.
    public func discoveryStream() throws -> [UInt8] {
        var out: [UInt8] = []
        for t in XDSResourceType.allCases.sorted() where received.contains(t) {
            var r = Envoy_Service_Discovery_V3_DiscoveryResponse()
            r.versionInfo = versions[t] ?? ""
            r.typeURL = t.typeURL
            r.resources = (resources[t] ?? []).sorted { $0.name < $1.name }.map(\.any)
            let bytes: [UInt8] = try r.serializedBytes()
            var n = UInt64(bytes.count)
            repeat {
                var b = UInt8(n & 0x7f)
                n >>= 7
                if n != 0 { b |= 0x80 }
                out.append(b)
            } while n != 0
            out += bytes
        }
        return out
    }

    /// The same resources as an admin config dump (JSON), for `--format json`.
    public func configDumpJSON() throws -> String {
        var dump = Envoy_Admin_V3_ConfigDump()
        for t in XDSResourceType.allCases.sorted() where received.contains(t) {
            dump.configs.append(try configDumpSection(t))
        }
        var opts = JSONEncodingOptions()
        opts.preserveProtoFieldNames = true
        do {
            return try dump.jsonString(options: opts)
        } catch {
            // proto3 JSON needs the schema of every typed config; name the first
            // resource that holds one this build does not model.
            for t in XDSResourceType.allCases.sorted() {
                for r in resources[t] ?? [] where (try? r.any.jsonString(options: opts)) == nil {
                    throw XDSResourceError(
                        message:
                            "\(t.shortName) \(ResourcePath.quoted(r.name)) holds a typed config whose schema xds2bpf does not carry, so it has no JSON form; write the binary snapshot (--format pb) instead"
                    )
                }
            }
            throw error
        }
    }

    private func configDumpSection(_ t: XDSResourceType) throws -> Google_Protobuf_Any {
        let list = resources[t] ?? []
        let version = versions[t] ?? ""
        switch t {
        case .listener:
            var d = Envoy_Admin_V3_ListenersConfigDump()
            d.versionInfo = version
            d.dynamicListeners = list.map { r in
                var dl = Envoy_Admin_V3_ListenersConfigDump.DynamicListener()
                dl.name = r.name
                var st = Envoy_Admin_V3_ListenersConfigDump.DynamicListenerState()
                st.versionInfo = r.version.isEmpty ? version : r.version
                st.listener = r.any
                dl.activeState = st
                return dl
            }
            return try Google_Protobuf_Any(message: d)
        case .route:
            var d = Envoy_Admin_V3_RoutesConfigDump()
            d.dynamicRouteConfigs = list.map { r in
                var x = Envoy_Admin_V3_RoutesConfigDump.DynamicRouteConfig()
                x.versionInfo = r.version.isEmpty ? version : r.version
                x.routeConfig = r.any
                return x
            }
            return try Google_Protobuf_Any(message: d)
        case .cluster:
            var d = Envoy_Admin_V3_ClustersConfigDump()
            d.versionInfo = version
            d.dynamicActiveClusters = list.map { r in
                var x = Envoy_Admin_V3_ClustersConfigDump.DynamicCluster()
                x.versionInfo = r.version.isEmpty ? version : r.version
                x.cluster = r.any
                return x
            }
            return try Google_Protobuf_Any(message: d)
        case .endpoint:
            var d = Envoy_Admin_V3_EndpointsConfigDump()
            d.dynamicEndpointConfigs = list.map { r in
                var x = Envoy_Admin_V3_EndpointsConfigDump.DynamicEndpointConfig()
                x.versionInfo = r.version.isEmpty ? version : r.version
                x.endpointConfig = r.any
                return x
            }
            return try Google_Protobuf_Any(message: d)
        }
    }
}

extension XDSResourceSet {
    /// Reads back a stream written by `discoveryStream()` (the agent's saved
    /// state), with the per-resource versions saved beside it (delta resumes).
    public init(discoveryStream bytes: [UInt8], resourceVersions: [String: [String: String]] = [:]) throws(XDSResourceError) {
        self.init()
        var i = 0
        while i < bytes.count {
            var len: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < bytes.count, shift < 64 else { throw XDSResourceError(message: "truncated length prefix") }
                let b = bytes[i]
                i += 1
                len |= UInt64(b & 0x7f) << shift
                shift += 7
                if b & 0x80 == 0 { break }
            }
            guard len <= UInt64(bytes.count - i) else { throw XDSResourceError(message: "truncated message") }
            let msg = Array(bytes[i..<(i + Int(len))])
            i += Int(len)
            guard let r = try? DiscoveryResponse(serializedBytes: msg), let t = XDSResourceType(typeURL: r.typeURL) else {
                throw XDSResourceError(message: "not a DiscoveryResponse of a routing type")
            }
            var list: [XDSReceivedResource] = []
            for any in r.resources {
                var res = try Self.decode(any, as: t)
                res.version = resourceVersions[t.rawValue]?[res.name] ?? ""
                list.append(res)
            }
            applyStateOfTheWorld(t, list, version: r.versionInfo, nonce: r.nonce)
        }
    }

    /// type → name → version, for the resources that carry one (delta).
    public var resourceVersions: [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for (t, list) in resources {
            for r in list where !r.version.isEmpty { out[t.rawValue, default: [:]][r.name] = r.version }
        }
        return out
    }
}
