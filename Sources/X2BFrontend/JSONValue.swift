import Foundation

/// A JSON (or YAML-converted) document as an ordered tree.
///
/// Object keys keep their input order and numbers keep their text, so that a
/// resource re-encoded for swift-protobuf is byte-for-byte what the input said
/// (no double rounding of 64-bit integers, no key reordering).
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// The number's JSON text (always valid JSON number syntax).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public var object: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var array: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Short description of the value's kind, for messages.
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "a mapping"
        }
    }
}

/// An ordered JSON object. Lookups are linear: Envoy objects are small.
public struct JSONObject: Sendable {
    public var entries: [(key: String, value: JSONValue)]

    public init(_ entries: [(key: String, value: JSONValue)] = []) {
        self.entries = entries
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }
    public var keys: [String] { entries.map(\.key) }

    public subscript(key: String) -> JSONValue? {
        get {
            for e in entries where e.key == key { return e.value }
            return nil
        }
        set {
            if let i = entries.firstIndex(where: { $0.key == key }) {
                if let newValue {
                    entries[i].value = newValue
                } else {
                    entries.remove(at: i)
                }
            } else if let newValue {
                entries.append((key, newValue))
            }
        }
    }

    /// Looks a proto field up by its name, accepting both spellings proto3 JSON
    /// accepts (`filter_chains` and `filterChains`). `name` is the snake_case name.
    public func field(_ name: String) -> JSONValue? {
        if let v = self[name] { return v }
        let camel = JSONObject.lowerCamel(name)
        if camel != name, let v = self[camel] { return v }
        return nil
    }

    /// The key under which `field(name)` was found.
    public func fieldKey(_ name: String) -> String? {
        if self[name] != nil { return name }
        let camel = JSONObject.lowerCamel(name)
        if camel != name, self[camel] != nil { return camel }
        return nil
    }

    public func hasField(_ name: String) -> Bool { fieldKey(name) != nil }

