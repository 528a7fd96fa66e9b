import Foundation
import XCTest

@testable import Codegen
@testable import X2BPlan

/// The Swift side of the ABI contract. `ABI` and `ABILayout` are generated from
/// the C headers by scripts/gen-abi.py (`make check-abi` keeps them current and
/// has clang assert every size and offset); these tests check what uses them:
/// the shipped C asserts, the encoder's records and the plan's raw values.
final class ABILayoutTests: XCTestCase {
    func testLayoutTableMatchesCAsserts() throws {
        let text = try String(contentsOf: TestPaths.root.appendingPathComponent("bpf-runtime/abi/x2b_abi_asserts.h"), encoding: .utf8)
        var sizes: [String: Int] = [:]
        var offsets: [String: [String: Int]] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { "(), ;".contains($0) }).map(String.init)
            if parts.first == "X2B_ASSERT_SIZE", parts.count >= 3 { sizes[parts[1]] = Int(parts[2]) }
            if parts.first == "X2B_ASSERT_OFF", parts.count >= 4 { offsets[parts[1], default: [:]][parts[2]] = Int(parts[3]) }
        }
        for s in ABILayout.structs {
            XCTAssertEqual(sizes[s.name], s.size, "size of \(s.name)")
        }
        for (name, fields) in offsets {
            for (f, off) in fields {
                XCTAssertEqual(ABILayout.structs.first { $0.name == name }?.offsets[f], off, "offset of \(name).\(f)")
            }
        }
        for (name, _) in sizes {
            XCTAssertNotNil(ABILayout.structs.first { $0.name == name }, "\(name) asserted in C but not in ABILayout")
        }
    }

    func testLayoutsArePackedInOrder() {
        for s in ABILayout.structs {
            var end = 0
            for f in s.fields {
                XCTAssertGreaterThanOrEqual(f.offset, end, "\(s.name).\(f.name) overlaps the field before it")
                end = f.offset + f.size
            }
            XCTAssertLessThanOrEqual(end, s.size, "\(s.name): fields past the end")
            XCTAssertEqual(s.size % s.align, 0, "\(s.name): size not a multiple of its alignment")
        }
    }

    /// Raw values written into map images and C are the ABI's constants.
    func testPlanValuesAreTheABIConstants() {
        typealias K = BundlePlan.ActionKind
        XCTAssertEqual(
            [K.pass, .cluster, .weighted, .http, .refuse, .tls].map(\.rawValue),
            [ABI.actPass, ABI.actCluster, ABI.actWeighted, ABI.actHttp, ABI.actRefuse, ABI.actTls])
        XCTAssertEqual(IRLBPolicy.allCases.map(CNamer.lbSlot).sorted(), Array(0..<ABI.lbCount))
        typealias A = HTTPPlan.Action
        XCTAssertEqual(
            [A.cluster, .weighted, .header, .local].map { UInt32($0.rawValue) },
            [ABI.raCluster, ABI.raWeighted, ABI.raHeader, ABI.raLocal])
        typealias O = HTTPPlan.Op
        XCTAssertEqual(
            [O.string, .present, .range, .any, .fraction].map { UInt32($0.rawValue) },
            [ABI.cStr, ABI.cPresent, ABI.cRange, ABI.cAny, ABI.cFraction])
        typealias S = HTTPPlan.Source
        XCTAssertEqual(
            [S.path, .fullPath, .method, .authority, .scheme, .header, .query, .none].map { UInt32($0.rawValue) },
            [ABI.sPath, ABI.sFullpath, ABI.sMethod, ABI.sAuthority, ABI.sScheme, ABI.sHeader, ABI.sQuery, ABI.sNone])
        XCTAssertEqual(FNV.initial, ABI.fnvInit)
        XCTAssertEqual(FNV.prime, ABI.fnvPrime)
    }

    func testEncodedRecordsHaveTheLayoutSizes() {
        var plan = BundlePlan()
        plan.actions = [.init(kind: .cluster, target: 1, count: 1, totalWeight: 0, listener: 0, fallback: 0, source: "")]
        plan.clusters = [
            .init(
                name: "c", lb: .roundRobin, counter: 0, passthrough: false,
                levels: [.init(cumLoad: 100, first: 0, count: 1, tableFirst: 0, tableLength: 0)], endpointCount: 1)
        ]
        plan.endpoints = [.init(address: IRAddress(parsing: "10.0.0.1")!, port: 80, weight: 1)]
        XCTAssertEqual(MapImageEncoder.actions(plan).bytes.count, 4 + ABILayout.size("x2b_action"))
        XCTAssertEqual(MapImageEncoder.clusters(plan).bytes.count, 4 + ABILayout.size("x2b_cluster"))
        let ep = MapImageEncoder.endpoints(plan).bytes
        XCTAssertEqual(ep.count, 4 + ABILayout.size("x2b_endpoint"))
        // family, pad, port in network order, weight LE, address
        XCTAssertEqual(Array(ep[4..<16]), [4, 0, 0, 80, 1, 0, 0, 0, 10, 0, 0, 1])
    }

    func testABIVersionMatchesHeader() throws {
        let text = try String(contentsOf: TestPaths.root.appendingPathComponent("bpf-runtime/abi/x2b_abi.h"), encoding: .utf8)
        XCTAssertTrue(text.contains("#define X2B_ABI_VERSION \(ABI.version)\n"))
        XCTAssertTrue(text.contains("#define X2B_MAX_PRIORITIES \(ABI.maxPriorities)\n"))
        XCTAssertTrue(text.contains("#define X2B_MAX_WEIGHTED \(ABI.maxWeighted) "))
    }
}
