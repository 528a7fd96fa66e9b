import Codegen
import Foundation
import SwiftProtobuf

public typealias DiscoveryRequest = Envoy_Service_Discovery_V3_DiscoveryRequest
public typealias DiscoveryResponse = Envoy_Service_Discovery_V3_DiscoveryResponse
/// A DiscoveryResponse with its resources left as the bytes of their `Any`s (what the client reads).
public typealias DiscoveryResponseEnvelope = Xds2bpf_Ads_V1_DiscoveryResponseEnvelope
public typealias DeltaDiscoveryRequest = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest
public typealias DeltaDiscoveryResponse = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse

/// State of the world (one stream, full sets per type) or incremental (delta) xDS.
public enum ADSMode: String, Sendable {
    case stateOfTheWorld = "sotw"
    case delta
}

/// What the consumer of a complete configuration says about it. `accept` once
/// it is live (the ACK follows); `reject` with the diagnostics that go into the
/// NACK's error_detail.
public enum ADSVerdict: Sendable, Equatable {
    case accept
    case reject(String)
}

/// One message the client sends on the stream.
public enum ADSOutgoing: Sendable {
    case sotw(DiscoveryRequest)
    case delta(DeltaDiscoveryRequest)
}

/// Something a person following the agent wants to read.
public struct ADSEvent: Sendable, CustomStringConvertible {
    public var description: String
}

/// The client side of one ADS stream, as Envoy's own client behaves, with no
/// I/O: it says which requests to send for each response and for each verdict.
///
/// - LDS and CDS are subscribed by wildcard; RDS and EDS by the names that the
///   listeners' connection managers and the EDS clusters reference, updated as
///   they change (new names subscribed, names no longer referenced dropped).
/// - A response whose resources do not decode (wrong type URL, bad bytes, no
///   name) is NACKed at once; the accepted configuration does not change.
/// - Otherwise it joins the candidate configuration; once the candidate is
///   complete (every referenced RDS/EDS name has arrived), the consumer gives a
///   verdict, and every response it contains is ACKed (accept) or NACKed
///   (reject, with the diagnostics; the candidate falls back to the accepted
///   configuration). An ACK is therefore sent only once the consumer says the
///   configuration is live.
public struct ADSSession: Sendable {
    public let mode: ADSMode
    public let node: Envoy_Config_Core_V3_Node
    /// The last configuration the consumer accepted.
    public private(set) var accepted = XDSResourceSet()
    /// The accepted configuration plus every response not yet ACKed or NACKed.
    public private(set) var candidate = XDSResourceSet()
    /// Types with responses waiting for a verdict, with their nonces (delta ACKs each).
    private var pending: [XDSResourceType: [String]] = [:]
    /// Names subscribed for RDS and EDS.
    public private(set) var subscribed: [XDSResourceType: [String]] = [.route: [], .endpoint: []] {
        didSet { subscribedSets = subscribed.mapValues(Set.init) }
    }
    /// `subscribed` as sets: every response is checked against them (10k names at 10k services).
    private var subscribedSets: [XDSResourceType: Set<String>] = [:]
    private var nodeSent = false
    /// Status lines for a person (`watch` prints them).
    public private(set) var events: [ADSEvent] = []

    public init(mode: ADSMode, node: Envoy_Config_Core_V3_Node, resume: XDSResourceSet? = nil) {
        self.mode = mode
        self.node = node
        if let resume {
            accepted = resume
            candidate = resume
        }
    }

    public var hasPending: Bool { !pending.isEmpty }

    public mutating func drainEvents() -> [ADSEvent] {
        defer { events = [] }
        return events
    }

    // MARK: Requests

