// The pools as services of the application's ServiceGroup. The group shuts its services down in
// reverse order, and the application adds its HTTP server after these: on SIGTERM the server stops
// accepting and answers the requests it has read, and only then is the pool shut down, so no
// request finds the pool closed.
import NIOPosix
import ServiceLifecycle
import ThreadPoolKit

/// ThreadPoolKit's pool as a `Service`, until ThreadPoolKit's own conformance (package trait
/// `ServiceLifecycle`) is used: then Package.swift names the dependency
/// `.package(name: "ThreadPoolKit", path: "../..", traits: ["ServiceLifecycle"])`, `PerWorkerStore`
/// answers `pool` as its service, and this type goes. It behaves as that conformance does: graceful
/// shutdown closes the pool (queued tasks still run) and joins it; cancellation terminates it (queued
/// tasks are dropped) and joins it.
struct ThreadPoolService: Service, CustomStringConvertible {
    let pool: ThreadPool

    var description: String { "ThreadPoolService(\(pool))" }

    func run() async throws {
        do {
            try await gracefulShutdown()
            pool.close()
        } catch {
            pool.terminate() // CancellationError: the group is cancelled, or a service failed
        }
        try await pool.join()
    }
}

/// NIOThreadPool as a `Service`: NIO has no conformance. `shutdownGracefully` runs the queued work
/// and joins the threads.
struct NIOThreadPoolService: Service, CustomStringConvertible {
    let pool: NIOThreadPool

    var description: String { "NIOThreadPoolService(\(pool.numberOfThreads) threads)" }

    func run() async throws {
        try? await gracefulShutdown()
        try await pool.shutdownGracefully()
    }
}
