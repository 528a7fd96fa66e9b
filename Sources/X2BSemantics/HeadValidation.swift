import Foundation
import X2BDiagnostics

/// What Envoy's HTTP/1 codec (BalsaParser, Envoy 1.40's default) and connection manager do
/// with a request head before any route is consulted: refuse it with a status, or hand the
/// router a request (an absolute-form target gives the host and path).
///
/// Checked against a real Envoy 1.40 (`Tests/envoy/diff-http.py`, the malformed-head classes).
/// The generated BPF matcher (`bpf-runtime/include/x2b_http.h`, `x2b_http_parse`) applies the
/// same rules to the bytes and reports `X2B_HK_BAD_REQUEST`; the connection is then refused.
public enum HeadValidation {
    public enum Verdict: Sendable, Equatable {
        /// The request routing sees (absolute form resolved into authority and path).
        case accept(HTTPRequest)
        /// Envoy answers `status` without routing.
        case refuse(status: Int, reason: String)

        public var refusal: (status: Int, reason: String)? {
            if case .refuse(let s, let r) = self { return (s, r) }
            return nil
        }
    }

    /// Methods the codec accepts (http-parser's list; case-sensitive). Others: 400.
    public static let methods: [String] = [
        "ACL", "BIND", "CHECKOUT", "CONNECT", "COPY", "DELETE", "GET", "HEAD", "LINK", "LOCK", "MERGE",
        "MKACTIVITY", "MKCALENDAR", "MKCOL", "MOVE", "MSEARCH", "NOTIFY", "OPTIONS", "PATCH", "POST",
        "PROPFIND", "PROPPATCH", "PURGE", "PUT", "REBIND", "REPORT", "SEARCH", "SOURCE", "SUBSCRIBE",
        "TRACE", "UNBIND", "UNLINK", "UNLOCK", "UNSUBSCRIBE",
    ]