    /// The first requests of a stream: LDS and CDS wildcards, and, when resuming,
    /// RDS/EDS for the names the accepted configuration references, with the
    /// accepted versions (SotW) or resource versions (delta) so the server can
    /// send only what changed.
    public mutating func initialRequests() -> [ADSOutgoing] {
        nodeSent = false
        pending = [:]
        candidate = accepted
        subscribed = [.route: accepted.referencedRoutes, .endpoint: accepted.referencedEndpoints]
        var out: [ADSOutgoing] = []
        // Clusters first, then listeners, as Envoy: endpoints can be asked for
        // before the listeners that use them arrive.
        for t in [XDSResourceType.cluster, .listener] { out.append(subscription(t, initial: true)) }
        for t in [XDSResourceType.endpoint, .route] where !(subscribed[t] ?? []).isEmpty {
            out.append(subscription(t, initial: true))
        }
        return out
    }

    private mutating func withNode<T>(_ body: (inout Envoy_Config_Core_V3_Node?) -> T) -> T {
        var n: Envoy_Config_Core_V3_Node? = nodeSent ? nil : node
        nodeSent = true
        return body(&n)
    }

    /// A subscription request for `t` (no ACK meaning: it names the accepted
    /// version, and the last nonce only when no response of `t` is pending).
    private mutating func subscription(_ t: XDSResourceType, initial: Bool) -> ADSOutgoing {
        let names = t.isWildcard ? [] : (subscribed[t] ?? [])
        switch mode {
        case .stateOfTheWorld:
            var r = DiscoveryRequest()
            r.typeURL = t.typeURL
            r.resourceNames = names
            r.versionInfo = accepted.versions[t] ?? ""
            if !initial { r.responseNonce = candidate.nonces[t] ?? "" }
            withNode { if let n = $0 { r.node = n } }
            return .sotw(r)
        case .delta:
            var r = DeltaDiscoveryRequest()
            r.typeURL = t.typeURL
            if initial {
                r.resourceNamesSubscribe = names
                for res in accepted.resources[t] ?? [] where !res.version.isEmpty {
                    r.initialResourceVersions[res.name] = res.version
                }
            }
            withNode { if let n = $0 { r.node = n } }
            return .delta(r)
        }
    }

    /// After the candidate changed: subscribe RDS/EDS names newly referenced,
    /// drop those no longer referenced.
    private mutating func resubscribe() -> [ADSOutgoing] {
        var out: [ADSOutgoing] = []
        for t in [XDSResourceType.endpoint, .route] {
            let want = candidate.referenced(t)
            let have = subscribed[t] ?? []
            guard want != have, Set(want) != Set(have) else { continue }
            subscribed[t] = want
            candidate.retain(t, names: Set(want))
            switch mode {
            case .stateOfTheWorld:
                out.append(subscription(t, initial: false))
            case .delta:
                var r = DeltaDiscoveryRequest()
                r.typeURL = t.typeURL
                let (haveSet, wantSet) = (Set(have), Set(want))
                r.resourceNamesSubscribe = want.filter { !haveSet.contains($0) }
                r.resourceNamesUnsubscribe = have.filter { !wantSet.contains($0) }
                withNode { if let n = $0 { r.node = n } }
                out.append(.delta(r))
            }
            events.append(ADSEvent(description: "\(t.shortName): subscribed to \(want.count) name\(want.count == 1 ? "" : "s")"))
        }
        return out
    }

    // MARK: Responses

    /// A state-of-the-world response as swift-protobuf decodes it (tests, tools):
    /// the same as receiving its envelope.
    public mutating func receive(_ response: DiscoveryResponse) -> [ADSOutgoing] {
        var envelope = DiscoveryResponseEnvelope()
        envelope.versionInfo = response.versionInfo
        envelope.canary = response.canary
        envelope.typeURL = response.typeURL
        envelope.nonce = response.nonce
        envelope.resources = response.resources.map { (try? $0.serializedBytes()) ?? Data() }
        return receive(envelope)
    }

