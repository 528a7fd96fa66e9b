import ArgumentParser
import Codegen
import Foundation

extension XDS2BPF {
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show which connections and requests route differently between two snapshots (a semantic diff, not of text).",
            discussion: """
                Each side is a snapshot as compile takes it: `xds2bpf diff OLD NEW`, or, when a side has \
                several files, `xds2bpf diff OLD... --new NEW...`. Renamed resources that route the same way \
                are no change. Exit codes: 0 (changed or not), 1 with --fail-on-change when routing changed \
                or when a snapshot is rejected, 2 usage error, 3 internal error. docs/diff.md describes the \
                method and the --json schema.
                """)

        @OptionGroup var input: FrontEndOptionGroup

        @Option(
            name: .customLong("new"), parsing: .upToNextOption,
            help: ArgumentHelp("The new snapshot's files; then every positional file is the old snapshot's.", valueName: "FILE"))
        var newFiles: [String] = []

        @Flag(help: "Print the diff as JSON (docs/diff.md).")
        var json = false

        @Flag(help: "Exit 1 when routing changed (for CI gating).")
        var failOnChange = false

        @Option(help: "Write the wall time of the front ends and of the comparison as JSON to this file (benchmarks).")
        var timingsJson: String?

        func validate() throws {
            if newFiles.isEmpty && input.snapshot.count != 2 {
                throw ValidationError("diff takes OLD NEW (or OLD... --new NEW...), got \(input.snapshot.count) file(s)")
            }
        }

        func run() throws {
            let sides = newFiles.isEmpty ? [[input.snapshot[0]], [input.snapshot[1]]] : [input.snapshot, newFiles]
            let results = FrontEnds(count: 2)
            let options = input.options
            var timings = PhaseTimings()
            // The two front ends are independent: run them side by side.
            timings.measure("front_ends") {
                DispatchQueue.concurrentPerform(iterations: 2) { i in
                    results.set(i, Pipeline.frontEnd(files: sides[i], options: options))
                }
            }
            var rejected = false
            for (i, label) in ["old", "new"].enumerated() {
                let fe = results.get(i)
                if !fe.diagnostics.isEmpty && input.diagnostics == .text { printErr("\(label) snapshot (\(sides[i].joined(separator: " "))):") }
                input.report(fe.diagnostics)
                if fe.rejected {
                    printErr("error: the \(label) snapshot is rejected; no diff")
                    rejected = true
                }
            }
            if rejected { throw Exit.rejected }
            let diff = timings.measure("diff") { RoutingDiff.compare(old: results.get(0).ir, new: results.get(1).ir) }
            if let path = timingsJson {
                try Data(timings.json.utf8).write(to: URL(fileURLWithPath: path))
            }
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try enc.encode(diff), as: UTF8.self))
            } else {
                print(diff.text, terminator: "")
            }
            // Two lowered 10k-service snapshots take about a second to free; the process is about to exit.
            FrontEnds.keptUntilExit = results
            if failOnChange && diff.changed { throw Exit.rejected }
        }
    }
}

/// The two front ends' results, written from concurrentPerform's threads.
final class FrontEnds: @unchecked Sendable {
    nonisolated(unsafe) static var keptUntilExit: FrontEnds?
    private var results: [FrontEndResult?]
    private let lock = NSLock()

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ r: FrontEndResult) {
        lock.lock()
        results[i] = r
        lock.unlock()
    }

    func get(_ i: Int) -> FrontEndResult {
        lock.lock()
        defer { lock.unlock() }
        return results[i]!
    }
}
