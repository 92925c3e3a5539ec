// NIOThreadPool as a service of the application's ServiceGroup, as ThreadPool is with ThreadPoolKit's
// trait ServiceLifecycle. The group shuts its services down in reverse order, and the application
// adds its HTTP server after these: on SIGTERM the server stops accepting and answers the requests it
// has read, and only then is the pool shut down, so no request finds the pool closed.
import NIOPosix
import ServiceLifecycle

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
