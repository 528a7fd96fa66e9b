import Foundation
import X2BIR

/// What Envoy's connection manager does to `:path` before routing
/// (`ConnectionManagerUtility::maybeNormalizePath`): `path_with_escaped_slashes_action`
/// (`PathUtil::unescapeSlashes`), then `normalize_path` (`PathUtil::canonicalPath`, Chromium's
/// URL path canonicalizer), then `merge_slashes` (`PathUtil::mergeSlashes`); each on the path
/// before the first `?`, the query kept as sent. Checked against a real Envoy 1.40
/// (`Tests/envoy/diff-http.py`, the path classes).
///
/// The kernel does not rewrite paths: it refuses a request whose path any enabled option would
/// change (`kernelRefuses`, the same test as `x2b_path_needs_norm` in `x2b_http.h`), so it only
/// routes paths that are already normal, where Envoy routes the path as sent.
public enum PathNormalization {
    public enum Result: Sendable, Equatable {
        /// Routing sees this `:path`.
        case forward(String)
        /// Envoy answers 400 (an escaped slash with REJECT_REQUEST, or a path the canonicalizer refuses: `%00`).
        case reject(String)
        /// Envoy answers 307 with this Location (UNESCAPE_AND_REDIRECT found an escaped slash).
        case redirect(String)
    }

    public static func apply(_ n: IRPathNormalization, _ path: String) -> Result {
        guard !n.isIdentity else { return .forward(path) }
        var bytes = Array(path.utf8)
        var redirect = false
        if n.escapedSlashes != .keep {
            let (p, q) = split(bytes)
            let u = unescapeSlashes(p)
            if u.count != p.count {
                switch n.escapedSlashes {
                case .reject: return .reject("an escaped slash (%2F or %5C) in the path, path_with_escaped_slashes_action REJECT_REQUEST")
                case .redirect: redirect = true
                default: break
                }
            }
            bytes = u + q
        }
        if n.normalizePath {
            let (p, q) = split(bytes)
            guard let c = canonicalize(p) else {
                return .reject("normalize_path: the path has an escape the canonicalizer refuses (%00)")
            }
            bytes = c + q
        }
        if n.mergeSlashes {
            let (p, q) = split(bytes)
            bytes = mergeSlashes(p) + q
        }
        let out = String(decoding: bytes, as: UTF8.self)
        return redirect ? .redirect(out) : .forward(out)
    }

    /// The kernel's test: whether an enabled option would change the path (then the kernel
    /// refuses the request). Exact for paths the codec accepts (visible ASCII, no `#`): each
    /// condition below changes the path, and a path without any is left alone by every step.
    public static func kernelRefuses(_ n: IRPathNormalization, _ path: String) -> Bool {
        guard !n.isIdentity else { return false }
        let p = split(Array(path.utf8)).0
        let end = p.count
        func at(_ i: Int) -> UInt8 { i < end ? p[i] : 0 }
        for i in 0..<end {
            let c = p[i]
            if n.escapedSlashes != .keep, c == pct,
                (at(i + 1) == 0x32 && at(i + 2) | 0x20 == 0x66)
                    || (at(i + 1) == 0x35 && at(i + 2) | 0x20 == 0x63)
            {
                return true
            }
            if n.mergeSlashes, c == slash, at(i + 1) == slash { return true }
            if n.normalizePath {
                if escapedInPath.contains(c) { return true }
                if c == pct, HeadValidation.isHexDigit(at(i + 1)), HeadValidation.isHexDigit(at(i + 2)) {
                    let v = hexValue(at(i + 1)) << 4 | hexValue(at(i + 2))
                    if v == 0 || v == dot || flags[Int(v)] & unescapeFlag != 0 { return true }
                }
                if c == slash, at(i + 1) == dot {
                    // a "." or ".." segment
                    if i + 2 == end || at(i + 2) == slash { return true }
                    if at(i + 2) == dot, i + 3 == end || at(i + 3) == slash { return true }
                }
            }
        }
        return false
    }

