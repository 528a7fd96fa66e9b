import Codegen
import Foundation
import Synchronization

/// The node agent behind `xds2bpf watch`: judges each complete configuration a
/// control plane sends (the same front end and compiler as `compile`), makes
/// the accepted ones live in the kernel through xds2bpf-loader, and keeps what
/// it needs to resume in a state directory:
///
///     STATE/snapshot.pb            the live configuration (DiscoveryResponse stream)
///     STATE/resource-versions.json per-resource versions (delta resumes)
///     STATE/live.json              versions per type, bundle, time of the last change
///     STATE/bundles/NNNNNN/        the live bundle (and the one before it)
///     STATE/cache/                 the object cache (an endpoint-only change recompiles nothing)
public final class NodeAgent: Sendable {
    public struct Config: Sendable {
        public var name: String
        public var cgroup: String
        public var stateDir: String
        public var loader: String
        public var frontEnd: FrontEndOptions
        public init(name: String, cgroup: String, stateDir: String, loader: String, frontEnd: FrontEndOptions) {
            self.name = name
            self.cgroup = cgroup
            self.stateDir = stateDir
            self.loader = loader
            self.frontEnd = frontEnd
        }
    }

    public let config: Config
    private let state = Mutex<State>(State())
    private let log: @Sendable (String) -> Void

    struct State {
        var generation = 0
        var loaded = false
        var lastDigest: String?
        /// The bundle whose routing the kernel holds now (loaded, or reached by
        /// in-place updates): the base of the next endpoint delta.
        var live: BundleFiles?
        /// The configuration the kernel holds, and how to turn an EDS-only change of
        /// it into rows without compiling the whole mesh.
        var liveSet: XDSResourceSet?
        var fast: EndpointFastPath?
    }

    public init(config: Config, log: @escaping @Sendable (String) -> Void) {
        self.config = config
        self.log = log
    }

    var snapshotPath: String { config.stateDir + "/snapshot.pb" }
    var versionsPath: String { config.stateDir + "/resource-versions.json" }
    var livePath: String { config.stateDir + "/live.json" }
    var bundlesDir: String { config.stateDir + "/bundles" }

    /// The configuration a previous run made live, to resume from (nil: none).
    public func savedConfiguration() -> XDSResourceSet? {
        guard let data = FileManager.default.contents(atPath: snapshotPath) else { return nil }
        var versions: [String: [String: String]] = [:]
        if let v = FileManager.default.contents(atPath: versionsPath),
            let decoded = try? JSONDecoder().decode([String: [String: String]].self, from: v)
        {
            versions = decoded
        }
        return try? XDSResourceSet(discoveryStream: Array(data), resourceVersions: versions)
    }

    /// Prepares the state directory and finds out whether NAME is loaded already.
    public func start() throws {
        try FileManager.default.createDirectory(atPath: bundlesDir, withIntermediateDirectories: true)
        let loaded = (try? runLoader(["status", "--name", config.name]))?.status == 0
        let generation = ((try? FileManager.default.contentsOfDirectory(atPath: bundlesDir)) ?? [])
            .compactMap { Int($0) }.max() ?? 0
        state.withLock {
            $0.loaded = loaded
            $0.generation = generation
        }
        log("state \(config.stateDir); \(config.name) is \(loaded ? "loaded: updates replace it" : "not loaded: the first configuration loads it")")
    }

