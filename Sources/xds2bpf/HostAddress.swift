import ArgumentParser
import Codegen

/// One `--resolve NAME=IP`: the address an offline compile gives a host name of
/// a DNS cluster. Parsed here, once; the stages get `[String: IRAddress]`.
struct HostAddress: Sendable {
    var name: String
    var address: IRAddress

    /// The `transform:` of every `--resolve` option.
    static func parse(_ argument: String) throws -> HostAddress {
        let parts = argument.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, let address = IRAddress(parsing: String(parts[1])) else {
            throw ValidationError("expected NAME=IP (an IPv4 or IPv6 address)")
        }
        return HostAddress(name: String(parts[0]), address: address)
    }
}

extension [HostAddress] {
    /// Name -> address; a name given twice keeps its last address.
    var byName: [String: IRAddress] {
        Dictionary(map { ($0.name, $0.address) }, uniquingKeysWith: { _, last in last })
    }
}
