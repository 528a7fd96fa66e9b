import X2BABI
import X2BSemantics

/// FNV-1a 64, the hash the kernel computes over names and hosts.
public enum FNV {
    public static let initial = ABI.fnvInit
    public static let prime = ABI.fnvPrime

    public static func hash<S: Sequence>(_ bytes: S, from h0: UInt64 = initial) -> UInt64 where S.Element == UInt8 {
        var h = h0
        for b in bytes { h = (h ^ UInt64(b)) &* prime }
        return h
    }

    /// A header name as the kernel hashes it: ASCII-lowercased.
    public static func name(_ s: String) -> UInt64 { hash(ASCII.lowered(Array(s.utf8))) }
}

/// The hashes the ClientHello parser (x2b_tls.h) computes.
public enum TLSHash {
    /// A server name or wildcard key, hashed from its last byte backwards, so that
    /// one backward pass over the SNI yields the key of every suffix. The SNI is
    /// lowercased by the parser; configured keys are taken as written (Envoy
    /// compares them with the lowercased SNI).
    public static func serverName(_ key: String) -> UInt64 { FNV.hash(Array(key.utf8).reversed()) }

    /// An ALPN value, case-sensitive, forwards.
    public static func alpn(_ name: String) -> UInt64 { FNV.hash(Array(name.utf8)) }
}
