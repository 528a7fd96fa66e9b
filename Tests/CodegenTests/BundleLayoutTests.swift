import Foundation
import XCTest

@testable import Codegen
@testable import X2BBundle
@testable import X2BEmit
@testable import X2BPlan

/// The plan's layout (`BundleLayout`) is every size and slot decision; the emitter
/// prints it as it is and adds only the images.
final class BundleLayoutTests: XCTestCase {
    func ip(_ s: String) -> IRAddress { IRAddress(parsing: s)! }

    func plan(_ rel: String) -> BundlePlan {
        let fe = Pipeline.frontEnd(files: [TestPaths.root.appendingPathComponent(rel).path])
        XCTAssertFalse(fe.rejected, "\(rel): \(fe.diagnostics.map(\.rendered))")
        return Planner.plan(fe.ir).0
    }

    static let inputs = [
        "Tests/Fixtures/l4/lb-least-request.json", "Tests/Fixtures/l4/wildcard-listener.json", "Tests/Fixtures/l4/ipv6.json",
        "Tests/Fixtures/tls/passthrough.json", "examples/bookinfo/bookinfo.json",
    ]

    func testEmitterPrintsThePlannedLayout() throws {
        for rel in Self.inputs {
            let plan = plan(rel)
            let emitted = CEmitter.emit(plan)
            XCTAssertEqual(emitted.maps.map(\.spec), plan.layout.allMaps, rel)
            XCTAssertEqual(emitted.programs, plan.layout.programs, rel)
            XCTAssertEqual(emitted.tailCalls, plan.layout.tailCalls, rel)
            let c = emitted.source + (emitted.routesHeader ?? "")
            for m in plan.layout.maps + plan.layout.routeMaps {
                // Each declaration names its map once; the ones sized by an ABI constant print its name.
                let decl = try XCTUnwrap(c.range(of: "} \(m.name) SEC(\".maps\");"), "\(rel): \(m.name) declared")
                let body = c[..<decl.lowerBound].suffix(400)
                let size = m.name == "x2b_gstat" ? "X2B_G_COUNT" : String(m.maxEntries)
                XCTAssertTrue(body.contains("__uint(max_entries, \(size));"), "\(rel): \(m.name) sized \(size)")
            }
            for m in emitted.maps {
                if let img = m.image { XCTAssertLessThanOrEqual(img.entries, m.maxEntries, "\(rel): \(m.name) rows fit") }
            }
            XCTAssertTrue(emitted.source.contains("#define X2B_LPM_ROWS \(plan.layout.prefixListenerRows.count)\n"), rel)
        }
    }

    /// The connect path balances inline: one switch arm per policy the bundle
    /// uses, no LB stage program, no prog array, no tail call.
    func testEntryProgramsBalanceInlineWithoutTailCalls() {
        for rel in Self.inputs {
            let plan = plan(rel)
            let layout = plan.layout
            XCTAssertEqual(layout.policies, plan.policies, rel)
            XCTAssertTrue(layout.tailCalls.isEmpty, rel)
            XCTAssertFalse(layout.allMaps.contains { $0.kind == .progArray }, rel)
            XCTAssertFalse(layout.programs.contains { $0.attach == .none }, "\(rel): every program is attached")
            let source = CEmitter.emit(plan).source
            for policy in layout.policies {
                XCTAssertTrue(source.contains("x2b_balance4(ctx, c, cluster, redirected, \(CNamer.lbConstant(policy)))"), rel)
            }
            XCTAssertFalse(source.contains("bpf_tail_call"), rel)
            XCTAssertEqual(Set(layout.programs.map(\.name)).count, layout.programs.count, "\(rel): program names unique")
            XCTAssertTrue(layout.programs.allSatisfy { $0.name.count <= CNamer.kernelNameLimit }, rel)
        }
        XCTAssertTrue(plan("Tests/Fixtures/l4/lb-least-request.json").layout.countsConnections)
        XCTAssertFalse(plan("Tests/Fixtures/l4/tcp-single.json").layout.countsConnections)
        XCTAssertFalse(plan("Tests/Fixtures/l4/tcp-single.json").layout.programs.contains { $0.attach == .sockOps })
    }

