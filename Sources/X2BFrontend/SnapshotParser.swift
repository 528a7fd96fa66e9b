import Foundation
import X2BDiagnostics

/// How to read an input. `auto` tells binary protobuf from text, and JSON from
/// YAML, by looking at the bytes.
public enum InputFormat: String, Sendable, CaseIterable {
    case auto, pb, json, yaml
}

/// The parse stage: bytes -> Envoy v3 messages.
///
/// Accepted shapes (auto-detected, both proto3 JSON key spellings):
/// - binary `DiscoveryResponse`, a varint-length-delimited stream of them, or an
///   admin `ConfigDump`;
/// - JSON/YAML admin `ConfigDump` (`istioctl proxy-config all -o json`, Envoy
///   `/config_dump`, `?resource=` sections), also wrapped as `{"xds": {name: dump}}`;
/// - an Envoy bootstrap with `static_resources`;
/// - `resources:` lists (typed with `@type`, or Kuma's `{name, resource}`), JSON
///   `DiscoveryResponse`s, `{typeUrl: {name: resource}}` maps, `{Listeners: [...],
///   Routes: [...]}` maps, bare lists of resources of one type and single
///   resources (type from `@type`, the keys, or the file name).
///
/// It never throws and never traps on bad input: problems become XDS0xx
/// diagnostics in the returned snapshot.
public struct SnapshotParser: Sendable {
    public var format: InputFormat

    /// Inputs larger than this are refused (XDS001).
    public static let maxInputBytes = 1 << 31

    public init(format: InputFormat = .auto) {
        self.format = format
    }

    /// Parses one input; `sourceName` prefixes origins and diagnostic paths.
    public func parse(_ data: [UInt8], sourceName: String) -> XDSSnapshot {
        let session = ParseSession(source: sourceName)
        session.snapshot.inputDigests = [sha256Hex(data)]
        run(data, session: session)
        return session.finish()
    }

    public func parse(_ data: Data, sourceName: String) -> XDSSnapshot {
        parse([UInt8](data), sourceName: sourceName)
    }

    /// Parses several files into one snapshot (in order). `-` reads standard input.
    public func parse(files: [String]) -> XDSSnapshot {
        var snapshot = XDSSnapshot()
        for path in files {
            switch SnapshotParser.read(path) {
            case .success(let bytes):
                snapshot.merge(parse(bytes, sourceName: path == "-" ? "<stdin>" : path))
            case .failure(let message):
                snapshot.diagnostics.append(Diagnostic(.unreadableInput, path: path == "-" ? "<stdin>" : path, message))
            }
        }
        return snapshot
    }

    // MARK: - Implementation

    private enum ReadResult {
        case success([UInt8])
        case failure(String)
    }

