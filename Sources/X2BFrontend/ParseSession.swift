import Foundation
import SwiftProtobuf
import X2BDiagnostics

/// Collects the resources and diagnostics of one input while its shape is walked.
///
/// Paths are written like `configs[1].dynamic_active_clusters[3]`; origins and
/// diagnostic paths are `"<source>: <path>"`.
public final class ParseSession {
    let source: String
    /// Resource kind suggested by the file name (`x.listeners.yaml`, `lds.yaml`).
    let fileHint: ResourceKind?
    /// Whether the tree came from YAML (plain scalars may need re-typing).
    var fromYAML = false
    var snapshot = XDSSnapshot()

    private var aggregated: [String: (index: Int, count: Int)] = [:]

    init(source: String) {
        self.source = source
        self.fileHint = ParseSession.hint(forFileName: source)
    }

    static func hint(forFileName name: String) -> ResourceKind? {
        let base = (name as NSString).lastPathComponent.lowercased()
        let parts = base.split(separator: ".").map(String.init)
        for p in parts.dropLast() {
            switch p {
            case "listeners", "listener", "lds": return .listener
            case "routes", "route", "rds", "routeconfigurations": return .routeConfiguration
            case "clusters", "cluster", "cds": return .cluster
            case "endpoints", "endpoint", "eds", "clusterloadassignments": return .loadAssignment
            default: continue
            }
        }
        return nil
    }

    // MARK: Diagnostics

    func location(_ path: String) -> String {
        path.isEmpty ? source : "\(source): \(path)"
    }

    func diag(_ id: DiagnosticID, _ severity: Diagnostic.Severity? = nil, path: String, _ message: String) {
        snapshot.diagnostics.append(Diagnostic(id, severity, path: location(path), message))
    }

    /// A diagnostic reported once per `key`; repeats are counted in its message.
    func diagOnce(key: String, _ id: DiagnosticID, _ severity: Diagnostic.Severity? = nil, path: String, _ message: String) {
        if let a = aggregated[key] {
            aggregated[key] = (a.index, a.count + 1)
            return
        }
        aggregated[key] = (snapshot.diagnostics.count, 1)
        diag(id, severity, path: path, message)
    }

    func finish() -> XDSSnapshot {
        for (_, a) in aggregated where a.count > 1 {
            snapshot.diagnostics[a.index].message += " (\(a.count) occurrences; first shown)"
        }
        aggregated = [:]
        return snapshot
    }

    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    static func join(_ path: String, index: Int) -> String { "\(path)[\(index)]" }

    static func join(_ path: String, mapKey: String) -> String {
        "\(path)[\"\(mapKey)\"]"
    }
}

// MARK: - Type URLs

extension ParseSession {
    /// Canonical type name of a type URL, with legacy v2 names mapped to v3
    /// (reported once per legacy type).
    func canonicalTypeName(_ url: String, path: String) -> String {
        let name = XDSTypes.name(fromURL: url)
        if let v3 = XDSTypes.legacyNames[name] {
            diagOnce(
                key: "legacy:\(name)", .legacyTypeURL, path: path,
                "legacy type URL \(name) read as \(v3)")
            return v3
        }
        return name
    }
}

// MARK: - Walking JSON shapes

extension ParseSession {
    /// Walks one document (a JSON file or one YAML document).
    func walkDocument(_ value: JSONValue, path: String) {
        switch value {
        case .null:
            diag(.emptyInput, path: path, "empty document")
        case .array(let items):
            walkResourceList(items, path: path, defaultKind: fileHint)
        case .object(let o):
            walkTopObject(o, path: path)
        default:
            diag(.unknownShape, path: path, "expected a mapping or a list at the top level, found \(value.kindName)")
        }
    }

