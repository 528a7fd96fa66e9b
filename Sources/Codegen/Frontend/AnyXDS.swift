import SwiftProtobuf

/// Helpers for the `typed_config` fields of parsed resources.
///
/// JSON/YAML input: a typed config whose type the schema models (HTTP connection
/// manager, TCP proxy, router, listener filters, LB policies...) is decoded as
/// usual; any other is carried as an `xds.type.v3.TypedStruct` holding the
/// original type URL and the content. Binary input keeps the original `Any`.
/// Inputs may also use `udpa.type.v1.TypedStruct`/`xds.type.v3.TypedStruct`
/// themselves, as Istio does. These helpers see through all of that.
extension Google_Protobuf_Any {
    /// The protobuf message name of the extension this config stands for
    /// (`envoy.extensions.filters.http.wasm.v3.Wasm`), looking through TypedStruct
    /// wrappers; empty if the `Any` is unset.
    public var xdsTypeName: String {
        let name = XDSTypes.name(fromURL: typeURL)
        if name == Xds_Type_V3_TypedStruct.protoMessageName,
            let ts = try? Xds_Type_V3_TypedStruct(unpackingAny: self)
        {
            return XDSTypes.name(fromURL: ts.typeURL)
        }
        if name == Udpa_Type_V1_TypedStruct.protoMessageName,
            let ts = try? Udpa_Type_V1_TypedStruct(unpackingAny: self)
        {
            return XDSTypes.name(fromURL: ts.typeURL)
        }
        return name
    }

    /// Whether the content is carried without being decoded (a TypedStruct), so
    /// that unpacking it as `xdsTypeName`'s message is not possible.
    public var isTypedStruct: Bool {
        let name = XDSTypes.name(fromURL: typeURL)
        return name == Xds_Type_V3_TypedStruct.protoMessageName || name == Udpa_Type_V1_TypedStruct.protoMessageName
    }

    /// Unpacks the config as `M` if it is one (by type URL), else nil. Throws if
    /// it claims to be an `M` but its content does not decode.
    public func unpackIfXDS<M: Message>(_ type: M.Type) throws -> M? {
        guard XDSTypes.name(fromURL: typeURL) == M.protoMessageName else { return nil }
        return try M(unpackingAny: self)
    }
}
