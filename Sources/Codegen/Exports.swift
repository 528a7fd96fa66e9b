// The one import for the CLI, the live side and the tests: every stage of the
// compiler, re-exported. Inside the compiler each stage imports only the stages
// before it (Package.swift, docs/architecture.md).
@_exported import X2BABI
@_exported import X2BBundle
@_exported import X2BDiagnostics
@_exported import X2BDiff
@_exported import X2BEmit
@_exported import X2BFrontend
@_exported import X2BIR
@_exported import X2BPlan
@_exported import X2BProtos
@_exported import X2BResolve
@_exported import X2BRouteCheck
@_exported import X2BSemantics
@_exported import X2BToolchain
