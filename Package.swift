// swift-tools-version: 6.1
import PackageDescription

// Integrations with the Swift server ecosystem, each behind a package trait that is off by default:
// without traits the library depends on nothing but libc and pthreads, and none of these packages is
// built. A dependent enables one with
//   .package(path: "../ThreadPoolKit", traits: ["Metrics"])
// and here `swift build --traits ServiceLifecycle,Metrics,Logging` builds them all.
let serviceLifecycle: Target.Dependency = .product(
    name: "ServiceLifecycle", package: "swift-service-lifecycle", condition: .when(traits: ["ServiceLifecycle"]))
let metrics: Target.Dependency = .product(
    name: "Metrics", package: "swift-metrics", condition: .when(traits: ["Metrics"]))
let logging: Target.Dependency = .product(
    name: "Logging", package: "swift-log", condition: .when(traits: ["Logging"]))

let package = Package(
    name: "ThreadPoolKit",
    // What a dependent sees. The tutorial's programs are executable targets, runnable here with
    // `swift run InitializeWorkers` / `swift run WorkerNames`, but not products.
    products: [
        .library(name: "ThreadPoolKit", targets: ["ThreadPoolKit"]),
        .library(name: "CThreadPool", targets: ["CThreadPool"]),
    ],
    traits: [
        .trait(
            name: "ServiceLifecycle",
            description: "ThreadPool conforms to swift-service-lifecycle's Service: run it in a ServiceGroup."),
        .trait(
            name: "Metrics",
            description: "MetricsThreadPoolObserver: the pool's gauges, counters and timers through swift-metrics."),
        .trait(
            name: "Logging",
            description: "LoggingThreadPoolObserver: the pool's silent failures logged with swift-log."),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // C11, built -Wall -Wextra clean: `make test` compiles these sources with -Werror too
        // (unsafeFlags here would stop other packages from depending on this one).
        .target(name: "CThreadPool"),
        .target(name: "ThreadPoolKit", dependencies: ["CThreadPool", serviceLifecycle, metrics, logging]),
        .executableTarget(
            name: "InitializeWorkers", dependencies: ["ThreadPoolKit"], path: "Examples/InitializeWorkers"),
        .executableTarget(
            name: "WorkerNames", dependencies: ["ThreadPoolKit"], path: "Examples/WorkerNames"),
        // The tests run ThreadPoolExitProbe as a subprocess: a pool in a top-level `let` at program exit;
        // and, with the ServiceLifecycle trait, ThreadPoolServiceProbe: a ServiceGroup sent SIGTERM.
        .testTarget(
            name: "ThreadPoolKitTests",
            dependencies: [
                "ThreadPoolKit", "ThreadPoolExitProbe", "ThreadPoolServiceProbe", serviceLifecycle, logging,
                .product(name: "MetricsTestKit", package: "swift-metrics", condition: .when(traits: ["Metrics"])),
            ]),
        .executableTarget(name: "ThreadPoolExitProbe", dependencies: ["ThreadPoolKit"], path: "Tests/ExitProbe"),
        .executableTarget(
            name: "ThreadPoolServiceProbe", dependencies: ["ThreadPoolKit", serviceLifecycle, logging],
            path: "Tests/ServiceProbe"),
        // `make stress`: 10^7 tasks with random shutdowns and exact accounting (not part of make test).
        .executableTarget(name: "ThreadPoolStress", dependencies: ["ThreadPoolKit"], path: "Tests/Stress"),
    ],
    swiftLanguageModes: [.v6],
    cLanguageStandard: .c11
)
