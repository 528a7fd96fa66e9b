import Foundation
import SwiftProtobuf
import X2BABI
import X2BBundle
import X2BDiagnostics
import X2BEmit
import X2BFrontend
import X2BIR
import X2BPlan
import X2BProtos
import X2BResolve
import X2BToolchain

public enum XDS2BPFVersion {
    public static let string = "0.1.0"
}

/// Wall time per phase, in order, for the compile summary and benchmarks.
public struct PhaseTimings: Sendable {
    public var phases: [(String, Double)] = []
    /// Peak resident set size of the process (KiB) at the end of each phase.
    public var peakRSS: [String: Int] = [:]

    public init() {}

    public mutating func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            phases.append((name, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            peakRSS[name] = Int(usage.ru_maxrss)
        }
        return try body()
    }

    /// `{"phases": [{"name":..., "seconds":..., "peak_rss_kib":...}]}` for benchmarks.
    public var json: String {
        let rows = phases.map { "{\"name\": \"\($0.0)\", \"seconds\": \(String(format: "%.6f", $0.1)), \"peak_rss_kib\": \(peakRSS[$0.0] ?? 0)}" }
        return "{\"phases\": [\(rows.joined(separator: ", "))]}\n"
    }
}

public struct FrontEndOptions: Sendable {
    public var format: InputFormat = .auto
    public var unsupported: UnsupportedPolicy = .default
    /// `--resolve NAME=IP`: the address of each host name of a DNS cluster.
    public var hostAddresses: [String: IRAddress] = [:]

    public init(format: InputFormat = .auto, unsupported: UnsupportedPolicy = .default, hostAddresses: [String: IRAddress] = [:]) {
        self.format = format
        self.unsupported = unsupported
        self.hostAddresses = hostAddresses
    }
}

/// The result of stages 1-3 (parse, resolve, lower).
public struct FrontEndResult: Sendable {
    public var snapshot: XDSSnapshot
    public var ir: MeshIR
    public var diagnostics: [Diagnostic]
    public var timings: PhaseTimings
    /// sha256 over the sorted per-file digests: input order does not matter.
    public var snapshotDigest: String

    public var rejected: Bool { diagnostics.hasErrors }
}

public enum Pipeline {
    public static func frontEnd(files: [String], options: FrontEndOptions = FrontEndOptions()) -> FrontEndResult {
        var t = PhaseTimings()
        let snapshot = t.measure("parse") { SnapshotParser(format: options.format).parse(files: files) }
        return frontEnd(snapshot: snapshot, options: options, timings: t)
    }

    public static func frontEnd(
        snapshot: XDSSnapshot, options: FrontEndOptions = FrontEndOptions(),
        timings: PhaseTimings = PhaseTimings()
    ) -> FrontEndResult {
        var t = timings
        let resolved = t.measure("resolve") { Resolver().resolve(snapshot) }
        let (ir, lowerDiags) = t.measure("lower") { Lowerer.lower(resolved, hostAddresses: options.hostAddresses) }
        var diags = snapshot.diagnostics + resolved.diagnostics + lowerDiags
        if snapshot.listeners.isEmpty && snapshot.clusters.isEmpty && snapshot.routeConfigurations.isEmpty
            && snapshot.loadAssignments.isEmpty && !diags.hasErrors
        {
            diags.append(Diagnostic(.emptyInput, .error, path: "snapshot", "the input holds no listeners, routes, clusters or endpoints"))
        }
        diags = options.unsupported.apply(to: diags)
        let digest = sha256Hex(Array(snapshot.inputDigests.sorted().joined(separator: "\n").utf8))
        return FrontEndResult(snapshot: snapshot, ir: ir, diagnostics: diags, timings: t, snapshotDigest: digest)
    }
}

public struct CompileOptions: Sendable {
    public var plan = PlanOptions()
    /// Where compiled objects are cached by content (nil: no cache).
    public var cacheDirectory: String?

    public init(cacheDirectory: String? = nil) {
        self.cacheDirectory = cacheDirectory
    }
}

/// What `compile` built, for the summary and tests.
public struct CompileResult: Sendable {
    public var bundle: BundleFiles
    public var plan: BundlePlan
    public var emitted: EmittedSource
    public var manifest: Xds2bpf_Bundle_V1_Manifest
    public var diagnostics: [Diagnostic]
    public var timings: PhaseTimings
    public var objectFromCache: Bool
}

