import Foundation
import Yams

/// Reads YAML (a superset of JSON) into `JSONValue` trees, one per document.
///
/// Scalars are typed the way the YAML 1.2 core schema does it: plain `true`/
/// `false`, `null`/`~`/empty, integers (also `0x`/`0o`) and floats (also `.inf`,
/// `.nan`) become JSON booleans, null and numbers; everything else, and every
/// quoted or block scalar, is a string. Merge keys (`<<`) and aliases are
/// expanded, with a budget that stops "billion laughs" documents.
public enum YAMLReader {
    public struct Failure: Error, Sendable {
        public var message: String
    }

    /// Column beyond which block indentation is considered hostile (it bounds
    /// the nesting depth of the recursive composer).
    static let maxIndentColumn = 512
    static let maxFlowDepth = JSONParser.defaultDepthLimit

    public static func read(_ text: String, byteCount: Int) -> Result<[JSONValue], Failure> {
        if let problem = nestingProblem(text) {
            return .failure(Failure(message: problem))
        }
        let parser: Parser
        do {
            parser = try Parser(yaml: text, resolver: .basic, constructor: .default, encoding: .utf8)
        } catch {
            return .failure(Failure(message: describe(error)))
        }
        var budget = max(2_000_000, byteCount * 8)
        var docs: [JSONValue] = []
        do {
            while let node = try parser.nextRoot() {
                docs.append(try convert(node, depth: 0, budget: &budget))
            }
        } catch let f as Failure {
            return .failure(f)
        } catch {
            return .failure(Failure(message: describe(error)))
        }
        return .success(docs)
    }

    private static func describe(_ error: any Error) -> String {
        guard let y = error as? YamlError else { return truncate("\(error)") }
        switch y {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let ctx = context.map { "\($0.text) " } ?? ""
            return truncate("line \(mark.line), column \(mark.column): \(ctx)\(problem)")
        case .reader(let problem, let offset, _, _):
            return truncate("\(problem)" + (offset.map { " at character \($0)" } ?? ""))
        default:
            return truncate(y.description)
        }
    }

    static func truncate(_ s: String, limit: Int = 300) -> String {
        guard s.count > limit else { return s }
        return String(s.prefix(limit)) + "…"
    }

    /// Cheap pre-scan bounding the nesting depth, so that the recursive
    /// composer of Yams cannot exhaust the stack: block nesting needs
    /// indentation (or `- `/`? ` indicators), flow nesting needs brackets.
    static func nestingProblem(_ text: String) -> String? {
        let u = Array(text.utf8)
        let n = u.count
        var flow = 0
        var line = 1
        var i = 0
        while i < n {
            // Indentation, counting block indicators ("- ", "? ") as indentation.
            var column = 0
            while i < n {
                let b = u[i]
                if b == 0x20 || b == 0x09 {
                    column += 1
                    i += 1
                } else if (b == UInt8(ascii: "-") || b == UInt8(ascii: "?")),
                    i + 1 >= n || u[i + 1] == 0x20 || u[i + 1] == 0x0A || u[i + 1] == 0x0D
                {
                    column += 2
                    i += 1
                } else {
                    break
                }
            }
            if column > maxIndentColumn {
                return "line \(line): indentation deeper than \(maxIndentColumn) columns"
            }
            // The rest of the line: brackets outside quotes and comments.
            var inSingle = false
            var inDouble = false
            var prev: UInt8 = 0x20
            while i < n, u[i] != 0x0A {
                let b = u[i]
                i += 1
                if inDouble {
                    if b == UInt8(ascii: "\""), prev != UInt8(ascii: "\\") { inDouble = false }
                    prev = (prev == UInt8(ascii: "\\") && b == UInt8(ascii: "\\")) ? 0 : b
                    continue
                }
                if inSingle {
                    if b == UInt8(ascii: "'") { inSingle = false }
                    prev = b
                    continue
                }
                switch b {
                case UInt8(ascii: "#") where prev == 0x20 || prev == 0x09:
                    while i < n, u[i] != 0x0A { i += 1 }
                case UInt8(ascii: "\""):
                    inDouble = true
                case UInt8(ascii: "'") where flow > 0 || prev == 0x20 || prev == UInt8(ascii: ":") || prev == UInt8(ascii: "["):
                    inSingle = true
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    flow += 1
                    if flow > maxFlowDepth {
                        return "line \(line): nesting deeper than \(maxFlowDepth) levels"
                    }
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    if flow > 0 { flow -= 1 }
                default:
                    break
                }
                prev = b
            }
            i += 1
            line += 1
        }
        return nil
    }

