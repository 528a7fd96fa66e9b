import X2BABI
import X2BIR
import X2BPlan
import X2BSemantics

/// Little-endian byte writer for map image records.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16le(_ v: UInt16) { bytes += [UInt8(v & 0xFF), UInt8(v >> 8)] }
    /// Network order, as ports are stored in sockaddr.
    mutating func u16be(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(v & 0xFF)] }
    mutating func u32(_ v: UInt32) {
        for i in 0..<4 { bytes.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) }
    }
    mutating func u64(_ v: UInt64) {
        for i in 0..<8 { bytes.append(UInt8((v >> (8 * UInt64(i))) & 0xFF)) }
    }
    mutating func raw(_ b: [UInt8], padTo n: Int) {
        bytes += b
        bytes += [UInt8](repeating: 0, count: n - b.count)
    }
}

/// A map image: `key || value` records, the format docs/bundle-format.md describes.
public struct MapImage: Sendable, Hashable {
    public var keySize: Int
    public var valueSize: Int
    public var bytes: [UInt8] = []
    public var entries: Int = 0

    mutating func append(key: [UInt8], value: [UInt8]) {
        precondition(key.count == keySize && value.count == valueSize, "record does not match the map layout")
        bytes += key
        bytes += value
        entries += 1
    }

    mutating func append(index: Int, value: [UInt8]) {
        var k = ByteWriter()
        k.u32(UInt32(index))
        append(key: k.bytes, value: value)
    }

    /// One record per line: `key | value` in hex, for goldens and `inspect`.
    public var hexText: String {
        var out = ""
        var off = 0
        let rec = keySize + valueSize
        while off + rec <= bytes.count {
            let k = bytes[off..<off + keySize].map { hex($0) }.joined(separator: " ")
            let v = bytes[off + keySize..<off + rec].map { hex($0) }.joined(separator: " ")
            out += "\(k) | \(v)\n"
            off += rec
        }
        return out
    }

    private func hex(_ b: UInt8) -> String {
        let d = Array("0123456789abcdef")
        return String([d[Int(b >> 4)], d[Int(b & 0xF)]])
    }
}

/// Encodes a plan's tables as map images.
public enum MapImageEncoder {
    /// The `addr` field of the listener key, endpoint and endpoint key: an IPv6
    /// address, or an IPv4 one in its first four bytes.
    static let addressBytes: Int = {
        guard let key = ABILayout.structs.first(where: { $0.name == "x2b_lsn_key" }),
            let addr = key.fields.first(where: { $0.name == "addr" })
        else { fatalError("x2b_lsn_key.addr missing from the ABI layout") }
        return addr.size
    }()

    public static func listenerKey(_ e: BundlePlan.ListenerEntry) -> [UInt8] {
        var w = ByteWriter()
        w.u32(e.prefixLength)
        w.raw(listenerAddress(e), padTo: ABILayout.size("x2b_lsn_addr"))
        return w.bytes
    }

    /// `struct x2b_lsn_addr`: family, port (network order), address.
    static func listenerAddress(_ e: BundlePlan.ListenerEntry) -> [UInt8] {
        var w = ByteWriter()
        w.u8(UInt8(e.prefix.address.family.rawValue))
        w.u8(0)
        w.u16be(e.port)
        w.raw(e.prefix.address.bytes, padTo: addressBytes)
        return w.bytes
    }

    /// Rows matched by exact address (a listener's own address, or a VIP row):
    /// the open-addressed table, one slot read.
    public static func exactListeners(_ plan: BundlePlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_lsn_slot"))
        for s in plan.layout.exactListenerSlots.sorted(by: { $0.slot < $1.slot }) {
            var v = ByteWriter()
            v.raw(listenerAddress(s.entry), padTo: ABILayout.size("x2b_lsn_addr"))
            v.u32(s.entry.action)
            encodeAction(plan.actions[Int(s.entry.action)], into: &v)
            // an IPv4 row's fast path is its x2b_lsn4 slot's
            let family = s.entry.prefix.address.family
            v.u64(family == .inet4 ? UInt64(ABI.rangeNone) : fastRange(plan, action: plan.actions[Int(s.entry.action)], family: family))
            v.u64(0)  // connects
            img.append(index: s.slot, value: v.bytes)
        }
        return img
    }

