#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Parsing and printing of IP address text through the C library (inet_pton /
/// inet_ntop), so the forms accepted are exactly the usual ones.
public enum IPv6Text {
    public static func format(_ bytes: [UInt8]) -> String {
        precondition(bytes.count == 16)
        var addr = in6_addr()
        withUnsafeMutableBytes(of: &addr) { raw in
            for i in 0..<16 { raw[i] = bytes[i] }
        }
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &addr, &buf, socklen_t(buf.count)) != nil else { return "?" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension IRAddress {
    /// Parses `10.0.0.1`, `::1`, `fd00::5` (no brackets, no zone). Nil if invalid.
    public init?(parsing text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(family: .inet4, bytes: withUnsafeBytes(of: &v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self.init(family: .inet6, bytes: withUnsafeBytes(of: &v6) { Array($0) })
            return
        }
        return nil
    }

    public static let anyV4 = IRAddress(family: .inet4, bytes: [0, 0, 0, 0])
    public static let anyV6 = IRAddress(family: .inet6, bytes: [UInt8](repeating: 0, count: 16))
}