    private static func convert(_ node: Node, depth: Int, budget: inout Int) throws -> JSONValue {
        budget -= 1
        if budget < 0 {
            throw Failure(message: "document too large after expanding aliases")
        }
        if depth > JSONParser.defaultDepthLimit {
            throw Failure(message: "nesting deeper than \(JSONParser.defaultDepthLimit) levels")
        }
        switch node {
        case .scalar(let s):
            return scalar(s)
        case .sequence(let seq):
            var items: [JSONValue] = []
            items.reserveCapacity(seq.count)
            for n in seq {
                items.append(try convert(n, depth: depth + 1, budget: &budget))
            }
            return .array(items)
        case .mapping(let map):
            var obj = JSONObject()
            var merges: [JSONObject] = []
            for (k, v) in map {
                guard case .scalar(let ks) = k else {
                    throw Failure(message: "line \(k.mark?.line ?? 0): complex (non-scalar) mapping keys are not supported")
                }
                if ks.string == "<<", ks.style == .plain || ks.style == .any {
                    // Merge key: a mapping or a list of mappings.
                    let merged = try convert(v, depth: depth + 1, budget: &budget)
                    switch merged {
                    case .object(let o): merges.append(o)
                    case .array(let items):
                        for case .object(let o) in items { merges.append(o) }
                    default: break
                    }
                    continue
                }
                let value = try convert(v, depth: depth + 1, budget: &budget)
                // Later duplicates win, as in most YAML loaders.
                obj[ks.string] = value
            }
            for m in merges {
                for e in m.entries where obj[e.key] == nil {
                    obj.entries.append(e)
                }
            }
            return .object(obj)
        }
    }

    private static func scalar(_ s: Node.Scalar) -> JSONValue {
        let tag = s.tag.description
        let text = s.string
        switch tag {
        case Tag.Name.str.rawValue, "!":
            return .string(text)
        case Tag.Name.null.rawValue:
            return .null
        case Tag.Name.bool.rawValue:
            return boolValue(text).map { .bool($0) } ?? .string(text)
        case Tag.Name.int.rawValue, Tag.Name.float.rawValue:
            return numberValue(text).map { .number($0) } ?? .string(text)
        case "", "?":
            break
        default:
            return .string(text)
        }
        switch s.style {
        case .singleQuoted, .doubleQuoted, .literal, .folded:
            return .string(text)
        case .plain, .any:
            break
        }
        switch text {
        case "", "~", "null", "Null", "NULL":
            return .null
        default:
            break
        }
        if let b = boolValue(text) { return .bool(b) }
        if let n = numberValue(text) { return .number(n) }
        if let special = specialFloat(text) { return .string(special) }
        return .string(text)
    }

    private static func boolValue(_ t: String) -> Bool? {
        switch t {
        case "true", "True", "TRUE": true
        case "false", "False", "FALSE": false
        default: nil
        }
    }

    /// `.inf`/`.nan` in proto3 JSON's spelling (as strings, accepted for floats).
    private static func specialFloat(_ t: String) -> String? {
        switch t {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": "Infinity"
        case "-.inf", "-.Inf", "-.INF": "-Infinity"
        case ".nan", ".NaN", ".NAN": "NaN"
        default: nil
        }
    }

    /// The JSON number text of a YAML 1.2 core int or float, or nil.
    static func numberValue(_ t: String) -> String? {
        let u = Array(t.utf8)
        guard !u.isEmpty, u.count <= 64 else { return nil }
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        // Hex / octal integers.
        if u.count > 2, u[0] == UInt8(ascii: "0"), u[1] == UInt8(ascii: "x") || u[1] == UInt8(ascii: "o") {
            let radix = u[1] == UInt8(ascii: "x") ? 16 : 8
            guard let v = UInt64(String(decoding: u[2...], as: UTF8.self), radix: radix) else { return nil }
            return String(v)
        }
        var i = 0
        var negative = false
        if u[i] == UInt8(ascii: "-") || u[i] == UInt8(ascii: "+") {
            negative = u[i] == UInt8(ascii: "-")
            i += 1
        }
        let intStart = i
        while i < u.count, isDigit(u[i]) { i += 1 }
        let intDigits = Array(u[intStart..<i])
        var fracDigits: [UInt8]? = nil
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            let fs = i
            while i < u.count, isDigit(u[i]) { i += 1 }
            fracDigits = Array(u[fs..<i])
        }
        var exponent: [UInt8]? = nil
        if i < u.count, u[i] == UInt8(ascii: "e") || u[i] == UInt8(ascii: "E") {
            i += 1
            var e: [UInt8] = []
            if i < u.count, u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") {
                e.append(u[i])
                i += 1
            }
            let es = i
            while i < u.count, isDigit(u[i]) { i += 1 }
            guard i > es else { return nil }
            e.append(contentsOf: u[es..<i])
            exponent = e
        }
        guard i == u.count else { return nil }
        guard !intDigits.isEmpty || !(fracDigits?.isEmpty ?? true) else { return nil }
        // Normalise to JSON syntax: no leading zeros, digits on both sides of '.'.
        var intPart = String(decoding: intDigits, as: UTF8.self)
        while intPart.count > 1, intPart.hasPrefix("0") { intPart.removeFirst() }
        if intPart.isEmpty { intPart = "0" }
        var out = (negative ? "-" : "") + intPart
        if let f = fracDigits {
            out += "." + (f.isEmpty ? "0" : String(decoding: f, as: UTF8.self))
        }
        if let e = exponent {
            out += "e" + String(decoding: e, as: UTF8.self)
        }
        return out
    }
}
