import XCTest

@testable import Codegen
@testable import X2BEmit

final class PlannerTests: XCTestCase {
    func ip(_ s: String) -> IRAddress { IRAddress(parsing: s)! }

    func cluster(_ name: String, _ eps: [(String, IRHealth, UInt32)], priority: UInt32 = 0, lb: IRLBPolicy = .roundRobin) -> IRCluster {
        IRCluster(
            name: name, path: "clusters[\"\(name)\"]", lb: lb,
            priorities: [
                IRPriority(
                    level: priority,
                    localities: [
                        IRLocality(
                            region: "", zone: "", subZone: "", weight: nil,
                            endpoints: eps.map { IREndpoint(address: ip($0.0), port: 80, weight: $0.2, health: $0.1) })
                    ])
            ])
    }

    func listener(_ addr: String, _ port: UInt16, _ action: IRChainAction, match: IRChainMatch = IRChainMatch()) -> IRListener {
        IRListener(
            name: "\(addr)_\(port)", path: "listeners[\"\(addr)_\(port)\"]", address: ip(addr), port: port,
            direction: .outbound, chains: [IRFilterChain(name: "", path: "c", match: match, action: action)], defaultChain: nil)
    }

    /// The slot image is written in one pass; it must be the bytes the per-record encoder gives.
    func testSlotImageIsTheRecordsInOrder() throws {
        for fixture in ["lb-maglev.json", "lb-ring-hash.json"] {
            let fe = Pipeline.frontEnd(files: [TestPaths.root.appendingPathComponent("Tests/Fixtures/l4/\(fixture)").path])
            XCTAssertFalse(fe.rejected, fixture)
            let plan = Planner.plan(fe.ir).0
            XCTAssertGreaterThan(plan.slots.count, 50, fixture)
            var expected = MapImage(keySize: 4, valueSize: ABILayout.size("x2b_slot"))
            for (i, s) in plan.slots.enumerated() { expected.append(index: i, value: MapImageEncoder.slotRecord(s)) }
            XCTAssertEqual(MapImageEncoder.slots(plan), expected, fixture)
        }
    }

    func testTooManyWeightedClustersIsADiagnostic() {
        let names = (0..<65).map { "c\($0)" }
        let ir = MeshIR(
            listeners: [listener("10.0.0.1", 80, .weighted(names.map { IRWeightedCluster(cluster: $0, weight: 1) }))],
            clusters: names.map { cluster($0, [("10.1.0.1", .healthy, 1)]) })
        let (_, diags) = Planner.plan(ir)
        XCTAssertTrue(diags.contains { $0.id == "XDS301" && $0.severity == .error }, "\(diags)")
    }

    func testTooManyPriorityLevelsIsADiagnostic() {
        // Each level 10% healthy: health 14% each, all five levels carry load.
        var c = cluster("c", [])
        c.priorities = (0..<5).map { lvl in
            IRPriority(
                level: UInt32(lvl),
                localities: [
                    IRLocality(
                        region: "", zone: "", subZone: "", weight: nil,
                        endpoints: (0..<10).map { i in
                            IREndpoint(address: ip("10.\(lvl).0.\(i + 1)"), port: 80, weight: 1, health: i == 0 ? .healthy : .unhealthy)
                        })
                ])
        }
        let (_, diags) = Planner.plan(MeshIR(listeners: [listener("10.0.0.1", 80, .cluster("c"))], clusters: [c]))
        XCTAssertTrue(diags.contains { $0.id == "XDS301" }, "\(diags)")
    }