    /// A state-of-the-world response. Returns the requests to send now; after
    /// it, `needsVerdict` says whether the consumer must judge the candidate.
    public mutating func receive(_ response: DiscoveryResponseEnvelope) -> [ADSOutgoing] {
        guard mode == .stateOfTheWorld else { return [] }
        guard let t = XDSResourceType(typeURL: response.typeURL) else {
            events.append(ADSEvent(description: "ignored a response of type \(response.typeURL.isEmpty ? "(empty)" : response.typeURL): not subscribed"))
            return []
        }
        var list: [XDSReceivedResource] = []
        var errors: [String] = []
        var unrequested = 0
        let wanted = subscribedSets[t] ?? []
        // A state-of-the-world push carries every resource again, nearly all of them
        // the bytes the candidate holds already, mostly in the same order: those are
        // taken as they are (no decode, and the change detection downstream then sees
        // the very same buffers).
        let held = candidate.resources[t] ?? []
        // Names are unique in `held`: while every resource taken anew sits where the
        // held one of its name was, the list's names are unique too, and the check
        // for duplicates (10k names hashed) is not needed.
        var moved = false
        list.reserveCapacity(response.resources.count)
        for (i, wire) in response.resources.enumerated() {
            // The same `Any`, byte for byte: the same type URL, resource and version.
            // (A held resource is subscribed: `resubscribe` drops the others.)
            if i < held.count, let w = held[i].wire, XDSResourceSet.sameBytes(w, wire) {
                list.append(held[i])
                continue
            }
            do {
                let r = try XDSResourceSet.decode(wire: wire, as: t)
                if !t.isWildcard && !wanted.contains(r.name) { unrequested += 1; continue }
                if i >= held.count || held[i].name != r.name { moved = true }
                list.append(r)
            } catch {
                errors.append(error.message)
            }
        }
        if moved || unrequested > 0 {
            var seen = Set<String>(minimumCapacity: list.count), dup = Set<String>()
            for r in list where !seen.insert(r.name).inserted { dup.insert(r.name) }
            for n in dup.sorted() { errors.append("duplicate \(t.shortName) resource \(ResourcePath.quoted(n))") }
        }
        if !errors.isEmpty {
            candidate.nonces[t] = response.nonce
            return [nack(t, nonce: response.nonce, message: errors.joined(separator: "; "))]
        }
        if unrequested > 0 {
            events.append(
                ADSEvent(description: "\(t.shortName) \(response.versionInfo): ignored \(unrequested) resource\(unrequested == 1 ? "" : "s") not subscribed"))
        }
        let sameNames = !moved && unrequested == 0 && list.count == held.count
        candidate.applyStateOfTheWorld(t, list, version: response.versionInfo, nonce: response.nonce, sameNames: sameNames)
        pending[t] = [response.nonce]
        events.append(ADSEvent(description: "\(t.shortName) \(response.versionInfo): \(list.count) resource\(list.count == 1 ? "" : "s") received"))
        var out = resubscribe()
        // A push can cross a subscription change: the server then dropped the change
        // as stale (old nonce) and answered for the old names. Envoy repeats its names
        // in the ACK it sends at once; this client ACKs only when the whole
        // configuration is live, so it repeats the names now, with the fresh nonce
        // (no ACK meaning: the version named is the accepted one).
        if !t.isWildcard, out.isEmpty, candidate.names(t) != subscribed[t] ?? [] {
            let have = Set(candidate.names(t))
            if (subscribed[t] ?? []).contains(where: { !have.contains($0) }) {
                out.append(subscription(t, initial: false))
            }
        }
        return out
    }