    /// Envoy's defaults: `max_request_headers_count` 100, `max_request_headers_kb` 60.
    public static let maxHeaders = 100
    public static let maxHeadBytes = 60 * 1024

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    static func isAlnum(_ c: UInt8) -> Bool { isDigit(c) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) }
    static func isHexDigit(_ c: UInt8) -> Bool { isDigit(c) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x66) }

    /// RFC 9110 tchar: header names.
    public static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    /// Bytes of a request target the codec accepts: visible ASCII but '#' (a fragment is refused).
    public static func isTargetChar(_ c: UInt8) -> Bool { c > 0x20 && c < 0x7F && c != UInt8(ascii: "#") }

    /// Bytes of a Host / :authority value (oghttp2's authority check): unreserved, sub-delims,
    /// ':', '@', '[', ']', '%'.
    public static func isAuthorityChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "-._~!$&'()*+,;=:@[]%".utf8.contains(c)
        }
    }

    /// Header values: no control characters but tab (obs-text, 0x80 and up, is allowed).
    public static func isValueChar(_ c: UInt8) -> Bool { c == 0x09 || (c >= 0x20 && c != 0x7F) }

    /// The head as the codec and connection manager leave it, or Envoy's refusal.
    public static func validate(_ r: HTTPRequest) -> Verdict {
        if !methods.contains(r.method) {
            return .refuse(status: 400, reason: "method \(ResourcePath.quoted(r.method)) is not one the HTTP/1 codec knows")
        }
        // The version: HTTP/1.1; HTTP/1.0 (accept_http_10 is off by default), other digits and
        // none at all (HTTP/0.9) are answered 426 Upgrade Required; anything else is 400.
        if r.version != "HTTP/1.1" {
            let v = Array(r.version.utf8)
            let digits =
                v.count == 8 && r.version.hasPrefix("HTTP/") && v[6] == UInt8(ascii: ".")
                && isDigit(v[5]) && isDigit(v[7])
            if r.version.isEmpty || digits {
                return .refuse(
                    status: 426, reason: "HTTP version \(r.version.isEmpty ? "0.9 (no version)" : ResourcePath.quoted(r.version)) (accept_http_10 off)")
            }
            return .refuse(status: 400, reason: "HTTP version \(ResourcePath.quoted(r.version)) is malformed")
        }
        let target = Array(r.path.utf8)
        if target.isEmpty { return .refuse(status: 400, reason: "empty request target") }
        if let bad = target.first(where: { !isTargetChar($0) }) {
            return .refuse(
                status: 400,
                reason: bad == UInt8(ascii: "#")
                    ? "a fragment ('#') in the request target" : "a byte 0x\(String(bad, radix: 16)) in the request target")
        }
        var out = r
        var absolute = false
        if r.method == "CONNECT" {
            // CONNECT takes an authority-form target; only connect_matcher routes (rejected by
            // xds2bpf, XDS201) match it.
            if target.first == UInt8(ascii: "/") { return .refuse(status: 400, reason: "CONNECT with an origin-form target") }
            return .refuse(status: 404, reason: "CONNECT: only connect_matcher routes match (not supported)")
        }
        if target.first == UInt8(ascii: "/") {
            // origin form
        } else if target.first == UInt8(ascii: "*") {
            if r.method != "OPTIONS" { return .refuse(status: 400, reason: "'*' target with a method other than OPTIONS") }
        } else {
            switch absoluteForm(target) {
            case .failure(let why): return .refuse(status: 400, reason: why.message)
            case .success(let (authority, path)):
                out.authority = authority
                out.hasAuthority = true
                out.path = path
                absolute = true
                // :scheme is the URL's, as sent (the kernel matches the target's bytes)
                let scheme = String(decoding: target[..<HeadValidation.firstIndex(of: Array("://".utf8), in: target)!], as: UTF8.self)
                out.headers.append((":scheme", scheme))
            }
        }
        var hostLines = r.hasAuthority ? 1 : 0
        var contentLength = 0
        var transferEncoding: String?
        for (k, v) in r.headers {
            let canonical = HTTPHeaderMap.canonical(k)
            if canonical == ":authority" { hostLines += 1 }
            if canonical.hasPrefix(":") && canonical != ":authority" { continue }
            let name = k == ":authority" ? Array("host".utf8) : Array(k.utf8)
            if name.isEmpty || !name.allSatisfy(isTokenChar) {
                return .refuse(status: 400, reason: "header name \(ResourcePath.quoted(k)) is not a token")
            }
            if !v.utf8.allSatisfy(isValueChar) {
                return .refuse(status: 400, reason: "a control character in header \(k)")
            }
            if canonical == "content-length" {
                contentLength += 1
                if contentLength > 1 { return .refuse(status: 400, reason: "more than one content-length") }
                if v.isEmpty || !v.utf8.allSatisfy(isDigit) {
                    return .refuse(status: 400, reason: "content-length \(ResourcePath.quoted(v)) is not a number")
                }
            }
            if canonical == "transfer-encoding" { transferEncoding = v }
        }
        if let te = transferEncoding {
            if String(decoding: ASCII.lowered(Array(te.utf8)), as: UTF8.self) != "chunked" {
                return .refuse(status: 501, reason: "transfer-encoding \(ResourcePath.quoted(te)) (only chunked)")
            }
            if contentLength > 0 { return .refuse(status: 400, reason: "both transfer-encoding and content-length") }
        }
        if r.headers.count + (r.hasAuthority ? 1 : 0) > maxHeaders {
            return .refuse(status: 431, reason: "more than \(maxHeaders) headers")
        }
        if headSize(r) > maxHeadBytes {
            return .refuse(status: 431, reason: "a request head over \(maxHeadBytes / 1024) KiB")
        }
        if !out.path.hasPrefix("/") {
            // The connection manager routes relative paths only ("absolute_path"): OPTIONS *,
            // an absolute URL whose path starts with its query.
            return .refuse(status: 404, reason: ":path \(ResourcePath.quoted(out.path)) does not start with '/' (the connection manager routes none)")
        }
        if !absolute {
            // origin form: the Host header is the authority
            if hostLines == 0 { return .refuse(status: 400, reason: "no Host header (HTTP/1.1)") }
            let hosts = (r.hasAuthority ? [r.authority] : []) + r.headers.filter { HTTPHeaderMap.canonical($0.0) == ":authority" }.map(\.1)
            for h in hosts where !h.utf8.allSatisfy(isAuthorityChar) {
                return .refuse(status: 400, reason: "Host \(ResourcePath.quoted(h)) has a character an authority cannot have")
            }
        } else {
            // the absolute form's authority replaces every Host line
            out.headers = out.headers.filter { HTTPHeaderMap.canonical($0.0) != ":authority" }
        }
        return .accept(out)
    }

    /// The bytes of the head as an HTTP/1.1 client sends it (request line, Host, headers).
    static func headSize(_ r: HTTPRequest) -> Int {
        var n = r.method.utf8.count + 1 + r.path.utf8.count + 1 + r.version.utf8.count + 2
        if r.hasAuthority { n += 6 + r.authority.utf8.count + 2 }
        for (k, v) in r.headers { n += k.utf8.count + 2 + v.utf8.count + 2 }
        return n + 2
    }

    /// `http://[userinfo@]host[:port][/path][?query]` (scheme http or https, any case), as
    /// Envoy's URL parser reads it: (host[:port], path, "/" when empty).
    static func absoluteForm(_ t: [UInt8]) -> Result<(String, String), AbsoluteFormError> {
        guard let sep = firstIndex(of: Array("://".utf8), in: t) else {
            return .failure(.init("request target \(ResourcePath.quoted(String(decoding: t, as: UTF8.self))) is neither origin nor absolute form"))
        }
        let scheme = String(decoding: ASCII.lowered(Array(t[..<sep])), as: UTF8.self)
        guard scheme == "http" || scheme == "https" else {
            return .failure(.init("scheme \(ResourcePath.quoted(scheme)) in an absolute-form target (http and https only)"))
        }
        let start = sep + 3
        var end = start
        while end < t.count, t[end] != UInt8(ascii: "/"), t[end] != UInt8(ascii: "?") { end += 1 }
        var auth = Array(t[start..<end])
        let ats = auth.indices.filter { auth[$0] == UInt8(ascii: "@") }
        if ats.count > 1 { return .failure(.init("more than one '@' in an absolute-form authority")) }
        if let at = ats.first {
            let userinfo = auth[..<at]
            if !userinfo.allSatisfy({ isAlnum($0) || "-_.!~*'()%;:&=+$,".utf8.contains($0) }) {
                return .failure(.init("userinfo of an absolute-form target has an invalid character"))
            }
            auth = Array(auth[(at + 1)...])
        }
        var host: ArraySlice<UInt8>
        var port: ArraySlice<UInt8>?
        if auth.first == UInt8(ascii: "[") {
            guard let close = auth.firstIndex(of: UInt8(ascii: "]")) else { return .failure(.init("unterminated IPv6 literal")) }
            host = auth[...close]
            if !auth[1..<close].allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) {
                return .failure(.init("invalid IPv6 literal in an absolute-form target"))
            }
            let rest = auth[(close + 1)...]
            if !rest.isEmpty {
                guard rest.first == UInt8(ascii: ":") else { return .failure(.init("bytes after an IPv6 literal")) }
                port = rest.dropFirst()
            }
        } else {
            if let colon = auth.firstIndex(of: UInt8(ascii: ":")) {
                host = auth[..<colon]
                port = auth[(colon + 1)...]
            } else {
                host = auth[...]
            }
            if host.isEmpty || !host.allSatisfy({ isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }) {
                return .failure(.init("host of an absolute-form target is empty or has an invalid character"))
            }
        }
        if let p = port {
            guard !p.isEmpty, p.count <= 5, p.allSatisfy(isDigit), Int(String(decoding: p, as: UTF8.self))! <= 65535 else {
                return .failure(.init("port of an absolute-form target is not a number up to 65535"))
            }
        }
        let authority = String(decoding: host, as: UTF8.self) + (port.map { ":" + String(decoding: $0, as: UTF8.self) } ?? "")
        let path = end < t.count ? String(decoding: t[end...], as: UTF8.self) : "/"
        return .success((authority, path))
    }

    public struct AbsoluteFormError: Error, Sendable {
        public var message: String
        init(_ m: String) { message = m }
    }

    static func firstIndex(of needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where Array(hay[i..<(i + needle.count)]) == needle { return i }
        return nil
    }
}