extension Pipeline {
    /// Stages 4-7: plan, emit, clang, bundle. Throws ToolchainError (exit 3) for
    /// toolchain problems; planning limits come back as error diagnostics.
    public static func compile(
        _ fe: FrontEndResult, options: CompileOptions = CompileOptions(),
        clang: Clang? = nil
    ) throws -> CompileResult {
        var t = fe.timings
        let (plan, planDiags) = t.measure("plan") { Planner.plan(fe.ir, options: options.plan) }
        let diags = fe.diagnostics + planDiags
        let emitted = t.measure("emit") { CEmitter.emit(plan) }
        var bundle = BundleFiles()
        var manifest = Xds2bpf_Bundle_V1_Manifest()
        guard !diags.hasErrors else {
            return CompileResult(
                bundle: bundle, plan: plan, emitted: emitted, manifest: manifest, diagnostics: diags,
                timings: t, objectFromCache: false)
        }
        var headers = ["x2b_prelude.h", "x2b_runtime.h", "x2b_abi.h", "x2b_abi_asserts.h"]
        if emitted.routesHeader != nil { headers += ["x2b_http.h", "x2b_defer.h"] }
        if !plan.tlsTables.isEmpty { headers.append("x2b_tls.h") }
        var sources: [(String, String)] = [("x2b.bpf.c", emitted.source)]
        for h in headers { sources.append((h, Templates.text(h))) }
        if let routes = emitted.routesHeader { sources.append((HTTPEmitter.headerName, routes)) }
        let cc = try clang ?? Clang.locate()
        var fromCache = false
        var httpObject: [UInt8]?
        let object: [UInt8] = try t.measure("clang") {
            if emitted.routesHeader != nil {
                httpObject = try buildObject(
                    cc, sources: sources, defines: ["X2B_WITH_MODULE"], cacheDirectory: options.cacheDirectory,
                    source: emitted.source, fromCache: &fromCache)
            }
            return try buildObject(
                cc, sources: sources, defines: [], cacheDirectory: options.cacheDirectory,
                source: emitted.source, fromCache: &fromCache)
        }
        try t.measure("bundle") {
            for (name, text) in sources { bundle.files[name] = Array(text.utf8) }
            bundle.files["x2b.bpf.o"] = object
            if let httpObject { bundle.files["x2b_http.bpf.o"] = httpObject }
            for m in emitted.maps {
                if let img = m.image, img.entries > 0 { bundle.files["maps/\(m.name).bin"] = img.bytes }
            }
            manifest = buildManifest(
                fe: fe, plan: plan, emitted: emitted, bundle: bundle, clang: cc,
                codeDigest: sha256Hex(Array(emitted.source.utf8)))
            // A manifest that does not serialise is an internal error, never an empty file.
            do {
                bundle.setManifest(try manifest.serializedBytes())
            } catch {
                throw ToolchainError(diagnostics: [
                    Diagnostic(
                        .internalError, path: "manifest.pb",
                        "the bundle manifest cannot be serialised: \(error)")
                ])
            }
        }
        return CompileResult(
            bundle: bundle, plan: plan, emitted: emitted, manifest: manifest, diagnostics: diags,
            timings: t, objectFromCache: fromCache)
    }

    /// One clang run (or a cache hit: the key covers sources, defines, compiler and flags).
    static func buildObject(
        _ cc: Clang, sources: [(String, String)], defines: [String], cacheDirectory: String?,
        source: String, fromCache: inout Bool
    ) throws -> [UInt8] {
        let key = cc.objectKey(files: sources + defines.map { ("-D", $0) })
        if let dir = cacheDirectory, let cached = FileManager.default.contents(atPath: "\(dir)/\(key).o") {
            fromCache = true
            return Array(cached)
        }
        fromCache = false
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("xds2bpf-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        for (name, text) in sources {
            try Data(text.utf8).write(to: work.appendingPathComponent(name))
        }
        try cc.compile(in: work.path, source: source, defines: defines)
        let obj = try Data(contentsOf: work.appendingPathComponent("x2b.bpf.o"))
        if let dir = cacheDirectory {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let tmp = "\(dir)/.\(key).\(getpid())"
            if FileManager.default.createFile(atPath: tmp, contents: obj) {
                _ = rename(tmp, "\(dir)/\(key).o")
            }
        }
        return Array(obj)
    }