    /// protoc's json_name rule: drop underscores, upper-case the letter after one.
    public static func lowerCamel(_ name: String) -> String {
        guard name.contains("_") else { return name }
        var out = ""
        out.reserveCapacity(name.count)
        var upper = false
        for c in name {
            if c == "_" {
                upper = true
            } else if upper {
                out += c.uppercased()
                upper = false
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// snake_case form of a lowerCamel key (`filterChains` -> `filter_chains`).
    public static func snakeCase(_ name: String) -> String {
        var out = ""
        for c in name {
            if c.isUppercase, c.isASCII {
                out += "_" + c.lowercased()
            } else {
                out.append(c)
            }
        }
        return out
    }
}

// MARK: - Parsing

public struct JSONParseError: Error, Sendable {
    public var message: String
    public var line: Int
    public var column: Int

    public var description: String { "line \(line), column \(column): \(message)" }
}

/// A strict RFC 8259 JSON parser over UTF-8 bytes with a nesting limit.
/// (Trailing commas, comments and the like are rejected; the caller falls back
/// to YAML, a superset, for such files.)
public struct JSONParser {
    public static let defaultDepthLimit = 256

    private let bytes: UnsafeBufferPointer<UInt8>
    private var pos = 0
    private let depthLimit: Int

    private init(bytes: UnsafeBufferPointer<UInt8>, depthLimit: Int) {
        self.bytes = bytes
        self.depthLimit = depthLimit
    }

    public static func parse(_ data: [UInt8], depthLimit: Int = defaultDepthLimit) -> Result<JSONValue, JSONParseError> {
        data.withUnsafeBufferPointer { buf in
            var p = JSONParser(bytes: buf, depthLimit: depthLimit)
            do {
                p.skipBOM()
                p.skipWhitespace()
                let v = try p.parseValue(depth: 0)
                p.skipWhitespace()
                if p.pos < buf.count {
                    throw p.error("unexpected content after the document")
                }
                return .success(v)
            } catch let e as JSONParseError {
                return .failure(e)
            } catch {
                return .failure(JSONParseError(message: "\(error)", line: 0, column: 0))
            }
        }
    }

    private func error(_ message: String, at offset: Int? = nil) -> JSONParseError {
        let end = min(offset ?? pos, bytes.count)
        var line = 1
        var col = 1
        var i = 0
        while i < end {
            if bytes[i] == UInt8(ascii: "\n") {
                line += 1
                col = 1
            } else if bytes[i] & 0xC0 != 0x80 {
                col += 1
            }
            i += 1
        }
        return JSONParseError(message: message, line: line, column: col)
    }

    private mutating func skipBOM() {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { pos = 3 }
    }

    private mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard pos < bytes.count else { throw error("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["):
            return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectKeyword("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectKeyword("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectKeyword("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            throw error("unexpected character '\(printable(bytes[pos]))'")
        }
    }

    private func printable(_ b: UInt8) -> String {
        (0x20..<0x7F).contains(b) ? String(UnicodeScalar(b)) : String(format: "\\x%02x", b)
    }

    private mutating func expectKeyword(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard pos + n <= bytes.count else { throw error("unexpected end of input") }
        let w = word.utf8Start
        for i in 0..<n where bytes[pos + i] != w[i] {
            throw error("invalid literal")
        }
        pos += n
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue {
        if depth > depthLimit { throw error("nesting deeper than \(depthLimit) levels") }
        pos += 1  // {
        var entries: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") {
            pos += 1
            return .object(JSONObject(entries))
        }
        while true {
            skipWhitespace()
            guard pos < bytes.count else { throw error("unexpected end of input in an object") }
            guard bytes[pos] == UInt8(ascii: "\"") else { throw error("expected a quoted key") }
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw error("expected ':' after a key") }
            pos += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            entries.append((key, value))
            skipWhitespace()
            guard pos < bytes.count else { throw error("unexpected end of input in an object") }
            if bytes[pos] == UInt8(ascii: ",") {
                pos += 1
                continue
            }
            if bytes[pos] == UInt8(ascii: "}") {
                pos += 1
                return .object(JSONObject(entries))
            }
            throw error("expected ',' or '}' in an object")
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONValue {
        if depth > depthLimit { throw error("nesting deeper than \(depthLimit) levels") }
        pos += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") {
            pos += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth))
            skipWhitespace()
            guard pos < bytes.count else { throw error("unexpected end of input in a list") }
            if bytes[pos] == UInt8(ascii: ",") {
                pos += 1
                continue
            }
            if bytes[pos] == UInt8(ascii: "]") {
                pos += 1
                return .array(items)
            }
            throw error("expected ',' or ']' in a list")
        }
    }

    private mutating func parseNumber() throws -> String {
        let start = pos
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        func digits(_ p: inout Int) -> Int {
            let s = p
            while p < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[p]) { p += 1 }
            return p - s
        }
        guard pos < bytes.count else { throw error("invalid number") }
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
        } else if digits(&pos) == 0 {
            throw error("invalid number")
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            if digits(&pos) == 0 { throw error("invalid number") }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            if digits(&pos) == 0 { throw error("invalid number") }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
    }

    private mutating func parseString() throws -> String {
        let openAt = pos
        pos += 1  // "
        // Fast path: no escapes.
        let start = pos
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
                pos += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character in a string") }
            pos += 1
        }
        var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<pos]))
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                pos += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b < 0x20 { throw error("control character in a string") }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                pos += 1
                continue
            }
            pos += 1
            guard pos < bytes.count else { break }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    // A high surrogate must be followed by \uDC00-\uDFFF.
                    if pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
                        pos += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        throw error("invalid surrogate pair")
                    }
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw error("invalid surrogate pair")
                }
                guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw error("invalid escape '\\\(printable(e))'")
            }
        }
        throw error("unterminated string", at: openAt)
    }

    private mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw error("invalid \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }
}

// MARK: - Serialising

extension JSONValue {
    /// Compact JSON text of the value.
    public func jsonBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: Array("null".utf8))
        case .bool(let b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case .number(let n): out.append(contentsOf: Array(n.utf8))
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, v) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (i, e) in o.entries.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(e.key, to: &out)
                out.append(UInt8(ascii: ":"))
                e.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: Array(String(format: "\\u%04x", b).utf8))
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
