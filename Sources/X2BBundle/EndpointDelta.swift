import Foundation
import X2BABI
import X2BDiagnostics
import X2BProtos

/// An endpoint-only change between two bundles of the same code, as the rows
/// `xds2bpf-loader update` writes into a loaded bundle's maps in place
/// (docs/bundle-format.md, "In-place updates"). Built from the two bundles'
/// map images alone, so `compile --base` (bundles on disk) and `watch` (the
/// bundle it loaded last) produce the same delta.
public enum EndpointDelta {
    public typealias Message = Xds2bpf_Bundle_V1_EndpointDelta

    /// Why two bundles differ in more than endpoint rows: the change needs a full replace.
    public struct NotEndpointOnly: Error, Sendable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    /// The images an in-place update rewrites (x2b_active: the connection counts of
    /// least-request endpoints, keyed by address; the loader adds a zero entry for a
    /// new address); every other file must be identical.
    /// x2b_ep4 holds the IPv4 endpoints of x2b_ep again (ABI 8), which the loader derives from the
    /// same records.
    static let rowImages: Set<String> = [
        "maps/x2b_clu.bin", "maps/x2b_ep.bin", "maps/x2b_ep4.bin", "maps/x2b_lbtab.bin", "maps/x2b_active.bin",
    ]
    /// Files that describe the bundle rather than route: the manifest (cluster
    /// endpoint counts, snapshot digest) and its digest.
    static let descriptive: Set<String> = ["manifest.pb", "manifest.sha256"]
    /// The exact-listener slots: the same but for each slot's `range` (the fast
    /// path's endpoint range, which `xds2bpf-loader update` rewrites itself from
    /// the rows it writes) when only endpoints changed.
    /// The same for the IPv4 rows' compact slots (ABI 8): image path → slot struct.
    static let listenerSlots = ["maps/x2b_lsnx.bin": "x2b_lsn_slot", "maps/x2b_lsn4.bin": "x2b_lsn4_slot"]

    /// A slot image (records of a 4-byte index and a `slot` struct) with every
    /// `range` zeroed; nil when it is not such an image (then the images count
    /// as different: only two whole slot images can be equal but for ranges).
    static func withoutRanges(_ image: [UInt8]?, slot: String) -> [UInt8]? {
        guard let image else { return nil }
        let value = ABILayout.size(slot), record = 4 + value
        guard let range = ABILayout.structs.first(where: { $0.name == slot })?.fields.first(where: { $0.name == "range" }),
            image.count % record == 0
        else { return nil }
        var bytes = image
        for r in stride(from: 0, to: bytes.count, by: record) {
            for i in 0..<range.size { bytes[r + 4 + range.offset + i] = 0 }
        }
        return bytes
    }

    /// The delta that takes a kernel loaded with `base` to what `new` routes, or
    /// why there is none. A delta with no clusters means the routing is unchanged.
    public static func make(base: BundleFiles, new: BundleFiles) -> Result<Message, NotEndpointOnly> {
        func no(_ why: String) -> Result<Message, NotEndpointOnly> { .failure(NotEndpointOnly(reason: why)) }
        guard let bm = base.files["manifest.pb"].flatMap({ try? Xds2bpf_Bundle_V1_Manifest(serializedBytes: $0) }),
            let nm = new.files["manifest.pb"].flatMap({ try? Xds2bpf_Bundle_V1_Manifest(serializedBytes: $0) })
        else { return no("a manifest does not decode") }
        guard bm.abiVersion == ABI.version, nm.abiVersion == ABI.version else {
            return no("ABI \(bm.abiVersion) → \(nm.abiVersion): in-place updates need ABI \(ABI.version) on both sides")
        }
        guard bm.codeSha256 == nm.codeSha256 else { return no("the generated code differs (listeners, routes or cluster set changed)") }
        let paths = Set(base.files.keys).union(new.files.keys).subtracting(rowImages).subtracting(descriptive)
        for p in paths.sorted() where base.files[p] != new.files[p] {
            if let slot = Self.listenerSlots[p], let b = Self.withoutRanges(base.files[p], slot: slot),
                b == Self.withoutRanges(new.files[p], slot: slot)
            {
                continue
            }
            return no("\(p) differs")
        }
        guard bm.clusters.map(\.name) == nm.clusters.map(\.name) else { return no("the cluster list differs") }
        // The loader resolves DNS clusters from the loaded manifest, which a delta does not replace.
        guard bm.dnsClusters == nm.dnsClusters else { return no("the host names of a DNS cluster or their settings changed") }
        let baseRows = Rows(base)
        let newRows = Rows(new)
        var delta = Message()
        delta.formatVersion = 1
        delta.abiVersion = ABI.version
        delta.baseCodeSha256 = bm.codeSha256
        delta.snapshotSha256 = nm.snapshotSha256
        for (i, c) in nm.clusters.enumerated() {
            guard let old = baseRows.cluster(i), let now = newRows.cluster(i) else {
                return no("cluster \(ResourcePath.quoted(c.name)) has no row")
            }
            guard old.header == now.header else {
                return no("cluster \(ResourcePath.quoted(c.name)): LB policy or flags changed")
            }
            guard old.levels != now.levels else { continue }
            var rows = Xds2bpf_Bundle_V1_ClusterRows()
            rows.cluster = UInt32(i)
            rows.name = c.name
            rows.levels = now.levels.map { lv in
                var l = Xds2bpf_Bundle_V1_LevelRows()
                l.cumLoad = lv.cumLoad
                l.endpoints = Data(lv.endpoints)
                l.table = Data(lv.table)
                return l
            }
            delta.clusters.append(rows)
        }
        return .success(delta)
    }

