import Foundation
import X2BDiagnostics
import X2BIR
import X2BSemantics

/// A semantic diff of routing between two lowered snapshots (`xds2bpf diff`): which
/// connections and requests go somewhere else, keyed by what traffic sees (service
/// address, host, request), never by resource names.
public struct RoutingDiff: Sendable, Codable, Hashable {
    public var changes: [Change] = []

    public var changed: Bool { !changes.isEmpty }

    /// One region of traffic that changed destination, with one concrete example.
    public struct Change: Sendable, Codable, Hashable {
        /// What a client dials: `ip:port`, `ip/len:port` for a filter chain's prefix
        /// range, `0.0.0.0:port` for a wildcard listener's other addresses.
        public var service: String
        /// `connect` (the connection's destination) or `request` (an HTTP request's).
        public var kind: Kind
        /// The host requests send (HTTP only).
        public var host: String?
        public var old: Side
        public var new: Side
        /// A request (or connect) in the region, in `xds2bpf explain --requests` form.
        public var example: Example
        /// How many of the candidate requests fell in this region.
        public var evidence: Int

        public enum Kind: String, Sendable, Codable, Hashable {
            case connect, request
        }
    }

    /// One side's decision for the example, as `xds2bpf explain` reports it.
    public struct Side: Sendable, Codable, Hashable {
        /// explain's result: `redirect`, `untouched`, `refused` or `http_response`.
        public var outcome: String
        /// The decision in words (listener or virtual host, route, action).
        public var decision: String
        public var virtualHost: String?
        public var route: Int?
        /// The route's matcher (IRPrinter form).
        public var match: String?
        /// The cluster explain picks for the example's random value.
        public var cluster: String?
        /// Every endpoint the decision may take, with its share in percent (explain's candidates).
        public var endpoints: [Endpoint] = []

        enum CodingKeys: String, CodingKey {
            case outcome, decision, cluster, endpoints, match, route
            case virtualHost = "virtual_host"
        }
    }

    public struct Endpoint: Sendable, Codable, Hashable {
        public var endpoint: String
        public var priority: UInt32
        public var share: Double
    }

    /// The fields of one line of `xds2bpf explain --requests`.
    public struct Example: Sendable, Codable, Hashable {
        public var dst: String
        public var authority: String?
        public var method: String?
        public var path: String?
        public var headers: [[String]]?
        public var random: UInt64
    }

    enum CodingKeys: String, CodingKey {
        case changed, changes
    }

    public init(changes: [Change] = []) { self.changes = changes }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        changes = try c.decode([Change].self, forKey: .changes)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(changed, forKey: .changed)
        try c.encode(changes, forKey: .changes)
    }

    /// Compares routing of `old` and `new`.
    public static func compare(old: MeshIR, new: MeshIR) -> RoutingDiff {
        var engine = DiffEngine(old: old, new: new)
        return RoutingDiff(changes: engine.run())
    }
}

/// One snapshot's view for the diff: indexes built once (listeners by address,
/// route tables by name, their domain indexes, cluster behaviours).
struct DiffSnapshot {
    let ir: MeshIR
    var behaviours: ClusterBehaviours
    let exactListeners: [ListenerKey: IRListener]
    let wildcardListeners: [WildcardKey: IRListener]
    let tables: [String: IRRouteTable]
    /// IRRouteTable.guardingFilters of the tables that have guarded routes, found once (every
    /// probe of a listener asks for its table's).
    let guardingFilters: [String: [String]]
    var domainIndexes: [String: RouteSemantics.DomainIndex] = [:]

    struct ListenerKey: Hashable {
        var address: IRAddress
        var port: UInt16
    }

    struct WildcardKey: Hashable {
        var family: IRFamily
        var port: UInt16
    }

    init(_ ir: MeshIR) {
        self.ir = ir
        behaviours = ClusterBehaviours(ir)
        var exact: [ListenerKey: IRListener] = [:]
        var wildcard: [WildcardKey: IRListener] = [:]
        // The first listener wins, as ChainSelection.listener takes the first.
        for l in ir.listeners {
            let k = ListenerKey(address: l.address, port: l.port)
            if exact[k] == nil { exact[k] = l }
            if l.address.isUnspecified {
                let w = WildcardKey(family: l.address.family, port: l.port)
                if wildcard[w] == nil { wildcard[w] = l }
            }
        }
        exactListeners = exact
        wildcardListeners = wildcard
        var t: [String: IRRouteTable] = [:]
        for r in ir.routeTables where t[r.name] == nil { t[r.name] = r }
        tables = t
        guardingFilters = t.compactMapValues(\.guardingFilters)
    }

    /// ChainSelection.listener through the indexes.
    func listener(_ address: IRAddress, _ port: UInt16) -> IRListener? {
        exactListeners[ListenerKey(address: address, port: port)]
            ?? wildcardListeners[WildcardKey(family: address.family, port: port)]
    }

    mutating func domainIndex(_ table: IRRouteTable) -> RouteSemantics.DomainIndex {
        if let d = domainIndexes[table.name] { return d }
        let d = RouteSemantics.DomainIndex(table)
        domainIndexes[table.name] = d
        return d
    }
}
