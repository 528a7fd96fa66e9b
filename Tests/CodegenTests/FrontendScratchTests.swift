import XCTest
import SwiftProtobuf
@testable import Codegen

final class FrontendScratchTests: XCTestCase {
    func cmp<M: Message & Equatable>(_ a: [XDSResource<M>], _ b: [XDSResource<M>], _ label: String) {
        XCTAssertEqual(a.count, b.count, label)
        let bm = Dictionary(b.map { ($0.name, $0.message) }, uniquingKeysWith: { x, _ in x })
        for r in a {
            guard let other = bm[r.name] else { XCTFail("\(label) missing \(r.name)"); continue }
            if r.message != other {
                let ta = strip(r.message.textFormatString()), tb = strip(other.textFormatString())
                if ta == tb { print("EQ-TEXT \(label) \(r.name)"); continue }
                let la = ta.split(separator: "\n"), lb = tb.split(separator: "\n")
                var shown = 0
                for (x, y) in zip(la, lb) where x != y && shown < 3 { print("DIFF \(label) \(r.name):\n  json: \(x)\n  bin:  \(y)"); shown += 1 }
                if la.count != lb.count { print("DIFF \(label) \(r.name) line counts \(la.count) vs \(lb.count)") }
                XCTFail("\(label) \(r.name) differs")
            }
        }
    }
    func strip(_ t: String) -> String {
        var out: [Substring] = []
        var skipDepth = 0
        for line in t.split(separator: "\n") {
            let s = line.drop(while: { $0 == " " })
            if skipDepth > 0 {
                if s.hasSuffix("{") { skipDepth += 1 } else if s == "}" { skipDepth -= 1 }
                continue
            }
            if let f = s.first, f.isNumber {
                if s.hasSuffix("{") { skipDepth = 1 }
                continue
            }
            out.append(line)
        }
        return out.joined(separator: "\n")
    }
    func testCompare() throws {
        let c = "/work/shared/corpus/envoy-gateway/xds-ir/"
        for n in ["http-route", "load-balancer", "http-route-weighted-zones", "tcp-route-complex", "retry"] {
            let j = SnapshotParser().parse(files: ["listeners", "routes", "clusters", "endpoints"].map { "\(c)\(n)/\(n).\($0).yaml" })
            let b = SnapshotParser().parse(files: ["/tmp/pb/\(n).xds.pb"])
            print("CMP \(n) diags: \(b.diagnostics.map(\.rendered)) \(j.diagnostics.map(\.rendered))")
            cmp(j.listeners, b.listeners, n); cmp(j.routeConfigurations, b.routeConfigurations, n)
            cmp(j.clusters, b.clusters, n); cmp(j.loadAssignments, b.loadAssignments, n)
        }
        let j = SnapshotParser().parse(files: ["/work/shared/corpus/istio/proxyconfig__config_dump.json"])
        let b = SnapshotParser().parse(files: ["/tmp/pb/proxyconfig.pb"])
        print("CMP proxyconfig diags: \(b.diagnostics.map(\.rendered))")
        cmp(j.listeners, b.listeners, "pc"); cmp(j.routeConfigurations, b.routeConfigurations, "pc")
        cmp(j.clusters, b.clusters, "pc"); cmp(j.loadAssignments, b.loadAssignments, "pc")
        let b2 = SnapshotParser().parse(files: ["/tmp/pb/proxyconfig.xds.pb"])
        print("CMP stream: L=\(b2.listeners.count) R=\(b2.routeConfigurations.count) C=\(b2.clusters.count) E=\(b2.loadAssignments.count) \(b2.diagnostics.map(\.rendered))")
        let ja = SnapshotParser().parse(files: ["/work/shared/corpus/istio/authz__configdump.yaml"])
        let ba = SnapshotParser().parse(files: ["/tmp/pb/authz.pb"])
        cmp(ja.listeners, ba.listeners, "authz")
    }
}
final class FrontendScratch2Tests: XCTestCase {
    func testShow() throws {
        let c = "/work/shared/corpus/envoy-gateway/xds-ir/http-route/http-route.routes.yaml"
        let j = SnapshotParser().parse(files: [c])
        print("JSONPATH\n" + j.routeConfigurations[0].message.textFormatString())
        let b = SnapshotParser().parse(files: ["/tmp/pb/http-route.xds.pb"])
        print("BINPATH\n" + b.routeConfigurations[0].message.textFormatString())
    }
}