    /// Judges one complete configuration: compile, make it live, save it. An
    /// error here is a NACK with the message; the live configuration stays.
    public func apply(_ set: XDSResourceSet) async -> ADSVerdict {
        let started = Date()
        let bytes: [UInt8]
        do { bytes = try set.discoveryStream() } catch { return .reject("cannot encode the configuration: \(error)") }
        // EDS only: the changed clusters' rows straight from their assignments.
        let (loadedNow, fast, liveSet) = state.withLock { ($0.loaded, $0.fast, $0.liveSet) }
        if loadedNow, let fast, let liveSet, let changed = EndpointFastPath.changedAssignments(from: liveSet, to: set) {
            let digest = Self.snapshotDigest(bytes)
            if let delta = fast.delta(changed: changed, in: set, snapshotSha256: digest),
                let verdict = applyInPlace(delta, set, bytes: bytes, digest: digest, bundle: nil, started: started, compiled: Date())
            {
                return verdict
            }
        }
        let snapshot = SnapshotParser().parse(bytes, sourceName: "ads")
        let fe = Pipeline.frontEnd(snapshot: snapshot, options: config.frontEnd)
        if fe.rejected {
            return .reject(Self.render(fe.diagnostics.filter { $0.severity == .error }))
        }
        if state.withLock({ $0.lastDigest }) == fe.snapshotDigest {
            log("configuration unchanged (same snapshot digest): nothing to load")
            return .accept
        }
        let result: CompileResult
        do {
            result = try Pipeline.compile(fe, options: CompileOptions(cacheDirectory: config.stateDir + "/cache"))
        } catch let e as ToolchainError {
            return .reject(Self.render(e.diagnostics))
        } catch {
            return .reject("compile: \(error)")
        }
        if result.diagnostics.hasErrors {
            return .reject(Self.render(result.diagnostics.filter { $0.severity == .error }))
        }
        let compiled = Date()
        let (loaded, live) = state.withLock { ($0.loaded, $0.live) }
        // Endpoint-only change: rewrite the changed clusters' rows in the loaded
        // maps (no program swap). Anything else, or a delta that does not fit,
        // is a full replace.
        if loaded, let live {
            switch EndpointDelta.make(base: live, new: result.bundle) {
            case .success(let delta):
                if let verdict = applyInPlace(delta, set, bytes: bytes, digest: fe.snapshotDigest, bundle: result.bundle,
                                              started: started, compiled: compiled) {
                    state.withLock { $0.fast = EndpointFastPath(frontEnd: fe, bundle: result.bundle, options: config.frontEnd) }
                    return verdict
                }
            case .failure(let why):
                log("full replace: \(why)")
            }
        }
        let generation = state.withLock { s -> Int in
            s.generation += 1
            return s.generation
        }
        let dir = bundlesDir + "/" + String(format: "%06d", generation)
        do {
            try? FileManager.default.removeItem(atPath: dir)
            try result.bundle.writeDirectory(to: dir)
        } catch {
            return .reject("cannot write the bundle: \(error)")
        }
        let args = loaded ? ["replace", dir, "--name", config.name] : ["load", dir, "--cgroup", config.cgroup, "--name", config.name]
        let run: (status: Int32, output: String)
        do { run = try runLoader(args) } catch { return .reject("xds2bpf-loader: \(error)") }
        guard run.status == 0 else {
            try? FileManager.default.removeItem(atPath: dir)
            return .reject("the kernel did not take the configuration (xds2bpf-loader \(args[0]) exit \(run.status)): \(run.output.suffix(2000))")
        }
        state.withLock {
            $0.loaded = true
            $0.lastDigest = fe.snapshotDigest
            $0.live = result.bundle
            $0.liveSet = set
            $0.fast = EndpointFastPath(frontEnd: fe, bundle: result.bundle, options: config.frontEnd)
        }
        saveState(set, bytes: bytes, bundle: dir, digest: fe.snapshotDigest)
        pruneBundles(keep: generation)
        let ms = { (d: Date) in Int((d.timeIntervalSince(started) * 1000).rounded()) }
        log("live: \(loaded ? "replaced" : "loaded") \(config.name) with \(fe.ir.listeners.count) listeners, \(fe.ir.clusters.count) clusters "
            + "(compile \(ms(compiled)) ms\(result.objectFromCache ? ", object from cache" : ""), live after \(ms(Date())) ms)")
        return .accept
    }

