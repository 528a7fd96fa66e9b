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
    private let persistQueue = DispatchQueue(label: "xds2bpf.watch.persist")
    /// Held while the update session starts: one session at a time.
    private let opening = Mutex<Void>(())

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
        /// The loader's update session (holds the bundle's lock while open).
        var stream: UpdateStream?
        /// Accepted changes so far: orders the saves that follow them.
        var applied = 0
        /// An in-place update has been written since the last load or replace: the
        /// loader's record of updates exists, and can name the snapshot now live.
        var updatedInPlace = false
        /// The live bundle has DNS clusters: their names are looked up again on
        /// their refresh rate (refreshDNS).
        var hasDNS = false
        /// A load or replace is under way: the update session must not start.
        var replacing = false
        /// A return of freed heap to the system is scheduled (trimSoon).
        var trimPending = false
        /// Configurations being judged now (apply): no idle trim meanwhile.
        var judging = 0
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
        // A write to the update session's pipe after it ended is an error, not a signal.
        signal(SIGPIPE, SIG_IGN)
        // A long-lived process with short bursts on many threads (decode, compile): two
        // malloc arenas instead of glibc's eight per core keep the heap from fragmenting
        // into one copy per thread.
        // Blocks of 16 MiB and more (the snapshot encoded for each save: 25 MB at 10k
        // services) are mapped and unmapped, not kept in the heap: glibc's default
        // threshold grows to 32 MiB, and with updates in place (not followed by a
        // trim) the heap kept ~200 MiB of such freed blocks (agent RSS 335 MiB; 223
        // with this). Smaller ones, such as a push's 4-8 MB receive buffer, stay in
        // the heap for the next push (mapped afresh, each one faults in its pages).
        #if os(Linux)
            _ = glibcMallopt(-8 /* M_ARENA_MAX */, 2)
            _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 16 << 20)
        #endif
        let loaded = (try? runLoader(["status", "--name", config.name]))?.status == 0
        let generation =
            ((try? FileManager.default.contentsOfDirectory(atPath: bundlesDir)) ?? [])
            .compactMap { Int($0) }.max() ?? 0
        state.withLock {
            $0.loaded = loaded
            $0.generation = generation
        }
        log("state \(config.stateDir); \(config.name) is \(loaded ? "loaded: updates replace it" : "not loaded: the first configuration loads it")")
    }

    /// Judges one complete configuration: compile, make it live, save it. An
    /// error here is a NACK with the message; the live configuration stays.
    ///
    /// An endpoint-only change takes the fast path: the changed clusters' rows
    /// straight from their assignments, written by the loader's update session
    /// (a co-process that keeps the maps open), ACKed once switched. Saving the
    /// configuration (encode, digest, files) happens after the ACK, in order.
    public func apply(_ set: XDSResourceSet) async -> ADSVerdict {
        let started = Date()
        var laps = Laps()
        state.withLock { $0.judging += 1 }
        defer { state.withLock { $0.judging -= 1 } }
        let (loadedNow, fast, liveSet) = state.withLock { ($0.loaded, $0.fast, $0.liveSet) }
        if loadedNow, let fast, let liveSet, let changed = EndpointFastPath.changes(from: liveSet, to: set) {
            laps.lap("diff")
            if let delta = fast.delta(changed, snapshotSha256: "", laps: &laps) {
                if let verdict = applyInPlace(delta, set, digest: nil, bundle: nil, started: started, laps: laps) {
                    return verdict
                }
            }
        }
        var timings = PhaseTimings()
        let bytes: [UInt8]
        do { bytes = try timings.measure("encode") { try set.discoveryStream() } } catch {
            return .reject("cannot encode the configuration: \(error)")
        }
        let snapshot = timings.measure("parse") { SnapshotParser().parse(bytes, sourceName: "ads") }
        let fe = Pipeline.frontEnd(snapshot: snapshot, options: config.frontEnd, timings: timings)
        if fe.rejected {
            return .reject(Self.render(fe.diagnostics.filter { $0.severity == .error }))
        }
        if state.withLock({ $0.lastDigest }) == fe.snapshotDigest {
            state.withLock { $0.hasDNS = fe.ir.clusters.contains { $0.dns != nil } }
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
        // Accepted, but part of it is refused (or bypassed) because the kernel cannot run it: a
        // control-plane change that adds an authentication policy must not go unnoticed here.
        if let summary = Self.failClosedSummary(fe.diagnostics) { log(summary) }
        let compiled = Date()
        let (loaded, live) = state.withLock { ($0.loaded, $0.live) }
        // Endpoint-only change the fast path did not take: the rows that differ
        // between the live bundle and the new one, in place. Anything else, or a
        // delta that does not fit, is a full replace.
        if loaded, let live {
            switch EndpointDelta.make(base: live, new: result.bundle) {
            case .success(let delta):
                if let verdict = applyInPlace(
                    delta, set, digest: fe.snapshotDigest, bundle: result.bundle, started: started,
                    laps: Laps(), bytes: bytes)
                {
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
        // The update session holds the bundle's lock and its maps: closed first
        // (after the saves queued before, one of which may start it).
        flush()
        // No session may start (refreshDNS) until the loader has the bundle.
        opening.withLock { _ in state.withLock { $0.replacing = true } }
        defer { state.withLock { $0.replacing = false } }
        closeStream()
        let args = loaded ? ["replace", dir, "--name", config.name] : ["load", dir, "--cgroup", config.cgroup, "--name", config.name]
        let run: (status: Int32, output: String)
        do { run = try runLoader(args) } catch { return .reject("xds2bpf-loader: \(error)") }
        guard run.status == 0 else {
            try? FileManager.default.removeItem(atPath: dir)
            return .reject("the kernel did not take the configuration (xds2bpf-loader \(args[0]) exit \(run.status)): \(run.output.suffix(2000))")
        }
        let applied = state.withLock { s -> Int in
            s.loaded = true
            s.lastDigest = fe.snapshotDigest
            s.live = result.bundle
            s.liveSet = set
            s.fast = EndpointFastPath(frontEnd: fe, bundle: result.bundle, options: config.frontEnd)
            s.applied += 1
            s.updatedInPlace = false
            s.hasDNS = fe.ir.clusters.contains { $0.dns != nil }
            return s.applied
        }
        let ms = { (d: Date) in Int((d.timeIntervalSince(started) * 1000).rounded()) }
        log(
            "live: \(loaded ? "replaced" : "loaded") \(config.name) with \(fe.ir.listeners.count) listeners, \(fe.ir.clusters.count) clusters "
                + "(compile \(ms(compiled)) ms\(result.objectFromCache ? ", object from cache" : ""), live after \(ms(Date())) ms; "
                + result.timings.phases.map { "\($0.0) \(Int(($0.1 * 1000).rounded())) ms" }.joined(separator: ", ") + ")"
        )
        persist(set, applied: applied, bytes: bytes, digest: fe.snapshotDigest, bundle: dir, openStream: true, trim: true)
        pruneBundles(keep: generation)
        // The decoded mesh and the compile's results are millions of objects at 10k
        // services: released on the save queue, after the ACK, not before it.
        let done = Retired(fe, snapshot, result)
        persistQueue.async { done.release() }
        return .accept
    }

    /// Applies an endpoint delta through the loader's update session. Returns
    /// the verdict once the change is live (accept), nil when a full replace must
    /// follow (the delta does not fit the maps' headroom, or the update failed:
    /// the loader leaves the maps as they were). With `digest` and `bytes` nil
    /// (the fast path), the configuration is encoded, digested and saved after
    /// the ACK.
    private func applyInPlace(
        _ delta: EndpointDelta.Message, _ set: XDSResourceSet, digest: String?, bundle: BundleFiles?,
        started: Date, laps: Laps, bytes: [UInt8]? = nil
    ) -> ADSVerdict? {
        var laps = laps
        let ms = { (d: Date) in Int((d.timeIntervalSince(started) * 1000).rounded()) }
        let prepared = Date()  // rows from the assignments, or the compile: done
        var live: UpdateStream.Live?
        if !delta.clusters.isEmpty {
            let payload: [UInt8]
            do { payload = try delta.serializedBytes() } catch {
                log("cannot encode the delta (\(error)): full replace")
                return nil
            }
            // One retry with a fresh session when the co-process is gone.
            for attempt in 0..<2 {
                guard let stream = openStream() else { return nil }
                do {
                    live = try stream.apply(payload)
                    break
                } catch {
                    closeStream()
                    if case .broken = error, attempt == 0 { continue }
                    log("in-place update \(error): full replace")
                    return nil
                }
            }
            laps.lap("kernel")
        }
        // The kernel's rows now follow `set`: a bundle compiled before no longer
        // describes them (nil: the next full path replaces rather than diffing).
        let applied = state.withLock { s -> Int in
            s.lastDigest = digest
            s.live = bundle
            s.liveSet = set
            s.applied += 1
            if live != nil { s.updatedInPlace = true }
            return s.applied
        }
        if let live {
            let endpoints = delta.clusters.reduce(0) { $0 + $1.levels.reduce(0) { $0 + $1.endpoints.count / ABILayout.size("x2b_endpoint") } }
            log(
                "live: updated \(delta.clusters.count) cluster\(delta.clusters.count == 1 ? "" : "s") in place (\(endpoints) endpoints; "
                    + "\(bundle == nil ? "rows from the changed assignments" : "compile") \(ms(prepared)) ms, "
                    + "live after \(ms(Date())) ms; \(laps.summary), loader \(String(format: "%.1f", Double(live.micros) / 1000)) ms)")
        } else {
            log("routing unchanged (\(ms(Date())) ms): nothing to write")
        }
        persist(set, applied: applied, bytes: bytes, digest: digest, bundle: nil, openStream: false, trim: bundle != nil)
        return .accept
    }

    // MARK: The loader's update session

    /// The update session, started when there is none (nil: it cannot start;
    /// the caller replaces instead).
    private func openStream() -> UpdateStream? {
        opening.withLock { _ in
            if let s = state.withLock({ $0.stream }) { return s }
            if state.withLock({ $0.replacing }) { return nil }
            do {
                let s = try UpdateStream(loader: config.loader, name: config.name)
                state.withLock { $0.stream = s }
                return s
            } catch {
                log("cannot start the loader's update session (\(error)): full replace")
                return nil
            }
        }
    }

    /// Looks up the live bundle's DNS clusters again where they are due (the
    /// loader keeps each cluster's refresh rate or TTL) and writes changed
    /// addresses in place, through the update session (which holds the
    /// bundle's lock, so `xds2bpf-loader refresh` cannot run beside the agent).
    /// Called every second by `watch`; nothing to do without DNS clusters.
    public func refreshDNS() {
        guard state.withLock({ $0.loaded && $0.hasDNS && !$0.replacing }), let stream = openStream() else { return }
        do {
            let n = try stream.refreshDNS()
            if n > 0 { log("dns: looked up \(n) cluster\(n == 1 ? "" : "s") again") }
        } catch {
            closeStream()
            log("dns refresh: \(error)")
        }
    }

    /// Waits until every save queued so far is done (before a replace, and before the agent exits).
    public func flush() {
        persistQueue.sync {}
    }

    private func closeStream() {
        let s = state.withLock { s -> UpdateStream? in
            defer { s.stream = nil }
            return s.stream
        }
        s?.close()
    }

    // MARK: Saving

    /// Saves what is live for a restart, in order, off the path to the ACK:
    /// encodes and digests the configuration when the caller has not (the fast
    /// path), names the snapshot for `xds2bpf-loader status`, writes the state
    /// files. A save overtaken by a newer change is skipped (the newer one saves).
    /// `trim`: a compile ran for this change (see trimSoon).
    private func persist(
        _ set: XDSResourceSet, applied: Int, bytes: [UInt8]?, digest: String?, bundle: String?, openStream: Bool, trim: Bool
    ) {
        persistQueue.async { [self] in
            guard state.withLock({ $0.applied == applied }) else { return }
            guard let bytes = bytes ?? (try? set.discoveryStream()) else { return }
            let digest = digest ?? Self.snapshotDigest(bytes)
            let stream = state.withLock { s -> UpdateStream? in
                guard s.applied == applied else { return nil }
                s.lastDigest = digest
                // Routing unchanged right after a load or replace: no update to name
                // (`status` keeps the loaded bundle's snapshot; the agent's state has this one).
                return s.updatedInPlace ? s.stream : nil
            }
            if bundle == nil { try? stream?.nameSnapshot(digest) }
            saveState(set, bytes: bytes, bundle: bundle, digest: digest)
            if openStream, state.withLock({ $0.applied == applied }) { _ = self.openStream() }
            // A full compile leaves hundreds of MiB behind: returned soon. After an
            // update in place the freed heap is what the next push of a burst takes
            // again (returned at once, each push would fault it back in: the page
            // faults and the trim's madvise were a quarter of the agent's CPU around a
            // push at 10k services), so it is returned only once the burst is over.
            if trim { trimSoon() } else { trimWhenIdle(applied: applied) }
        }
    }

    /// A compile, the encoding for the save and the responses around them leave
    /// hundreds of MiB of freed heap behind (at 10k services: 600 MiB held by the
    /// allocator, 73 MiB in use). Handed back to the system a second after a
    /// save, at most once a second: trimming at once would leave out what the
    /// release of the compile's results and the next responses free.
    private func trimSoon() {
        guard
            state.withLock({ s -> Bool in
                defer { s.trimPending = true }
                return !s.trimPending
            })
        else { return }
        persistQueue.asyncAfter(deadline: .now() + 1) { [self] in
            state.withLock { $0.trimPending = false }
            #if os(Linux)
                _ = glibcMallocTrim(0)
            #endif
        }
    }

    /// No change for this long ends a burst of updates in place.
    static let idleTrimDelay: DispatchTimeInterval = .seconds(2)
    /// Resident memory above which an idle agent returns its free heap.
    static let idleTrimAbove = 224 << 20

    /// Returns the free heap updates in place left behind (at 10k services
    /// 60-170 MiB: receive buffers, decoded assignments, the encoding of each
    /// save) once `applied` is still the last change `idleTrimDelay` later and the
    /// agent holds more than `idleTrimAbove`. Below that the heap is kept: the
    /// next push would fault every page of it back in (measured at 10k services:
    /// a state-of-the-world push after a trim took 10-20 ms longer).
    private func trimWhenIdle(applied: Int) {
        persistQueue.asyncAfter(deadline: .now() + Self.idleTrimDelay) { [self] in
            guard state.withLock({ $0.applied == applied && $0.judging == 0 && !$0.trimPending }) else { return }
            #if os(Linux)
                if Self.residentBytes() > Self.idleTrimAbove { _ = glibcMallocTrim(0) }
            #endif
        }
    }

    /// This process's resident memory (/proc/self/statm), 0 when unknown.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// What the front end calls the snapshot digest of a single input of these bytes.
    static func snapshotDigest(_ bytes: [UInt8]) -> String {
        sha256Hex(Array(sha256Hex(bytes).utf8))
    }

    static func render(_ diags: [Diagnostic]) -> String {
        diags.map(\.rendered).joined(separator: "\n")
    }

    /// One log entry for what an accepted configuration refuses because the kernel cannot run
    /// it (XDS210) or, under `--unsupported=warn`, bypasses (XDS209): the first three, then a
    /// count. Nil when there is none.
    static func failClosedSummary(_ diags: [Diagnostic]) -> String? {
        let refused = diags.filter { $0.id == DiagnosticID.refusedFailClosed.code }
        let bypassed = diags.filter { $0.id == DiagnosticID.bypassedFilter.code }
        var parts: [String] = []
        for (what, list) in [("refuses (fail closed)", refused), ("bypasses (--unsupported=warn)", bypassed)] where !list.isEmpty {
            let shown = list.prefix(3).map { "  \($0.rendered)" }.joined(separator: "\n")
            let more = list.count > 3 ? "\n  ... and \(list.count - 3) more" : ""
            parts.append("the configuration \(what) what the kernel cannot run, \(list.count) place(s):\n\(shown)\(more)")
        }
        return parts.isEmpty ? nil : parts.joined(separator: "\n")
    }

    private func saveState(_ set: XDSResourceSet, bytes: [UInt8], bundle: String?, digest: String) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        var live: [String: String] = ["snapshot_sha256": digest, "updated": ISO8601DateFormatter().string(from: Date())]
        if let bundle { live["bundle"] = bundle }
        for t in XDSResourceType.allCases where set.received.contains(t) {
            live["version_" + t.shortName.lowercased()] = set.versions[t] ?? ""
        }
        try? writeAtomically(bytes, to: snapshotPath)
        if let v = try? enc.encode(set.resourceVersions) { try? writeAtomically(Array(v), to: versionsPath) }
        if let l = try? enc.encode(live) { try? writeAtomically(Array(l), to: livePath) }
        // The control-plane versions beside the loader's state, for `xds2bpf-loader status`.
        var versions: [String: String] = [:]
        for t in XDSResourceType.allCases where set.received.contains(t) { versions[t.shortName] = set.versions[t] ?? "" }
        let loaderState = ProcessInfo.processInfo.environment["XDS2BPF_STATE_DIR"] ?? "/run/xds2bpf"
        if let v = try? enc.encode(versions) { try? writeAtomically(Array(v), to: "\(loaderState)/\(config.name)/versions.json") }
    }

    private func pruneBundles(keep generation: Int) {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: bundlesDir)) ?? [] {
            if let g = Int(entry), g < generation - 1 { try? FileManager.default.removeItem(atPath: bundlesDir + "/" + entry) }
        }
    }

    /// Runs xds2bpf-loader, stdout and stderr together (read to the end before waiting).
    func runLoader(_ args: [String]) throws -> (status: Int32, output: String) {
        let r = try ProcessRunner(config.loader, args, output: .merged).run()
        return (r.status, r.stdoutText)
    }
}

/// Values whose release is left to another thread (a class: the last reference
/// goes with the closure that holds it).
private final class Retired: @unchecked Sendable {
    private var values: [Any]
    init(_ values: Any...) { self.values = values }
    func release() { values = [] }
}

/// Named intervals of one update, for the agent's log.
struct Laps {
    private var mark = DispatchTime.now().uptimeNanoseconds
    private var laps: [(String, UInt64)] = []

    mutating func lap(_ name: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        laps.append((name, now - mark))
        mark = now
    }

    var summary: String {
        laps.map { "\($0.0) \(String(format: "%.1f", Double($0.1) / 1e6)) ms" }.joined(separator: ", ")
    }
}

#if os(Linux)
    /// glibc's malloc_trim(3) (malloc.h is not in Swift's Glibc module): returns the
    /// free heap a full compile leaves behind to the system.
    @_silgen_name("malloc_trim")
    private func glibcMallocTrim(_ pad: Int) -> Int32

    /// glibc's mallopt(3).
    @_silgen_name("mallopt")
    private func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32
#endif