    func testSmallListenerTablesAreInlineLargeOnesAMap() {
        func ir(_ n: Int) -> MeshIR {
            MeshIR(
                listeners: (0..<n).map { listener("10.0.\($0 / 250).\($0 % 250 + 1)", 80, .cluster("c")) },
                clusters: [cluster("c", [("10.1.0.1", .healthy, 1)])])
        }
        XCTAssertEqual(Planner.plan(ir(16)).0.inlineMatch[.inet4], true)
        let (big, _) = Planner.plan(ir(17))
        XCTAssertEqual(big.inlineMatch[.inet4], false)
        XCTAssertEqual(MapImageEncoder.exactListeners(big).entries, 17, "exact addresses go to the hash map")
        XCTAssertEqual(MapImageEncoder.listeners(big).entries, 0, "nothing needs the LPM trie")
        // The generated C does not grow with the table once it is a map.
        let c17 = CEmitter.emit(big).source
        let c1000 = CEmitter.emit(Planner.plan(ir(1000)).0).source
        XCTAssertEqual(c17.split(separator: "\n").count, c1000.split(separator: "\n").count)
    }

    /// The IPv4 /16 filter: one bit per /16 a row covers, every /16 under a short prefix.
    func testListenerFilterHasABitPerCoveredSlash16() {
        func bits(_ img: MapImage) -> Set<Int> {
            var out = Set<Int>()
            for r in 0..<img.entries {
                let rec: [UInt8] = Array(img.bytes[(r * 8)..<(r * 8 + 8)])
                let word: Int = rec[0..<4].reversed().reduce(0) { $0 << 8 | Int($1) }
                let value: Int = rec[4..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
                for b in 0..<32 where value & (1 << b) != 0 { out.insert(word * 32 + b) }
            }
            return out
        }
        var wide = listener("0.0.0.0", 80, .cluster("c"), match: IRChainMatch(prefixRanges: [IRCidr(address: ip("172.16.0.0"), prefixLength: 14)]))
        wide.name = "wide"
        var listeners = (0..<20).map { listener("10.96.\($0).1", 80, .cluster("c")) }
        listeners.append(wide)
        let (plan, _) = Planner.plan(MeshIR(listeners: listeners, clusters: [cluster("c", [("10.1.0.1", .healthy, 1)])]))
        XCTAssertEqual(plan.inlineMatch[.inet4], false)
        let vips: [Int] = [10 << 8 | 96]
        let wideRows: [Int] = (0..<4).map { (172 << 8 | 16) + $0 }
        let expected = Set(vips + wideRows)
        XCTAssertEqual(bits(MapImageEncoder.listenerFilter(plan)), expected)
        // Straight-line matches need no filter.
        let (small, _) = Planner.plan(MeshIR(listeners: [listener("10.96.0.1", 80, .cluster("c"))], clusters: [cluster("c", [("10.1.0.1", .healthy, 1)])]))
        XCTAssertEqual(MapImageEncoder.listenerFilter(small).entries, 0)
    }

    /// Random and least request under locality weights: a locality by weight,
    /// then uniform inside it (Envoy), through a table of localities.
    func testLocalityWeightsUnderRandomAndLeastRequest() {
        func locality(_ zone: String, _ weight: UInt32, _ eps: [String]) -> IRLocality {
            IRLocality(
                region: "r", zone: zone, subZone: "", weight: weight,
                endpoints: eps.map { IREndpoint(address: ip($0), port: 80, weight: 1, health: .healthy) })
        }
        for lb in [IRLBPolicy.random, .leastRequest] {
            let c = IRCluster(
                name: "c", path: "clusters[\"c\"]", lb: lb, localityWeighted: true,
                priorities: [IRPriority(level: 0, localities: [locality("a", 1, ["10.1.0.1", "10.1.0.2"]), locality("b", 3, ["10.1.1.1"])])])
            let lv = ClusterSemantics.effective(c).levels[0]
            XCTAssertEqual(lv.localities.map(\.first), [0, 2])
            XCTAssertEqual(lv.localities.map(\.count), [2, 1])
            let table = LBTables.localitySchedule(lv.localities)
            XCTAssertEqual(table.filter { $0.endpoint == 2 && $0.hash == 1 }.count * 4, table.count * 3, "locality b: 3 of 4 slots")
            XCTAssertEqual(Interpreter.endpointShares(c, lv), [0.125, 0.125, 0.75])
            var diags: [Diagnostic] = []
            XCTAssertEqual(Planner.clusterLevels(c, diagnostics: &diags)[0].table, table, "the plan ships the same table")
            // Equal weights and sizes: uniform over the level, no table.
            let even = IRCluster(
                name: "e", path: "clusters[\"e\"]", lb: lb, localityWeighted: true,
                priorities: [IRPriority(level: 0, localities: [locality("a", 2, ["10.1.0.1"]), locality("b", 2, ["10.1.1.1"])])])
            XCTAssertTrue(LBTables.localitySchedule(ClusterSemantics.effective(even).levels[0].localities).isEmpty)
        }
    }

    func testExactListenerBeatsWildcardPrefixRow() {
        var wildcard = listener("0.0.0.0", 80, .cluster("b"), match: IRChainMatch(prefixRanges: [IRCidr(address: ip("10.0.0.1"), prefixLength: 32)]))
        wildcard.name = "wild"
        let ir = MeshIR(
            listeners: [listener("10.0.0.1", 80, .cluster("a")), wildcard],
            clusters: [cluster("a", [("10.1.0.1", .healthy, 1)]), cluster("b", [("10.2.0.1", .healthy, 1)])])
        let (plan, _) = Planner.plan(ir)
        let rows = plan.listenerEntries.filter { $0.prefix.prefixLength == 32 }
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(plan.actions[Int(rows[0].action)].target, 0, "the exact listener's cluster a (id 0)")
    }

    func testPriorityLoadFollowsEnvoy() {
        var c = cluster("c", [("10.0.0.1", .healthy, 1), ("10.0.0.2", .healthy, 1), ("10.0.0.3", .unhealthy, 1), ("10.0.0.4", .unhealthy, 1)])
        c.priorities.append(
            IRPriority(
                level: 1,
                localities: [
                    IRLocality(
                        region: "", zone: "", subZone: "", weight: nil,
                        endpoints: [
                            IREndpoint(address: ip("10.0.1.1"), port: 80, weight: 1, health: .healthy)
                        ])
                ]))
        let eff = ClusterSemantics.effective(c)
        XCTAssertEqual(eff.levels.map(\.load), [70, 30])
        XCTAssertEqual(eff.levels[0].endpoints.map(\.text), ["10.0.0.1:80", "10.0.0.2:80"])
        let down = cluster("d", [("10.0.0.1", .unhealthy, 1), ("10.0.0.2", .draining, 1)])
        XCTAssertTrue(ClusterSemantics.effective(down).isEmpty)
    }

    func testAnEmptyConfigurationIsAnErrorUnlessAControlPlaneSentIt() throws {
        let empty = SnapshotParser().parse(Array(#"{"resources": []}"#.utf8), sourceName: "empty.json")
        XCTAssertEqual(Pipeline.frontEnd(snapshot: empty).diagnostics.map(\.id), ["XDS008"])
        let live = Pipeline.frontEnd(snapshot: empty, options: FrontEndOptions(allowEmpty: true))
        XCTAssertFalse(live.rejected, "\(live.diagnostics.map(\.rendered))")
        XCTAssertTrue(live.ir.listeners.isEmpty && live.ir.clusters.isEmpty)
        // and it plans into a bundle that routes nothing
        let (plan, diags) = Planner.plan(live.ir)
        XCTAssertFalse(diags.hasErrors)
        XCTAssertTrue(plan.listenerEntries.isEmpty)
    }

    func testSkippedPriorityLevelsAreEmptyAsInEnvoy() {
        // Envoy accepts priorities 0 and 2 without 1 (the skipped level stays empty); the load
        // is what 0 and 1 would get.
        func frontEnd(_ second: UInt32) -> FrontEndResult {
            let yaml = """
                static_resources:
                  clusters:
                  - name: c
                    type: STATIC
                    load_assignment:
                      cluster_name: c
                      endpoints:
                      - priority: 0
                        lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}
                        - endpoint: {address: {socket_address: {address: 10.0.0.2, port_value: 80}}}
                          health_status: UNHEALTHY
                      - priority: \(second)
                        lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 10.0.1.1, port_value: 80}}}
                """
            return Pipeline.frontEnd(snapshot: SnapshotParser().parse(Array(yaml.utf8), sourceName: "p.yaml"))
        }
        let gap = frontEnd(2), dense = frontEnd(1)
        XCTAssertFalse(gap.diagnostics.hasErrors, "\(gap.diagnostics.map(\.rendered))")
        XCTAssertEqual(gap.diagnostics.filter { $0.id == "XDS108" }.map(\.severity), [.note])
        let a = ClusterSemantics.effective(gap.ir.clusters[0]), b = ClusterSemantics.effective(dense.ir.clusters[0])
        XCTAssertEqual(a.levels.map(\.load), [70, 30])
        XCTAssertEqual(a.levels.map(\.load), b.levels.map(\.load))
        XCTAssertEqual(a.levels.map { $0.endpoints.map(\.text) }, b.levels.map { $0.endpoints.map(\.text) })
    }

    func testRoundRobinScheduleFollowsWeights() {
        let s = LBTables.roundRobinSchedule(weights: [1, 2, 3])
        XCTAssertEqual(s.count, 6)
        XCTAssertEqual((0..<3).map { i in s.filter { $0.endpoint == i }.count }, [1, 2, 3])
        XCTAssertEqual(LBTables.roundRobinSchedule(weights: [5, 5, 5]), [], "equal weights need no table")
        // Smooth: the heaviest endpoint never takes three slots in a row.
        XCTAssertFalse(zip(zip(s, s.dropFirst()), s.dropFirst(2)).contains { $0.0.endpoint == 2 && $0.1.endpoint == 2 && $1.endpoint == 2 })
    }

    func testMaglevAndRingTables() {
        let eps = (1...3).map { IREndpoint(address: ip("10.0.0.\($0)"), port: 80, weight: 1, health: .healthy) }
        let m = LBTables.maglev(endpoints: eps, weights: [1, 1, 2], size: 251)
        XCTAssertEqual(m.count, 251)
        let counts = (0..<3).map { i in m.filter { $0.endpoint == i }.count }
        XCTAssertEqual(Double(counts[2]) / 251, 0.5, accuracy: 0.05)
        let ring = LBTables.ring(endpoints: eps, weights: [1, 1, 1], minimum: 64, maximum: 256)
        XCTAssertGreaterThanOrEqual(ring.count, 64)
        XCTAssertEqual(ring.map(\.hash), ring.map(\.hash).sorted())
        XCTAssertEqual(LBTables.maglev(endpoints: eps, weights: [1, 1, 2], size: 251), m, "deterministic")
    }

    func testDestinationPortChainsDoNotFallBack() {
        // Envoy narrows by destination port first: with a chain naming the port, port-less chains never match.
        let a = IRFilterChain(
            name: "a", path: "a", match: IRChainMatch(destinationPort: 80, prefixRanges: [IRCidr(address: ip("10.1.0.0"), prefixLength: 16)]),
            action: .cluster("a"))
        let b = IRFilterChain(
            name: "b", path: "b", match: IRChainMatch(prefixRanges: [IRCidr(address: ip("10.2.0.0"), prefixLength: 16)]), action: .cluster("b"))
        let l = IRListener(name: "l", path: "l", address: .anyV4, port: 80, direction: .outbound, chains: [a, b], defaultChain: nil)
        XCTAssertEqual(ChainSelection.chain(l, destination: ip("10.1.2.3"))?.name, "a")
        XCTAssertNil(ChainSelection.chain(l, destination: ip("10.2.2.3")))
    }
}
