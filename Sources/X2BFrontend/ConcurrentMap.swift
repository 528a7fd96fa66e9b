import Foundation

/// `body(0) ... body(n - 1)` on every core, the results in index order: for work
/// whose items are independent and each cheap (decoding resources), spread over
/// `chunksPerCore` interleaved chunks per core so that one slow item does not hold
/// a core's whole share.
public func concurrentMap<R>(count n: Int, chunksPerCore: Int = 1, _ body: (Int) -> R) -> [R] {
    guard n > 0 else { return [] }
    let chunks = min(n, max(1, ProcessInfo.processInfo.activeProcessorCount) * max(1, chunksPerCore))
    let out = UnsafeMutableBufferPointer<R>.allocate(capacity: n)
    defer { out.deallocate() }
    // Each index is initialized by exactly one iteration, then all are moved out.
    nonisolated(unsafe) let slots = out
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            for i in stride(from: c, to: n, by: chunks) {
                (slots.baseAddress! + i).initialize(to: body(i))
            }
        }
    }
    return (0..<n).map { (out.baseAddress! + $0).move() }
}