    /// x2b_lsnx's layout is what the BPF lookup assumes: each row within
    /// X2B_LSNX_PROBES slots of its hash, one row per slot, and a probe from the
    /// hash meets the row before an empty slot -- for 20,000 VIPs of both
    /// families on few ports (the shape of a mesh), nothing left to the trie.
    func testExactListenerSlotsAreWithinTheProbeBound() {
        var rows: [BundlePlan.ListenerEntry] = []
        for i in 0..<20_000 {
            let a = i % 4 == 3 ? ip("fd00::a:\(String(i, radix: 16))") : ip("10.\(i >> 16).\((i >> 8) & 255).\(i & 255)")
            let len = a.family == .inet4 ? 32 : 128
            rows.append(.init(prefix: IRCidr(address: a, prefixLength: len), port: [80, 443, 9080, 5432][i % 4], action: UInt32(i), source: ""))
        }
        let table = BundleLayout.layOutExactRows(rows)
        XCTAssertTrue(table.overflow.isEmpty)
        XCTAssertEqual(table.slots.count, rows.count)
        XCTAssertLessThanOrEqual(table.size, BundleLayout.capacity(16 * rows.count))
        var bySlot: [Int: BundlePlan.ListenerEntry] = [:]
        for s in table.slots {
            XCTAssertNil(bySlot.updateValue(s.entry, forKey: s.slot), "one row per slot")
        }
        for s in table.slots {
            let h = Int(BundleLayout.listenerSlotHash(s.entry))
            let probe = (0..<Int(ABI.lsnxProbes)).map { (h + $0) & (table.size - 1) }
            let hit = probe.firstIndex(of: s.slot)
            XCTAssertNotNil(hit, "row \(s.entry.action) within the probe bound")
            if let hit { XCTAssertTrue(probe[..<hit].allSatisfy { bySlot[$0] != nil }, "no empty slot before the row") }
        }
    }

    /// `x2b_lsn_slot.range`, the fast path of a service address: the endpoint
    /// range of a one-level round robin without weights; none for weights, a
    /// weighted RR schedule, random, several priorities, or an IPv4 address whose
    /// endpoints are IPv6.
    func testFastRanges() throws {
        func ranges(_ rel: String) -> [String: UInt64] {
            var options = PlanOptions()
            options.inlineListenerLimit = 0
            let fe = Pipeline.frontEnd(files: [rel.hasPrefix("/") ? rel : TestPaths.root.appendingPathComponent(rel).path])
            XCTAssertFalse(fe.rejected, "\(rel): \(fe.diagnostics.map(\.rendered))")
            let plan = Planner.plan(fe.ir, options: options).0
            var out: [String: UInt64] = [:]
            for s in plan.layout.exactListenerSlots {
                out["\(s.entry.prefix.address):\(s.entry.port)"] = MapImageEncoder.fastRange(
                    plan, action: plan.actions[Int(s.entry.action)], family: s.entry.prefix.address.family)
            }
            return out
        }
        XCTAssertEqual(ranges("Tests/Fixtures/l4/tcp-single.json"), ["10.96.1.1:5000": 2])
        XCTAssertEqual(ranges("Tests/Fixtures/l4/health.json"), ["10.96.1.8:5000": 3], "the healthy endpoints only")
        XCTAssertEqual(ranges("Tests/Fixtures/l4/lb-round-robin-weighted.json"), ["10.96.1.3:5000": 0])
        XCTAssertEqual(ranges("Tests/Fixtures/l4/lb-random.json"), ["10.96.1.4:5000": 0])
        XCTAssertEqual(ranges("Tests/Fixtures/l4/tcp-weighted.json"), ["10.96.1.2:5000": 0])
        XCTAssertEqual(ranges("Tests/Fixtures/l4/priorities.json"), ["10.96.1.9:5000": 2, "10.96.1.9:5001": 0])
        XCTAssertEqual(ranges("Tests/Fixtures/l4/ipv6.json")["fd00::1:7000"], 2, "an IPv6 address: any endpoint")

        // An IPv4 service address whose endpoints are IPv6: the general path
        // (counts the family mismatch), never a range an IPv4 socket cannot use.
        let yaml = Self.tcpSnapshot(
            listeners: [("v4", "10.96.7.7", 80, "six")], clusters: [("six", [("fd00:7::1", 80), ("fd00:7::2", 80)])])
        XCTAssertEqual(ranges(try temporaryFile("v4-to-v6.yaml", yaml).path), ["10.96.7.7:80": 0])
    }