    /// Applies an endpoint delta with `xds2bpf-loader update`. Returns the
    /// verdict when done (accept: live), nil when a full replace must follow
    /// (the delta does not fit the maps' headroom, or the update failed: the
    /// loader leaves the maps as they were).
    private func applyInPlace(_ delta: EndpointDelta.Message, _ set: XDSResourceSet, bytes: [UInt8], digest: String,
                              bundle: BundleFiles?, started: Date, compiled: Date) -> ADSVerdict? {
        let ms = { (d: Date) in Int((d.timeIntervalSince(started) * 1000).rounded()) }
        if delta.clusters.isEmpty {
            state.withLock {
                $0.lastDigest = digest
                if let bundle { $0.live = bundle }
                $0.liveSet = set
            }
            saveState(set, bytes: bytes, bundle: nil, digest: digest)
            log("routing unchanged (\(ms(Date())) ms): nothing to write")
            return .accept
        }
        let path = config.stateDir + "/delta.pb"
        do { try Self.atomicWrite(try delta.serializedBytes(), path) } catch {
            log("cannot write the delta (\(error)): full replace")
            return nil
        }
        let run: (status: Int32, output: String)
        do { run = try runLoader(["update", "--name", config.name, path]) } catch {
            log("xds2bpf-loader update: \(error): full replace")
            return nil
        }
        guard run.status == 0 else {
            log("in-place update refused (exit \(run.status): \(run.output.split(separator: "\n").last ?? "")): full replace")
            return nil
        }
        state.withLock {
            $0.lastDigest = digest
            if let bundle { $0.live = bundle }
            $0.liveSet = set
        }
        saveState(set, bytes: bytes, bundle: nil, digest: digest)
        let endpoints = delta.clusters.reduce(0) { $0 + $1.levels.reduce(0) { $0 + $1.endpoints.count / ABILayout.size("x2b_endpoint") } }
        log("live: updated \(delta.clusters.count) cluster\(delta.clusters.count == 1 ? "" : "s") in place (\(endpoints) endpoints; "
            + "\(bundle == nil ? "rows from the changed assignments" : "compile") \(ms(compiled)) ms, live after \(ms(Date())) ms)")
        return .accept
    }

    /// What the front end calls the snapshot digest of a single input of these bytes.
    static func snapshotDigest(_ bytes: [UInt8]) -> String {
        sha256Hex(Array(sha256Hex(bytes).utf8))
    }

    static func render(_ diags: [Diagnostic]) -> String {
        diags.map(\.rendered).joined(separator: "\n")
    }

    private func saveState(_ set: XDSResourceSet, bytes: [UInt8], bundle: String?, digest: String) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        var live: [String: String] = ["snapshot_sha256": digest, "updated": ISO8601DateFormatter().string(from: Date())]
        if let bundle { live["bundle"] = bundle }
        for t in XDSResourceType.allCases where set.received.contains(t) {
            live["version_" + t.shortName.lowercased()] = set.versions[t] ?? ""
        }
        try? Self.atomicWrite(bytes, snapshotPath)
        if let v = try? enc.encode(set.resourceVersions) { try? Self.atomicWrite(Array(v), versionsPath) }
        if let l = try? enc.encode(live) { try? Self.atomicWrite(Array(l), livePath) }
        // The control-plane versions beside the loader's state, for `xds2bpf-loader status`.
        var versions: [String: String] = [:]
        for t in XDSResourceType.allCases where set.received.contains(t) { versions[t.shortName] = set.versions[t] ?? "" }
        let loaderState = ProcessInfo.processInfo.environment["XDS2BPF_STATE_DIR"] ?? "/run/xds2bpf"
        if let v = try? enc.encode(versions) { try? Self.atomicWrite(Array(v), "\(loaderState)/\(config.name)/versions.json") }
    }

    private func pruneBundles(keep generation: Int) {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: bundlesDir)) ?? [] {
            if let g = Int(entry), g < generation - 1 { try? FileManager.default.removeItem(atPath: bundlesDir + "/" + entry) }
        }
    }

    static func atomicWrite(_ bytes: [UInt8], _ path: String) throws {
        let tmp = path + ".tmp"
        try Data(bytes).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    /// Runs xds2bpf-loader, stdout and stderr together (read to the end before waiting).
    func runLoader(_ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: config.loader)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
