// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

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
        // The offline compiler: parse, resolve, lower, plan, emit, clang, bundle.
        .target(
            name: "Codegen",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
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
