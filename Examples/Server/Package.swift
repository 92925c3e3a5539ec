// swift-tools-version: 6.1
// A Hummingbird 2 HTTP server whose handlers run SQLite queries on a thread pool: ThreadPoolKit with a
// connection per worker, against NIOThreadPool as NIO users write it. A package of its own, as a
// dependent would write it (ThreadPoolKit by path), so that the library stays dependency-free.
//
//   swift run -c release orders-server --pool threadpoolkit      (or nio-per-request, nio-thread-local)
//   ./load.sh                                                    the load figures of README.md
//   swift test
import PackageDescription

let package = Package(
    name: "OrdersServer",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "orders-server", targets: ["orders-server"])
    ],
    dependencies: [
        // The trait ServiceLifecycle makes ThreadPool a swift-service-lifecycle Service.
        .package(name: "ThreadPoolKit", path: "../..", traits: ["ServiceLifecycle"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        // Hummingbird's own dependency, named here because the server's logger is configured.
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // The system's SQLite through a module map (Debian/Ubuntu: libsqlite3-dev; macOS: the SDK's).
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
        // The database: a small SQLite wrapper, the schema, the generated data and the queries.
        .target(name: "OrdersDatabase", dependencies: ["CSQLite"]),
        // The application: routes, the three pool variants, the pool as a Service.
        .target(
            name: "OrdersServer",
            dependencies: [
                "OrdersDatabase",
                .product(name: "ThreadPoolKit", package: "ThreadPoolKit"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(name: "orders-server", dependencies: ["OrdersServer"]),
        .testTarget(
            name: "OrdersServerTests",
            dependencies: [
                "OrdersServer", "OrdersDatabase",
                // The tests' HTTP clients block on sockets on this pool's threads.
                .product(name: "ThreadPoolKit", package: "ThreadPoolKit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
