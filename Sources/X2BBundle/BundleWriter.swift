import Crypto
import Foundation
import X2BDiagnostics

/// A bundle's files in memory, path → bytes; written atomically.
public struct BundleFiles: Sendable {
    public var files: [String: [UInt8]] = [:]

    public init() {}

    public var sortedPaths: [String] { files.keys.sorted() }

    /// Sets `manifest.pb` and `manifest.sha256` beside it: the manifest's own digest in
    /// `sha256sum -c` format ("<hex>  manifest.pb\n"), which the loader checks first.
    public mutating func setManifest(_ bytes: [UInt8]) {
        files["manifest.pb"] = bytes
        files["manifest.sha256"] = Array(Self.manifestDigestLine(bytes).utf8)
    }

    public static func manifestDigestLine(_ manifest: [UInt8]) -> String {
        "\(sha256Hex(manifest))  manifest.pb\n"
    }

    /// A bundle's `manifest.pb` from a directory or a `.tar` written by `tarBytes`, checked
    /// against `manifest.sha256` when the bundle has one.
    public static func readManifest(bundle path: String) throws -> [UInt8] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw BundleError.unreadable(path, "no such file or directory")
        }
        var manifest: [UInt8]
        var digest: [UInt8]?
        if isDir.boolValue {
            guard let m = FileManager.default.contents(atPath: "\(path)/manifest.pb") else {
                throw BundleError.unreadable(path, "no manifest.pb: not a bundle")
            }
            manifest = Array(m)
            digest = FileManager.default.contents(atPath: "\(path)/manifest.sha256").map { Array($0) }
        } else {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw BundleError.unreadable(path, "cannot read the file")
            }
            let tar = try untar(Array(data), name: path)
            guard let m = tar.files["manifest.pb"] else {
                throw BundleError.unreadable(path, "the archive has no manifest.pb: not a bundle")
            }
            manifest = m
            digest = tar.files["manifest.sha256"]
        }
        if let digest, digest != Array(manifestDigestLine(manifest).utf8) {
            throw BundleError.unreadable(path, "manifest.pb does not match manifest.sha256 (tampered or corrupt bundle)")
        }
        return manifest
    }

    /// Reads an archive written by `tarBytes` (strict: ustar headers with valid checksums,
    /// regular files and directories only, one top-level directory, no "..", no absolute names).
    public static func untar(_ bytes: [UInt8], name: String = "archive") throws -> BundleFiles {
        func fail(_ why: String, _ off: Int) -> BundleError {
            .unreadable(name, "not a bundle archive: \(why) at offset \(off)")
        }
        func field(_ h: ArraySlice<UInt8>, _ off: Int, _ len: Int) -> String {
            let start = h.startIndex + off
            let raw = h[start..<(start + len)]
            let end = raw.firstIndex(of: 0) ?? raw.endIndex
            return String(decoding: raw[..<end], as: UTF8.self)
        }
        func octal(_ h: ArraySlice<UInt8>, _ off: Int, _ len: Int) -> Int? {
            let s = field(h, off, len).trimmingCharacters(in: .whitespaces)
            guard !s.isEmpty, s.count <= 11 else { return nil }
            return Int(s, radix: 8)
        }
        var out = BundleFiles()
        var off = 0
        var root: String?
        guard bytes.count % 512 == 0 else { throw fail("size is not a multiple of 512", bytes.count) }
        while true {
            guard off + 512 <= bytes.count else { throw fail("no end-of-archive marker", off) }
            let h = bytes[off..<(off + 512)]
            if h.allSatisfy({ $0 == 0 }) { break }
            guard field(h, 257, 6) == "ustar", field(h, 263, 2) == "00" else { throw fail("not a ustar header", off) }
            var sum = 0
            for (i, b) in h.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(b) }
            guard octal(h, 148, 8) == sum else { throw fail("header checksum mismatch", off) }
            guard let size = octal(h, 124, 12), size >= 0, size <= bytes.count - off - 512 else {
                throw fail("bad member size", off)
            }
            let type = h[h.startIndex + 156]
            guard type == UInt8(ascii: "0") || type == 0 || type == UInt8(ascii: "5") else {
                throw fail("member of type '\(Character(Unicode.Scalar(type)))' (only files and directories)", off)
            }
            let prefix = field(h, 345, 155)
            var full = field(h, 0, 100)
            if !prefix.isEmpty { full = prefix + "/" + full }
            var comps = full.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if type == UInt8(ascii: "5"), comps.last == "" { comps.removeLast() }
            guard !full.hasPrefix("/"), !comps.isEmpty, !comps.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw fail("unsafe member name '\(full)'", off)
            }
            if root == nil { root = comps[0] }
            guard comps[0] == root else { throw fail("member '\(full)' outside the top-level directory", off) }
            off += 512
            if type != UInt8(ascii: "5") {
                guard comps.count > 1 else { throw fail("file '\(full)' outside a directory", off - 512) }
                let rel = comps.dropFirst().joined(separator: "/")
                guard out.files[rel] == nil else { throw fail("member '\(full)' twice", off - 512) }
                out.files[rel] = Array(bytes[off..<(off + size)])
            }
            off += (size + 511) / 512 * 512
        }
        return out
    }

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
