import Foundation
import X2BIR

/// What Envoy does with a request once a route is chosen, as far as a routing
/// decision reports it: header mutations, host and path rewrites, the redirect
/// URL and the local reply of direct responses. None of this is enforced in
/// the kernel (the connection is only redirected); `route-check` and `explain`
/// report it, following source/common/router/config_impl.cc and
/// source/common/http/utility.cc.
public struct FinalizedExchange: Sendable {
    /// The request headers after `finalizeRequestHeaders` (forwarding routes) or
    /// after the redirect's path rewrite (direct responses).
    public var requestHeaders: HTTPHeaderMap
    /// The response headers: the local reply's for direct responses, else the
    /// given response headers after the route's mutations.
    public var responseHeaders: HTTPHeaderMap
    /// For direct responses (redirects included): the URL Envoy reports
    /// (`DirectResponseEntry::newUri`) and the status.
    public var newURI: String?
    public var responseCode: UInt32?
    /// Features whose effect could not be computed (substitution formatters,
    /// path rewrite extensions); what depends on them is not reliable.
    public var unsupported: [String] = []
}

extension RouteSemantics {
    /// The rewrite and reply side of a decision (router_check's `finalizeHeaders`).
    public static func finalize(
        _ table: IRRouteTable, _ decision: Decision, _ request: HTTPRequest,
        responseHeaders: HTTPHeaderMap = HTTPHeaderMap()
    ) -> FinalizedExchange {
        let request = normalized(request, table)
        var req = request.headerMap
        if !req.contains("x-forwarded-proto") { req.add("x-forwarded-proto", request.scheme) }
        var out = FinalizedExchange(requestHeaders: req, responseHeaders: responseHeaders)
        guard let vh = decision.virtualHost else { return out }
        if decision.outcome == .tlsRedirect {
            // SslRedirector: https://<host><path>, 301, an empty local reply.
            out.newURI = "https://\(req.first(":authority") ?? "")\(req.first(":path") ?? "")"
            out.responseCode = 301
            out.responseHeaders = HTTPHeaderMap([(":status", "301")])
            return out
        }
        guard let route = decision.route else { return out }
        let parsers = headerLevels(table, vh, route, specificityAscend: table.mostSpecificHeaderMutationsWins)
        switch route.action {
        case .redirect, .directResponse:
            var redirect: IRRedirect?
            var status: UInt32 = 0
            var body = ""
            if case .redirect(let r) = route.action {
                redirect = r
                status = r.responseCode
                if let p = rewrittenPath(
                    route, req, prefixRewrite: r.prefixRewrite, regexRewrite: r.regexRewrite,
                    unsupported: &out.unsupported)
                {
                    req.set("x-envoy-original-path", req.first(":path") ?? "")
                    req.set(":path", p)
                }
            } else if case .directResponse(let s, let b) = route.action {
                status = s
                body = b ?? ""
            }
            out.requestHeaders = req
            out.newURI = newURI(redirect, req)
            out.responseCode = status
            // The local reply: status, and a text/plain body when there is one.
            var resp = HTTPHeaderMap([(":status", String(status))])
            if !body.isEmpty {
                resp.add("content-length", String(body.utf8.count))
                resp.add("content-type", "text/plain")
            }
            for level in parsers { apply(level.response, to: &resp, unsupported: &out.unsupported) }
            out.responseHeaders = resp
        case .nonForwarding:
            break
        default:
            for level in parsers { apply(level.request, to: &req, unsupported: &out.unsupported) }
            // Host rewrite.
            var hostname: String?
            if let h = route.notes.hostRewrite, !h.isEmpty {
                hostname = h
            } else if let name = route.notes.hostRewriteHeader {
                hostname = req.first(name)
            }
            if route.notes.other.contains(where: { $0.hasPrefix("host_rewrite_path_regex") || $0 == "auto_host_rewrite" }) {
                out.unsupported.append("host rewrite from the path or the upstream host")
            }
            if let hostname, !hostname.isEmpty {
                if let old = req.first(":authority"), !old.isEmpty { req.set("x-envoy-original-host", old) }
                req.set(":authority", hostname)
            }
            // Path rewrite.
            if let p = rewrittenPath(
                route, req, prefixRewrite: route.notes.prefixRewrite, regexRewrite: route.notes.regexRewrite,
                unsupported: &out.unsupported)
            {
                req.set("x-envoy-original-path", req.first(":path") ?? "")
                req.set(":path", p)
            }
            if route.notes.other.contains("path_rewrite_policy") { out.unsupported.append("path_rewrite_policy") }
            out.requestHeaders = req
            var resp = responseHeaders
            for level in parsers { apply(level.response, to: &resp, unsupported: &out.unsupported) }
            out.responseHeaders = resp
        }
        return out
    }

