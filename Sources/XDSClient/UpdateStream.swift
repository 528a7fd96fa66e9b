import Foundation
import Synchronization

/// `xds2bpf-loader update-stream --name NAME` as the agent's co-process: one
/// update session on the loaded bundle (its lock, manifest, maps and every
/// cluster's live row, read once), fed one EndpointDelta per endpoint-only
/// change. An update then costs what it writes into the maps; the loader stays
/// the only code that touches them, and the agent stays free of libbpf.
///
/// Requests (stdin): `delta ID LEN\n` + LEN bytes, `snapshot ID SHA256\n`,
/// `refresh ID\n` (DNS clusters that are due looked up again).
/// Events (stdout, a JSON object a line, each with its request's id): `ready`,
/// `live` (every switch of the delta done: the change answers connects),
/// `done` (grace period over, state recorded), `error` with the exit status of
/// `update` (messages go to the agent's stderr, which the co-process shares).
final class UpdateStream: Sendable {
    enum Failure: Error, CustomStringConvertible {
        /// The loader refused the request (status as `xds2bpf-loader update`'s exit code).
        case refused(Int32)
        /// The co-process is gone or spoke out of turn.
        case broken(String)

        var description: String {
            switch self {
            case .refused(let s): "refused (exit \(s)\(s == 4 ? ": does not fit in place" : ""))"
            case .broken(let why): why
            }
        }
    }

    /// What `live` reports.
    struct Live: Sendable {
        var micros: Int
    }

    private struct IO {
        var process: Process
        var input: FileHandle
        var outputFD: Int32
        var buffered: [UInt8] = []
        var nextID = 1
    }

    private let io: Mutex<IO>
    /// The read end's handle, kept so that its descriptor stays open while `io` reads it.
    private let readEnd: FileHandle
    /// The read end's handle, kept so its descriptor stays open while `io` reads it.
    /// Starts the co-process and waits until its session is open.
    init(loader: String, name: String) throws(Failure) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: loader)
        p.arguments = ["update-stream", "--name", name]
        let stdin = Pipe()
        let stdout = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        do { try p.run() } catch { throw .broken("cannot start \(loader): \(error)") }
        var state = IO(process: p, input: stdin.fileHandleForWriting, outputFD: stdout.fileHandleForReading.fileDescriptor)
        let first: [String: Any]
        do { first = try Self.nextEvent(&state) } catch {
            p.waitUntilExit()
            throw error
        }
        guard first["event"] as? String == "ready" else {
            try? state.input.close()
            p.waitUntilExit()
            throw .refused(Int32((first["status"] as? Int) ?? Int(p.terminationStatus)))
        }
        self.readEnd = stdout.fileHandleForReading
        io = Mutex(state)
    }

    /// Writes one delta; returns once it is live in the kernel (the grace period
    /// that follows does not delay the caller).
    func apply(_ delta: [UInt8]) throws(Failure) -> Live {
        try io.withLock { (s: inout IO) throws(Failure) -> Live in
            let id = s.nextID
            s.nextID += 1
            try Self.write(&s, Array("delta \(id) \(delta.count)\n".utf8) + delta)
            while true {
                let e = try Self.nextEvent(&s)
                guard e["id"] as? Int == id else { continue }  // the tail of an earlier request
                switch e["event"] as? String {
                case "live": return Live(micros: e["micros"] as? Int ?? 0)
                case "error": throw .refused(Int32(e["status"] as? Int ?? 3))
                default: throw .broken("xds2bpf-loader update-stream: unexpected event \(e)")
                }
            }
        }
    }

    /// Looks up the bundle's DNS clusters that are due (the loader keeps each
    /// one's refresh rate or TTL) and writes the rows of those whose addresses
    /// changed. Returns how many clusters were looked up.
    func refreshDNS() throws(Failure) -> Int {
        try io.withLock { (s: inout IO) throws(Failure) -> Int in
            let id = s.nextID
            s.nextID += 1
            try Self.write(&s, Array("refresh \(id)\n".utf8))
            while true {
                let e = try Self.nextEvent(&s)
                guard e["id"] as? Int == id else { continue }
                switch e["event"] as? String {
                case "done": return e["resolved"] as? Int ?? 0
                case "error": throw .refused(Int32(e["status"] as? Int ?? 3))
                default: continue  // `live` of the rows it wrote
                }
            }
        }
    }

    /// Names the snapshot the last delta made live (for `xds2bpf-loader status`).
    func nameSnapshot(_ sha256: String) throws(Failure) {
        try io.withLock { (s: inout IO) throws(Failure) in
            let id = s.nextID
            s.nextID += 1
            try Self.write(&s, Array("snapshot \(id) \(sha256)\n".utf8))
            while true {
                let e = try Self.nextEvent(&s)
                guard e["id"] as? Int == id else { continue }
                if e["event"] as? String == "error" { throw .refused(Int32(e["status"] as? Int ?? 3)) }
                return
            }
        }
    }

    /// Ends the session (stdin closed: the co-process finishes what it does and exits).
    func close() {
        io.withLock { s in
            try? s.input.close()
            s.process.waitUntilExit()
        }
    }

    private static func write(_ s: inout IO, _ bytes: [UInt8]) throws(Failure) {
        do { try s.input.write(contentsOf: Data(bytes)) } catch {
            throw .broken("xds2bpf-loader update-stream is gone (\(error))")
        }
    }

    /// The next event line, read from the pipe as it comes.
    private static func nextEvent(_ s: inout IO) throws(Failure) -> [String: Any] {
        while true {
            if let nl = s.buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(s.buffered[..<nl])
                s.buffered.removeSubrange(...nl)
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    throw .broken("xds2bpf-loader update-stream: not an event: \(String(decoding: line.prefix(200), as: UTF8.self))")
                }
                return obj
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(s.outputFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                s.process.waitUntilExit()
                throw .broken("xds2bpf-loader update-stream ended (exit \(s.process.terminationStatus))")
            }
            s.buffered += chunk[..<n]
        }
    }
}
