import Crypto
import Foundation

/// Lowercase hex of a SHA-256 digest: the one spelling of a digest in bundles,
/// manifests, snapshot hashes and cache keys.
public func sha256Hex(_ bytes: [UInt8]) -> String {
    hexString(SHA256.hash(data: bytes))
}

/// Lowercase hex, two digits a byte.
public func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    bytes.map { String(format: "%02x", $0) }.joined()
}