    struct MutationLevel {
        var request: IRHeaderMutation
        var response: IRHeaderMutation
    }

    /// Envoy's `getHeaderParsers`: by default the route's mutations apply first and
    /// the route configuration's last (so the most general wins).
    static func headerLevels(_ t: IRRouteTable, _ vh: IRVirtualHost, _ r: IRRoute, specificityAscend: Bool) -> [MutationLevel] {
        let levels = [
            MutationLevel(request: t.requestHeaders, response: t.responseHeaders),
            MutationLevel(request: vh.requestHeaders, response: vh.responseHeaders),
            MutationLevel(request: r.requestHeaders, response: r.responseHeaders),
        ]
        return specificityAscend ? levels : levels.reversed()
    }

    /// `HeaderParser::evaluateHeaders`: removals, then overwrites, then appends.
    static func apply(_ m: IRHeaderMutation, to headers: inout HTTPHeaderMap, unsupported: inout [String]) {
        for name in m.remove { headers.remove(name) }
        var overwrite: [(String, String)] = []
        var append: [(String, String)] = []
        for a in m.add {
            guard let value = literalHeaderValue(a.value) else {
                unsupported.append("header value formatter in \(a.key)")
                continue
            }
            if value.isEmpty && !a.keepEmptyValue { continue }
            switch a.action {
            case .appendIfExistsOrAdd: append.append((a.key, value))
            case .addIfAbsent: if !headers.contains(a.key) { append.append((a.key, value)) }
            case .overwriteIfExists: if headers.contains(a.key) { overwrite.append((a.key, value)) }
            case .overwriteIfExistsOrAdd: overwrite.append((a.key, value))
            }
        }
        for (k, v) in overwrite { headers.set(k, v) }
        for (k, v) in append { headers.add(k, v) }
    }

    /// A header value without substitution commands (`%%` is a literal `%`); nil
    /// when it uses the formatter.
    static func literalHeaderValue(_ v: String) -> String? {
        guard v.contains("%") else { return v }
        var out = ""
        var it = v.makeIterator()
        while let c = it.next() {
            if c == "%" {
                guard it.next() == "%" else { return nil }
            }
            out.append(c)
        }
        return out
    }

    /// The part of the path a route matched, for prefix rewriting.
    static func matchedPath(_ route: IRRoute, _ path: String) -> [UInt8] {
        switch route.match.path {
        case .prefix(let p), .exact(let p), .separatedPrefix(let p): return Array(p.utf8)
        case .regex: return Array(removeQueryAndFragment(path).utf8)
        }
    }

    /// `rewritePathByPrefixOrRegex`: nil when there is nothing to rewrite.
    static func rewrittenPath(
        _ route: IRRoute, _ headers: HTTPHeaderMap, prefixRewrite: String?, regexRewrite: IRRegexRewrite?,
        unsupported: inout [String]
    ) -> String? {
        let path = Array((headers.first(":path") ?? "").utf8)
        if let pr = prefixRewrite, !pr.isEmpty {
            let matched = matchedPath(route, String(decoding: path, as: UTF8.self))
            guard matched.count <= path.count else { return nil }
            return pr + String(decoding: path[matched.count...], as: UTF8.self)
        }
        if let rr = regexRewrite {
            let pathOnly = Array(removeQueryAndFragment(String(decoding: path, as: UTF8.self)).utf8)
            guard let replaced = regexReplaceAll(rr, String(decoding: pathOnly, as: UTF8.self)) else {
                unsupported.append("regex_rewrite \(rr.pattern)")
                return nil
            }
            if replaced.isEmpty { return nil }
            return replaced + String(decoding: path[pathOnly.count...], as: UTF8.self)
        }
        return nil
    }

