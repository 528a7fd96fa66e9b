/// A problem found in a snapshot, reported with the resource path it came from.
///
/// Diagnostics are collected, never thrown one at a time: every pass returns all
/// of its findings so a user fixes a snapshot in one round.
public struct Diagnostic: Sendable, Hashable, Codable {
    public enum Severity: String, Sendable, Hashable, Codable, Comparable {
        case note, warning, error

        private var rank: Int {
            switch self {
            case .note: 0
            case .warning: 1
            case .error: 2
            }
        }

        public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }
    }

    /// Stable identifier, `XDS` + three digits; see `DiagnosticID`.
    public var id: String
    public var severity: Severity
    /// Resource path, e.g. `listeners["0.0.0.0_9080"].filter_chains[0].filters[0]`,
    /// prefixed by the input file when there are several.
    public var path: String
    /// Lowercase message naming the feature or the problem.
    public var message: String

    public init(_ id: DiagnosticID, _ severity: Severity? = nil, path: String, _ message: String) {
        self.id = id.code
        self.severity = severity ?? id.defaultSeverity
        self.path = path
        self.message = message
    }

    public var rendered: String {
        "\(severity.rawValue)[\(id)]: \(path): \(message)"
    }
}

/// The catalogue of diagnostic identifiers. Codes are stable: never renumber,
/// only add. `docs/diagnostics.md` lists them.
public enum DiagnosticID: String, Sendable, CaseIterable {
    // Input (parse) problems: XDS0xx
    case unreadableInput = "XDS001"
    case invalidProtobuf = "XDS002"
    case invalidJSON = "XDS003"
    case invalidYAML = "XDS004"
    case unknownShape = "XDS005"
    case invalidResource = "XDS006"
    case skippedContent = "XDS007"
    case emptyInput = "XDS008"
    case legacyTypeURL = "XDS009"
    case normalizedInput = "XDS010"  // input repaired (e.g. a mapping read as a one-element list)
    // Linking problems: XDS1xx
    case duplicateName = "XDS101"
    case danglingRoute = "XDS102"
    case danglingCluster = "XDS103"
    case missingEndpoints = "XDS104"
    case invalidAddress = "XDS105"
    case invalidPort = "XDS106"
    case conflictingChains = "XDS107"
    case noEndpoints = "XDS108"
    case unnamedResource = "XDS109"
    // Features: XDS2xx
    case unsupportedRouting = "XDS201"  // would change routing if ignored
    case notEnforced = "XDS202"  // recorded, cannot be enforced in the kernel
    case inboundSkipped = "XDS203"
    case unsupportedListener = "XDS204"
    case unsupportedCluster = "XDS205"
    case unsupportedFilter = "XDS206"
    case unsupportedMatcher = "XDS207"
    case httpNeedsModule = "XDS208"
    case bypassedFilter = "XDS209"  // a filter that can deny traffic would be bypassed (fail closed)
    case refusedFailClosed = "XDS210"  // what the kernel cannot run (such a filter, TLS termination) is refused (fail closed)
    // Planning limits: XDS3xx
    case limitExceeded = "XDS301"
    case nameTooLong = "XDS302"
    // Toolchain: XDS4xx
    case clangFailed = "XDS401"
    case toolMissing = "XDS402"
    case internalError = "XDS403"

    public var code: String { rawValue }

    public var defaultSeverity: Diagnostic.Severity {
        switch self {
        case .skippedContent, .legacyTypeURL, .inboundSkipped, .normalizedInput: .note
        case .notEnforced, .httpNeedsModule, .noEndpoints, .refusedFailClosed: .warning
        default: .error
        }
    }
}

extension Array where Element == Diagnostic {
    public var hasErrors: Bool { contains { $0.severity == .error } }
}
