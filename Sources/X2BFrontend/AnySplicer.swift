import Foundation
import SwiftProtobuf

/// Gives every `google.protobuf.Any` of a JSON resource binary content, in
/// linear time.
///
/// swift-protobuf keeps an `Any` decoded from JSON as JSON text and re-decodes
/// it whenever the enclosing message is measured or written, so serialising
/// nested typed configs (listener -> HTTP connection manager -> filter configs)
/// costs exponentially in the nesting depth. Instead, each `Any` object is
/// decoded once, bottom-up: its content becomes binary, and in the enclosing
/// JSON it is replaced by a *marker*, a `google.protobuf.Value` Any
/// whose binary encoding has exactly the length of the real `Any` encoding and
/// carries a unique id. After the enclosing message is serialised, markers are
/// found in its bytes and overwritten by the real encodings; since lengths are
/// equal, every enclosing length prefix stays valid.
///
/// An `Any` of a type the schema does not model keeps its type URL and gets an
/// empty value. Decoding each `Any` on its own also validates typed configs
/// eagerly: an invalid one is reported with its exact path and carried as an
/// `xds.type.v3.TypedStruct` naming its type.
struct AnySplicer {
    let session: ParseSession
    private var real: [[UInt8]] = []
    private let tag: [UInt8]

    private static let urlTail = Array("/google.protobuf.Value".utf8)

    init(session: ParseSession) {
        self.session = session
        self.tag = session.markerTag
    }

    // MARK: Tree pass

    mutating func encodeAnys(
        _ value: JSONValue, comps: inout [ParseSession.PathComponent], base: String
    ) -> JSONValue {
        switch value {
        case .array(let items):
            var out = items
            for i in out.indices {
                comps.append(.index(i))
                out[i] = encodeAnys(out[i], comps: &comps, base: base)
                comps.removeLast()
            }
            return .array(out)
        case .object(let o):
            if case .string(let url)? = o["@type"] {
                return encodeAny(o, url: url, comps: &comps, base: base)
            }
            return .object(encodeFields(o, comps: &comps, base: base))
        default:
            return value
        }
    }

    private mutating func encodeFields(
        _ o: JSONObject, comps: inout [ParseSession.PathComponent], base: String
    ) -> JSONObject {
        var out = o
        for i in out.entries.indices {
            let key = out.entries[i].key
            if key == "@type" || ParseSession.structKeys.contains(key) { continue }
            comps.append(.key(key))
            out.entries[i].value = encodeAnys(out.entries[i].value, comps: &comps, base: base)
            comps.removeLast()
        }
        return out
    }

    private mutating func encodeAny(
        _ o: JSONObject, url: String, comps: inout [ParseSession.PathComponent], base: String
    ) -> JSONValue {
        let name = XDSTypes.name(fromURL: url)
        var original = o
        original["@type"] = nil
        let leaf =
            name.hasPrefix("google.protobuf.") || url == XDSTypes.typedStructURL
            || url == XDSTypes.udpaTypedStructURL
        let content = leaf ? original : encodeFields(original, comps: &comps, base: base)
        guard let type = Google_Protobuf_Any.messageType(forTypeURL: url) else {
            // Not modelled: the type URL stays, the content is dropped.
            if let marker = makeMarker(for: AnySplicer.anyEncoding(url: url, value: [])) {
                return marker
            }
            // Too short for a marker (type names under ~16 characters): carry
            // it as a TypedStruct naming the type instead.
            return encodeAnys(ParseSession.typedStruct(url: url, content: original), comps: &comps, base: base)
        }
        // Well-known types with a special JSON form sit under "value" in an Any.
        let json: JSONValue =
            AnySplicer.specialJSONTypes.contains(name) ? (content["value"] ?? .null) : .object(content)
        do {
            let m = try type.init(jsonUTF8Bytes: json.jsonBytes(), options: ParseSession.jsonOptions)
            var bytes: [UInt8] = try m.serializedBytes()
            substitute(&bytes)
            let encoded = AnySplicer.anyEncoding(url: url, value: bytes)
            if let marker = makeMarker(for: encoded) {
                return marker
            }
            var kept = content
            kept.entries.insert(("@type", .string(url)), at: 0)
            return .object(kept)
        } catch {
            session.diag(
                .invalidResource, path: ParseSession.render(base, comps),
                "invalid \(name): \(ParseSession.describe(error)); carried as an opaque config")
            if leaf {
                // An opaque config cannot be carried; drop it.
                return .object(JSONObject())
            }
            return encodeAnys(ParseSession.typedStruct(url: url, content: original), comps: &comps, base: base)
        }
    }

    static let specialJSONTypes: Set<String> = [
        "google.protobuf.Any", "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask",
        "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
        "google.protobuf.BoolValue", "google.protobuf.BytesValue", "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue", "google.protobuf.Int32Value", "google.protobuf.Int64Value",
        "google.protobuf.StringValue", "google.protobuf.UInt32Value", "google.protobuf.UInt64Value",
    ]