    // MARK: Envoy's steps

    static let pct = UInt8(ascii: "%"), slash = UInt8(ascii: "/"), backslash = UInt8(ascii: "\\"), dot = UInt8(ascii: ".")

    /// (path before the first '?', the rest from '?').
    static func split(_ b: [UInt8]) -> ([UInt8], [UInt8]) {
        guard let q = b.firstIndex(of: UInt8(ascii: "?")) else { return (b, []) }
        return (Array(b[..<q]), Array(b[q...]))
    }

    /// `PathUtil::unescapeSlashes`: %2F %2f → '/', %5C %5c → '\'.
    static func unescapeSlashes(_ p: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(p.count)
        var i = 0
        while i < p.count {
            if p[i] == pct, i + 2 < p.count {
                if p[i + 1] == 0x32, p[i + 2] | 0x20 == 0x66 { out.append(slash); i += 3; continue }
                if p[i + 1] == 0x35, p[i + 2] | 0x20 == 0x63 { out.append(backslash); i += 3; continue }
            }
            out.append(p[i])
            i += 1
        }
        return out
    }

    /// `PathUtil::mergeSlashes`: runs of '/' become one.
    static func mergeSlashes(_ p: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for c in p where !(c == slash && out.last == slash) { out.append(c) }
        return out
    }

