// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// libFuzzer harness for the compiler's front end, in process: parse -> resolve
// -> lower -> plan (+ the HTTP planner through it) -> emit (C text only, no clang).
//
// Input: one format byte, then the snapshot bytes. The format byte's low two bits
// pick the reader (0 auto, 1 binary protobuf, 2 JSON, 3 YAML) so that every reader
// is exercised whatever the body looks like. Any trap, sanitizer report or leak
// is a finding: the front end promises never to trap on bad input (it reports
// XDS0xx diagnostics instead).
//
// Built with `-sanitize=fuzzer,address -D FUZZING` by mk/fuzz.mk (`make
// fuzz-frontend`); the entry point then hands control to libFuzzer's driver.
// Built without FUZZING (a plain `swift build`), it is a replay tool: every
// argument is one input file, run once.
//
//   make fuzz-frontend FUZZ_SECONDS=600
//   make fuzz-frontend-replay              seeds and regressions once each
import Codegen
import Foundation

/// Inputs above this are skipped (the parser's own limit is 2 GiB; the fuzzer's -max_len is lower).
let maxInput = 1 << 20

func runOne(_ bytes: UnsafeBufferPointer<UInt8>) {
    guard let first = bytes.first, bytes.count <= maxInput else { return }
    let format: InputFormat
    switch first & 3 {
    case 1: format = .pb
    case 2: format = .json
    case 3: format = .yaml
    default: format = .auto
    }
    let body = Array(bytes.dropFirst())
    // Bit 2 picks the file name hint (a resource kind from the name) over a neutral one.
    let names = ["input", "listeners.yaml", "clusters.json", "routes.yaml", "endpoints.json", "lds.pb", "cds.pb", "rds.json"]
    let name = (first & 4) != 0 ? names[Int(first >> 3) % names.count] : "input"
    let snapshot = SnapshotParser(format: format).parse(body, sourceName: name)
    let options = FrontEndOptions(format: format, unsupported: (first & 0x80) != 0 ? .warn : .default)
    let fe = Pipeline.frontEnd(snapshot: snapshot, options: options)
    // The text forms a user can ask for are part of the front end too.
    _ = fe.diagnostics.map { $0.rendered }
    guard !fe.rejected else { return }
    _ = IRPrinter.render(fe.ir)
    let (plan, planDiags) = Planner.plan(fe.ir)
    guard !planDiags.hasErrors else { return }
    _ = CEmitter.emit(plan)
}

#if FUZZING
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32

    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        guard let data else { return 0 }
        runOne(UnsafeBufferPointer(start: data, count: size))
        return 0
    }
#endif

@main
struct FrontendFuzz {
    static func main() {
        #if FUZZING
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
        #else
            var n = 0
            for path in CommandLine.arguments.dropFirst() {
                guard let data = FileManager.default.contents(atPath: path) else {
                    FileHandle.standardError.write(Data("FrontendFuzz: cannot read \(path)\n".utf8))
                    exit(2)
                }
                [UInt8](data).withUnsafeBufferPointer { runOne($0) }
                n += 1
            }
            print("FrontendFuzz: \(n) inputs ran")
        #endif
    }
}
