#if ServiceLifecycle
public import ServiceLifecycle

/// With the `ServiceLifecycle` package trait: a pool is a swift-service-lifecycle `Service`, so that
/// a `ServiceGroup` shuts it down with the rest of the application.
///
/// ```swift
/// let pool = try ThreadPool(threads: 8, name: "db")
/// let group = ServiceGroup(services: [pool, server], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
///
/// Put the pool before the services that submit to it: a `ServiceGroup` shuts its services down in
/// reverse order, so those stop submitting before the pool closes.
extension ThreadPool: Service {
    /// Waits until the group shuts down, then shuts the pool down and joins it, without blocking a
    /// thread of the caller's:
    ///
    /// - Graceful shutdown (a signal, or `ServiceGroup.triggerGracefulShutdown()`): ``close()``, so
    ///   every task queued still runs, then ``join()-4pmv3``. Returns once every worker has exited.
    /// - Cancellation of the calling task (before or during the join): ``terminate()``, which drops
    ///   the queued tasks (their results become ``ThreadPoolError/cancelled``); running tasks finish,
    ///   and the join still waits for them.
    ///
    /// A pool already closed or terminated by someone else is joined the same way once the group
    /// shuts down.
    public func run() async throws {
        try await withTaskCancellationHandler {
            do {
                try await gracefulShutdown() // returns on graceful shutdown, throws on cancellation
                close()
            } catch {
                terminate()
            }
            try await join()
        } onCancel: {
            terminate()
        }
    }
}
#endif