    private func walkTopObject(_ o: JSONObject, path: String) {
        if o.isEmpty { return }
        if case .string(let url)? = o["@type"] {
            walkTyped(o, typeURL: url, path: path)
            return
        }
        if case .array(let configs)? = o.field("configs") {
            walkConfigDump(configs, path: ParseSession.join(path, o.fieldKey("configs")!))
            return
        }
        // A wrapper named `xds`: egctl's `{"xds": {"ns/name": dump}}` (a config dump or one
        // typed section of one; `egctl x translate` puts the Gateway API input it translated
        // beside it) and Kuma's inspect output `{"diff": [...], "xds": {typeURL: {name:
        // resource}}}` (the diff is between two such outputs).
        if case .object(let x)? = o["xds"], !x.isEmpty,
            o.keys.allSatisfy({ $0 == "xds" || $0 == "diff" }) || ParseSession.isDumpMap(.object(x), depth: 1)
        {
            let beside = o.entries.filter { e in
                switch e.value {
                case _ where e.key == "xds": false
                case .array(let a): !a.isEmpty
                case .object(let m): !m.isEmpty
                case .null: false
                default: true
                }
            }.map(\.key)
            if !beside.isEmpty {
                diag(
                    .skippedContent, path: path,
                    "skipped \(beside.joined(separator: ", ")) beside `xds` (the input it was translated from, or a diff between outputs): not routing input")
            }
            walkDocument(.object(x), path: ParseSession.join(path, "xds"))
            return
        }
        if o.hasField("static_resources") || o.hasField("dynamic_resources") {
            walkBootstrap(o, path: path)
            return
        }
        if let resources = o.field("resources") {
            let rpath = ParseSession.join(path, o.fieldKey("resources")!)
            var kind: ResourceKind? = fileHint
            if case .string(let url)? = o.field("type_url") {
                let name = canonicalTypeName(url, path: path)
                if let k = XDSTypes.kind(ofTypeName: name) {
                    kind = k
                }
            }
            switch resources {
            case .array(let items): walkResourceList(items, path: rpath, defaultKind: kind)
            case .object(let single): walkResourceList([.object(single)], path: rpath, defaultKind: kind)
            case .null: break
            default: diag(.unknownShape, path: rpath, "`resources` should be a list, found \(resources.kindName)")
            }
            return
        }
        if o.entries.contains(where: { XDSTypes.name(fromURL: $0.key).contains(".") && $0.key.contains("/") }) {
            walkTypeURLMap(o, path: path)
            return
        }
        if let kinds = perTypeKinds(o) {
            walkPerTypeMap(o, kinds: kinds, path: path)
            return
        }
        // Dumps by key: egctl's `{"ns/name": dump}` inside its `xds` wrapper, and its
        // `{namespace: {pod: dump}}` without one.
        if o.entries.allSatisfy({ ParseSession.isDumpMap($0.value, depth: 1) }) {
            for e in o.entries {
                walkDocument(e.value, path: ParseSession.join(path, mapKey: e.key))
            }
            return
        }
        if case .array(let tests)? = o["tests"], tests.contains(where: { $0.object?.field("test_name") != nil }) {
            diag(
                .unknownShape, path: path,
                "this is an Envoy router-check test file (tests with expected routes), not an xDS snapshot")
            return
        }
        // The file's name decides only for an object that names itself like a resource: a
        // wrapper this reader does not know would otherwise become one unnamed, skipped
        // resource and the input would "compile" with nothing in it.
        if let kind = inferKind(o) ?? (o.hasField("name") || o.hasField("cluster_name") ? fileHint : nil) {
            addResource(kind, o, path: path)
            return
        }
        let keys = o.keys.prefix(8).joined(separator: ", ")
        diag(
            .unknownShape, path: path,
            "unrecognised input: not a config dump, bootstrap, discovery response, resource list or resource (keys: \(keys))")
    }

    /// A config dump (`configs`), a typed object (`@type`: a dump section, a resource),
    /// or, `depth` levels down, a mapping of nothing but such.
    static func isDumpMap(_ v: JSONValue, depth: Int) -> Bool {
        guard case .object(let o) = v, !o.isEmpty else { return false }
        if case .string? = o["@type"] { return true }
        if case .array? = o.field("configs") { return true }
        return depth > 0 && o.entries.allSatisfy { isDumpMap($0.value, depth: depth - 1) }
    }

