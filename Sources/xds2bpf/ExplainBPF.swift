import Codegen
import Foundation

/// One line of `explain --requests`.
struct BatchRequest {
    var address: IRAddress
    var port: UInt16
    var request: HTTPRequest
    var random: UInt64
    /// The ClientHello (listeners routed on it); nil: plain bytes.
    var hello: TLSHello? = nil
}

/// `explain --requests FILE --engine bpf`: the listener and filter chain are chosen as the
/// interpreter does (the connect program's L4 stage, tested elsewhere); the HTTP decision is the
/// compiled matcher's, in the kernel (`HTTPTestRun`, the machinery of `route-check --engine bpf`).
/// One JSON line per request: `engine`, `kind` (the kernel's x2b_hres kind, or `not_http`),
/// `answer` in the vocabulary of Tests/envoy/diff-http.py (`cluster NAME`, `status CODE`,
/// `refused`, `l4-fallback`), `choices` (a weighted route: every cluster with a non-zero weight),
/// `refused` (the kernel refuses the connection), `vhost`, `route`, `note`.
enum BPFBatch {
    static func run(_ ir: MeshIR, _ batch: [BatchRequest]) throws {
        let index = HTTPPlanner.clusterIndex(ir)
        var names = [String](repeating: "", count: (index.values.max().map { Int($0) + 1 }) ?? 0)
        for (n, i) in index { names[Int(i)] = n }
        let build: HTTPTestRun.Build
        do {
            (build, _) = try HTTPTestRun.build(ir, clusterIndex: index)
        } catch let e as ToolchainError {
            for d in e.diagnostics { printErr(d.rendered) }
            throw Exit.internalError
        }
        // (table index, head) of the requests the kernel decides; nil: answered here.
        var tables: [Int?] = []
        var lines: [[String: Any]?] = []
        var requests: [HTTPTestRun.Request] = []
        for b in batch {
            guard let l = ChainSelection.listener(in: ir, address: b.address, port: b.port),
                let c = ChainSelection.chain(l, destination: b.address), case .http(let name) = c.action,
                let ti = ir.routeTables.firstIndex(where: { $0.name == name })
            else {
                tables.append(nil)
                lines.append(["engine": "bpf", "kind": "not_http", "answer": "untouched", "refused": false])
                continue
            }
            var head = HTTPTestRun.render(b.request)
            // The harness marks a head over X2B_HEAD_MAX truncated, as the module does.
            if head.count > Int(ABI.headMax) + 1 { head = Array(head.prefix(Int(ABI.headMax) + 1)) }
            tables.append(ti)
            lines.append(nil)
            requests.append(
                HTTPTestRun.Request(
                    table: UInt32(ti), random: UInt32(truncatingIfNeeded: b.random), runtime: HTTPTestRun.defaultsRuntime, head: head))
        }
        let decisions: [HTTPTestRun.KernelDecision]
        do {
            decisions = try HTTPTestRun.run(build, requests)
        } catch let e as HTTPTestRun.RunError {
            printErr("error: \(e.description)")
            throw Exit.internalError
        }
        var out = ""
        var next = 0
        for (i, b) in batch.enumerated() {
            var line: [String: Any]
            if let ti = tables[i] {
                let truncated = HTTPTestRun.render(b.request).count > Int(ABI.headMax)
                line = answer(decisions[next], table: ir.routeTables[ti], names: names, truncated: truncated)
                next += 1
            } else {
                line = lines[i] ?? [:]
            }
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes])
            out += String(decoding: data, as: UTF8.self) + "\n"
            if out.utf8.count > 1 << 16 {
                FileHandle.standardOutput.write(Data(out.utf8))
                out = ""
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    /// A kernel decision as the answer Envoy would give for it (what the connection does in
    /// production: a cluster is connected to; everything else is refused, see docs/semantics.md).
    static func answer(_ k: HTTPTestRun.KernelDecision, table: IRRouteTable, names: [String], truncated: Bool) -> [String: Any] {
        var o: [String: Any] = ["engine": "bpf", "refused": true]
        if let v = k.vhost { o["vhost"] = v }
        if let r = k.route { o["route"] = r }
        let route = k.vhost.flatMap { v in
            v < table.virtualHosts.count ? k.route.flatMap { $0 < table.virtualHosts[v].routes.count ? table.virtualHosts[v].routes[$0] : nil } : nil
        }
        func choices() {
            if case .weighted(let entries, _)? = route?.action {
                o["choices"] = entries.filter { $0.weight > 0 }.map { "cluster \($0.cluster)" }
            }
        }
        switch k.kind {
        case .cluster:
            o["kind"] = "cluster"
            o["refused"] = false
            let c = k.cluster.flatMap { $0 < names.count ? names[$0] : nil } ?? "?"
            o["answer"] = "cluster \(c)"
            choices()
        case .noCluster:
            o["kind"] = "no_cluster"
            switch route?.action {
            case .cluster(let c)?: o["answer"] = "cluster \(c)"  // Envoy: 503, or a backend in the harness
            case .weighted?:
                o["answer"] = "no_cluster"
                choices()
            default: o["answer"] = "refused"
            }
            o["note"] = "the kernel refuses: no such cluster"
        case .noVirtualHost:
            o["kind"] = "no_vhost"
            o["answer"] = "status 404"
        case .noRoute:
            o["kind"] = "no_route"
            o["answer"] = "status 404"
        case .tlsRedirect:
            o["kind"] = "tls_redirect"
            o["answer"] = "status 301"
        case .local:
            o["kind"] = "local"
            switch route?.action {
            case .directResponse(let s, _)?: o["answer"] = "status \(s)"
            case .redirect(let r)?: o["answer"] = "status \(r.responseCode)"
            case .nonForwarding?: o["answer"] = "status 404"
            case .guarded(let filters)?: o["answer"] = "refused: guarded by \(filters.joined(separator: ", "))"
            default: o["answer"] = "local ?"
            }
        case .badRequest:
            o["kind"] = "bad_request"
            o["answer"] = "status \(k.cluster ?? 0)"
            o["note"] = "the kernel refuses the head (Envoy's codec status)"
        case .error:
            // The harness reports what the connect path does next: 1 = the L4 fallback
            // (X2B_HT_UNIFORM: every request is routed alike), 0 = refused (fail closed).
            let fallsBack = k.cluster == 1
            o["kind"] = "error"
            o["refused"] = !fallsBack
            o["answer"] = fallsBack ? "l4-fallback" : "refused"
            let why = truncated ? "head over X2B_HEAD_MAX (\(ABI.headMax) bytes), truncated" : "head unusable by the matcher"
            o["note"] =
                fallsBack
                ? "\(why): the listener's L4 fallback (the table routes every request alike)"
                : "\(why): refused, since the part the kernel cannot read might select a route that denies it"
        }
        return o
    }
}
