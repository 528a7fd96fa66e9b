import SwiftProtobuf
import X2BProtos

/// Helpers for the `typed_config` fields of parsed resources.
///
/// Every `Any` in a parsed resource holds binary content. A typed config whose
/// type the schema models (HTTP connection manager, TCP proxy, router, listener
/// filters, LB policies...) unpacks as usual. One it does not model keeps its
/// type URL: from binary input with its original bytes, from JSON/YAML with an
/// empty value (its content cannot be encoded without its schema), except that
/// a type name too short to be spliced (under ~16 characters) is carried as an
/// `xds.type.v3.TypedStruct` naming it. Inputs may also wrap configs in
/// `udpa.type.v1.TypedStruct`/`xds.type.v3.TypedStruct` themselves, as Istio
/// does. `xdsTypeName` sees through all of that: dispatch on it, not on
/// `typeURL`.
extension Google_Protobuf_Any {
    /// The protobuf message name of the extension this config stands for
    /// (`envoy.extensions.filters.http.wasm.v3.Wasm`), looking through TypedStruct
    /// wrappers; empty if the `Any` is unset.
    /// Legacy v2 names (`envoy.config.filter.network.http_connection_manager.v2.
    /// HttpConnectionManager`) are given as their v3 equivalents.
    public var xdsTypeName: String {
        let name = XDSTypes.canonicalName(XDSTypes.name(fromURL: typeURL))
        if name == Xds_Type_V3_TypedStruct.protoMessageName,
            let ts = try? Xds_Type_V3_TypedStruct(unpackingAny: self)
        {
            return XDSTypes.canonicalName(XDSTypes.name(fromURL: ts.typeURL))
        }
        if name == Udpa_Type_V1_TypedStruct.protoMessageName,
            let ts = try? Udpa_Type_V1_TypedStruct(unpackingAny: self)
        {
            return XDSTypes.canonicalName(XDSTypes.name(fromURL: ts.typeURL))
        }
        return name
    }

    /// Whether this is a TypedStruct wrapper (its content is a `Struct`, so it
    /// cannot be unpacked as `xdsTypeName`'s message).
    public var isTypedStruct: Bool {
        let name = XDSTypes.name(fromURL: typeURL)
        return name == Xds_Type_V3_TypedStruct.protoMessageName || name == Udpa_Type_V1_TypedStruct.protoMessageName
    }

    /// Unpacks the config as `M` if it is one (by type URL), else nil. Throws if
    /// it claims to be an `M` but its content does not decode.
    /// (A legacy v2 config of the same message is decoded from its bytes: the v3
    /// messages kept the v2 field numbers.)
    public func unpackIfXDS<M: Message>(_ type: M.Type) throws -> M? {
        let name = XDSTypes.name(fromURL: typeURL)
        if name == M.protoMessageName {
            return try M(unpackingAny: self)
        }
        if XDSTypes.legacyNames[name] == M.protoMessageName {
            return try M(serializedBytes: value, options: ParseSession.binaryOptions)
        }
        return nil
    }
}
