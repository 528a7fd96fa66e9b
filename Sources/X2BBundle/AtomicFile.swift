import Foundation

/// Writes `bytes` to `path` through a temporary file in the same directory and
/// a rename, so a reader never sees half a file.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    try Data(bytes).write(to: tmp)
    if rename(tmp.path, url.path) != 0 {
        let e = errno
        try? FileManager.default.removeItem(at: tmp)
        throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "rename to \(path): \(String(cString: strerror(e)))"])
    }
}
