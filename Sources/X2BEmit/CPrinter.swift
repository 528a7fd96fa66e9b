import Foundation
import X2BPlan

/// The one printer all generated C goes through: tabs for indentation (kernel
/// style), no trailing whitespace, blank lines unindented. A value type passed
/// `inout`, like swift-protobuf's CodePrinter.
public struct CPrinter: Sendable {
    public private(set) var content = ""
    private var level = 0

    public init() {}

    public mutating func print(_ lines: String...) {
        for text in lines {
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                let trimmed = line.trimmingTrailingWhitespace()
                if trimmed.isEmpty {
                    content += "\n"
                } else {
                    content += String(repeating: "\t", count: level) + trimmed + "\n"
                }
            }
        }
    }

    /// Appends a fixed fragment verbatim (templates carry their own indentation).
    public mutating func append(fragment: String) {
        for line in fragment.split(separator: "\n", omittingEmptySubsequences: false).dropLast(fragment.hasSuffix("\n") ? 1 : 0) {
            let trimmed = line.trimmingTrailingWhitespace()
            content += trimmed.isEmpty ? "\n" : String(repeating: "\t", count: level) + trimmed + "\n"
        }
    }

    public mutating func indent() { level += 1 }

    public mutating func outdent() {
        precondition(level > 0, "Cannot outdent past the left margin")
        level -= 1
    }

    public mutating func withIndentation(_ body: (inout CPrinter) -> Void) {
        indent()
        body(&self)
        outdent()
    }

    /// A block comment; `*/` inside text is defused so input cannot end the comment.
    public mutating func comment(_ text: String) {
        let safe = CNamer.commentSafe(text)
        print("/* \(safe) */")
    }
}

extension Substring {
    func trimmingTrailingWhitespace() -> String {
        var s = self
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
