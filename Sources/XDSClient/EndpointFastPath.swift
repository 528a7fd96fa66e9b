import Codegen
import Foundation
import SwiftProtobuf

/// The endpoint-only change, computed from the changed ClusterLoadAssignments
/// alone: no front end over the whole mesh, no planning, no C, no clang.
///
/// When a candidate differs from the live configuration only in EDS resources,
/// each cluster that uses a changed assignment is lowered by itself (the same
/// Lowerer, with the cluster resource the live configuration has) and its rows
/// computed by the planner's own per-cluster function; the rows become an
/// EndpointDelta for `xds2bpf-loader update`. Anything unusual — an error, a
/// host name, a cluster the live bundle does not have, an assignment no
/// cluster uses — answers nil, and the caller takes the full path, which
/// decides (and diagnoses) everything the usual way. Tests check that both
/// paths give the same rows.
public struct EndpointFastPath: Sendable {
    /// EDS service name → the clusters (as the live configuration has them) that use it.
    let clustersByService: [String: [XDSResource<Envoy_Config_Cluster_V3_Cluster>]]
    /// Cluster name → its index in the live bundle's manifest (the map row id).
    let clusterIndex: [String: UInt32]
    let codeSha256: String
    let options: FrontEndOptions

    /// From the live configuration's front end and bundle.
    public init?(frontEnd fe: FrontEndResult, bundle: BundleFiles, options: FrontEndOptions) {
        guard let m = bundle.files["manifest.pb"].flatMap({ try? Xds2bpf_Bundle_V1_Manifest(serializedBytes: $0) }) else { return nil }
        var byService: [String: [XDSResource<Envoy_Config_Cluster_V3_Cluster>]] = [:]
        for c in fe.snapshot.clusters {
            guard case .type(.eds)? = c.message.clusterDiscoveryType else { continue }
            let service = c.message.edsClusterConfig.serviceName.isEmpty ? c.name : c.message.edsClusterConfig.serviceName
            byService[service, default: []].append(c)
        }
        clustersByService = byService
        var index: [String: UInt32] = [:]
        for c in m.clusters { index[c.name] = c.index }
        clusterIndex = index
        codeSha256 = m.codeSha256
        self.options = options
    }

    /// An assignment that differs from the live configuration's: its name, and its
    /// bytes in the new configuration (nil: it is gone).
    struct Change {
        let name: String
        let bytes: Data?
    }

    /// The names of the assignments that differ, if nothing but assignments differs.
    public static func changedAssignments(from old: XDSResourceSet, to new: XDSResourceSet) -> [String]? {
        changes(from: old, to: new)?.map(\.name)
    }

    /// The assignments that differ, by name, if nothing but assignments differs.
    /// Linear in the configuration's resources (compared as bytes, in the order
    /// the sets keep them; by name only where that order differs).
    static func changes(from old: XDSResourceSet, to new: XDSResourceSet) -> [Change]? {
        for t in [XDSResourceType.listener, .route, .cluster] {
            guard old.received.contains(t) == new.received.contains(t),
                differing(old.resources[t] ?? [], new.resources[t] ?? []).isEmpty
            else { return nil }
        }
        return differing(old.resources[.endpoint] ?? [], new.resources[.endpoint] ?? []).sorted { $0.name < $1.name }
    }

