import Foundation
import SwiftProtobuf
import X2BProtos

/// The JSON adapter's decoding of one resource into its generated message.
///
/// Before decoding, the tree is normalised:
/// - legacy v2 type URLs are mapped to v3 (in nested typed configs too);
/// - a `filters`/`http_filters`/... element written as a mapping instead of a
///   one-element list becomes a list.
/// Then every `google.protobuf.Any` is decoded once, bottom-up, with
/// swift-protobuf's JSON decoder (see `JSONAnys`): a typed config whose type the
/// schema models holds its message; one it does not model (Istio stats,
/// wasm...) keeps its type URL with an empty value, as if the content had been
/// dropped, so later passes still see which extension was configured.
extension ParseSession {
    public static let jsonOptions: JSONDecodingOptions = {
        var o = JSONDecodingOptions()
        o.ignoreUnknownFields = true
        o.messageDepthLimit = 100
        return o
    }()

    /// For resources: unknown fields are dropped, as on the JSON path.
    static let binaryOptions: BinaryDecodingOptions = {
        var o = BinaryDecodingOptions()
        o.messageDepthLimit = 100
        o.discardUnknownFields = true
        return o
    }()

    /// For telling input shapes apart: unknown fields are kept and inspected.
    static let probeOptions: BinaryDecodingOptions = {
        var o = BinaryDecodingOptions()
        o.messageDepthLimit = 100
        return o
    }()

    func addResource(_ kind: ResourceKind, _ o: JSONObject, path: String) {
        _ = XDSTypes.registered
        var comps: [PathComponent] = []
        let value = normalize(.object(o), comps: &comps, base: path)
        switch kind {
        case .listener:
            if let m = decodeResource(Envoy_Config_Listener_V3_Listener.self, value, path: path) {
                snapshot.listeners.append(XDSResource(name: m.name, message: m, origin: location(path)))
            }
        case .routeConfiguration:
            if let m = decodeResource(Envoy_Config_Route_V3_RouteConfiguration.self, value, path: path) {
                snapshot.routeConfigurations.append(XDSResource(name: m.name, message: m, origin: location(path)))
            }
        case .cluster:
            if let m = decodeResource(Envoy_Config_Cluster_V3_Cluster.self, value, path: path) {
                snapshot.clusters.append(XDSResource(name: m.name, message: m, origin: location(path)))
            }
        case .loadAssignment:
            if let m = decodeResource(Envoy_Config_Endpoint_V3_ClusterLoadAssignment.self, value, path: path) {
                snapshot.loadAssignments.append(XDSResource(name: m.clusterName, message: m, origin: location(path)))
            }
        }
    }

    // MARK: Normalisation

    enum PathComponent {
        case key(String)
        case index(Int)
    }

    static func render(_ base: String, _ comps: [PathComponent]) -> String {
        var s = base
        for c in comps {
            switch c {
            case .key(let k): s = join(s, k)
            case .index(let i): s += "[\(i)]"
            }
        }
        return s
    }

    /// Keys holding a `google.protobuf.Any` in the modelled schema.
    private static let anyKeys: Set<String> = [
        "typed_config", "typedConfig", "default_config", "defaultConfig", "api_listener", "apiListener",
        "retry_policy_typed_config", "retryPolicyTypedConfig", "action",
    ]

    /// Repeated message fields an input may write as a single mapping, and a key
    /// that identifies such an element.
    private static let listKeys: [String: [String]] = [
        "filters": ["name", "typed_config", "typedConfig"],
        "http_filters": ["name", "typed_config", "typedConfig"],
        "httpFilters": ["name", "typed_config", "typedConfig"],
        "listener_filters": ["name", "typed_config", "typedConfig"],
        "listenerFilters": ["name", "typed_config", "typedConfig"],
        "filter_chains": ["filters", "filter_chain_match", "filterChainMatch"],
        "filterChains": ["filters", "filter_chain_match", "filterChainMatch"],
        "virtual_hosts": ["domains", "routes"],
        "virtualHosts": ["domains", "routes"],
        "routes": ["match"],
    ]

    /// Struct-valued fields: their content is data, not schema.
    static let structKeys: Set<String> = [
        "filter_metadata", "filterMetadata", "default_subset", "defaultSubset",
    ]

