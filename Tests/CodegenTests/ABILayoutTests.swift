import Foundation
import XCTest

@testable import Codegen

/// The Swift map-image encoder and the C structs must agree: every size and
/// offset asserted in bpf-runtime/abi/x2b_abi_asserts.h is checked against
/// ABILayout, and every ABILayout struct must be asserted in C.
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
            for (f, off) in s.offsets {
                XCTAssertEqual(offsets[s.name]?[f], off, "offset of \(s.name).\(f)")
            }
        }
        for (name, _) in sizes {
            XCTAssertNotNil(ABILayout.structs.first { $0.name == name }, "\(name) asserted in C but not in ABILayout")
        }
    }

    func testEncodedRecordsHaveTheLayoutSizes() {
        var plan = BundlePlan()
        plan.actions = [.init(kind: .cluster, target: 1, count: 1, totalWeight: 0, listener: 0, fallback: 0, source: "")]
        plan.clusters = [.init(name: "c", lb: .roundRobin, counter: 0, passthrough: false,
                               levels: [.init(cumLoad: 100, first: 0, count: 1, tableFirst: 0, tableLength: 0)], endpointCount: 1)]
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
