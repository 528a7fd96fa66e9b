import Foundation
import SwiftProtobuf

/// Rewrites every `google.protobuf.Any` field of a decoded message in place
/// (`typed_config`, `typed_per_filter_config` values, `api_listener`...), at any
/// depth, without knowing the schema: the front end's one way of giving each
/// `Any` its decoded message.
///
/// swift-protobuf has no API to set a field by number, but its generated
/// `decodeMessage(decoder:)` hands every field it is asked for to the decoder
/// `inout`. So a `Visitor` first lists the fields that lead to an `Any`, then a
/// `Decoder` that offers exactly those field numbers receives them one by one,
/// recurses into plain messages and passes each `Any` to `rewrite`; it leaves
/// every scalar untouched. The content of an `Any` is not entered: `rewrite`
/// decides what it holds (the front end decodes it and rewrites its fields
/// first, so each `Any` is decoded once, bottom-up).
enum AnyFields {
    typealias Wants = (Google_Protobuf_Any) -> Bool
    typealias Rewrite = (inout Google_Protobuf_Any) -> Void

    /// Passes every `Any` of `message` that `wants` to `rewrite`; the paths to
    /// the others are not walked.
    static func rewrite<M: Message>(_ message: inout M, where wants: @escaping Wants, _ rewrite: @escaping Rewrite) {
        var finder = MessageFieldFinder(wants: wants)
        // The finder's visits do not throw.
        try? message.traverse(visitor: &finder)
        guard !finder.fieldNumbers.isEmpty else { return }
        var decoder = AnyFieldDecoder(fieldNumbers: finder.fieldNumbers, wants: wants, rewrite: rewrite)
        // Nothing in the decoder throws; the generated code only routes fields.
        try? message.decodeMessage(decoder: &decoder)
    }

    /// Messages that cannot hold an `Any` below them (well-known types).
    fileprivate static func isLeaf<M: Message>(_ type: M.Type) -> Bool {
        type != Google_Protobuf_Any.self && M.protoMessageName.hasPrefix("google.protobuf.")
    }

    fileprivate static func rewrite<M: Message>(value: inout M, where wants: @escaping Wants, _ rewrite: @escaping Rewrite) {
        if M.self == Google_Protobuf_Any.self {
            var any = value as! Google_Protobuf_Any
            guard wants(any) else { return }
            rewrite(&any)
            value = any as! M
        } else if !isLeaf(M.self) {
            AnyFields.rewrite(&value, where: wants, rewrite)
        }
    }
}

/// Numbers of the set fields of one message that lead to an `Any` it `wants`
/// (hold one, or a message with one below it), in field order. Resources
/// without such (endpoints, clusters with unmodelled extensions only) are thus
/// only read, never copied or rewritten.
private struct MessageFieldFinder: Visitor {
    let wants: AnyFields.Wants
    var fieldNumbers: [Int] = []
    /// Stop at the first such field (for `leadsToAny`).
    var stopAtFirst = false

    private struct Found: Error {}

    func leadsToAny<M: Message>(_ message: M) -> Bool {
        if M.self == Google_Protobuf_Any.self { return wants(message as! Google_Protobuf_Any) }
        if AnyFields.isLeaf(M.self) { return false }
        var finder = MessageFieldFinder(wants: wants, stopAtFirst: true)
        try? message.traverse(visitor: &finder)
        return !finder.fieldNumbers.isEmpty
    }

    private mutating func found(_ fieldNumber: Int) throws {
        fieldNumbers.append(fieldNumber)
        if stopAtFirst { throw Found() }
    }