    /// Binary encoding of a `google.protobuf.Any`, as swift-protobuf writes it.
    static func anyEncoding(url: String, value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x0A]
        appendVarint(UInt64(url.utf8.count), to: &out)
        out.append(contentsOf: url.utf8)
        if !value.isEmpty {
            out.append(0x12)
            appendVarint(UInt64(value.count), to: &out)
            out.append(contentsOf: value)
        }
        return out
    }

    static func appendVarint(_ v: UInt64, to out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func varintSize(_ v: Int) -> Int {
        var n = 1
        var v = v >> 7
        while v > 0 {
            n += 1
            v >>= 7
        }
        return n
    }

    /// A marker Any (as JSON) whose encoding is exactly `encoded.count` bytes
    /// long, or nil if the real encoding is too short to hold one.
    ///
    /// Marker: type URL `/google.protobuf.Value` or `~/google.protobuf.Value`
    /// (the name after the last `/` is what matters), value a string
    /// `X<nonce><id in hex>xxx…` padded to the length needed.
    private mutating func makeMarker(for encoded: [UInt8]) -> JSONValue? {
        let target = encoded.count
        let id = real.count
        let head = tag + Array(String(id, radix: 16).utf8)
        for tildes in 0...1 {
            let urlLen = tildes + AnySplicer.urlTail.count
            // encoding = 0x0A vlen(url) url 0x12 vlen(V) V, V = 0x1A vlen(p) p
            func size(_ p: Int) -> Int {
                let v = 1 + AnySplicer.varintSize(p) + p
                return 1 + AnySplicer.varintSize(urlLen) + urlLen + 1 + AnySplicer.varintSize(v) + v
            }
            let minP = head.count
            guard size(minP) <= target else { continue }
            var p = max(minP, target - urlLen - 12)
            while p > minP, size(p) > target { p -= 1 }
            while size(p) < target { p += 1 }
            guard size(p) == target else { continue }
            real.append(encoded)
            var payload = String(decoding: head, as: UTF8.self)
            payload += String(repeating: "x", count: p - head.count)
            let url = String(repeating: "~", count: tildes) + String(decoding: AnySplicer.urlTail, as: UTF8.self)
            return .object(JSONObject([("@type", .string(url)), ("value", .string(payload))]))
        }
        return nil
    }

    // MARK: Byte pass

    /// Replaces every marker in `bytes` by the encoding it stands for.
    func substitute(_ bytes: inout [UInt8]) {
        guard !real.isEmpty else { return }
        let tail = AnySplicer.urlTail
        let tag = self.tag
        let real = self.real
        let n = bytes.count
        bytes.withUnsafeMutableBufferPointer { buf in
            var i = 2
            scan: while i + tail.count <= n {
                guard buf[i] == UInt8(ascii: "/") else {
                    i += 1
                    continue
                }
                for k in 1..<tail.count where buf[i + k] != tail[k] {
                    i += 1
                    continue scan
                }
                let tildes = buf[i - 1] == UInt8(ascii: "~") ? 1 : 0
                let urlStart = i - tildes
                let urlLen = tildes + tail.count
                guard urlStart >= 2, buf[urlStart - 1] == UInt8(urlLen), buf[urlStart - 2] == 0x0A else {
                    i += 1
                    continue
                }
                let start = urlStart - 2
                var pos = urlStart + urlLen
                guard pos < n, buf[pos] == 0x12 else {
                    i += 1
                    continue
                }
                pos += 1
                guard AnySplicer.readVarint(buf, &pos) != nil, pos < n, buf[pos] == 0x1A else {
                    i += 1
                    continue
                }
                pos += 1
                guard let plen = AnySplicer.readVarint(buf, &pos), plen <= UInt64(n - pos), plen > UInt64(tag.count) else {
                    i += 1
                    continue
                }
                let end = pos + Int(plen)
                for k in 0..<tag.count where buf[pos + k] != tag[k] {
                    i += 1
                    continue scan
                }
                var id = 0
                var q = pos + tag.count
                var digits = 0
                while q < end, digits < 15, let d = AnySplicer.hexValue(buf[q]) {
                    id = id * 16 + d
                    q += 1
                    digits += 1
                }
                guard digits > 0, id < real.count, real[id].count == end - start else {
                    i += 1
                    continue
                }
                let replacement = real[id]
                for k in 0..<replacement.count { buf[start + k] = replacement[k] }
                i = end
            }
        }
    }

    private static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(b - UInt8(ascii: "a") + 10)
        default: nil
        }
    }

    private static func readVarint(_ buf: UnsafeMutableBufferPointer<UInt8>, _ pos: inout Int) -> UInt64? {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while pos < buf.count, shift < 64 {
            let b = buf[pos]
            pos += 1
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
        return nil
    }

    /// The message re-read from its serialised form with markers replaced, so
    /// every `Any` in it holds binary content.
    func binaryForm<M: Message>(_ m: M, path: String) -> M {
        do {
            var bytes: [UInt8] = try m.serializedBytes()
            substitute(&bytes)
            return try M(serializedBytes: bytes, options: ParseSession.binaryOptions)
        } catch {
            session.diag(.invalidResource, path: path, "cannot normalise \(M.protoMessageName): \(ParseSession.describe(error))")
            return m
        }
    }
}