    // Chromium's url_canon_path.cc (the copy Envoy builds), DoPath / DoPartialPath.
    static let specialFlag: UInt8 = 1, escapeBit: UInt8 = 2, unescapeFlag: UInt8 = 4, invalidBit: UInt8 = 8
    /// kPathCharLookup.
    static let flags: [UInt8] = {
        let pass: UInt8 = 0, special: UInt8 = 1, escape: UInt8 = 3, unescape: UInt8 = 4, invalid: UInt8 = 9
        var t = [UInt8](repeating: escape, count: 256)
        t[0] = invalid
        for c in 0x20...0x7F {
            let ch = UInt8(c)
            switch ch {
            case UInt8(ascii: " "), UInt8(ascii: "\""), UInt8(ascii: "#"), UInt8(ascii: "%"), UInt8(ascii: "<"), UInt8(ascii: ">"),
                UInt8(ascii: "?"), UInt8(ascii: "\\"), UInt8(ascii: "^"), UInt8(ascii: "`"), UInt8(ascii: "{"), UInt8(ascii: "|"),
                UInt8(ascii: "}"), 0x7F:
                t[c] = escape
            case UInt8(ascii: "."): t[c] = special
            case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "~"): t[c] = unescape
            default: t[c] = HeadValidation.isAlnum(ch) ? unescape : pass
            }
        }
        return t
    }()

    /// Raw bytes the canonicalizer rewrites that the codec lets through: escaped as %XX, '\' to '/'.
    static let escapedInPath: Set<UInt8> = Set("\"<>\\^`{|}".utf8)

    static func hexValue(_ c: UInt8) -> UInt8 { HeadValidation.isDigit(c) ? c - 0x30 : (c | 0x20) - 0x61 + 10 }

    static func isURLSlash(_ c: UInt8) -> Bool { c == slash || c == backslash }

    static func isDot(_ s: [UInt8], _ i: Int, _ end: Int) -> Int {
        if s[i] == dot { return 1 }
        if s[i] == pct, i + 3 <= end, s[i + 1] == 0x32, s[i + 2] | 0x20 == 0x65 { return 3 }
        return 0
    }

    static func decodeEscaped(_ s: [UInt8], _ begin: inout Int, _ end: Int) -> UInt8? {
        guard begin + 3 <= end, s[begin + 1] < 0x80, s[begin + 2] < 0x80,
            HeadValidation.isHexDigit(s[begin + 1]), HeadValidation.isHexDigit(s[begin + 2])
        else { return nil }
        let v = hexValue(s[begin + 1]) << 4 | hexValue(s[begin + 2])
        begin += 2
        return v
    }

    static func appendEscaped(_ c: UInt8, _ out: inout [UInt8]) {
        let hex = Array("0123456789ABCDEF".utf8)
        out += [pct, hex[Int(c >> 4)], hex[Int(c & 15)]]
    }

    /// `url::CanonicalizePath` on the path (no query); nil when it fails (Envoy rejects the request).
    static func canonicalize(_ spec: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        guard !spec.isEmpty else { return [slash] }
        if !isURLSlash(spec[0]) { out.append(slash) }
        let end = spec.count
        var ok = true
        var lastInvalidPercent = Int.min
        var i = 0
        while i < end {
            let ch = spec[i]
            let f = flags[Int(ch)]
            if f & specialFlag != 0 {
                let dotlen = isDot(spec, i, end)
                if dotlen > 0 {
                    if out.last == slash {
                        let after = i + dotlen
                        var consumed = 0
                        var disposition = 0  // 0 not a directory, 1 current, 2 up
                        if after == end {
                            disposition = 1
                        } else if isURLSlash(spec[after]) {
                            disposition = 1
                            consumed = 1
                        } else {
                            let second = isDot(spec, after, end)
                            if second > 0 {
                                let afterSecond = after + second
                                if afterSecond == end {
                                    disposition = 2
                                    consumed = second
                                } else if isURLSlash(spec[afterSecond]) {
                                    disposition = 2
                                    consumed = second + 1
                                }
                            }
                        }
                        switch disposition {
                        case 0:
                            out.append(dot)
                            i += dotlen - 1
                        case 1:
                            i += dotlen + consumed - 1
                        default:
                            // BackUpToPreviousSlash (the path begins at output 0)
                            var j = out.count - 1
                            if j > 0 {
                                j -= 1
                                while out[j] != slash && j > 0 { j -= 1 }
                                out.removeLast(out.count - (j + 1))
                            }
                            i += dotlen + consumed - 1
                        }
                    } else {
                        out.append(dot)
                        i += dotlen - 1
                    }
                } else if ch == backslash {
                    out.append(slash)
                } else if ch == pct {
                    var j = i
                    if let v = decodeEscaped(spec, &j, end) {
                        i = j
                        let uf = flags[Int(v)]
                        if uf & unescapeFlag != 0 {
                            out.append(v)
                            if lastInvalidPercent >= out.count - 3 {
                                checkForNestedEscapes(spec, i + 1, end, lastInvalidPercent, &out)
                            }
                        } else {
                            out += [pct, spec[i - 1], spec[i]]
                            if uf & invalidBit != 0 { ok = false }
                        }
                    } else {
                        lastInvalidPercent = out.count
                        out.append(pct)
                    }
                } else if f & invalidBit != 0 {
                    appendEscaped(ch, &out)
                    ok = false
                } else if f & escapeBit != 0 {
                    appendEscaped(ch, &out)
                }
            } else {
                out.append(ch)
            }
            i += 1
        }
        return ok ? out : nil
    }

    static func checkForNestedEscapes(_ spec: [UInt8], _ next: Int, _ inputLen: Int, _ lastInvalid: Int, _ out: inout [UInt8]) {
        let length = out.count
        let lastUnescaped = out[length - 1]
        let appendNext = lastInvalid == length - 2
        if appendNext {
            if next == inputLen || spec[next] >= 0x80 { return }
            out.append(spec[next])
        }
        var b = lastInvalid
        if decodeEscaped(out, &b, out.count) != nil {
            if !appendNext { out.append(out[lastInvalid + 1]) }
            out[lastInvalid + 1] = UInt8(ascii: "2")
            out[lastInvalid + 2] = UInt8(ascii: "5")
            out.append(lastUnescaped)
        } else if appendNext {
            out.removeLast(out.count - length)
        }
    }
}
