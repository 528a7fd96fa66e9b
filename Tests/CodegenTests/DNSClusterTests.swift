import Foundation
import XCTest

@testable import Codegen
@testable import X2BToolchain

/// DNS clusters resolved on the node (issue #13): host names of STRICT_DNS and
/// LOGICAL_DNS clusters compile without `--resolve` and reach the manifest with
/// what the loader needs to build their rows (localities, health, LB settings);
/// Envoy's acceptances are kept (port 0).
final class DNSClusterTests: XCTestCase {
    func snapshot(clusters: String, listenerCluster: String = "dns") -> String {
        """
        static_resources:
          listeners:
          - name: l
            address: {socket_address: {address: 10.96.0.1, port_value: 80}}
            filter_chains:
            - filters:
              - name: envoy.filters.network.tcp_proxy
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                  stat_prefix: l
                  cluster: \(listenerCluster)
          clusters:
        \(clusters)
        """
    }

    func endpoint(_ host: String, _ port: Int, weight: Int? = nil) -> String {
        let w = weight.map { ", load_balancing_weight: \($0)" } ?? ""
        return "          - {endpoint: {address: {socket_address: {address: \(host), port_value: \(port)}}}\(w)}"
    }

    func cluster(_ name: String, type: String, extra: String = "", endpoints: [String]) -> String {
        """
          - name: \(name)
            type: \(type)
            connect_timeout: 1s
        \(extra.isEmpty ? "" : extra + "\n")    load_assignment:
              cluster_name: \(name)
              endpoints:
              - lb_endpoints:
        \(endpoints.joined(separator: "\n"))
        """
    }

    func frontEnd(_ yaml: String, options: FrontEndOptions = FrontEndOptions()) throws -> FrontEndResult {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-dns-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("snapshot.yaml")
        try Data(yaml.utf8).write(to: url)
        return Pipeline.frontEnd(files: [url.path], options: options)
    }

    /// The manifest of a planned snapshot (no clang: code digest and files left empty).
    func manifest(_ fe: FrontEndResult, _ plan: BundlePlan) -> Xds2bpf_Bundle_V1_Manifest {
        ManifestBuilder.manifest(
            plan: plan, emitted: CEmitter.emit(plan), bundle: BundleFiles(),
            provenance: .init(
                snapshotDigest: fe.snapshotDigest, codeDigest: "", compilerVersion: XDS2BPFVersion.string, clangVersion: "test",
                frontEndDiagnostics: fe.diagnostics))
    }

    func testStrictDNSHostNamesCompileAndReachTheManifest() throws {
        let fe = try frontEnd(
            snapshot(
                clusters: cluster(
                    "dns", type: "STRICT_DNS",
                    extra: "    dns_lookup_family: V4_PREFERRED\n    dns_refresh_rate: 2.5s\n    respect_dns_ttl: true",
                    endpoints: [endpoint("backend.example", 8080), endpoint("10.1.0.1", 8080), endpoint("other.example", 9090)])))
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics.map(\.rendered))")
        XCTAssertFalse(fe.diagnostics.contains { $0.id == "XDS105" || $0.id == "XDS108" }, "\(fe.diagnostics.map(\.rendered))")
        let c = try XCTUnwrap(fe.ir.clusters.first { $0.name == "dns" })
        let dns = try XCTUnwrap(c.dns)
        XCTAssertFalse(dns.logical)
        XCTAssertEqual(dns.lookupFamily, .v4Preferred)
        XCTAssertEqual(dns.refreshRateMs, 2500)
        XCTAssertTrue(dns.respectDNSTTL)
        XCTAssertEqual(dns.hosts.map(\.host), ["backend.example", "10.1.0.1", "other.example"], "config order, addresses kept")
        XCTAssertEqual(dns.hosts.map(\.port), [8080, 8080, 9090])
        XCTAssertEqual(dns.maxEndpoints, 2 * Int(IRDNSResolution.strictMaxAddresses) + 1)
        // Until the loader resolves, only the address routes.
        XCTAssertEqual(c.endpointCount, 1)
        XCTAssertTrue(IRPrinter.render(fe.ir).contains("dns strict v4_preferred refresh 2500ms respect_ttl"), IRPrinter.render(fe.ir))