    /// The IPv4 rows of `x2b_lsnx` as `struct x2b_lsn4_slot`, at the same slots;
    /// a slot of an IPv6 row holds its family only (taken, for the probe).
    public static func exactListeners4(_ plan: BundlePlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_lsn4_slot"))
        for s in plan.layout.exactListenerSlots.sorted(by: { $0.slot < $1.slot }) {
            let family = s.entry.prefix.address.family
            var v = ByteWriter()
            v.u8(UInt8(family.rawValue))
            guard family == .inet4 else {
                v.raw([], padTo: img.valueSize - 1)
                img.append(index: s.slot, value: v.bytes)
                continue
            }
            v.u8(0)
            v.u16be(s.entry.port)
            v.raw(Array(s.entry.prefix.address.bytes.prefix(4)), padTo: 4)
            v.u32(s.entry.action)
            v.u32(0)
            v.u64(fastRange(plan, action: plan.actions[Int(s.entry.action)], family: family))
            v.u64(0)  // connects
            img.append(index: s.slot, value: v.bytes)
        }
        return img
    }

    /// `x2b_lsn_slot.range`: the endpoint range a slot balances from by itself
    /// (first `x2b_ep` index << 32 | count), or `X2B_RANGE_NONE`. Only an
    /// action that always takes one cluster, whose pick needs nothing but the
    /// range: round robin without weights (no schedule table) over one priority
    /// level with endpoints, not ORIGINAL_DST; for an IPv4 address only IPv4
    /// endpoints (an IPv4 socket cannot reach the others). `xds2bpf-loader
    /// update` applies the same rule to the rows it writes (update.c).
    public static func fastRange(_ plan: BundlePlan, action: BundlePlan.Action, family: IRFamily) -> UInt64 {
        guard action.kind == .cluster, Int(action.target) < plan.clusters.count else { return UInt64(ABI.rangeNone) }
        let c = plan.clusters[Int(action.target)]
        guard !c.passthrough, c.lb == .roundRobin, c.levels.count == 1, let lv = c.levels.first,
            lv.tableLength == 0, lv.count > 0
        else { return UInt64(ABI.rangeNone) }
        if family == .inet4 {
            let range = Int(lv.first)..<Int(lv.first + lv.count)
            guard range.upperBound <= plan.endpoints.count,
                plan.endpoints[range].allSatisfy({ $0.address.family == .inet4 })
            else { return UInt64(ABI.rangeNone) }
        }
        return UInt64(lv.first) << 32 | UInt64(lv.count)
    }