    /// RE2::GlobalReplace with `\N` groups, through ICU (the syntax both share);
    /// nil when the pattern is not one the interpreter supports.
    static func regexReplaceAll(_ r: IRRegexRewrite, _ s: String) -> String? {
        guard case .success = RegexCache.compile(r.pattern),
            let re = try? NSRegularExpression(pattern: r.pattern)
        else { return nil }
        var template = ""
        var it = r.substitution.makeIterator()
        while let c = it.next() {
            if c == "\\" {
                guard let n = it.next() else { return nil }
                if n.isNumber { template += "$\(n)" } else if n == "\\" { template += "\\\\" } else { return nil }
            } else if c == "$" {
                template += "\\$"
            } else {
                template.append(c)
            }
        }
        return re.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: template)
    }

    /// `Http::Utility::newUri`: the URL a direct response (redirect) reports.
    public static func newURI(_ redirect: IRRedirect?, _ headers: HTTPHeaderMap) -> String {
        let scheme: String
        if let s = redirect?.scheme, !s.isEmpty {
            scheme = s
        } else {
            scheme = headers.first("x-forwarded-proto") ?? ""
        }
        let port = redirect?.port.map { ":\($0)" } ?? ""
        let host: String
        if let h = redirect?.host, !h.isEmpty {
            host = h
        } else {
            host = processRequestHost(headers, newScheme: scheme, newPort: port)
        }
        let current = Array((headers.first(":path") ?? "").utf8)
        var path: [UInt8]
        let redirectPath = redirect?.path.map { Array($0.utf8) } ?? []
        let pathHasQuery = redirectPath.contains(UInt8(ascii: "?"))
        if !redirectPath.isEmpty {
            if pathHasQuery {
                path = redirectPath
            } else if let q = current.firstIndex(of: UInt8(ascii: "?")) {
                path = redirectPath + current[q...]
            } else {
                path = redirectPath
            }
        } else {
            path = current
        }
        if path.first != UInt8(ascii: "/") { path = [UInt8(ascii: "/")] + path }
        if !pathHasQuery, redirect?.stripQuery == true, let q = path.firstIndex(of: UInt8(ascii: "?")) {
            path = Array(path[..<q])
        }
        return "\(scheme)://\(host)\(port)\(String(decoding: path, as: UTF8.self))"
    }

    /// Drops the request's port when the redirect changes the port, or changes the
    /// scheme away from one whose default port the request named.
    static func processRequestHost(_ headers: HTTPHeaderMap, newScheme: String, newPort: String) -> String {
        let host = Array((headers.first(":authority") ?? "").utf8)
        guard !host.isEmpty else { return "" }
        var end: Int?
        if host[0] == UInt8(ascii: "[") {
            // IPv6 literal: the port follows "]:".
            if let i = lastIndex(of: Array("]:".utf8), in: host) { end = i + 1 }
        } else {
            end = host.lastIndex(of: UInt8(ascii: ":"))
        }
        if let end {
            let port = String(decoding: host[end...], as: UTF8.self)
            let proto = headers.first("x-forwarded-proto") ?? ""
            var remove = !newPort.isEmpty
            if newScheme != proto {
                remove = remove || (proto == "https" && port == ":443")
                remove = remove || (proto == "http" && port == ":80")
            }
            if remove { return String(decoding: host[..<end], as: UTF8.self) }
        }
        return String(decoding: host, as: UTF8.self)
    }

    static func lastIndex(of needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in stride(from: hay.count - needle.count, through: 0, by: -1) where Array(hay[i..<(i + needle.count)]) == needle {
            return i
        }
        return nil
    }

    /// The virtual cluster a request counts under: the first whose headers match,
    /// else "other" when the virtual host has any (Envoy's catch-all).
    public static func virtualCluster(_ vh: IRVirtualHost, _ headers: HTTPHeaderMap) -> String? {
        for vc in vh.virtualClusters where vc.headers.allSatisfy({ matches($0, headers) }) { return vc.name }
        return vh.virtualClusters.isEmpty ? nil : "other"
    }
}