        let (plan, pdiags) = Planner.plan(fe.ir)
        XCTAssertFalse(pdiags.hasErrors, "\(pdiags)")
        XCTAssertEqual(plan.dnsEndpointReserve, dns.maxEndpoints)
        let ep = try XCTUnwrap(plan.layout.maps.first { $0.name == "x2b_ep" })
        XCTAssertGreaterThanOrEqual(ep.maxEntries, 2 * (plan.endpoints.count + dns.maxEndpoints), "old and new rows of every name fit")
        let manifest = self.manifest(fe, plan)
        let decoded = try Xds2bpf_Bundle_V1_Manifest(serializedBytes: try manifest.serializedBytes() as [UInt8])
        XCTAssertEqual(decoded.dnsClusters.count, 1)
        let d = decoded.dnsClusters[0]
        XCTAssertEqual(decoded.clusters[Int(d.cluster)].name, "dns")
        XCTAssertEqual(d.name, "dns")
        XCTAssertEqual(d.lookupFamily, "v4_preferred")
        XCTAssertEqual(d.refreshRateMs, 2500)
        XCTAssertTrue(d.respectDnsTtl)
        XCTAssertEqual(d.maxAddresses, IRDNSResolution.strictMaxAddresses)
        XCTAssertEqual(d.hosts.map { $0.host }, ["backend.example", "10.1.0.1", "other.example"])
        XCTAssertEqual(d.hosts.map { $0.weight }, [1, 1, 1])
    }

    func testChangedHostNamesAreNotAnEndpointDelta() throws {
        // Same code and images, another name: the loader resolves from the loaded
        // manifest, so only a replace can bring the new name.
        func bundle(_ host: String) throws -> BundleFiles {
            var m = Xds2bpf_Bundle_V1_Manifest()
            m.abiVersion = ABI.version
            m.codeSha256 = String(repeating: "a", count: 64)
            var c = Xds2bpf_Bundle_V1_Cluster()
            c.name = "dns"
            m.clusters = [c]
            var d = Xds2bpf_Bundle_V1_DnsCluster()
            d.name = "dns"
            var h = Xds2bpf_Bundle_V1_DnsHost()
            h.host = host
            h.port = 80
            h.weight = 1
            d.hosts = [h]
            m.dnsClusters = [d]
            var b = BundleFiles()
            b.files["manifest.pb"] = try m.serializedBytes()
            return b
        }
        guard case .failure(let why) = EndpointDelta.make(base: try bundle("a.example"), new: try bundle("b.example")) else {
            return XCTFail("a changed DNS host name must need a replace")
        }
        XCTAssertTrue(why.reason.contains("DNS"), why.reason)
        // The same names pass that check (these bundles have no map images: the next check stops them).
        if case .failure(let other) = EndpointDelta.make(base: try bundle("a.example"), new: try bundle("a.example")) {
            XCTAssertFalse(other.reason.contains("DNS"), other.reason)
        }
    }

    func testLogicalDNSTakesOneAddressAndEnvoysDefaults() throws {
        let fe = try frontEnd(snapshot(clusters: cluster("dns", type: "LOGICAL_DNS", endpoints: [endpoint("backend.example", 443)])))
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics.map(\.rendered))")
        let dns = try XCTUnwrap(fe.ir.clusters.first?.dns)
        XCTAssertTrue(dns.logical)
        XCTAssertEqual(dns.maxAddresses, 1)
        XCTAssertEqual(dns.lookupFamily, .auto)
        XCTAssertEqual(dns.refreshRateMs, 5000, "Envoy's default dns_refresh_rate")
        XCTAssertFalse(dns.respectDNSTTL)
    }

    func testPrioritiesFailOverOnTheNode() throws {
        let yaml = snapshot(
            clusters: """
                  - name: dns
                    type: STRICT_DNS
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: dns
                      endpoints:
                      - lb_endpoints:
                        - {endpoint: {address: {socket_address: {address: primary.example, port_value: 80}}}}
                      - priority: 1
                        lb_endpoints:
                        - {endpoint: {address: {socket_address: {address: backup.example, port_value: 80}}}}
                """)
        let fe = try frontEnd(yaml)
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics.map(\.rendered))")
        let dns = try XCTUnwrap(fe.ir.clusters.first?.dns)
        XCTAssertEqual(dns.hosts.map(\.priority), [0, 1])
        XCTAssertEqual(dns.localities, [.init(priority: 0, weight: nil), .init(priority: 1, weight: nil)])
        XCTAssertEqual(dns.hosts.map(\.locality), [0, 1])
        // Below 100 the overprovisioning factor spreads load over priorities: the loader computes
        // Envoy's priority load after the lookups, so the factor goes to the manifest.
        let spread = try frontEnd(
            yaml.replacingOccurrences(of: "      cluster_name: dns", with: "      cluster_name: dns\n      policy: {overprovisioning_factor: 50}"))
        XCTAssertFalse(spread.rejected, "\(spread.diagnostics.map(\.rendered))")
        XCTAssertEqual(spread.ir.clusters.first?.dns?.overprovisioningFactor, 50)
    }

    func testLogicalDNSWithTwoEndpointsIsRejectedAsEnvoyDoes() throws {
        let fe = try frontEnd(
            snapshot(clusters: cluster("dns", type: "LOGICAL_DNS", endpoints: [endpoint("a.example", 80), endpoint("b.example", 80)])))
        XCTAssertTrue(fe.diagnostics.contains { $0.id == "XDS006" && $0.message.contains("LOGICAL_DNS") }, "\(fe.diagnostics.map(\.rendered))")
    }

    func testEveryLBPolicyIsBuiltOnTheNode() throws {
        // Maglev and ring hash: the loader builds the tables from the lookups, with the cluster's sizes.
        let maglev = try frontEnd(
            snapshot(
                clusters: cluster(
                    "dns", type: "STRICT_DNS", extra: "    lb_policy: MAGLEV\n    maglev_lb_config: {table_size: 251}",
                    endpoints: [endpoint("a.example", 80)])))
        XCTAssertFalse(maglev.rejected, "\(maglev.diagnostics.map(\.rendered))")
        XCTAssertFalse(maglev.diagnostics.contains { $0.id == "XDS105" }, "\(maglev.diagnostics.map(\.rendered))")
        XCTAssertEqual(maglev.ir.clusters.first?.dns?.maglevTableSize, 251)
        let ring = try frontEnd(
            snapshot(
                clusters: cluster(
                    "dns", type: "STRICT_DNS",
                    extra: "    lb_policy: RING_HASH\n    ring_hash_lb_config: {minimum_ring_size: 64, maximum_ring_size: 512}",
                    endpoints: [endpoint("a.example", 80)])))
        XCTAssertFalse(ring.rejected, "\(ring.diagnostics.map(\.rendered))")
        let rdns = try XCTUnwrap(ring.ir.clusters.first?.dns)
        XCTAssertEqual([rdns.ringMinimumSize, rdns.ringMaximumSize], [64, 512])
        let (plan, _) = Planner.plan(ring.ir)
        let m = manifest(ring, plan)
        XCTAssertEqual(m.dnsClusters.first.map { [$0.ringMinimumSize, $0.ringMaximumSize] }, [64, 512])
        // 64 + 16 addresses of weight 1 / 1, + one per endpoint and one for rounding
        XCTAssertEqual(plan.dnsTableReserve, 64 + 16 + 16 + 1)
        // Round robin with different weights: the loader builds the schedule after the lookups.
        let weights = try frontEnd(
            snapshot(
                clusters: cluster("dns", type: "STRICT_DNS", endpoints: [endpoint("a.example", 80, weight: 1), endpoint("b.example", 80, weight: 3)])))
        XCTAssertFalse(weights.rejected, "\(weights.diagnostics.map(\.rendered))")
        XCTAssertEqual(weights.ir.clusters.first?.dns?.hosts.map(\.weight), [1, 3])
        // Random ignores weights (as Envoy's RANDOM does).
        let random = try frontEnd(
            snapshot(
                clusters: cluster(
                    "dns", type: "STRICT_DNS", extra: "    lb_policy: RANDOM",
                    endpoints: [endpoint("a.example", 80, weight: 1), endpoint("b.example", 80, weight: 3)])))
        XCTAssertFalse(random.rejected, "\(random.diagnostics.map(\.rendered))")
        XCTAssertEqual(random.ir.clusters.first?.dns?.hosts.map(\.weight), [1, 3])
        // With --resolve the same cluster is static again.
        let resolved = try frontEnd(
            snapshot(clusters: cluster("dns", type: "STRICT_DNS", extra: "    lb_policy: MAGLEV", endpoints: [endpoint("a.example", 80)])),
            options: FrontEndOptions(hostAddresses: ["a.example": [try XCTUnwrap(IRAddress(parsing: "10.1.0.9"))]]))
        XCTAssertFalse(resolved.rejected, "\(resolved.diagnostics.map(\.rendered))")
        XCTAssertNil(resolved.ir.clusters.first?.dns)
        XCTAssertEqual(resolved.ir.clusters.first?.endpointCount, 1)
    }

    /// Envoy Gateway's form: `cluster_type: envoy.cluster.dns` with a DnsCluster,
    /// whose lookup-family enum is not the cluster's (V4_PREFERRED is 4 there, 3 here).
    func dnsExtensionCluster(_ dnsCluster: String, localities: String) -> String {
        """
          - name: dns
            connect_timeout: 1s
            dns_lookup_family: V6_ONLY
            cluster_type:
              name: envoy.cluster.dns
              typed_config:
        \(dnsCluster)
            load_balancing_policy:
              policies:
              - typed_extension_config:
                  name: envoy.load_balancing_policies.least_request
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest
                    locality_lb_config: {locality_weighted_lb_config: {}}
            load_assignment:
              cluster_name: dns
              endpoints:
        \(localities)
        """
    }

    func testDNSClusterExtensionIsResolvedOnTheNodeWithItsOwnSettings() throws {
        let strict = """
                    "@type": type.googleapis.com/envoy.extensions.clusters.dns.v3.DnsCluster
                    dns_lookup_family: V4_PREFERRED
                    dns_refresh_rate: 30s
                    respect_dns_ttl: true
            """
        let oneLocality = """
                  - load_balancing_weight: 1
                    locality: {region: r}
                    lb_endpoints:
                    - {endpoint: {address: {socket_address: {address: foo.bar, port_value: 50000}}}, load_balancing_weight: 1}
                    - {endpoint: {address: {socket_address: {address: bar.foo, port_value: 50001}}}, load_balancing_weight: 1}
            """
        let fe = try frontEnd(snapshot(clusters: dnsExtensionCluster(strict, localities: oneLocality)))
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics.map(\.rendered))")
        let dns = try XCTUnwrap(fe.ir.clusters.first?.dns)
        XCTAssertFalse(dns.logical)
        XCTAssertEqual(dns.lookupFamily, .v4Preferred, "the extension's settings, not the cluster's V6_ONLY")
        XCTAssertEqual(dns.refreshRateMs, 30000)
        XCTAssertTrue(dns.respectDNSTTL)
        XCTAssertEqual(dns.hosts.map(\.host), ["foo.bar", "bar.foo"])

        // all_addresses_in_single_endpoint is Envoy's LOGICAL_DNS; UNSPECIFIED is AUTO.
        let logical = """
                    "@type": type.googleapis.com/envoy.extensions.clusters.dns.v3.DnsCluster
                    all_addresses_in_single_endpoint: true
            """
        let single = """
                  - load_balancing_weight: 1
                    lb_endpoints:
                    - {endpoint: {address: {socket_address: {address: foo.bar, port_value: 50000}}}}
            """
        let lfe = try frontEnd(snapshot(clusters: dnsExtensionCluster(logical, localities: single)))
        XCTAssertFalse(lfe.rejected, "\(lfe.diagnostics.map(\.rendered))")
        let ldns = try XCTUnwrap(lfe.ir.clusters.first?.dns)
        XCTAssertTrue(ldns.logical)
        XCTAssertEqual(ldns.lookupFamily, .auto)
        XCTAssertEqual(ldns.refreshRateMs, 5000)

        // Locality weights over two localities: the loader builds the locality schedule.
        let secondLocality = """
                  - load_balancing_weight: 3
                    locality: {region: s}
                    lb_endpoints:
                    - {endpoint: {address: {socket_address: {address: baz.foo, port_value: 50000}}}}
            """
        let two = oneLocality + "\n" + secondLocality
        let tfe = try frontEnd(snapshot(clusters: dnsExtensionCluster(strict, localities: two)))
        XCTAssertFalse(tfe.rejected, "\(tfe.diagnostics.map(\.rendered))")
        let tdns = try XCTUnwrap(tfe.ir.clusters.first?.dns)
        XCTAssertTrue(tdns.localityWeighted)
        XCTAssertEqual(tdns.localities, [.init(priority: 0, weight: 1), .init(priority: 0, weight: 3)])
        XCTAssertEqual(tdns.hosts.map(\.locality), [0, 0, 1])

        // The extension without its DnsCluster is invalid, as for Envoy.
        let bare = """
                    "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.random.v3.Random
            """
        let bfe = try frontEnd(snapshot(clusters: dnsExtensionCluster(bare, localities: single)))
        XCTAssertTrue(
            bfe.diagnostics.contains { $0.id == "XDS006" && $0.path.hasSuffix("cluster_type.typed_config") }, "\(bfe.diagnostics.map(\.rendered))")
    }

    /// Health statuses reach the loader: an UNHEALTHY endpoint counts in the health of
    /// its priority and is never chosen; DEGRADED is routable.
    func testHealthStatusesOfNamesReachTheManifest() throws {
        let address = { (host: String, health: String) in
            "          - {endpoint: {address: {socket_address: {address: \(host), port_value: 80}}}, health_status: \(health)}"
        }
        let yaml = snapshot(
            clusters: cluster(
                "dns", type: "STRICT_DNS",
                endpoints: [address("a.example", "UNHEALTHY"), address("b.example", "DEGRADED"), address("10.0.0.3", "DRAINING")]))
        let fe = try frontEnd(yaml)
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics.map(\.rendered))")
        let dns = try XCTUnwrap(fe.ir.clusters.first?.dns)
        XCTAssertEqual(dns.hosts.map(\.routable), [false, true, false])
        let (plan, _) = Planner.plan(fe.ir)
        let manifest = self.manifest(fe, plan)
        XCTAssertEqual(manifest.dnsClusters.first?.hosts.map(\.unroutable), [true, false, true])
        XCTAssertEqual(manifest.dnsClusters.first?.hosts.map(\.locality), [0, 0, 0])
        XCTAssertEqual(manifest.dnsClusters.first?.overprovisioningFactor, 140)
    }

    /// `--resolve NAME=IP,IP`: a STRICT_DNS cluster makes every address an endpoint
    /// (as the loader does with a lookup's answer), LOGICAL_DNS the first.
    func testResolveWithSeveralAddresses() throws {
        let addresses = try ["10.1.0.1", "10.1.0.2"].map { try XCTUnwrap(IRAddress(parsing: $0)) }
        let options = FrontEndOptions(hostAddresses: ["a.example": addresses])
        let strict = try frontEnd(
            snapshot(clusters: cluster("dns", type: "STRICT_DNS", endpoints: [endpoint("a.example", 80, weight: 2)])), options: options)
        XCTAssertFalse(strict.rejected, "\(strict.diagnostics.map(\.rendered))")
        let eps = try XCTUnwrap(strict.ir.clusters.first?.priorities.first?.localities.first?.endpoints)
        XCTAssertEqual(eps.map(\.address.description), ["10.1.0.1", "10.1.0.2"])
        XCTAssertEqual(eps.map(\.weight), [2, 2])
        let logical = try frontEnd(
            snapshot(clusters: cluster("dns", type: "LOGICAL_DNS", endpoints: [endpoint("a.example", 80)])), options: options)
        XCTAssertEqual(logical.ir.clusters.first?.endpointCount, 1)
        XCTAssertEqual(logical.ir.clusters.first?.priorities.first?.localities.first?.endpoints.first?.address.description, "10.1.0.1")
    }

    /// x2b_lbtab has room for the tables the loader builds after the lookups.
    func testTableSlotsAreReservedForSchedulesBuiltOnTheNode() throws {
        func reserve(_ extra: String, _ endpoints: [String]) throws -> Int {
            let fe = try frontEnd(snapshot(clusters: cluster("dns", type: "STRICT_DNS", extra: extra, endpoints: endpoints)))
            XCTAssertFalse(fe.rejected, "\(fe.diagnostics.map(\.rendered))")
            return Planner.plan(fe.ir).0.dnsTableReserve
        }
        // one weight: no schedule, ever
        XCTAssertEqual(try reserve("", [endpoint("a.example", 80), endpoint("b.example", 80)]), 0)
        XCTAssertEqual(try reserve("    lb_policy: RANDOM", [endpoint("a.example", 80, weight: 1), endpoint("b.example", 80, weight: 3)]), 0)
        // weights 1 and 3, 16 addresses a name: at most 64 slots
        XCTAssertEqual(try reserve("", [endpoint("a.example", 80, weight: 1), endpoint("b.example", 80, weight: 3)]), 64)
        // locality weights: a scaled schedule, up to 4096 slots and one per endpoint
        XCTAssertEqual(
            try reserve("    common_lb_config: {locality_weighted_lb_config: {}}", [endpoint("a.example", 80)]),
            Int(LBTables.maxScheduleLength) + 16)
        // maglev: its table size at each priority that can carry load
        XCTAssertEqual(try reserve("    lb_policy: MAGLEV", [endpoint("a.example", 80)]), 65537)
    }

    func testHostNamesOfAStaticClusterAreStillAnError() throws {
        let fe = try frontEnd(snapshot(clusters: cluster("dns", type: "STATIC", endpoints: [endpoint("a.example", 80)])))
        XCTAssertTrue(fe.diagnostics.contains { $0.id == "XDS105" && $0.severity == .error }, "\(fe.diagnostics.map(\.rendered))")
    }

    func testPortZeroEndpointIsAWarningAndNeverChosen() throws {
        let fe = try frontEnd(snapshot(clusters: cluster("dns", type: "STATIC", endpoints: [endpoint("10.1.0.1", 0), endpoint("10.1.0.2", 80)])))
        XCTAssertFalse(fe.rejected, "\(fe.diagnostics.map(\.rendered))")
        let w = try XCTUnwrap(fe.diagnostics.first { $0.id == "XDS106" }, "\(fe.diagnostics.map(\.rendered))")
        XCTAssertEqual(w.severity, .warning)
        XCTAssertTrue(w.path.hasSuffix("lb_endpoints[0].endpoint.address"), w.path)
        XCTAssertEqual(fe.ir.clusters.first?.priorities.flatMap { $0.localities.flatMap(\.endpoints) }.map(\.port), [80])
        // A port out of range is still rejected, as Envoy does.
        let big = try frontEnd(snapshot(clusters: cluster("dns", type: "STATIC", endpoints: [endpoint("10.1.0.1", 70000)])))
        XCTAssertTrue(big.diagnostics.contains { $0.id == "XDS106" && $0.severity == .error }, "\(big.diagnostics.map(\.rendered))")
    }
}