    /// ABI 8: an IPv4 row's fast path is its compact x2b_lsn4 slot (same index as its x2b_lsnx slot,
    /// whose range is then 0); an IPv6 row's x2b_lsn4 slot only says it is taken; x2b_ep4 holds the
    /// IPv4 endpoints at their x2b_ep index.
    func testCompactIPv4Rows() throws {
        let yaml = Self.tcpSnapshot(
            listeners: [("v4", "10.96.7.7", 80, "six"), ("v6", "fd00:7::7", 80, "four"), ("v4b", "10.96.7.8", 81, "four")],
            clusters: [("six", [("fd00:7::1", 80)]), ("four", [("10.20.0.1", 8080), ("10.20.0.2", 8081)])])
        var options = PlanOptions()
        options.inlineListenerLimit = 0
        let fe = Pipeline.frontEnd(files: [try temporaryFile("both.yaml", yaml).path])
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics.map(\.rendered))")
        let plan = Planner.plan(fe.ir, options: options).0
        let x = EndpointDelta.Rows.array(MapImageEncoder.exactListeners(plan).bytes, valueSize: ABILayout.size("x2b_lsn_slot"))
        let v4 = EndpointDelta.Rows.array(MapImageEncoder.exactListeners4(plan).bytes, valueSize: ABILayout.size("x2b_lsn4_slot"))
        func u64(_ b: ArraySlice<UInt8>, _ at: Int) -> UInt64 {
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[b.startIndex + at + $1]) << (8 * UInt64($1)) }
        }
        XCTAssertEqual(Set(x.keys), Set(v4.keys), "the same slots")
        for s in plan.layout.exactListenerSlots {
            let wide = try XCTUnwrap(x[s.slot]), compact = try XCTUnwrap(v4[s.slot])
            let range = MapImageEncoder.fastRange(plan, action: plan.actions[Int(s.entry.action)], family: s.entry.prefix.address.family)
            if s.entry.prefix.address.family == .inet4 {
                XCTAssertEqual(Array(compact.prefix(8)), Array(wide.prefix(8)), "family, port, address as in x2b_lsn_addr")
                XCTAssertEqual(u64(compact, 16), range)
                XCTAssertEqual(u64(wide, 48), 0, "the IPv4 row's x2b_lsnx slot has no range")
            } else {
                XCTAssertEqual(Array(compact), [6] + [UInt8](repeating: 0, count: compact.count - 1), "an IPv6 row: taken, nothing else")
                XCTAssertEqual(u64(wide, 48), range)
            }
        }
        let fast = plan.layout.exactListenerSlots.filter { $0.entry.prefix.address.family == .inet4 }.map {
            MapImageEncoder.fastRange(plan, action: plan.actions[Int($0.entry.action)], family: .inet4)
        }
        XCTAssertEqual(
            fast.sorted(), [0, UInt64(plan.endpoints.firstIndex { $0.address.family == .inet4 }!) << 32 | 2],
            "v4b balances from its slot, v4 (IPv6 endpoints) does not")
        let ep4 = EndpointDelta.Rows.array(MapImageEncoder.endpoints4(plan).bytes, valueSize: ABILayout.size("x2b_ep4"))
        for (i, e) in plan.endpoints.enumerated() {
            if e.address.family == .inet4 {
                let row = try XCTUnwrap(ep4[i])
                XCTAssertEqual(Array(row.prefix(4)), Array(e.address.bytes.prefix(4)))
                XCTAssertEqual(Array(row[(row.startIndex + 4)..<(row.startIndex + 7)]), [UInt8(e.port >> 8), UInt8(e.port & 0xFF), 4])
            } else {
                XCTAssertNil(ep4[i], "no x2b_ep4 row for an IPv6 endpoint")
            }
        }
    }

    /// A static snapshot of TCP proxy listeners (name, address, port, cluster) and STATIC clusters.
    static func tcpSnapshot(listeners: [(String, String, Int, String)], clusters: [(String, [(String, Int)])]) -> String {
        var y = "static_resources:\n  listeners:\n"
        for (name, address, port, cluster) in listeners {
            y += """
                  - name: \(name)
                    address: {socket_address: {address: "\(address)", port_value: \(port)}}
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: \(name)
                          cluster: \(cluster)

                """
        }
        y += "  clusters:\n"
        for (name, endpoints) in clusters {
            y += "  - name: \(name)\n    type: STATIC\n    load_assignment:\n      cluster_name: \(name)\n"
            y += "      endpoints:\n      - lb_endpoints:\n"
            for (address, port) in endpoints {
                y += "        - endpoint: {address: {socket_address: {address: \"\(address)\", port_value: \(port)}}}\n"
            }
        }
        return y
    }

    func testCapacityClasses() {
        XCTAssertEqual([0, 1, 8, 9, 16, 17, 1000].map(BundleLayout.capacity), [8, 8, 8, 16, 16, 32, 1024])
        // Headroom: at least 16 spare rows, twice the rows used, at most 4M spare.
        XCTAssertEqual(BundleLayout.headroomCapacity(0), 16)
        XCTAssertEqual(BundleLayout.headroomCapacity(100), 256)
        XCTAssertEqual(BundleLayout.headroomCapacity(5_000_000), 16_777_216)
    }

    /// Past the inline limit, full addresses go to the hash map and prefixes to the trie.
    func testListenerRowsArePlacedByShape() {
        var listeners = (0..<17).map { i in
            IRListener(
                name: "l\(i)", path: "listeners[\"l\(i)\"]", address: ip("10.0.0.\(i + 1)"), port: 80, direction: .outbound,
                chains: [IRFilterChain(name: "", path: "c\(i)", match: IRChainMatch(), action: .cluster("c"))], defaultChain: nil)
        }
        listeners.append(
            IRListener(
                name: "wild", path: "listeners[\"wild\"]", address: ip("0.0.0.0"), port: 81, direction: .outbound,
                chains: [IRFilterChain(name: "", path: "w", match: IRChainMatch(), action: .cluster("c"))], defaultChain: nil))
        let c = IRCluster(
            name: "c", path: "clusters[\"c\"]", lb: .leastRequest,
            priorities: [
                IRPriority(
                    level: 0,
                    localities: [
                        IRLocality(
                            region: "", zone: "", subZone: "", weight: nil,
                            endpoints: [
                                IREndpoint(address: ip("10.1.0.1"), port: 80, weight: 1, health: .healthy),
                                IREndpoint(address: ip("10.1.0.2"), port: 80, weight: 1, health: .healthy),
                            ])
                    ])
            ])
        // A second least-request cluster on the same endpoints: counted once.
        var twin = c
        twin.name = "twin"
        twin.path = "clusters[\"twin\"]"
        let (plan, diags) = Planner.plan(MeshIR(listeners: listeners, clusters: [c, twin]))
        XCTAssertFalse(diags.hasErrors, "\(diags)")
        let layout = plan.layout
        XCTAssertEqual(plan.inlineMatch[.inet4], false)
        XCTAssertEqual(layout.exactListenerRows.count, 17)
        XCTAssertEqual(layout.prefixListenerRows.map(\.port), [81], "the wildcard row needs longest-prefix matching")
        XCTAssertEqual(layout.countedAddresses.map(\.address), [ip("10.1.0.1"), ip("10.1.0.2")])
        let size = Dictionary(uniqueKeysWithValues: layout.maps.map { ($0.name, $0.maxEntries) })
        XCTAssertEqual(size["x2b_lsnx"], 64, "open addressing: a power of two of at least twice the rows")
        XCTAssertEqual(size["x2b_lsn"], 8)
        XCTAssertEqual(size["x2b_active"], 8)
        XCTAssertEqual(size["x2b_clu"], 8, "two rows per cluster")
        XCTAssertEqual(size["x2b_ep"], BundleLayout.headroomCapacity(4))
        XCTAssertEqual(MapImageEncoder.exactListeners(plan).entries, 17)
        XCTAssertEqual(MapImageEncoder.listeners(plan).entries, 1)
        XCTAssertEqual(MapImageEncoder.activeCounts(plan).entries, 2)
    }

    /// The cache answers with the object clang built, keyed by every input: another
    /// define is another object.
    func testObjectCacheStoresAndAnswers() throws {
        let clang = try TestPaths.requireClang()
        let emitted = CEmitter.emit(plan("Tests/Fixtures/l4/tcp-single.json"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-cache-\(getpid())-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = ObjectCache(directory: dir.path)
        let first = try cache.object(clang, sources: emitted.sources, defines: [], source: emitted.source)
        XCTAssertFalse(first.fromCache)
        XCTAssertEqual(Array(first.object.prefix(4)), [0x7F, 0x45, 0x4C, 0x46], "an ELF object")
        let key = clang.objectKey(files: emitted.sources)
        XCTAssertEqual(FileManager.default.contents(atPath: dir.appendingPathComponent("\(key).o").path).map(Array.init), first.object)
        let again = try cache.object(clang, sources: emitted.sources, defines: [], source: emitted.source)
        XCTAssertTrue(again.fromCache)
        XCTAssertEqual(again.object, first.object)
        // A define the sources never test: the same code, yet another key.
        let other = try cache.object(clang, sources: emitted.sources, defines: ["X2B_CACHE_KEY_TEST"], source: emitted.source)
        XCTAssertFalse(other.fromCache, "the defines are part of the key")
        let none = try ObjectCache(directory: nil).object(clang, sources: emitted.sources, defines: [], source: emitted.source)
        XCTAssertFalse(none.fromCache)
        XCTAssertEqual(none.object, first.object, "reproducible: the same bytes without the cache")
    }

    /// `compile --base --delta` may ignore the slots' ranges (the loader rewrites them), but only
    /// when both x2b_lsnx images are whole slot records; any other difference needs a replace.
    func testSlotImagesMayDifferOnlyInTheirRanges() throws {
        let slot = ABILayout.size("x2b_lsn_slot")
        let range = try XCTUnwrap(
            ABILayout.structs.first { $0.name == "x2b_lsn_slot" }?.fields.first { $0.name == "range" })
        func bundle(_ lsnx: [UInt8]) throws -> BundleFiles {
            var m = Xds2bpf_Bundle_V1_Manifest()
            m.abiVersion = ABI.version
            m.codeSha256 = String(repeating: "a", count: 64)
            var b = BundleFiles()
            b.files["manifest.pb"] = try m.serializedBytes()
            b.files["maps/x2b_lsnx.bin"] = lsnx
            return b
        }
        var record = [UInt8](repeating: 0, count: 4 + slot)
        record[4] = 4  // family
        var moved = record
        moved[4 + range.offset] = 7  // another range
        XCTAssertNoThrow(try EndpointDelta.make(base: bundle(record), new: bundle(moved)).get(), "ranges alone")
        var action = record
        action[4 + 20] = 1  // another action id
        XCTAssertThrowsError(try EndpointDelta.make(base: bundle(record), new: bundle(action)).get())
        // not whole records: the bytes must be equal
        XCTAssertThrowsError(try EndpointDelta.make(base: bundle([1, 2, 3]), new: bundle([1, 2])).get())
        XCTAssertNoThrow(try EndpointDelta.make(base: bundle([1, 2, 3]), new: bundle([1, 2, 3])).get())
    }
}
