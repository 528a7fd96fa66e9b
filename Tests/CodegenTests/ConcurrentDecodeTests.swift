import Foundation
import SwiftProtobuf
import XCTest

@testable import Codegen
@testable import X2BFrontend

/// A response of many resources is decoded on every core (BinaryInput
/// `decodeConcurrently`); the snapshot and its diagnostics must be exactly
/// those of decoding one resource at a time.
final class ConcurrentDecodeTests: XCTestCase {
    typealias T = FrontendBinaryTests

    func testManyResourcesDecodeAsOneAtATime() throws {
        let n = ParseSession.concurrentDecodeMinimum * 3 + 7
        var resources: [Google_Protobuf_Any] = []
        for i in 0..<n {
            var any = try Google_Protobuf_Any(message: T.cla("svc-\(i)", endpoints: 1 + i % 4))
            // some resources that do not decode: their diagnostics keep their place
            if i % 97 == 5 { any.value = Data([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) }
            resources.append(any)
        }
        var big = T.DR()
        big.typeURL = "type.googleapis.com/\(T.CLA.protoMessageName)"
        big.resources = resources
        // the same resources, one response each: below the threshold, one at a time
        let singles = resources.map { a -> T.DR in
            var r = T.DR()
            r.typeURL = big.typeURL
            r.resources = [a]
            return r
        }
        let together = SnapshotParser().parse(try T.delimited([big]), sourceName: "s.pb")
        let apart = SnapshotParser().parse(try T.delimited(singles), sourceName: "s.pb")
        XCTAssertEqual(together.loadAssignments.count, n - (0..<n).filter { $0 % 97 == 5 }.count)
        XCTAssertEqual(together.loadAssignments.map(\.name), apart.loadAssignments.map(\.name))
        XCTAssertEqual(together.loadAssignments.map(\.message), apart.loadAssignments.map(\.message))
        // the same diagnostics in the same order (paths differ only in the response index)
        let strip = { (d: Diagnostic) in d.rendered.replacingOccurrences(of: #"responses\[\d+\]\.resources\[\d+\]"#, with: "R", options: .regularExpression) }
        XCTAssertEqual(together.diagnostics.count, (0..<n).filter { $0 % 97 == 5 }.count)
        XCTAssertEqual(together.diagnostics.map(strip), apart.diagnostics.map(strip))
        XCTAssertTrue(together.diagnostics.allSatisfy { $0.rendered.contains("cannot decode") })
        // and the digest of the same bytes is the same run after run
        let again = SnapshotParser().parse(try T.delimited([big]), sourceName: "s.pb")
        XCTAssertEqual(again.loadAssignments.map(\.message), together.loadAssignments.map(\.message))
        XCTAssertEqual(again.diagnostics.map(\.rendered), together.diagnostics.map(\.rendered))
    }
}
