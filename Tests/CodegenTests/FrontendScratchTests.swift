import XCTest
import SwiftProtobuf
@testable import Codegen

final class FrontendScratchTests: XCTestCase {
    func testTiming() throws {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "/work/shared/corpus/istio/authz__configdump.yaml")))
        var t = Date()
        guard case .success(let tree) = JSONParser.parse(data) else { return XCTFail() }
        print("T parse", Date().timeIntervalSince(t)); t = Date()
        let session = ParseSession(source: "x")
        var comps: [ParseSession.PathComponent] = []
        let cfg = tree.object!["configs"]!.array![0].object!
        let dl = cfg["dynamic_listeners"]!.array!
        for (i, l) in dl.enumerated() {
            let obj = l.object!["active_state"]!.object!["listener"]!.object!
            t = Date()
            let n = session.normalize(.object(obj), comps: &comps, base: "")
            let t1 = Date().timeIntervalSince(t); t = Date()
            var splicer = AnySplicer(session: session)
            let wm = splicer.encodeAnys(n, comps: &comps, base: "")
            let t2 = Date().timeIntervalSince(t); t = Date()
            let m = try Envoy_Config_Listener_V3_Listener(jsonUTF8Bytes: wm.jsonBytes(), options: ParseSession.jsonOptions)
            let t3 = Date().timeIntervalSince(t); t = Date()
            _ = splicer.binaryForm(m, path: "")
            let t4 = Date().timeIntervalSince(t)
            print("T listener \(i) size=\(n.jsonBytes().count) norm=\(t1) anys=\(t2) json=\(t3) bin=\(t4)")
        }
        print(session.snapshot.diagnostics.map(\.rendered))
    }
}