    /// A list of resources: typed (`@type`), wrapped (`{name, resource}`), or
    /// bare (kind from content, else `defaultKind`).
    func walkResourceList(_ items: [JSONValue], path: String, defaultKind: ResourceKind?) {
        for (i, item) in items.enumerated() {
            let ipath = ParseSession.join(path, index: i)
            guard case .object(let o) = item else {
                diag(.invalidResource, path: ipath, "expected a resource (a mapping), found \(item.kindName)")
                continue
            }
            walkResourceItem(o, path: ipath, defaultKind: defaultKind)
        }
    }

    func walkResourceItem(_ o: JSONObject, path: String, defaultKind: ResourceKind?) {
        if case .string(let url)? = o["@type"] {
            walkTyped(o, typeURL: url, path: path)
            return
        }
        // Kuma / delta-xDS Resource wrapper: {name, version, resource: {...}}.
        if case .object(let inner)? = o["resource"], o.count <= 6,
            o.entries.allSatisfy({ ["name", "version", "resource", "aliases", "ttl", "metadata", "cache_control", "cacheControl"].contains($0.key) })
        {
            walkResourceItem(inner, path: ParseSession.join(path, "resource"), defaultKind: defaultKind)
            return
        }
        if o.isEmpty {
            diag(.invalidResource, path: path, "empty resource")
            return
        }
        let inferred = inferKind(o)
        guard let kind = inferred ?? defaultKind else {
            let keys = o.keys.prefix(8).joined(separator: ", ")
            diag(.unknownShape, path: path, "cannot tell the resource type (no @type; keys: \(keys))")
            return
        }
        addResource(kind, o, path: path)
    }

    /// A typed object (one with `@type`), given to the shape rules (DumpShape.swift).
    func walkTyped(_ o: JSONObject, typeURL: String, path: String) {
        var body = o
        body["@type"] = nil
        walkTyped(url: typeURL, .json(body), path: path)
    }

    func walkJSONDiscoveryResponse(_ body: JSONObject, path: String) {
        var kind: ResourceKind? = nil
        if case .string(let url)? = body.field("type_url") {
            kind = XDSTypes.kind(ofTypeName: canonicalTypeName(url, path: path))
        }
        if case .array(let items)? = body.field("resources") {
            walkResourceList(items, path: ParseSession.join(path, "resources"), defaultKind: kind)
        }
    }

    func skipTyped(_ name: String, path: String) {
        if let what = XDSTypes.skippedDumps[name] {
            diag(.skippedContent, path: path, "skipped \(what) dump (not routing input)")
        } else if let what = XDSTypes.nonRoutingResources[name] {
            diagOnce(key: "nonrouting:\(name)", .skippedContent, path: path, "skipped \(what) (\(name)): not routing input")
        } else {
            diagOnce(
                key: "unknowntype:\(name)", .skippedContent, .warning, path: path,
                "skipped content of unknown type \(name)")
        }
    }

    // MARK: Config dumps (the JSON adapter of DumpShape.swift)

    private func walkConfigDump(_ configs: [JSONValue], path: String) {
        for section in jsonConfigDumpSections(configs, path: path) {
            walkTyped(url: section.url, section.content, path: section.path)
        }
    }

    func jsonConfigDumpSections(_ o: JSONObject, path: String) -> [(url: String, content: TypedContent, path: String)] {
        guard case .array(let configs)? = o.field("configs") else { return [] }
        return jsonConfigDumpSections(configs, path: ParseSession.join(path, "configs"))
    }

    private func jsonConfigDumpSections(_ configs: [JSONValue], path: String) -> [(url: String, content: TypedContent, path: String)] {
        var out: [(url: String, content: TypedContent, path: String)] = []
        for (i, c) in configs.enumerated() {
            let cpath = ParseSession.join(path, index: i)
            guard case .object(let o) = c else {
                diag(.invalidResource, path: cpath, "expected a typed config dump section, found \(c.kindName)")
                continue
            }
            guard case .string(let url)? = o["@type"] else {
                diag(.invalidResource, path: cpath, "config dump section without @type")
                continue
            }
            var body = o
            body["@type"] = nil
            out.append((url, .json(body), cpath))
        }
        return out
    }