    func normalize(_ value: JSONValue, comps: inout [PathComponent], base: String) -> JSONValue {
        switch value {
        case .array(let items):
            var out = items
            for i in out.indices {
                comps.append(.index(i))
                out[i] = normalize(out[i], comps: &comps, base: base)
                comps.removeLast()
            }
            return .array(out)
        case .object(let o):
            if case .string(let url)? = o["@type"] {
                return normalizeAny(o, url: url, comps: &comps, base: base)
            }
            return .object(normalizeFields(o, comps: &comps, base: base))
        default:
            return value
        }
    }

    private func normalizeFields(_ o: JSONObject, comps: inout [PathComponent], base: String) -> JSONObject {
        var out = o
        var drop: [Int] = []
        for i in out.entries.indices {
            let key = out.entries[i].key
            var v = out.entries[i].value
            if ParseSession.structKeys.contains(key) { continue }
            if ParseSession.anyKeys.contains(key), case .object(let inner) = v, inner["@type"] == nil {
                if !inner.isEmpty, key != "action" {
                    comps.append(.key(key))
                    diag(
                        .invalidResource, .warning, path: ParseSession.render(base, comps),
                        "\(key) without @type ignored (its type cannot be known)")
                    comps.removeLast()
                    drop.append(i)
                }
                continue
            }
            if case .object(let d) = v, let text = ParseSession.durationText(d) {
                // {seconds, nanos} written for a Duration: proto3 JSON wants "1.5s".
                out.entries[i].value = .string(text)
                continue
            }
            if let markers = ParseSession.listKeys[key], case .object(let element) = v,
                markers.contains(where: { element[$0] != nil })
            {
                comps.append(.key(key))
                diagOnce(
                    key: "listnorm:\(key)", .normalizedInput, path: ParseSession.render(base, comps),
                    "`\(key)` written as a single mapping; read as a one-element list")
                comps.removeLast()
                v = .array([v])
            }
            comps.append(.key(key))
            out.entries[i].value = normalize(v, comps: &comps, base: base)
            comps.removeLast()
        }
        for i in drop.reversed() { out.entries.remove(at: i) }
        return out
    }

    private func normalizeAny(
        _ o: JSONObject, url rawURL: String, comps: inout [PathComponent], base: String
    ) -> JSONValue {
        var url = rawURL
        if !url.contains("/") { url = XDSTypes.prefix + url }
        let original = XDSTypes.name(fromURL: url)
        let name = canonicalTypeName(url, path: ParseSession.render(base, comps))
        if name != original { url = XDSTypes.url(name) }
        var out = o
        out["@type"] = .string(url)
        if XDSTypes.isKnown(typeURL: url) {
            if name.hasPrefix("google.protobuf.") || url == XDSTypes.typedStructURL || url == XDSTypes.udpaTypedStructURL {
                return .object(out)
            }
            var body = out
            body["@type"] = nil
            var fields = normalizeFields(body, comps: &comps, base: base)
            fields.entries.insert(("@type", .string(url)), at: 0)
            return .object(fields)
        }
        // Not modelled: JSONAnys keeps the type URL and drops the content.
        return .object(out)
    }

    /// "S.NNNNNNNNNs" for an object holding only integer `seconds`/`nanos`.
    static func durationText(_ o: JSONObject) -> String? {
        guard !o.isEmpty, o.count <= 2, o.keys.allSatisfy({ $0 == "seconds" || $0 == "nanos" }) else { return nil }
        func int(_ v: JSONValue?) -> Int64? {
            switch v {
            case nil: return 0
            case .number(let n)?: return Int64(n)
            case .string(let s)?: return Int64(s)
            default: return nil
            }
        }
        guard let secs = int(o["seconds"]), let nanos = int(o["nanos"]),
            nanos > -1_000_000_000, nanos < 1_000_000_000,
            secs >= -315_576_000_000, secs <= 315_576_000_000
        else { return nil }
        if secs != 0, nanos != 0, (secs < 0) != (nanos < 0) { return nil }
        let negative = secs < 0 || nanos < 0
        let frac = String(format: "%09lld", abs(nanos))
        return (negative ? "-" : "") + "\(abs(secs)).\(frac)s"
    }

    static func typedStruct(url: String, content: JSONObject) -> JSONValue {
        .object(
            JSONObject([
                ("@type", .string(XDSTypes.typedStructURL)),
                ("type_url", .string(url)),
                ("value", .object(content)),
            ]))
    }

    // MARK: Decoding

