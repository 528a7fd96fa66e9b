import Foundation
import SwiftProtobuf
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
    /// `--resolve NAME=IP[,IP...]`: the addresses of each host name of a DNS cluster.
    public var hostAddresses: [String: [IRAddress]] = [:]
    /// Whether a configuration with no listeners, routes, clusters or endpoints is one
    /// (an empty bundle: nothing routed) rather than an error (XDS008). A file that holds
    /// nothing is most likely the wrong file; a control plane that sends nothing means it
    /// (the mesh has no services for this node, or no longer has any), and Envoy drops
    /// every listener and cluster on such an update.
    public var allowEmpty = false

    public init(
        format: InputFormat = .auto, unsupported: UnsupportedPolicy = .default, hostAddresses: [String: [IRAddress]] = [:],
        allowEmpty: Bool = false
    ) {
        self.format = format
        self.unsupported = unsupported
        self.hostAddresses = hostAddresses
        self.allowEmpty = allowEmpty
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
        let (ir, lowerDiags) = t.measure("lower") {
            Lowerer.lower(resolved, hostAddresses: options.hostAddresses, refuseGuarded: options.unsupported.refusesGuardedTraffic)
        }
        var diags = snapshot.diagnostics + resolved.diagnostics + lowerDiags
        if snapshot.listeners.isEmpty && snapshot.clusters.isEmpty && snapshot.routeConfigurations.isEmpty
            && snapshot.loadAssignments.isEmpty && !diags.hasErrors && !options.allowEmpty
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
        let cc = try clang ?? Clang.locate()
        let cache = ObjectCache(directory: options.cacheDirectory)
        var objects = CompiledObjects(object: [])
        var fromCache = false
        try t.measure("clang") {
            // The defer-connect build (HTTP routed per request) beside the plain one.
            if emitted.routesHeader != nil {
                objects.httpObject = try cache.object(cc, sources: emitted.sources, defines: ["X2B_WITH_MODULE"], source: emitted.source).object
            }
            let built = try cache.object(cc, sources: emitted.sources, defines: [], source: emitted.source)
            objects.object = built.object
            fromCache = built.fromCache
        }
        try t.measure("bundle") {
            let provenance = ManifestBuilder.Provenance(
                snapshotDigest: fe.snapshotDigest, codeDigest: sha256Hex(Array(emitted.source.utf8)),
                compilerVersion: XDS2BPFVersion.string, clangVersion: cc.version, frontEndDiagnostics: fe.diagnostics)
            do {
                (bundle, manifest) = try BundleFiles.assemble(plan: plan, emitted: emitted, objects: objects, provenance: provenance)
            } catch {
                // A manifest that does not serialise is an internal error, never an empty file.
                throw ToolchainError(diagnostics: [
                    Diagnostic(.internalError, path: "manifest.pb", "the bundle manifest cannot be serialised: \(error)")
                ])
            }
        }
        return CompileResult(
            bundle: bundle, plan: plan, emitted: emitted, manifest: manifest, diagnostics: diags,
            timings: t, objectFromCache: fromCache)
    }
}