    private func list(_ o: JSONObject, _ field: String, path: String) -> [(JSONObject, String)] {
        guard let key = o.fieldKey(field), let v = o[key] else { return [] }
        let lpath = ParseSession.join(path, key)
        guard case .array(let items) = v else {
            if case .null = v { return [] }
            diag(.invalidResource, path: lpath, "expected a list, found \(v.kindName)")
            return []
        }
        var out: [(JSONObject, String)] = []
        for (i, item) in items.enumerated() {
            let ipath = ParseSession.join(lpath, index: i)
            if case .object(let io) = item {
                out.append((io, ipath))
            } else {
                diag(.invalidResource, path: ipath, "expected a mapping, found \(item.kindName)")
            }
        }
        return out
    }

    /// One dump entry holding a resource in `anyField` (typed or not).
    func jsonDumpEntry(_ entry: JSONObject, anyField: String, path: String) -> DumpEntry {
        var out = DumpEntry(path: path, resource: nil)
        if case .object(let err)? = entry.field("error_state") {
            out.errorDetails = err.field("details")?.string ?? "no details"
        }
        if case .object(let r)? = entry.field(anyField) {
            out.name = r.field("name")?.string
            if case .string(let url)? = r["@type"] {
                var body = r
                body["@type"] = nil
                out.resource = .typed(url: url, .json(body))
            } else {
                out.resource = .untyped(r)
            }
        }
        return out
    }

    /// The entries of the listed sections, in order.
    func jsonEntries(_ o: JSONObject, _ sections: [String], anyField: String, path: String) -> [DumpEntry] {
        sections.flatMap { list(o, $0, path: path).map { jsonDumpEntry($0, anyField: anyField, path: $1) } }
    }

    func jsonListenersDump(_ o: JSONObject, path: String) -> ListenersDump {
        ListenersDump(
            statics: jsonEntries(o, ["static_listeners"], anyField: "listener", path: path),
            dynamics: list(o, "dynamic_listeners", path: path).map { jsonDynamicListener($0, path: $1) })
    }

    func jsonDynamicListener(_ e: JSONObject, path: String) -> DynamicListenerEntry {
        func state(_ field: String, path: String) -> DumpEntry? {
            guard case .object(let s)? = e.field(field) else { return nil }
            return jsonDumpEntry(s, anyField: "listener", path: path)
        }
        var errorDetails: String? = nil
        if case .object(let err)? = e.field("error_state") {
            errorDetails = err.field("details")?.string ?? "no details"
        }
        return DynamicListenerEntry(
            path: path, name: e.field("name")?.string ?? "",
            active: state("active_state", path: path),
            warming: state("warming_state", path: ParseSession.join(path, "warming_state")),
            hasWarmingState: e.hasField("warming_state"), isDraining: e.hasField("draining_state"),
            errorDetails: errorDetails)
    }

    func jsonClustersDump(_ o: JSONObject, path: String) -> ClustersDump {
        ClustersDump(
            statics: jsonEntries(o, ["static_clusters"], anyField: "cluster", path: path),
            active: jsonEntries(o, ["dynamic_active_clusters"], anyField: "cluster", path: path),
            warming: jsonEntries(o, ["dynamic_warming_clusters"], anyField: "cluster", path: path))
    }

    // MARK: Bootstrap