    func decodeResource<M: Message>(_ type: M.Type, _ value: JSONValue, path: String) -> M? {
        var anys = JSONAnys(session: self)
        var comps: [PathComponent] = []
        let stubbed = anys.replaceAnys(value, comps: &comps, base: path)
        let first: any Error
        do {
            var m = try M(jsonUTF8Bytes: stubbed.jsonBytes(), options: ParseSession.jsonOptions)
            anys.fill(&m)
            return m
        } catch {
            first = error
        }
        if fromYAML {
            // YAML plain scalars such as `80` are numbers; a string field may
            // have meant the text. Numbers are accepted quoted by proto3 JSON.
            let alt = ParseSession.quoteNumbers(stubbed)
            if var m = try? M(jsonUTF8Bytes: alt.jsonBytes(), options: ParseSession.jsonOptions) {
                anys.fill(&m)
                return m
            }
        }
        let (where_, error) = ParseSession.locateFailure(M.self, stubbed)
        let detail = (where_.isEmpty ? "" : "at \(where_): ") + ParseSession.describe(error ?? first)
        diag(.invalidResource, path: path, "cannot decode \(M.protoMessageName): \(detail)")
        return nil
    }

    /// Narrows a decoding failure down to the innermost field or list element
    /// that fails on its own (siblings removed), e.g. `virtual_hosts[0].routes[2].route.timeout`.
    static func locateFailure<M: Message>(_ type: M.Type, _ root: JSONValue) -> (String, (any Error)?) {
        func fails(_ v: JSONValue) -> (any Error)? {
            do {
                _ = try M(jsonUTF8Bytes: v.jsonBytes(), options: jsonOptions)
                return nil
            } catch {
                return error
            }
        }
        var comps: [PathComponent] = []
        var current = root
        var lastError: (any Error)? = nil
        var budget = 200
        search: while budget > 0 {
            switch current {
            case .object(let o):
                for e in o.entries {
                    budget -= 1
                    let candidate = replacing(root, at: comps, with: .object(JSONObject([e])))
                    if let err = fails(candidate) {
                        comps.append(.key(e.key))
                        current = e.value
                        lastError = err
                        continue search
                    }
                }
                break search
            case .array(let items):
                for (i, item) in items.enumerated() {
                    budget -= 1
                    let candidate = replacing(root, at: comps, with: .array([item]))
                    if let err = fails(candidate) {
                        comps.append(.index(i))
                        current = item
                        lastError = err
                        continue search
                    }
                }
                break search
            default:
                break search
            }
        }
        return (render("", comps), lastError)
    }

    /// `root` with the value at `comps` replaced; list indices address the
    /// original lists, which are narrowed to the one element on the way.
    private static func replacing(_ root: JSONValue, at comps: [PathComponent], with value: JSONValue) -> JSONValue {
        guard let first = comps.first else { return value }
        let rest = Array(comps.dropFirst())
        switch (root, first) {
        case (.object(let o), .key(let k)):
            guard let v = o[k] else { return root }
            return .object(JSONObject([(k, replacing(v, at: rest, with: value))]))
        case (.array(let items), .index(let i)) where i < items.count:
            return .array([replacing(items[i], at: rest, with: value)])
        default:
            return root
        }
    }

    static func quoteNumbers(_ value: JSONValue) -> JSONValue {
        switch value {
        case .number(let n): return .string(n)
        case .array(let items): return .array(items.map(quoteNumbers))
        case .object(let o):
            var out = o
            for i in out.entries.indices { out.entries[i].value = quoteNumbers(out.entries[i].value) }
            return .object(out)
        default: return value
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case let e as JSONDecodingError:
            switch e {
            case .malformedNumber: return "malformed number"
            case .malformedString: return "malformed string"
            case .malformedBool: return "expected true or false"
            case .malformedDuration: return "malformed duration (expected e.g. \"1.5s\")"
            case .malformedTimestamp: return "malformed timestamp"
            case .malformedMap: return "malformed map"
            case .numberRange: return "number out of range"
            case .unrecognizedEnumValue: return "unknown enum value"
            case .conflictingOneOf: return "two fields of the same oneof are set"
            case .messageDepthLimit: return "nesting deeper than the decoder's limit"
            case .truncated: return "truncated"
            case .leadingZero: return "number with a leading zero"
            case .unquotedMapKey: return "unquoted map key"
            case .schemaMismatch: return "value of the wrong type"
            case .missingFieldNames: return "missing field names"
            case .invalidUTF8: return "invalid UTF-8"
            default: return "\(e)"
            }
        case let e as BinaryDecodingError:
            return "\(e)"
        default:
            return YAMLReader.truncate("\(error)", limit: 200)
        }
    }
}