    /// A cluster as the data plane sees it: its row's fixed part, and per level
    /// the load and the endpoint and table records (positions left out: they
    /// are where the rows happen to be, not what they route).
    struct ClusterRow: Equatable {
        var header: [UInt8]
        var levels: [Level]
        struct Level: Equatable {
            var cumLoad: UInt32
            var endpoints: [UInt8]
            var table: [UInt8]
        }
    }

    /// Decoded x2b_clu / x2b_ep / x2b_lbtab images of one bundle.
    struct Rows {
        var clu: [Int: ArraySlice<UInt8>]
        var ep: [Int: ArraySlice<UInt8>]
        var tab: [Int: ArraySlice<UInt8>]

        init(_ b: BundleFiles) {
            clu = Self.array(b.files["maps/x2b_clu.bin"], valueSize: ABILayout.size("x2b_cluster"))
            ep = Self.array(b.files["maps/x2b_ep.bin"], valueSize: ABILayout.size("x2b_endpoint"))
            tab = Self.array(b.files["maps/x2b_lbtab.bin"], valueSize: ABILayout.size("x2b_slot"))
        }

        /// An array map's image: `u32 index || value` records.
        static func array(_ bytes: [UInt8]?, valueSize: Int) -> [Int: ArraySlice<UInt8>] {
            guard let bytes else { return [:] }
            var out: [Int: ArraySlice<UInt8>] = [:]
            let rec = 4 + valueSize
            var off = 0
            while off + rec <= bytes.count {
                out[Int(u32(bytes[off..<(off + 4)]))] = bytes[(off + 4)..<(off + rec)]
                off += rec
            }
            return out
        }

        static func u32(_ b: ArraySlice<UInt8>) -> UInt32 {
            var v: UInt32 = 0
            for (i, x) in b.enumerated() { v |= UInt32(x) << (8 * UInt32(i)) }
            return v
        }

        /// Cluster `id`'s row (row 2*id of the image, ABI 2) with its levels' records.
        func cluster(_ id: Int) -> ClusterRow? {
            guard let row = clu[2 * id] else { return nil }
            let base = row.startIndex
            func field(_ off: Int) -> UInt32 { Self.u32(row[(base + off)..<(base + off + 4)]) }
            let header = Array(row[base..<(base + 16)]).enumerated().filter { $0.offset < 4 || $0.offset >= 8 }.map(\.element)
            let nlevels = Int(min(field(4), ABI.maxPriorities))
            var levels: [ClusterRow.Level] = []
            for l in 0..<nlevels {
                let o = 16 + 20 * l
                let (cum, first, count, tfirst, tlen) = (field(o), Int(field(o + 4)), Int(field(o + 8)), Int(field(o + 12)), Int(field(o + 16)))
                var eps: [UInt8] = []
                for i in first..<(first + count) { eps += ep[i] ?? [] }
                var slots: [UInt8] = []
                for i in tfirst..<(tfirst + tlen) { slots += tab[i] ?? [] }
                levels.append(.init(cumLoad: cum, endpoints: eps, table: slots))
            }
            return ClusterRow(header: header, levels: levels)
        }
    }

    /// Reads a bundle (directory or `.tar`) into memory, for `compile --base`.
    public static func readBundle(_ path: String) throws -> BundleFiles {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw BundleError.unreadable(path, "no such file or directory")
        }
        _ = try BundleFiles.readManifest(bundle: path)  // checks manifest.sha256
        if !isDir.boolValue {
            guard let data = FileManager.default.contents(atPath: path) else { throw BundleError.unreadable(path, "cannot read the file") }
            return try BundleFiles.untar(Array(data), name: path)
        }
        var b = BundleFiles()
        let root = URL(fileURLWithPath: path)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw BundleError.unreadable(path, "cannot list the directory")
        }
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
            let rel = String(url.standardizedFileURL.path.dropFirst(root.standardizedFileURL.path.count + 1))
            guard let data = FileManager.default.contents(atPath: url.path) else { throw BundleError.unreadable(url.path, "cannot read") }
            b.files[rel] = Array(data)
        }
        return b
    }
}