    private func walkBootstrap(_ o: JSONObject, path: String) {
        if let key = o.fieldKey("static_resources") {
            let spath = ParseSession.join(path, key)
            switch o[key]! {
            case .object(let s):
                for (field, kind) in [("listeners", ResourceKind.listener), ("clusters", .cluster)] {
                    for (r, p) in list(s, field, path: spath) {
                        if case .string(let url)? = r["@type"] {
                            walkTyped(r, typeURL: url, path: p)
                        } else {
                            addResource(kind, r, path: p)
                        }
                    }
                }
                if let sk = s.fieldKey("secrets"), case .array(let secrets)? = s[sk], !secrets.isEmpty {
                    diag(.skippedContent, path: ParseSession.join(spath, sk), "skipped \(secrets.count) secret(s): not routing input")
                }
            case .null:
                break
            default:
                diag(.invalidResource, path: spath, "`static_resources` should be a mapping")
            }
        }
        if let key = o.fieldKey("dynamic_resources") {
            let files = Self.configSourceFiles(o[key])
            diag(
                .skippedContent, path: ParseSession.join(path, key),
                files.isEmpty
                    ? "dynamic_resources ignored: xDS sources are not fetched; give the snapshot's resources as input (or `xds2bpf fetch` them from the control plane)"
                    : "dynamic_resources ignored: Envoy reads \(files.map { "\($0.source) from \($0.path)" }.joined(separator: ", ")) at run time; give those files as inputs too"
            )
        }
    }

    /// The files a bootstrap's `lds_config` / `cds_config` name (`path_config_source.path`,
    /// or the deprecated `path`), for the diagnostic that says what to give instead.
    static func configSourceFiles(_ v: JSONValue?) -> [(source: String, path: String)] {
        guard case .object(let d)? = v else { return [] }
        var out: [(String, String)] = []
        for (field, what) in [("lds_config", "listeners"), ("cds_config", "clusters")] {
            guard let k = d.fieldKey(field), case .object(let cs)? = d[k] else { continue }
            if let pk = cs.fieldKey("path_config_source"), case .object(let pcs)? = cs[pk], let fk = pcs.fieldKey("path"),
                case .string(let file)? = pcs[fk]
            {
                out.append((what, file))
            } else if let fk = cs.fieldKey("path"), case .string(let file)? = cs[fk] {
                out.append((what, file))
            }
        }
        return out
    }

    // MARK: Maps keyed by type

    private func walkTypeURLMap(_ o: JSONObject, path: String) {
        for e in o.entries {
            let epath = ParseSession.join(path, mapKey: e.key)
            let name = canonicalTypeName(e.key, path: epath)
            let kind = XDSTypes.kind(ofTypeName: name)
            guard let kind else {
                skipTyped(name, path: epath)
                continue
            }
            switch e.value {
            case .object(let byName):
                for r in byName.entries {
                    let rpath = ParseSession.join(epath, mapKey: r.key)
                    guard case .object(let ro) = r.value else {
                        diag(.invalidResource, path: rpath, "expected a resource (a mapping), found \(r.value.kindName)")
                        continue
                    }
                    walkResourceItem(ro, path: rpath, defaultKind: kind)
                }
            case .array(let items):
                walkResourceList(items, path: epath, defaultKind: kind)
            case .null:
                break
            default:
                diag(.invalidResource, path: epath, "expected resources by name or a list, found \(e.value.kindName)")
            }
        }
    }

    private static func perTypeKey(_ key: String) -> ResourceKind?? {
        let k = key.lowercased().replacingOccurrences(of: "_", with: "")
        switch k {
        case "listeners", "lds": return .some(.listener)
        case "routes", "routeconfigs", "routeconfigurations", "rds": return .some(.routeConfiguration)
        case "clusters", "cds": return .some(.cluster)
        case "endpoints", "clusterloadassignments", "loadassignments", "eds": return .some(.loadAssignment)
        case "secrets", "runtimes", "scopedroutes", "extensionconfigs": return .some(nil)
        default: return nil
        }
    }

    /// `{Listeners: [...], Routes: [...]}` (kgateway) and similar: every key a
    /// resource type and every value a list.
    private func perTypeKinds(_ o: JSONObject) -> [String: ResourceKind?]? {
        var out: [String: ResourceKind?] = [:]
        for e in o.entries {
            guard let k = ParseSession.perTypeKey(e.key) else { return nil }
            switch e.value {
            case .array(let items):
                // `endpoints` of a ClusterLoadAssignment hold localities, not resources.
                if k == .loadAssignment, let first = items.first?.object,
                    ["lb_endpoints", "locality", "priority", "load_balancing_weight"].contains(where: { first.hasField($0) })
                {
                    return nil
                }
                out[e.key] = k
            case .null: out[e.key] = k
            default: return nil
            }
        }
        guard out.values.contains(where: { $0 != nil }) else { return nil }
        return out
    }

