// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ThreadPoolKitBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "ThreadPoolKit", path: ".."),
        // Only the MallocInterposer trait (malloc counts); not RuntimeInterposer (ARC counts, which this
        // suite does not use, through a package the local mirror does not have).
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // NIOThreadPool, a peer.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
    ],
    targets: [
        // The C side of the benchmarks: submit loops through the C API, pthread floors, latency probes.
        .target(name: "CBenchSupport", dependencies: [.product(name: "CThreadPool", package: "ThreadPoolKit")]),
        // Swift-concurrency peers measured outside package-benchmark (see its main.swift).
        .executableTarget(
            name: "ConcurrencyPeers",
            dependencies: ["CBenchSupport", .product(name: "ThreadPoolKit", package: "ThreadPoolKit")]
        ),
        // One workload at a time, for counting instructions under valgrind (scripts/instructions.py).
        .executableTarget(
            name: "InstructionCounts",
            dependencies: [
                "CBenchSupport",
                .product(name: "ThreadPoolKit", package: "ThreadPoolKit"),
                .product(name: "CThreadPool", package: "ThreadPoolKit"),
            ]
        ),
        // The benchmarks (package-benchmark runs executable targets under Benchmarks/ with its plugin).
        .executableTarget(
            name: "ThreadPoolBenchmarks",
            dependencies: [
                "CBenchSupport",
                .product(name: "ThreadPoolKit", package: "ThreadPoolKit"),
                .product(name: "CThreadPool", package: "ThreadPoolKit"),
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/ThreadPoolBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6],
    cLanguageStandard: .c11
)
