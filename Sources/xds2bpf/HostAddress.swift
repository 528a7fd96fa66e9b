import ArgumentParser
import Codegen

/// One `--resolve NAME=IP[,IP...]`: the addresses an offline compile gives a host
/// name of a DNS cluster (a STRICT_DNS cluster makes each an endpoint, as the
/// loader does with the addresses of a lookup). Parsed here, once; the stages get
/// `[String: [IRAddress]]`.
struct HostAddress: Sendable {
    var name: String
    var addresses: [IRAddress]

    /// The `transform:` of every `--resolve` option.
    static func parse(_ argument: String) throws -> HostAddress {
        let parts = argument.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, !parts[0].isEmpty else {
            throw ValidationError("expected NAME=IP[,IP...] (IPv4 or IPv6 addresses)")
        }
        var addresses: [IRAddress] = []
        for text in parts[1].split(separator: ",", omittingEmptySubsequences: false) {
            guard let address = IRAddress(parsing: String(text)) else {
                throw ValidationError("expected NAME=IP[,IP...] (IPv4 or IPv6 addresses); '\(text)' is not an address")
            }
            addresses.append(address)
        }
        return HostAddress(name: String(parts[0]), addresses: addresses)
    }
}

extension [HostAddress] {
    /// Name -> addresses in the order given; a name given twice keeps its last list.
    var byName: [String: [IRAddress]] {
        Dictionary(map { ($0.name, $0.addresses) }, uniquingKeysWith: { _, last in last })
    }
}
