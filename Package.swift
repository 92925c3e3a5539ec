// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "ThreadPoolKit",
    // What a dependent sees. The tutorial's programs are executable targets, runnable here with
    // `swift run InitializeWorkers` / `swift run WorkerNames`, but not products.
    products: [
        .library(name: "ThreadPoolKit", targets: ["ThreadPoolKit"]),
        .library(name: "CThreadPool", targets: ["CThreadPool"]),
    ],
    targets: [
        // C11, built -Wall -Wextra clean: `make test` compiles these sources with -Werror too
        // (unsafeFlags here would stop other packages from depending on this one).
        .target(name: "CThreadPool"),
        .target(name: "ThreadPoolKit", dependencies: ["CThreadPool"]),
        .executableTarget(
            name: "InitializeWorkers", dependencies: ["ThreadPoolKit"], path: "Examples/InitializeWorkers"),
        .executableTarget(
            name: "WorkerNames", dependencies: ["ThreadPoolKit"], path: "Examples/WorkerNames"),
        // The tests run ThreadPoolExitProbe as a subprocess: a pool in a top-level `let` at program exit.
        .testTarget(name: "ThreadPoolKitTests", dependencies: ["ThreadPoolKit", "ThreadPoolExitProbe"]),
        .executableTarget(name: "ThreadPoolExitProbe", dependencies: ["ThreadPoolKit"], path: "Tests/ExitProbe"),
        // `make stress`: 10^7 tasks with random shutdowns and exact accounting (not part of make test).
        .executableTarget(name: "ThreadPoolStress", dependencies: ["ThreadPoolKit"], path: "Tests/Stress"),
    ],
    swiftLanguageModes: [.v6],
    cLanguageStandard: .c11
)
