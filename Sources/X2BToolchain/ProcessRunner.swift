import Foundation

/// The one way xds2bpf runs another program (clang, llvm-objcopy, the loader, the
/// test drivers). stdout and stderr are read concurrently, so a child that fills
/// one pipe while the other is being read can never block; stdin comes from a
/// temporary file, so a child that exits without reading it cannot block either.
public struct ProcessRunner: Sendable {
    /// Where the child's stdout and stderr go.
    public enum Output: Sendable {
        /// Both captured, separately.
        case capture
        /// stderr into the same pipe as stdout, in the order written (`2>&1`); `stderr` stays empty.
        case merged
        /// The parent's stdout and stderr (a passthrough command).
        case inherit
    }

    public struct Result: Sendable {
        public var status: Int32
        public var stdout: Data
        public var stderr: Data

        public var succeeded: Bool { status == 0 }
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    public var executable: String
    public var arguments: [String]
    /// The working directory; nil: the parent's.
    public var directory: String?
    /// The whole environment; nil: the parent's.
    public var environment: [String: String]?
    /// stdin; nil: the parent's.
    public var input: Data?
    public var output: Output

    public init(
        _ executable: String, _ arguments: [String], directory: String? = nil,
        environment: [String: String]? = nil, input: Data? = nil, output: Output = .capture
    ) {
        self.executable = executable
        self.arguments = arguments
        self.directory = directory
        self.environment = environment
        self.input = input
        self.output = output
    }

    /// Runs the program to its exit. Throws only when it cannot be started.
    public func run() throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let environment { p.environment = environment }

        var inputFile: URL?
        defer { if let inputFile { try? FileManager.default.removeItem(at: inputFile) } }
        if let input {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("xds2bpf-stdin-\(getpid())-\(UUID().uuidString)")
            try input.write(to: url)
            inputFile = url
            p.standardInput = try FileHandle(forReadingFrom: url)
        }

        let out = Pipe(), err = Pipe()
        switch output {
        case .capture:
            p.standardOutput = out
            p.standardError = err
        case .merged:
            p.standardOutput = out
            p.standardError = out
        case .inherit:
            break
        }
        try p.run()
        var result = Result(status: 0, stdout: Data(), stderr: Data())
        switch output {
        case .capture:
            // stderr on its own thread while stdout is read here.
            let errBox = DataBox()
            let errDone = DispatchSemaphore(value: 0)
            let errHandle = err.fileHandleForReading
            Thread.detachNewThread {
                errBox.data = errHandle.readDataToEndOfFile()
                errDone.signal()
            }
            result.stdout = out.fileHandleForReading.readDataToEndOfFile()
            errDone.wait()
            result.stderr = errBox.data
        case .merged:
            result.stdout = out.fileHandleForReading.readDataToEndOfFile()
        case .inherit:
            break
        }
        p.waitUntilExit()
        result.status = p.terminationStatus
        return result
    }

    /// The bytes handed from the reader thread to `run` (written before the
    /// semaphore is signalled, read after it is waited on).
    private final class DataBox: @unchecked Sendable {
        var data = Data()
    }
}