    /// A delta response.
    public mutating func receive(_ response: DeltaDiscoveryResponse) -> [ADSOutgoing] {
        guard mode == .delta else { return [] }
        guard let t = XDSResourceType(typeURL: response.typeURL) else {
            events.append(ADSEvent(description: "ignored a response of type \(response.typeURL.isEmpty ? "(empty)" : response.typeURL): not subscribed"))
            return []
        }
        var list: [XDSReceivedResource] = []
        var errors: [String] = []
        var unrequested = 0
        let wanted = subscribedSets[t] ?? []
        for res in response.resources {
            do {
                var any = res.resource
                if any.typeURL.isEmpty && !res.name.isEmpty { any.typeURL = t.typeURL }
                var r = try XDSResourceSet.decode(any, as: t, version: res.version)
                if !res.name.isEmpty && res.name != r.name {
                    throw XDSResourceError(message: "resource named \(ResourcePath.quoted(res.name)) holds \(ResourcePath.quoted(r.name))")
                }
                r.version = res.version
                if !t.isWildcard && !wanted.contains(r.name) { unrequested += 1; continue }
                list.append(r)
            } catch let e as XDSResourceError {
                errors.append(e.message)
            } catch {
                errors.append("\(error)")
            }
        }
        if !errors.isEmpty {
            return [nack(t, nonce: response.nonce, message: errors.joined(separator: "; "))]
        }
        if unrequested > 0 {
            events.append(ADSEvent(description: "\(t.shortName): ignored \(unrequested) resource\(unrequested == 1 ? "" : "s") not subscribed"))
        }
        candidate.applyDelta(t, list, removed: response.removedResources, version: response.systemVersionInfo, nonce: response.nonce)
        pending[t, default: []].append(response.nonce)
        events.append(
            ADSEvent(
                description:
                    "\(t.shortName) \(response.systemVersionInfo.isEmpty ? "" : response.systemVersionInfo + ": ")\(list.count) updated, \(response.removedResources.count) removed"
            ))
        return resubscribe()
    }

    /// Whether the consumer must judge the candidate now: responses are pending
    /// and the candidate is a whole configuration.
    public var needsVerdict: Bool { !pending.isEmpty && candidate.isComplete }

    /// ACKs (accept) or NACKs (reject) every pending response.
    public mutating func apply(_ verdict: ADSVerdict) -> [ADSOutgoing] {
        var out: [ADSOutgoing] = []
        let types = pending.keys.sorted()
        switch verdict {
        case .accept:
            accepted = candidate
            for t in types {
                for nonce in mode == .delta ? pending[t]! : [pending[t]!.last!] { out.append(ack(t, nonce: nonce)) }
            }
            events.append(ADSEvent(description: "ACK \(types.map { "\($0.shortName) \(accepted.versions[$0] ?? "")" }.joined(separator: ", "))"))
            pending = [:]
        case .reject(let message):
            for t in types {
                for nonce in mode == .delta ? pending[t]! : [pending[t]!.last!] {
                    out.append(nack(t, nonce: nonce, message: message))
                }
            }
            // Back to the last good configuration (keeping the nonces seen).
            let nonces = candidate.nonces
            candidate = accepted
            candidate.nonces = nonces
            pending = [:]
            out += resubscribe()
        }
        return out
    }

    private mutating func ack(_ t: XDSResourceType, nonce: String) -> ADSOutgoing {
        switch mode {
        case .stateOfTheWorld:
            var r = DiscoveryRequest()
            r.typeURL = t.typeURL
            r.versionInfo = accepted.versions[t] ?? ""
            r.resourceNames = t.isWildcard ? [] : (subscribed[t] ?? [])
            r.responseNonce = nonce
            withNode { if let n = $0 { r.node = n } }
            return .sotw(r)
        case .delta:
            var r = DeltaDiscoveryRequest()
            r.typeURL = t.typeURL
            r.responseNonce = nonce
            withNode { if let n = $0 { r.node = n } }
            return .delta(r)
        }
    }

    private mutating func nack(_ t: XDSResourceType, nonce: String, message: String) -> ADSOutgoing {
        events.append(ADSEvent(description: "NACK \(t.shortName) (nonce \(nonce)): \(message.split(separator: "\n").first ?? "")"))
        var status = Google_Rpc_Status()
        status.code = 3  // INVALID_ARGUMENT, as Envoy sets it
        status.message = message
        switch mode {
        case .stateOfTheWorld:
            var r = DiscoveryRequest()
            r.typeURL = t.typeURL
            r.versionInfo = accepted.versions[t] ?? ""
            r.resourceNames = t.isWildcard ? [] : (subscribed[t] ?? [])
            r.responseNonce = nonce
            r.errorDetail = status
            withNode { if let n = $0 { r.node = n } }
            return .sotw(r)
        case .delta:
            var r = DeltaDiscoveryRequest()
            r.typeURL = t.typeURL
            r.responseNonce = nonce
            r.errorDetail = status
            withNode { if let n = $0 { r.node = n } }
            return .delta(r)
        }
    }
}