    private static func read(_ path: String) -> ReadResult {
        if path == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            return .success([UInt8](data))
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            return .failure("cannot read input: no such file")
        }
        if isDir.boolValue {
            return .failure("cannot read input: is a directory")
        }
        if let attrs = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attrs[.size] as? NSNumber, size.int64Value > Int64(maxInputBytes)
        {
            return .failure("input too large (\(size.int64Value) bytes; limit \(maxInputBytes))")
        }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return .success([UInt8](data))
        } catch {
            return .failure("cannot read input: \(error.localizedDescription)")
        }
    }

    private func run(_ data: [UInt8], session: ParseSession) {
        if data.count > SnapshotParser.maxInputBytes {
            session.diag(.unreadableInput, path: "", "input too large (\(data.count) bytes)")
            return
        }
        if data.isEmpty {
            session.diag(.emptyInput, path: "", "empty input (0 bytes)")
            return
        }
        switch format {
        case .pb:
            runBinary(data, session: session)
        case .json:
            runText(data, session: session, preferJSON: true)
        case .yaml:
            runText(data, session: session, preferJSON: false)
        case .auto:
            if data.count >= 2, (data[0] == 0xFF && data[1] == 0xFE) || (data[0] == 0xFE && data[1] == 0xFF) {
                session.diag(.unreadableInput, path: "", "UTF-16 text is not supported; convert the input to UTF-8")
                return
            }
            if SnapshotParser.looksLikeText(data) {
                runText(data, session: session, preferJSON: nil)
            } else {
                runBinary(data, session: session)
            }
        }
    }

    /// Valid UTF-8 without control characters other than tab, CR, LF (and FF).
    /// Binary protobuf practically always has field tags or lengths below 0x20.
    static func looksLikeText(_ data: [UInt8]) -> Bool {
        for b in data where b < 0x20 {
            if b != 0x09 && b != 0x0A && b != 0x0D && b != 0x0C { return false }
        }
        return validUTF8(data)
    }

    static func validUTF8(_ data: [UInt8]) -> Bool {
        var i = 0
        let n = data.count
        while i < n {
            let b = data[i]
            if b < 0x80 {
                i += 1
                continue
            }
            let len: Int
            let min: UInt32
            var cp: UInt32
            switch b {
            case 0xC2...0xDF:
                len = 2
                cp = UInt32(b & 0x1F)
                min = 0x80
            case 0xE0...0xEF:
                len = 3
                cp = UInt32(b & 0x0F)
                min = 0x800
            case 0xF0...0xF4:
                len = 4
                cp = UInt32(b & 0x07)
                min = 0x10000
            default:
                return false
            }
            guard i + len <= n else { return false }
            for k in 1..<len {
                let c = data[i + k]
                guard c & 0xC0 == 0x80 else { return false }
                cp = cp << 6 | UInt32(c & 0x3F)
            }
            if cp < min || cp > 0x10FFFF || (0xD800...0xDFFF).contains(cp) { return false }
            i += len
        }
        return true
    }

    private func runBinary(_ data: [UInt8], session: ParseSession) {
        if data.count >= 2, data[0] == 0x1F, data[1] == 0x8B {
            session.diag(.invalidProtobuf, path: "", "gzip-compressed input; decompress it first")
            return
        }
        let (recognised, error) = session.parseBinary(data)
        if !recognised, format == .auto, SnapshotParser.validUTF8(data) {
            // UTF-8 text with stray control characters: let the text readers
            // say what is wrong with it.
            runText(data, session: session, preferJSON: nil)
            return
        }
        if !recognised {
            var message =
                "not a binary DiscoveryResponse, a length-delimited stream of DiscoveryResponses, or a ConfigDump"
            if !error.isEmpty { message += " (\(error))" }
            if format == .auto, !SnapshotParser.validUTF8(data) {
                message += "; it is not UTF-8 text either"
            }
            session.diag(.invalidProtobuf, path: "", message)
        }
    }

    private func runText(_ data: [UInt8], session: ParseSession, preferJSON: Bool?) {
        guard SnapshotParser.validUTF8(data) else {
            let id: DiagnosticID = preferJSON == true ? .invalidJSON : (preferJSON == false ? .invalidYAML : .unreadableInput)
            session.diag(id, path: "", "input is not valid UTF-8 text")
            return
        }
        var start = 0
        if data.count >= 3, data[0] == 0xEF, data[1] == 0xBB, data[2] == 0xBF { start = 3 }
        guard let first = data[start...].first(where: { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || $0 == 0x0C) }) else {
            session.diag(.emptyInput, path: "", "empty input (only whitespace)")
            return
        }
        let json = preferJSON ?? (first == UInt8(ascii: "{") || first == UInt8(ascii: "["))
        if json {
            switch JSONParser.parse(data) {
            case .success(let tree):
                session.walkDocument(tree, path: "")
                return
            case .failure(let jsonError):
                // JSON with slips YAML tolerates (trailing commas, comments...).
                let text = String(decoding: data[start...], as: UTF8.self)
                let jsonLike = first == UInt8(ascii: "{") || first == UInt8(ascii: "[")
                if jsonLike, case .success(let docs) = YAMLReader.read(text, byteCount: data.count), docs.count == 1 {
                    session.diag(
                        .invalidJSON, .note, path: "",
                        "not strict JSON (\(jsonError.description)); read with the YAML parser")
                    session.fromYAML = true
                    session.walkDocument(docs[0], path: "")
                    return
                }
                session.diag(.invalidJSON, path: "", "invalid JSON: \(jsonError.description)")
                return
            }
        }
        let text = String(decoding: data[start...], as: UTF8.self)
        switch YAMLReader.read(text, byteCount: data.count) {
        case .success(let docs):
            session.fromYAML = true
            let nonEmpty = docs.enumerated().filter { if case .null = $0.element { return false } else { return true } }
            if nonEmpty.isEmpty {
                session.diag(.emptyInput, path: "", "no content (only comments or empty documents)")
                return
            }
            for (i, doc) in nonEmpty {
                session.walkDocument(doc, path: docs.count > 1 ? "documents[\(i)]" : "")
            }
        case .failure(let f):
            session.diag(.invalidYAML, path: "", "invalid YAML: \(f.message)")
        }
    }
}