    mutating func visitSingularMessageField<M: Message>(value: M, fieldNumber: Int) throws {
        if leadsToAny(value) { try found(fieldNumber) }
    }
    mutating func visitRepeatedMessageField<M: Message>(value: [M], fieldNumber: Int) throws {
        if value.contains(where: { leadsToAny($0) }) { try found(fieldNumber) }
    }
    mutating func visitSingularGroupField<G: Message>(value: G, fieldNumber: Int) throws {
        if leadsToAny(value) { try found(fieldNumber) }
    }
    mutating func visitRepeatedGroupField<G: Message>(value: [G], fieldNumber: Int) throws {
        if value.contains(where: { leadsToAny($0) }) { try found(fieldNumber) }
    }
    mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type, value: _ProtobufMessageMap<KeyType, ValueType>.BaseType,
        fieldNumber: Int
    ) throws {
        if value.values.contains(where: { leadsToAny($0) }) { try found(fieldNumber) }
    }

    // Everything else holds no message.
    mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws {}
    mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws {}
    mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws {}
    mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws {}
    mutating func visitSingularStringField(value: String, fieldNumber: Int) throws {}
    mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws {}
    mutating func visitSingularEnumField<E: Enum>(value: E, fieldNumber: Int) throws {}
    mutating func visitRepeatedEnumField<E: Enum>(value: [E], fieldNumber: Int) throws {}
    mutating func visitPackedEnumField<E: Enum>(value: [E], fieldNumber: Int) throws {}
    mutating func visitMapField<KeyType, ValueType: MapValueType>(
        fieldType: _ProtobufMap<KeyType, ValueType>.Type, value: _ProtobufMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws {}
    mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type, value: _ProtobufEnumMap<KeyType, ValueType>.BaseType,
        fieldNumber: Int
    ) throws where ValueType.RawValue == Int {}
    mutating func visitExtensionFields(fields: ExtensionFieldValueSet, start: Int, end: Int) throws {}
    mutating func visitUnknown(bytes: Data) throws {}
}

/// Offers the generated `decodeMessage` the listed field numbers and rewrites
/// the `Any`s it is handed; every other field is left as it is.
private struct AnyFieldDecoder: SwiftProtobuf.Decoder {
    let fieldNumbers: [Int]
    let wants: AnyFields.Wants
    let rewrite: AnyFields.Rewrite
    var next = 0

    init(fieldNumbers: [Int], wants: @escaping AnyFields.Wants, rewrite: @escaping AnyFields.Rewrite) {
        self.fieldNumbers = fieldNumbers
        self.wants = wants
        self.rewrite = rewrite
    }

    mutating func nextFieldNumber() throws -> Int? {
        guard next < fieldNumbers.count else { return nil }
        next += 1
        return fieldNumbers[next - 1]
    }

    // The field already holds its oneof case: handing it back is no conflict.
    mutating func handleConflictingOneOf() throws {}

    mutating func decodeSingularMessageField<M: Message>(value: inout M?) throws { rewrite(&value) }
    mutating func decodeRepeatedMessageField<M: Message>(value: inout [M]) throws { rewrite(&value) }
    mutating func decodeSingularGroupField<G: Message>(value: inout G?) throws { rewrite(&value) }
    mutating func decodeRepeatedGroupField<G: Message>(value: inout [G]) throws { rewrite(&value) }

    // In place: a copy would make the generated code copy the message's storage.
    private func rewrite<M: Message>(_ value: inout M?) {
        guard value != nil else { return }
        AnyFields.rewrite(value: &value!, where: wants, rewrite)
    }

    private func rewrite<M: Message>(_ values: inout [M]) {
        for i in values.indices { AnyFields.rewrite(value: &values[i], where: wants, rewrite) }
    }

    mutating func decodeMapField<KeyType, ValueType>(
        fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type, value: inout _ProtobufMessageMap<KeyType, ValueType>.BaseType
    ) throws {
        for key in value.keys { AnyFields.rewrite(value: &value[key]!, where: wants, rewrite) }
    }

