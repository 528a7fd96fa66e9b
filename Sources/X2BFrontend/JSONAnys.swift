import Foundation
import SwiftProtobuf

/// Decodes every `google.protobuf.Any` of one JSON resource into its message,
/// once each, bottom-up.
///
/// swift-protobuf keeps an `Any` decoded from JSON as JSON text and decodes it
/// again whenever it is unpacked, measured or written, so nested typed configs
/// (listener -> HTTP connection manager -> filter configs) would be decoded many
/// times over. Instead, each `Any` object of the tree is decoded here with
/// swift-protobuf's JSON decoder (its own nested `Any`s already decoded), kept
/// in `slots`, and replaced in the enclosing JSON by a *stub*, an `Any` whose
/// type URL is `x2b.slot/<index>` and which has no content. Once the enclosing
/// message is decoded, its stubs are swapped for the slots (`AnyFields`), so
/// every `Any` of the result holds its decoded message: unpacking it is a copy.
///
/// An `Any` of a type the schema does not model keeps its type URL and gets an
/// empty value. An invalid one is reported with its exact path and carried as
/// an `xds.type.v3.TypedStruct` naming its type.
struct JSONAnys {
    let session: ParseSession
    private var slots: [Google_Protobuf_Any] = []

    private static let stubPrefix = "x2b.slot/"

    init(session: ParseSession) {
        self.session = session
    }

    // MARK: Tree pass

    /// The tree with every `Any` object decoded into a slot and replaced by its stub.
    mutating func replaceAnys(
        _ value: JSONValue, comps: inout [ParseSession.PathComponent], base: String
    ) -> JSONValue {
        switch value {
        case .array(let items):
            var out = items
            for i in out.indices {
                comps.append(.index(i))
                out[i] = replaceAnys(out[i], comps: &comps, base: base)
                comps.removeLast()
            }
            return .array(out)
        case .object(let o):
            if case .string(let url)? = o["@type"] {
                return decodeAny(o, url: url, comps: &comps, base: base)
            }
            return .object(replaceFields(o, comps: &comps, base: base))
        default:
            return value
        }
    }

    private mutating func replaceFields(
        _ o: JSONObject, comps: inout [ParseSession.PathComponent], base: String
    ) -> JSONObject {
        var out = o
        for i in out.entries.indices {
            let key = out.entries[i].key
            if key == "@type" || ParseSession.structKeys.contains(key) { continue }
            comps.append(.key(key))
            out.entries[i].value = replaceAnys(out.entries[i].value, comps: &comps, base: base)
            comps.removeLast()
        }
        return out
    }

    private mutating func decodeAny(
        _ o: JSONObject, url: String, comps: inout [ParseSession.PathComponent], base: String
    ) -> JSONValue {
        let name = XDSTypes.name(fromURL: url)
        var original = o
        original["@type"] = nil
        // Well-known types and TypedStructs hold data, not typed configs.
        let leaf =
            name.hasPrefix("google.protobuf.") || url == XDSTypes.typedStructURL
            || url == XDSTypes.udpaTypedStructURL
        let content = leaf ? original : replaceFields(original, comps: &comps, base: base)
        guard let type = XDSTypes.messageType(forTypeURL: url) else {
            // Not modelled: the type URL stays, the content is dropped.
            var any = Google_Protobuf_Any()
            any.typeURL = url
            return stub(any)
        }
        // Well-known types with a special JSON form sit under "value" in an Any.
        let json: JSONValue =
            JSONAnys.specialJSONTypes.contains(name) ? (content["value"] ?? .null) : .object(content)
        do {
            var any = try decode(type, json.jsonBytes())
            any.typeURL = url
            return stub(any)
        } catch {
            session.diag(
                .invalidResource, path: ParseSession.render(base, comps),
                "invalid \(name): \(ParseSession.describe(error)); carried as an opaque config")
            if leaf {
                // An opaque config cannot be carried; drop it.
                return .object(JSONObject())
            }
            return replaceAnys(ParseSession.typedStruct(url: url, content: original), comps: &comps, base: base)
        }
    }

    /// `json` decoded as `M`, its stubs filled, packed into an `Any` that holds the message.
    private func decode<M: Message>(_ type: M.Type, _ json: [UInt8]) throws -> Google_Protobuf_Any {
        var message = try M(jsonUTF8Bytes: json, options: ParseSession.jsonOptions)
        fill(&message)
        return try Google_Protobuf_Any(message: message, partial: true)
    }

    private mutating func stub(_ any: Google_Protobuf_Any) -> JSONValue {
        slots.append(any)
        return .object(JSONObject([("@type", .string(JSONAnys.stubPrefix + String(slots.count - 1)))]))
    }

    static let specialJSONTypes: Set<String> = [
        "google.protobuf.Any", "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask",
        "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
        "google.protobuf.BoolValue", "google.protobuf.BytesValue", "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue", "google.protobuf.Int32Value", "google.protobuf.Int64Value",
        "google.protobuf.StringValue", "google.protobuf.UInt32Value", "google.protobuf.UInt64Value",
    ]

    // MARK: Message pass

    /// Swaps every stub in `message` for the `Any` it stands for. Every `Any`
    /// object of the tree became a stub, so nothing else in `message` is one.
    func fill<M: Message>(_ message: inout M) {
        let slots = self.slots
        guard !slots.isEmpty else { return }
        func isStub(_ any: Google_Protobuf_Any) -> Bool { any.typeURL.hasPrefix(JSONAnys.stubPrefix) }
        func fillStub(_ any: inout Google_Protobuf_Any) {
            guard let index = Int(any.typeURL.dropFirst(JSONAnys.stubPrefix.count)), slots.indices.contains(index) else { return }
            any = slots[index]
        }
        AnyFields.rewrite(&message, where: isStub, fillStub)
    }
}
