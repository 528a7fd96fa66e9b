import Foundation
import X2BDiagnostics
import X2BEmit
import X2BIR
import X2BPlan
import X2BSemantics
import X2BToolchain

/// Runs connections' first bytes through the compiled TLS chooser in the kernel
/// (x2b_tls.h and the generated tables of a bundle's `x2b_routes.h`), built
/// with the test harness (templates/http_testrun.c, program x2b_tls_test) and
/// driven by x2b-testrun with BPF_PROG_TEST_RUN (root needed). The tests
/// compare its choices with `TLSSelection`, the interpreter's.
public enum TLSTestRun {
    /// What the kernel read and chose for one head.
    public struct KernelChoice: Sendable, Hashable {
        /// X2B_TLS_RAW 0, X2B_TLS_HELLO 1, X2B_TLS_PARTIAL 2.
        public var state: Int
        public var serverNameLength: Int
        public var alpnCount: Int
        /// The action id; nil: the connection is refused (Envoy closes it).
        public var action: UInt32?
    }

    /// The bundle plan of `ir`, its routes header compiled into the harness.
    public static func build(_ ir: MeshIR, clang: Clang? = nil) throws -> (HTTPTestRun.Build, BundlePlan) {
        let (plan, _) = Planner.plan(ir)
        let emitted = CEmitter.emit(plan)
        guard let header = emitted.routesHeader, !plan.tlsTables.isEmpty else {
            throw HTTPTestRun.RunError(description: "no listener row is routed on the ClientHello")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("x2b-tls-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("maps"), withIntermediateDirectories: true)
        let build = HTTPTestRun.Build(directory: dir, plan: plan.http, header: header)
        var files: [(String, String)] = [(HTTPEmitter.headerName, header), ("x2b_http_test.bpf.c", Templates.text("http_testrun.c"))]
        for h in ["x2b_prelude.h", "x2b_abi.h", "x2b_abi_asserts.h", "x2b_http.h", "x2b_tls.h"] { files.append((h, Templates.text(h))) }
        for (name, text) in files { try Data(text.utf8).write(to: dir.appendingPathComponent(name)) }
        try HTTPTestRun.compileHarness(in: dir, header: header, clang: clang)
        return (build, plan)
    }

    /// Every head through TLS table `table`, in one driver process.
    public static func run(_ build: HTTPTestRun.Build, table: UInt32, heads: [[UInt8]]) throws -> [KernelChoice] {
        let driver = try HTTPTestRun.locateDriver()
        var input: [UInt8] = []
        for h in heads {
            input += Array("\(table) 0 0 \(h.count)\n".utf8)
            input += h
        }
        let r = try ProcessRunner(driver, [build.object, build.mapDirectory, "--program", "x2b_tls_test"], input: Data(input)).run()
        guard r.succeeded else {
            throw HTTPTestRun.RunError(description: "x2b-testrun failed (exit \(r.status)): \(r.stderrText.prefix(4000))")
        }
        let lines = r.stdoutText.split(separator: "\n")
        guard lines.count == heads.count else {
            throw HTTPTestRun.RunError(description: "x2b-testrun answered \(lines.count) of \(heads.count) heads: \(r.stderrText.prefix(2000))")
        }
        return try lines.map { line in
            let f = line.split(separator: " ").compactMap { Int64($0) }
            guard f.count >= 4 else { throw HTTPTestRun.RunError(description: "x2b-testrun: bad output line \(line)") }
            // field() prints X2B_HTTP_NONE (0xffffffff) as -1; X2B_TLS_CLOSE is 0xfffffffe.
            let a = f[3]
            return KernelChoice(
                state: Int(f[0]), serverNameLength: Int(max(f[1], 0)), alpnCount: Int(max(f[2], 0)),
                action: a < 0 || a >= 0xFFFF_FFFE ? nil : UInt32(a))
        }
    }

    // MARK: ClientHellos

    /// A TLS 1.2/1.3-shaped ClientHello with the given server name and ALPN
    /// list, in one handshake record, or split into records after the handshake
    /// bytes at `splitAt` (a ClientHello over several records). `postQuantum`
    /// adds what OpenSSL 3.5 and Chrome send: an X25519MLKEM768 key share (1216
    /// bytes) beside an X25519 one, and `padding` bytes of the padding extension
    /// (RFC 7685) after them, for ClientHellos of a given size.
    public static func clientHello(
        serverName: String?, alpn: [String]?, splitAt: [Int] = [], postQuantum: Bool = false, padding: Int? = nil
    ) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func ext(_ type: Int, _ body: [UInt8]) -> [UInt8] { u16(type) + u16(body.count) + body }
        var exts: [UInt8] = ext(0x000b, [1, 0])  // ec_point_formats
        if let serverName {
            let n = Array(serverName.utf8)
            exts += ext(0, u16(n.count + 3) + [0] + u16(n.count) + n)
        }
        if postQuantum {
            exts += ext(0x000a, u16(6) + [0x11, 0xec, 0x00, 0x1d, 0x00, 0x17])  // supported_groups
            let shares = u16(0x11ec) + u16(1216) + [UInt8](repeating: 0x4d, count: 1216) + u16(0x001d) + u16(32) + [UInt8](repeating: 0x58, count: 32)
            exts += ext(0x0033, u16(shares.count) + shares)  // key_share
        } else {
            exts += ext(0x000a, u16(4) + [0x00, 0x1d, 0x00, 0x17])  // supported_groups
        }
        if let alpn {
            let list = alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
            exts += ext(16, u16(list.count) + list)
        }
        exts += ext(0x002b, [2, 0x03, 0x04])  // supported_versions
        if let padding { exts += ext(0x0015, [UInt8](repeating: 0, count: padding)) }
        var body: [UInt8] = [3, 3] + [UInt8](repeating: 0x5a, count: 32) + [32] + [UInt8](repeating: 0xa5, count: 32)
        body += u16(4) + [0x13, 0x01, 0x13, 0x02] + [1, 0] + u16(exts.count) + exts
        let hs: [UInt8] = [1, UInt8(body.count >> 16 & 0xFF), UInt8(body.count >> 8 & 0xFF), UInt8(body.count & 0xFF)] + body
        var out: [UInt8] = []
        var from = 0
        for cut in (splitAt + [hs.count]) where cut > from && cut <= hs.count {
            out += [0x16, 3, 1] + u16(cut - from) + hs[from..<cut]
            from = cut
        }
        return out
    }
}
