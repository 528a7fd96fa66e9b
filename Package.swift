// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]
let protobuf: Target.Dependency = .product(name: "SwiftProtobuf", package: "swift-protobuf")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let compilerStages = [
    "X2BProtos", "X2BABI", "X2BDiagnostics", "X2BFrontend", "X2BIR", "X2BSemantics", "X2BResolve", "X2BPlan", "X2BEmit",
    "X2BToolchain", "X2BBundle",
]

func stage(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .target(name: name, dependencies: dependencies, swiftSettings: strict)
}

let package = Package(
    name: "xds2bpf",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "xds2bpf", targets: ["xds2bpf"]),
        .library(name: "Codegen", targets: ["Codegen"]),
        .library(name: "XDSClient", targets: ["XDSClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
    ],
    targets: [
        // The offline compiler, one target per stage (docs/architecture.md). A stage imports
        // only what it lists here, so an arrow that goes the wrong way does not build.
        stage("X2BProtos", [protobuf]),
        stage("X2BABI", []),
        stage("X2BDiagnostics", [crypto]),
        stage("X2BFrontend", ["X2BDiagnostics", "X2BProtos", protobuf, .product(name: "Yams", package: "Yams")]),
        stage("X2BIR", ["X2BDiagnostics"]),
        stage("X2BSemantics", ["X2BDiagnostics", "X2BIR", crypto]),
        stage("X2BResolve", ["X2BDiagnostics", "X2BProtos", "X2BFrontend", "X2BIR", "X2BSemantics", protobuf]),
        stage("X2BPlan", ["X2BABI", "X2BDiagnostics", "X2BIR", "X2BSemantics"]),
        stage("X2BEmit", ["X2BABI", "X2BDiagnostics", "X2BIR", "X2BSemantics", "X2BPlan"]),
        stage("X2BToolchain", ["X2BDiagnostics", crypto]),
        stage("X2BBundle", ["X2BABI", "X2BDiagnostics", "X2BIR", "X2BPlan", "X2BEmit", "X2BProtos", protobuf, crypto]),
        // `xds2bpf diff`: the semantic routing diff of two lowered snapshots, on the interpreter.
        stage("X2BDiff", ["X2BDiagnostics", "X2BIR", "X2BSemantics"]),
        // The router-check and HTTP test tools: they drive the stages; no stage depends on them.
        stage("X2BRouteCheck", compilerStages.filter { $0 != "X2BBundle" }.map { .target(name: $0) } + [protobuf]),
        // `Pipeline.swift` strings the stages together; the one import of the CLI, the live
        // side and the tests, re-exporting every stage (`Exports.swift`).
        stage("Codegen", (compilerStages + ["X2BRouteCheck", "X2BDiff"]).map { .target(name: $0) } + [protobuf]),
        // The live side: an ADS client (state of the world and delta) on grpc-swift 2,
        // and the node agent that keeps the kernel in sync with a control plane.
        // Codegen never depends on it: `compile` stays a pure offline function.
        .target(
            name: "XDSClient",
            dependencies: [
                "Codegen",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "xds2bpf",
            dependencies: [
                "Codegen",
                "XDSClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // libFuzzer harness for the front end (parse, resolve, lower, plan, emit; no clang).
        // Not part of any product: `swift build --product xds2bpf` and the test bundle never
        // build it; mk/fuzz.mk builds it with -sanitize=fuzzer,address -D FUZZING.
        .executableTarget(
            name: "FrontendFuzz",
            dependencies: ["Codegen"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CodegenTests",
            dependencies: ["Codegen"],
            // Fixtures are read by path (#filePath), not bundled as resources.
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "XDSClientTests",
            dependencies: ["XDSClient", "Codegen"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