    /// The pass-through filter of the IPv4 listener maps: one bit per /16 that
    /// some row covers (the words that are not zero). A connect whose /16 has no
    /// bit is left alone without a hash lookup: destinations that are no
    /// service (pods, the internet) stay as cheap at 10k services as at 10.
    public static func listenerFilter(_ plan: BundlePlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: 4)
        guard !(plan.inlineMatch[.inet4] ?? true) else { return img }
        var words = [UInt32](repeating: 0, count: Int(ABI.listenerFilterWords))
        for e in plan.entries(for: .inet4) {
            let b = e.prefix.address.bytes
            let first = (Int(b[0]) << 8 | Int(b[1])) & ~((1 << max(0, 16 - e.prefix.prefixLength)) - 1)
            for hi in first..<(first + (1 << max(0, 16 - e.prefix.prefixLength))) {
                words[hi >> 5] |= 1 << UInt32(hi & 31)
            }
        }
        for (i, w) in words.enumerated() where w != 0 {
            var v = ByteWriter()
            v.u32(w)
            img.append(index: i, value: v.bytes)
        }
        return img
    }

    /// Zero counters for the addresses the plan counts (least-request endpoints),
    /// so sockops counts exactly those.
    public static func activeCounts(_ plan: BundlePlan) -> MapImage {
        var img = MapImage(keySize: ABILayout.size("x2b_epkey"), valueSize: 4)
        for a in plan.layout.countedAddresses {
            var k = ByteWriter()
            k.u8(UInt8(a.address.family.rawValue))
            k.u8(0)
            k.u16be(a.port)
            k.raw(a.address.bytes, padTo: addressBytes)
            img.append(key: k.bytes, value: [0, 0, 0, 0])
        }
        return img
    }

    /// Rows that need longest-prefix matching: the LPM trie.
    public static func listeners(_ plan: BundlePlan) -> MapImage {
        var img = MapImage(keySize: ABILayout.size("x2b_lsn_key"), valueSize: 4)
        for e in plan.layout.prefixListenerRows {
            var v = ByteWriter()
            v.u32(e.action)
            img.append(key: listenerKey(e), value: v.bytes)
        }
        return img
    }

    public static func actions(_ plan: BundlePlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_action"))
        for (i, a) in plan.actions.enumerated() {
            var v = ByteWriter()
            encodeAction(a, into: &v)
            img.append(index: i, value: v.bytes)
        }
        return img
    }

    /// `struct x2b_action`: an x2b_act row, also copied into x2b_lsnx values.
    static func encodeAction(_ a: BundlePlan.Action, into v: inout ByteWriter) {
        v.u32(a.kind.rawValue)
        v.u32(a.target)
        v.u32(a.count)
        v.u32(a.totalWeight)
        v.u32(a.listener)
        v.u32(a.fallback)
    }

    public static func weightedClusters(_ plan: BundlePlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_wcluster"))
        for (i, w) in plan.weightedClusters.enumerated() {
            var v = ByteWriter()
            v.u32(w.cumWeight)
            v.u32(w.cluster)
            img.append(index: i, value: v.bytes)
        }
        return img
    }

    /// Two rows per cluster (ABI 2): the image fills row 2*id; row 2*id+1 is the
    /// spare that `xds2bpf-loader update` writes before it flips `x2b_cluv[id]`.
    public static func clusters(_ plan: BundlePlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_cluster"))
        for (i, c) in plan.clusters.enumerated() {
            img.append(index: 2 * i, value: clusterRow(c))
        }
        return img
    }

    /// One `struct x2b_cluster`.
    public static func clusterRow(_ c: BundlePlan.Cluster) -> [UInt8] {
        var v = ByteWriter()
        v.u32(CNamer.lbSlot(c.lb))
        v.u32(UInt32(c.levels.count))
        v.u32(c.counter)
        v.u32(c.passthrough ? ABI.cluPassthrough : 0)
        for l in 0..<Int(ABI.maxPriorities) {
            if l < c.levels.count {
                let lv = c.levels[l]
                v.u32(lv.cumLoad)
                v.u32(lv.first)
                v.u32(lv.count)
                v.u32(lv.tableFirst)
                v.u32(lv.tableLength)
            } else {
                v.raw([], padTo: ABILayout.size("x2b_level"))
            }
        }
        return v.bytes
    }

    public static func endpoints(_ plan: BundlePlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_endpoint"))
        for (i, e) in plan.endpoints.enumerated() {
            img.append(index: i, value: endpointRecord(e))
        }
        return img
    }

    /// `struct x2b_ep4` rows of the IPv4 endpoints, at their `x2b_ep` index.
    public static func endpoints4(_ plan: BundlePlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_ep4"))
        for (i, e) in plan.endpoints.enumerated() {
            guard let row = endpoint4Record(e) else { continue }
            img.append(index: i, value: row)
        }
        return img
    }

    /// One `struct x2b_ep4`, or nil for an IPv6 endpoint (its row stays zero).
    public static func endpoint4Record(_ e: BundlePlan.Endpoint) -> [UInt8]? {
        guard e.address.family == .inet4 else { return nil }
        var v = ByteWriter()
        v.raw(Array(e.address.bytes.prefix(4)), padTo: 4)
        v.u16be(e.port)
        v.u8(UInt8(e.address.family.rawValue))
        v.u8(0)
        v.u64(0)  // connects: counted by the IPv4 fast path
        return v.bytes
    }

    public static func slots(_ plan: BundlePlan) -> MapImage {
        var img = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_slot"))
        precondition(img.valueSize == 8, "struct x2b_slot is two u32")
        // Written straight into the image, the same bytes as append(index:value: slotRecord(s)):
        // tables reach millions of slots (65,537 a maglev cluster), and two small arrays a slot
        // were most of the emitter's time (measured with perf on the front end's fuzz harness).
        img.bytes.reserveCapacity(plan.slots.count * 12)
        func u32(_ v: UInt32) {
            img.bytes.append(UInt8(truncatingIfNeeded: v))
            img.bytes.append(UInt8(truncatingIfNeeded: v >> 8))
            img.bytes.append(UInt8(truncatingIfNeeded: v >> 16))
            img.bytes.append(UInt8(truncatingIfNeeded: v >> 24))
        }
        for (i, s) in plan.slots.enumerated() {
            u32(UInt32(i))
            u32(s.hash)
            u32(s.endpoint)
        }
        img.entries = plan.slots.count
        return img
    }

    /// One `struct x2b_endpoint`.
    public static func endpointRecord(_ e: BundlePlan.Endpoint) -> [UInt8] {
        var v = ByteWriter()
        v.u8(UInt8(e.address.family.rawValue))
        v.u8(0)
        v.u16be(e.port)
        v.u32(e.weight)
        v.raw(e.address.bytes, padTo: addressBytes)
        v.u64(0)  // connects: counted by the connect programs
        return v.bytes
    }

    /// One `struct x2b_slot` (`ep` relative to its level's first endpoint).
    public static func slotRecord(_ s: LBTables.Slot) -> [UInt8] {
        var v = ByteWriter()
        v.u32(s.hash)
        v.u32(s.endpoint)
        return v.bytes
    }
}
