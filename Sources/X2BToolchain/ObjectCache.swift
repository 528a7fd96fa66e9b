import Foundation

/// Compiled objects kept by content: the key covers every source and header,
/// the defines, the compiler's version and the pinned flags, so a hit is the
/// object clang would build. Without a directory every build runs clang.
public struct ObjectCache: Sendable {
    public var directory: String?

    public init(directory: String?) {
        self.directory = directory
    }

    /// The object of `sources` (`x2b.bpf.c` and the headers beside it) built with
    /// `defines`, from the cache or from one clang run (then stored). `source` is
    /// the generated C, to point clang's errors at xDS resources.
    public func object(
        _ cc: Clang, sources: [(String, String)], defines: [String], source: String
    ) throws -> (object: [UInt8], fromCache: Bool) {
        let key = cc.objectKey(files: sources + defines.map { ("-D", $0) })
        if let cached = lookup(key) { return (cached, true) }
        let object = try Self.build(cc, sources: sources, defines: defines, source: source)
        store(object, key: key)
        return (object, false)
    }

    func lookup(_ key: String) -> [UInt8]? {
        guard let dir = directory, let cached = FileManager.default.contents(atPath: "\(dir)/\(key).o") else { return nil }
        return Array(cached)
    }

    /// Written beside and renamed into place: a concurrent reader sees a whole object
    /// or none. A cache that cannot be written costs a clang run next time, nothing more.
    func store(_ object: [UInt8], key: String) {
        guard let dir = directory else { return }
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = "\(dir)/.\(key).\(getpid())"
        if FileManager.default.createFile(atPath: tmp, contents: Data(object)) {
            _ = rename(tmp, "\(dir)/\(key).o")
        }
    }

    /// One clang run in a fresh directory, removed afterwards.
    static func build(_ cc: Clang, sources: [(String, String)], defines: [String], source: String) throws -> [UInt8] {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("xds2bpf-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        for (name, text) in sources {
            try Data(text.utf8).write(to: work.appendingPathComponent(name))
        }
        try cc.compile(in: work.path, source: source, defines: defines)
        return Array(try Data(contentsOf: work.appendingPathComponent("x2b.bpf.o")))
    }
}