    private func walkPerTypeMap(_ o: JSONObject, kinds: [String: ResourceKind?], path: String) {
        for e in o.entries {
            let epath = ParseSession.join(path, e.key)
            guard case .array(let items) = e.value else { continue }
            guard let kind = kinds[e.key] ?? nil else {
                if !items.isEmpty {
                    diag(.skippedContent, path: epath, "skipped \(items.count) \(e.key): not routing input")
                }
                continue
            }
            walkResourceList(items, path: epath, defaultKind: kind)
        }
    }

    // MARK: Type inference

    private static let listenerKeys: Set<String> = [
        "filter_chains", "listener_filters", "default_filter_chain", "api_listener", "internal_listener",
        "use_original_dst", "bind_to_port", "traffic_direction", "udp_listener_config", "filter_chain_matcher",
        "additional_addresses", "listener_filters_timeout", "drain_type", "continue_on_listener_filters_timeout",
        "enable_reuse_port", "tcp_backlog_size", "transparent", "freebind", "address",
    ]
    private static let routeKeys: Set<String> = [
        "virtual_hosts", "vhds", "internal_only_headers", "validate_clusters", "ignore_port_in_host_matching",
        "max_direct_response_body_size_bytes", "cluster_specifier_plugins", "most_specific_header_mutations_wins",
        "ignore_path_parameters_in_path_matching", "vhost_header", "request_mirror_policies",
    ]
    private static let clusterKeys: Set<String> = [
        "type", "cluster_type", "lb_policy", "load_assignment", "connect_timeout", "eds_cluster_config",
        "circuit_breakers", "outlier_detection", "health_checks", "load_balancing_policy", "dns_lookup_family",
        "common_lb_config", "typed_extension_protocol_options", "lb_subset_config", "ring_hash_lb_config",
        "maglev_lb_config", "least_request_lb_config", "round_robin_lb_config", "original_dst_lb_config",
        "transport_socket", "upstream_connection_options", "ignore_health_on_host_removal", "dns_refresh_rate",
        "respect_dns_ttl", "http2_protocol_options", "http_protocol_options", "alt_stat_name",
        "transport_socket_matches", "upstream_bind_config", "dns_resolvers", "cleanup_interval",
        "close_connections_on_host_health_failure", "max_requests_per_connection", "wait_for_warm_on_init",
        "typed_dns_resolver_config", "upstream_config", "lrs_server", "preconnect_policy",
    ]
    private static let claKeys: Set<String> = ["cluster_name", "endpoints", "named_endpoints", "policy"]

    /// The resource kind suggested by an object's keys, or nil if unclear.
    func inferKind(_ o: JSONObject) -> ResourceKind? {
        var scores: [(ResourceKind, Int)] = [(.listener, 0), (.routeConfiguration, 0), (.cluster, 0), (.loadAssignment, 0)]
        for key in o.keys {
            let k = JSONObject.snakeCase(key)
            if ParseSession.listenerKeys.contains(k) { scores[0].1 += (k == "address" ? 1 : 2) }
            if ParseSession.routeKeys.contains(k) { scores[1].1 += 2 }
            if ParseSession.clusterKeys.contains(k) { scores[2].1 += 2 }
            if ParseSession.claKeys.contains(k) { scores[3].1 += 2 }
        }
        let best = scores.max { $0.1 < $1.1 }!
        guard best.1 > 0 else { return nil }
        if scores.filter({ $0.1 == best.1 }).count > 1 {
            if let h = fileHint, scores.contains(where: { $0.0 == h && $0.1 == best.1 }) { return h }
            return nil
        }
        return best.0
    }
}