    // Scalars, enums, scalar maps and extensions are never offered (the
    // finder lists message fields only) and stay as they are.
    mutating func decodeSingularFloatField(value: inout Float) throws {}
    mutating func decodeSingularFloatField(value: inout Float?) throws {}
    mutating func decodeRepeatedFloatField(value: inout [Float]) throws {}
    mutating func decodeSingularDoubleField(value: inout Double) throws {}
    mutating func decodeSingularDoubleField(value: inout Double?) throws {}
    mutating func decodeRepeatedDoubleField(value: inout [Double]) throws {}
    mutating func decodeSingularInt32Field(value: inout Int32) throws {}
    mutating func decodeSingularInt32Field(value: inout Int32?) throws {}
    mutating func decodeRepeatedInt32Field(value: inout [Int32]) throws {}
    mutating func decodeSingularInt64Field(value: inout Int64) throws {}
    mutating func decodeSingularInt64Field(value: inout Int64?) throws {}
    mutating func decodeRepeatedInt64Field(value: inout [Int64]) throws {}
    mutating func decodeSingularUInt32Field(value: inout UInt32) throws {}
    mutating func decodeSingularUInt32Field(value: inout UInt32?) throws {}
    mutating func decodeRepeatedUInt32Field(value: inout [UInt32]) throws {}
    mutating func decodeSingularUInt64Field(value: inout UInt64) throws {}
    mutating func decodeSingularUInt64Field(value: inout UInt64?) throws {}
    mutating func decodeRepeatedUInt64Field(value: inout [UInt64]) throws {}
    mutating func decodeSingularSInt32Field(value: inout Int32) throws {}
    mutating func decodeSingularSInt32Field(value: inout Int32?) throws {}
    mutating func decodeRepeatedSInt32Field(value: inout [Int32]) throws {}
    mutating func decodeSingularSInt64Field(value: inout Int64) throws {}
    mutating func decodeSingularSInt64Field(value: inout Int64?) throws {}
    mutating func decodeRepeatedSInt64Field(value: inout [Int64]) throws {}
    mutating func decodeSingularFixed32Field(value: inout UInt32) throws {}
    mutating func decodeSingularFixed32Field(value: inout UInt32?) throws {}
    mutating func decodeRepeatedFixed32Field(value: inout [UInt32]) throws {}
    mutating func decodeSingularFixed64Field(value: inout UInt64) throws {}
    mutating func decodeSingularFixed64Field(value: inout UInt64?) throws {}
    mutating func decodeRepeatedFixed64Field(value: inout [UInt64]) throws {}
    mutating func decodeSingularSFixed32Field(value: inout Int32) throws {}
    mutating func decodeSingularSFixed32Field(value: inout Int32?) throws {}
    mutating func decodeRepeatedSFixed32Field(value: inout [Int32]) throws {}
    mutating func decodeSingularSFixed64Field(value: inout Int64) throws {}
    mutating func decodeSingularSFixed64Field(value: inout Int64?) throws {}
    mutating func decodeRepeatedSFixed64Field(value: inout [Int64]) throws {}
    mutating func decodeSingularBoolField(value: inout Bool) throws {}
    mutating func decodeSingularBoolField(value: inout Bool?) throws {}
    mutating func decodeRepeatedBoolField(value: inout [Bool]) throws {}
    mutating func decodeSingularStringField(value: inout String) throws {}
    mutating func decodeSingularStringField(value: inout String?) throws {}
    mutating func decodeRepeatedStringField(value: inout [String]) throws {}
    mutating func decodeSingularBytesField(value: inout Data) throws {}
    mutating func decodeSingularBytesField(value: inout Data?) throws {}
    mutating func decodeRepeatedBytesField(value: inout [Data]) throws {}
    mutating func decodeSingularEnumField<E: Enum>(value: inout E) throws where E.RawValue == Int {}
    mutating func decodeSingularEnumField<E: Enum>(value: inout E?) throws where E.RawValue == Int {}
    mutating func decodeRepeatedEnumField<E: Enum>(value: inout [E]) throws where E.RawValue == Int {}
    mutating func decodeMapField<KeyType, ValueType: MapValueType>(
        fieldType: _ProtobufMap<KeyType, ValueType>.Type, value: inout _ProtobufMap<KeyType, ValueType>.BaseType
    ) throws {}
    mutating func decodeMapField<KeyType, ValueType>(
        fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type, value: inout _ProtobufEnumMap<KeyType, ValueType>.BaseType
    ) throws where ValueType.RawValue == Int {}
    mutating func decodeExtensionField(
        values: inout ExtensionFieldValueSet, messageType: any Message.Type, fieldNumber: Int
    ) throws {}
}
