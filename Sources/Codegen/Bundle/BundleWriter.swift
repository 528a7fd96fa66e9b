import Crypto
import Foundation

public func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

/// A bundle's files in memory, path → bytes; written atomically.
public struct BundleFiles: Sendable {
    public var files: [String: [UInt8]] = [:]

    public init() {}

    public var sortedPaths: [String] { files.keys.sorted() }

    /// Writes a directory: into a temporary sibling first, renamed into place,
    /// so a failed or interrupted compile never leaves a half-written bundle.
    public func writeDirectory(to path: String) throws {
        let fm = FileManager.default
        let target = URL(fileURLWithPath: path).standardizedFileURL
        let parent = target.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let tmp = parent.appendingPathComponent(".\(target.lastPathComponent).tmp-\(getpid())")
        try? fm.removeItem(at: tmp)
        do {
            try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
            for p in sortedPaths {
                let url = tmp.appendingPathComponent(p)
                try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(files[p]!).write(to: url)
            }
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: target.path, isDirectory: &isDir) {
                guard isDir.boolValue else { throw CocoaError(.fileWriteFileExists) }
                // Only replace something that is a bundle (or empty), never an unrelated directory.
                let contents = try fm.contentsOfDirectory(atPath: target.path)
                guard contents.isEmpty || contents.contains("manifest.pb") else {
                    throw BundleError.notABundle(target.path)
                }
                let old = parent.appendingPathComponent(".\(target.lastPathComponent).old-\(getpid())")
                try? fm.removeItem(at: old)
                try fm.moveItem(at: target, to: old)
                try fm.moveItem(at: tmp, to: target)
                try? fm.removeItem(at: old)
            } else {
                try fm.moveItem(at: tmp, to: target)
            }
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
    }

    /// One deterministic ustar archive: sorted entries, mtime 0, root owner, 0644.
    public func tarBytes(root: String = "bundle") -> [UInt8] {
        var out: [UInt8] = []
        var dirs: [String] = [root + "/"]
        for p in sortedPaths {
            var comps = p.split(separator: "/").dropLast()
            var acc = root
            while !comps.isEmpty {
                acc += "/" + comps.removeFirst()
                if !dirs.contains(acc + "/") { dirs.append(acc + "/") }
            }
        }
        for d in dirs.sorted() { out += Self.tarHeader(name: d, size: 0, directory: true) }
        for p in sortedPaths {
            let data = files[p]!
            out += Self.tarHeader(name: "\(root)/\(p)", size: data.count, directory: false)
            out += data
            let pad = (512 - data.count % 512) % 512
            out += [UInt8](repeating: 0, count: pad)
        }
        out += [UInt8](repeating: 0, count: 1024)
        return out
    }

    public func writeTar(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try Data(tarBytes()).write(to: tmp)
            if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
            try FileManager.default.moveItem(at: tmp, to: url)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
    }

    static func tarHeader(name: String, size: Int, directory: Bool) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ off: Int, _ len: Int) {
            let b = Array(s.utf8.prefix(len))
            for (i, c) in b.enumerated() { h[off + i] = c }
        }
        func octal(_ v: Int, _ off: Int, _ len: Int) {
            let s = String(v, radix: 8)
            put(String(repeating: "0", count: max(0, len - 1 - s.count)) + s, off, len - 1)
        }
        var n = name
        var prefix = ""
        if n.utf8.count > 100, let slash = n.prefix(155).lastIndex(of: "/") {
            prefix = String(n[..<slash])
            n = String(n[n.index(after: slash)...])
        }
        put(n, 0, 100)
        octal(directory ? 0o755 : 0o644, 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(size, 124, 12)
        octal(0, 136, 12)
        put("        ", 148, 8)
        h[156] = directory ? UInt8(ascii: "5") : UInt8(ascii: "0")
        put("ustar", 257, 6)
        put("00", 263, 2)
        put("root", 265, 32)
        put("root", 297, 32)
        put(prefix, 345, 155)
        let sum = h.reduce(0) { $0 + Int($1) }
        let s = String(sum, radix: 8)
        put(String(repeating: "0", count: 6 - s.count) + s, 148, 6)
        h[154] = 0
        h[155] = UInt8(ascii: " ")
        return h
    }
}

public enum BundleError: Error, CustomStringConvertible {
    case notABundle(String)
    case unreadable(String, String)

    public var description: String {
        switch self {
        case .notABundle(let p): "\(p) exists and is not a bundle; refusing to replace it"
        case .unreadable(let p, let why): "cannot read bundle \(p): \(why)"
        }
    }
}