    static func buildManifest(
        fe: FrontEndResult, plan: BundlePlan, emitted: EmittedSource, bundle: BundleFiles,
        clang: Clang, codeDigest: String
    ) -> Xds2bpf_Bundle_V1_Manifest {
        var m = Xds2bpf_Bundle_V1_Manifest()
        m.formatVersion = 1
        m.abiVersion = ABI.version
        m.xds2BpfVersion = XDS2BPFVersion.string
        m.clangVersion = clang.version
        m.snapshotSha256 = fe.snapshotDigest
        m.object = "x2b.bpf.o"
        if bundle.files["x2b_http.bpf.o"] != nil { m.httpObject = "x2b_http.bpf.o" }
        m.codeSha256 = codeDigest
        m.needsHTTP = plan.needsHTTP
        // What the bundle lets through that the snapshot would deny (only with --unsupported=warn:
        // otherwise XDS209 is an error and no bundle is built).
        m.bypassedFilters = fe.diagnostics.filter { $0.id == DiagnosticID.bypassedFilter.code }.map { "\($0.path): \($0.message)" }
        for p in bundle.sortedPaths {
            var f = Xds2bpf_Bundle_V1_File()
            f.path = p
            f.sha256 = sha256Hex(bundle.files[p]!)
            f.size = UInt64(bundle.files[p]!.count)
            m.files.append(f)
        }
        for p in emitted.programs {
            var prog = Xds2bpf_Bundle_V1_Program()
            prog.name = p.name
            prog.section = p.section
            prog.attach =
                switch p.attach {
                case .none: .attachNone
                case .connect4: .cgroupInet4Connect
                case .connect6: .cgroupInet6Connect
                case .getpeername4: .cgroupInet4Getpeername
                case .getpeername6: .cgroupInet6Getpeername
                case .sockOps: .cgroupSockOps
                }
            prog.serves = p.serves
            m.programs.append(prog)
        }
        for s in emitted.maps {
            var map = Xds2bpf_Bundle_V1_Map()
            map.name = s.name
            map.kind =
                switch s.kind {
                case .hash: .hash
                case .array: .array
                case .lpmTrie: .lpmTrie
                case .percpuArray: .percpuArray
                case .progArray: .progArray
                case .skStorage: .skStorage
                case .lruHash: .lruHash
                }
            map.keySize = UInt32(s.keySize)
            map.valueSize = UInt32(s.valueSize)
            map.maxEntries = UInt32(s.maxEntries)
            if let img = s.image, img.entries > 0 {
                map.image = "maps/\(s.name).bin"
                map.entries = UInt32(img.entries)
            }
            map.serves = s.serves
            m.maps.append(map)
        }
        for t in emitted.tailCalls {
            var tc = Xds2bpf_Bundle_V1_TailCall()
            tc.progArray = t.progArray
            tc.slot = t.slot
            tc.program = t.program
            m.tailCalls.append(tc)
        }
        // Built in local arrays and assigned once: the manifest keeps its fields in
        // copy-on-write storage, so appending to `m.listeners` in a loop copies the
        // whole array each time (quadratic at 10k services).
        var listeners: [Xds2bpf_Bundle_V1_Listener] = []
        listeners.reserveCapacity(plan.listeners.count)
        for (i, l) in plan.listeners.enumerated() {
            var li = Xds2bpf_Bundle_V1_Listener()
            li.index = UInt32(i)
            li.name = l.name
            li.address = l.address
            li.kind = l.kind
            listeners.append(li)
        }
        m.listeners = listeners
        var clusters: [Xds2bpf_Bundle_V1_Cluster] = []
        clusters.reserveCapacity(plan.clusters.count)
        var dnsClusters: [Xds2bpf_Bundle_V1_DnsCluster] = []
        for (i, c) in plan.clusters.enumerated() {
            var ci = Xds2bpf_Bundle_V1_Cluster()
            ci.index = UInt32(i)
            ci.name = c.name
            ci.lbPolicy = c.passthrough ? "original_dst" : c.lb.rawValue
            ci.endpoints = UInt32(c.endpointCount)
            clusters.append(ci)
            if let dns = c.dns {
                var d = Xds2bpf_Bundle_V1_DnsCluster()
                d.cluster = UInt32(i)
                d.name = c.name
                d.logical = dns.logical
                d.lookupFamily = dns.lookupFamily.rawValue
                d.refreshRateMs = dns.refreshRateMs
                d.respectDnsTtl = dns.respectDNSTTL
                d.maxAddresses = dns.maxAddresses
                d.hosts = dns.hosts.map { h in
                    var host = Xds2bpf_Bundle_V1_DnsHost()
                    host.host = h.host
                    host.port = UInt32(h.port)
                    host.weight = h.weight
                    host.priority = h.priority
                    return host
                }
                dnsClusters.append(d)
            }
        }
        m.clusters = clusters
        m.dnsClusters = dnsClusters
        // Version 2 only for bundles that need a loader that resolves DNS clusters:
        // an older loader refuses them instead of loading clusters it would never fill.
        if !m.dnsClusters.isEmpty { m.formatVersion = 2 }
        return m
    }
}
