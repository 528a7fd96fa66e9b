import ArgumentParser
import Codegen
import Foundation
import Synchronization
import XDSClient

extension XDS2BPF {
    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a control plane: keep the kernel in sync with what it sends (node agent, root).",
            discussion: """
                Stays subscribed over ADS. Every complete configuration goes through the same front end and \
                compiler as `compile`; one the compiler rejects is NACKed with its diagnostics (id, resource \
                path, message) and the last good configuration keeps serving. An accepted configuration is \
                loaded (first time) or swapped in atomically with xds2bpf-loader, and ACKed only once live. \
                Reconnects with backoff when the server goes away and resumes from the state directory \
                (also after a restart). SIGTERM stops the agent and leaves the loaded configuration in place; \
                `xds2bpf-loader unload --name NAME` removes it.
                """)

        @OptionGroup var controlPlane: ControlPlaneOptionGroup

        @Option(help: "The cgroup v2 directory to attach to.")
        var cgroup: String

        @Option(help: "The bundle's name under bpffs (letters, digits, _ and -).")
        var name: String

        @Option(help: "Where the agent keeps the live snapshot, bundles and cache (default /var/lib/xds2bpf/NAME).")
        var stateDir: String?

        @Option(help: "Unsupported features: error, warn or default (as for compile).")
        var unsupported: UnsupportedPolicy = .default

        @Option(
            name: .customLong("resolve"), help: "NAME=IP: the address of a host name used by a DNS cluster (repeatable).",
            transform: HostAddress.parse)
        var resolve: [HostAddress] = []

        @Flag(help: "Sync once (the first complete configuration is live), then exit.")
        var once = false

        @Option(help: "With --once: give up after this long.")
        var timeout: Seconds = Seconds(60)

        func validate() throws {
            guard !name.isEmpty, name.count <= 64,
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
            else { throw ValidationError("--name: letters, digits, '_' and '-', at most 64") }
        }

        func run() throws {
            guard let loader = XDS2BPF.Load.findLoaderPath() else {
                printErr("error: xds2bpf-loader not found (build it with `make loader`, or set XDS2BPF_LOADER)")
                throw Exit.internalError
            }
            let server = try controlPlane.resolvedServer()
            let agent = NodeAgent(
                config: .init(
                    name: name, cgroup: cgroup, stateDir: stateDir ?? "/var/lib/xds2bpf/\(name)", loader: loader,
                    frontEnd: FrontEndOptions(unsupported: unsupported, hostAddresses: resolve.byName, allowEmpty: true)),
                log: { printErr("xds2bpf watch: \($0)") })
            do { try agent.start() } catch {
                printErr("error: state directory: \(error)")
                throw Exit.internalError
            }
            // SIGTERM/SIGINT end the agent; what is loaded stays loaded.
            signal(SIGTERM, SIG_IGN)
            signal(SIGINT, SIG_IGN)
            let stopSources = [Int32(SIGTERM), Int32(SIGINT)].map { (sig: Int32) -> any DispatchSourceSignal in
                let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                s.setEventHandler {
                    printErr("xds2bpf watch: signal \(sig): stopping; the loaded configuration stays in place")
                    agent.flush()
                    Foundation.exit(0)
                }
                s.resume()
                return s
            }
            defer { stopSources.forEach { $0.cancel() } }
            // DNS clusters: their names looked up again on each cluster's refresh rate
            // (or TTL; the loader keeps the schedule) and changes written in place.
            let dnsTimer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "xds2bpf.watch.dns"))
            dnsTimer.schedule(deadline: .now() + 1, repeating: 1)
            dnsTimer.setEventHandler { agent.refreshDNS() }
            dnsTimer.resume()
            defer { dnsTimer.cancel() }

            let node = try controlPlane.node
            var session = ADSSession(mode: controlPlane.mode, node: node, resume: agent.savedConfiguration())
            if session.accepted.isComplete && !session.accepted.received.isEmpty {
                printErr(
                    "xds2bpf watch: resuming from the saved configuration (\(XDSResourceType.allCases.sorted().map { "\($0.shortName) \(session.accepted.versions[$0] ?? "-")" }.joined(separator: ", ")))"
                )
            }
            let client = try controlPlane.client()
            let once = self.once
            var backoff = 0.5
            let deadline = Date().addingTimeInterval(timeout.value)
            while true {
                let start = session
                let began = Date()
                do {
                    let end = try runBlocking {
                        try await client.run(
                            session: start, onEvent: { printErr("xds2bpf watch: \($0)") },
                            judge: { candidate in
                                let verdict = await agent.apply(candidate)
                                return (verdict, once && verdict == .accept ? .stop : .keepGoing)
                            })
                    }
                    session = end
                    if once {
                        agent.flush()
                        return
                    }
                } catch {
                    printErr("xds2bpf watch: stream to \(server) ended: \(error)")
                }
                if once && Date() > deadline {
                    printErr("error: no configuration became live within \(timeout.value) s")
                    throw Exit.internalError
                }
                // Keep serving what is loaded; reconnect with capped exponential backoff
                // (reset once a stream has lived long enough to have been useful).
                if Date().timeIntervalSince(began) > 30 { backoff = 0.5 }
                printErr("xds2bpf watch: reconnecting in \(String(format: "%.1f", backoff)) s")
                Thread.sleep(forTimeInterval: backoff)
                backoff = min(backoff * 2, 30)
                if let saved = agent.savedConfiguration() { session = ADSSession(mode: controlPlane.mode, node: node, resume: saved) }
            }
        }
    }
}
