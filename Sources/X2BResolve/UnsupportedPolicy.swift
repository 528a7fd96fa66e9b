import X2BDiagnostics

/// `--unsupported=error|warn`: how features the kernel data plane cannot honour
/// are reported.
///
/// The default keeps the two classes apart: a feature that would change where a
/// connection goes (XDS201) is an error, one that only cannot be enforced in the
/// kernel (timeouts, retries: XDS202) is a warning. `error` makes both errors;
/// `warn` makes both warnings, and the lowered IR then behaves as documented for
/// each feature (e.g. a chain that needs SNI never matches at connect time).
///
/// Filters that can deny traffic (`FilterSafety`) are the one class where the
/// policy also changes the lowering: by default (and under `error`) what they
/// guard is refused in the kernel (XDS210, a warning by default); under `warn`
/// they are bypassed instead (XDS209, a warning, listed in the manifest).
public enum UnsupportedPolicy: String, Sendable, CaseIterable {
    case `default`
    case error
    case warn

    static let routingIDs: Set<String> = [
        DiagnosticID.unsupportedRouting.code, DiagnosticID.unsupportedListener.code,
        DiagnosticID.unsupportedCluster.code, DiagnosticID.unsupportedFilter.code,
        DiagnosticID.unsupportedMatcher.code, DiagnosticID.bypassedFilter.code,
    ]

    /// Whether what a deny-capable filter guards is refused (fail closed) rather than
    /// routed as if the filter were not there.
    public var refusesGuardedTraffic: Bool { self != .warn }

    public func apply(to diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.map { d in
            var d = d
            switch self {
            case .default:
                break
            case .error:
                // Every feature diagnostic becomes an error, also those that are warnings by
                // default (skipped pipe, internal, UDP and api listeners).
                if d.id == DiagnosticID.notEnforced.code || d.id == DiagnosticID.refusedFailClosed.code || Self.routingIDs.contains(d.id) {
                    d.severity = .error
                }
            case .warn:
                if Self.routingIDs.contains(d.id), d.severity == .error { d.severity = .warning }
            }
            return d
        }
    }
}
