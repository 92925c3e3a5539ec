// swift-tools-version: 6.0
// The runnable examples that need more than ThreadPoolKit: their own package, so that the library
// products stay dependency-free. Built and run from the repository root by `make examples`
// (scripts/examples.mk); tested by `make examples-test`. Or, in this directory:
//
//   swift run -c release PerWorkerDatabase [DATABASE]
//   swift run -c release PerWorkerCompression [OUTPUT.gz]
//   swift test
import PackageDescription

let threadPoolKit: Target.Dependency = .product(name: "ThreadPoolKit", package: "ThreadPoolKit")

let package = Package(
    name: "ThreadPoolKitExamples",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "PerWorkerDatabase", targets: ["PerWorkerDatabase"]),
        .executable(name: "PerWorkerCompression", targets: ["PerWorkerCompression"]),
    ],
    dependencies: [
        .package(name: "ThreadPoolKit", path: "../..")
    ],
    targets: [
        // The system's C libraries, through module maps (no copy of their sources).
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        // Command-line parsing, timing, temporary directories: shared by both programs.
        .target(name: "ExampleSupport"),
        // Each example's logic is a library, so that the tests can call it; the executables are thin.
        .target(name: "DatabaseExample", dependencies: ["CSQLite", "ExampleSupport", threadPoolKit]),
        .target(name: "CompressionExample", dependencies: ["CZlib", "ExampleSupport", threadPoolKit]),
        .executableTarget(name: "PerWorkerDatabase", dependencies: ["DatabaseExample"]),
        .executableTarget(name: "PerWorkerCompression", dependencies: ["CompressionExample"]),
        .testTarget(
            name: "ExamplesTests",
            dependencies: [
                "DatabaseExample", "CompressionExample", "ExampleSupport", "CSQLite", "CZlib", threadPoolKit,
            ]),
    ],
    swiftLanguageModes: [.v6]
)