    /// Resources in one list and not the other, or that differ (with their bytes in `b`).
    static func differing(_ a: [XDSReceivedResource], _ b: [XDSReceivedResource]) -> [Change] {
        // A type no response changed since the live configuration is the very same
        // array (a 10k-cluster list is then not walked at all).
        let sameStorage =
            a.count == b.count
            && a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in pa.baseAddress == pb.baseAddress } }
        if sameStorage { return [] }
        var out: [Change] = []
        var i = 0
        // the common case: both lists in the same order
        while i < a.count, i < b.count, a[i].name == b[i].name {
            if !XDSResourceSet.sameBytes(a[i].bytes, b[i].bytes) { out.append(Change(name: b[i].name, bytes: b[i].bytes)) }
            i += 1
        }
        if i == a.count && i == b.count { return out }
        var rest: [String: Data] = [:]
        rest.reserveCapacity(a.count - i)
        for r in a[i...] { rest[r.name] = r.bytes }
        for r in b[i...] {
            if let v = rest.removeValue(forKey: r.name), XDSResourceSet.sameBytes(v, r.bytes) { continue }
            out.append(Change(name: r.name, bytes: r.bytes))
        }
        out += rest.keys.map { Change(name: $0, bytes: nil) }
        return out
    }

    /// Each change's assignment (nil where it is gone), decoded concurrently;
    /// nil when one does not decode.
    static func decodeAssignments(_ changed: [Change]) -> [Envoy_Config_Endpoint_V3_ClusterLoadAssignment?]? {
        typealias CLA = Envoy_Config_Endpoint_V3_ClusterLoadAssignment
        let n = changed.count
        // Few assignments: not worth waking other threads.
        if n < 16 {
            var out: [CLA?] = []
            for c in changed {
                guard let bytes = c.bytes else {
                    out.append(nil)
                    continue
                }
                guard let cla = try? CLA(serializedBytes: bytes) else { return nil }
                out.append(cla)
            }
            return out
        }
        let all = concurrentMap(count: n) { i in
            Result<CLA?, any Error> { try changed[i].bytes.map { try CLA(serializedBytes: $0) } }
        }
        var out: [CLA?] = []
        out.reserveCapacity(n)
        for r in all {
            guard case .success(let cla) = r else { return nil }
            out.append(cla)
        }
        return out
    }

    /// The delta for the changed assignments, or nil when the full path must decide;
    /// its phases timed in `laps` (decode, lower, rows) for the agent's log.
    func delta(_ changed: [Change], snapshotSha256: String, laps: inout Laps) -> EndpointDelta.Message? {
        var snapshot = XDSSnapshot()
        for c in changed {
            guard let clusters = clustersByService[c.name], !clusters.isEmpty else { return nil }
            snapshot.clusters += clusters
        }
        // Decoded on every core (a hundred assignments of a state-of-the-world push
        // are ~half of the agent's CPU before lowering), then taken in order.
        guard let decoded = Self.decodeAssignments(changed) else { return nil }
        for (c, cla) in zip(changed, decoded) {
            guard let cla else { continue }  // gone: the clusters keep no endpoints
            snapshot.loadAssignments.append(XDSResource(name: c.name, message: cla, origin: "ads"))
        }
        laps.lap("decode")
        let fe = Pipeline.frontEnd(snapshot: snapshot, options: options)
        // Warnings (what the kernel does not enforce) are the live configuration's
        // too; an error is for the full path to report. So is a host name: alone,
        // the cluster looks unreferenced, which makes that error a note.
        guard !fe.diagnostics.contains(where: { $0.severity == .error || $0.id == DiagnosticID.invalidAddress.code }) else {
            return nil
        }
        laps.lap("lower")
        var delta = EndpointDelta.Message()
        delta.formatVersion = 1
        delta.abiVersion = ABI.version
        delta.baseCodeSha256 = codeSha256
        delta.snapshotSha256 = snapshotSha256
        for c in fe.ir.clusters.sorted(by: { (clusterIndex[$0.name] ?? 0) < (clusterIndex[$1.name] ?? 0) }) {
            guard let id = clusterIndex[c.name], !c.originalDestination else { return nil }
            var diags: [Diagnostic] = []
            let levels = Planner.clusterLevels(c, diagnostics: &diags)
            guard diags.allSatisfy({ $0.severity != .error }) else { return nil }
            var rows = Xds2bpf_Bundle_V1_ClusterRows()
            rows.cluster = id
            rows.name = c.name
            rows.levels = levels.map { lv in
                var l = Xds2bpf_Bundle_V1_LevelRows()
                l.cumLoad = lv.cumLoad
                l.endpoints = Data(lv.endpoints.flatMap(MapImageEncoder.endpointRecord))
                l.table = Data(lv.table.flatMap(MapImageEncoder.slotRecord))
                return l
            }
            delta.clusters.append(rows)
        }
        laps.lap("rows")
        return delta
    }
}
