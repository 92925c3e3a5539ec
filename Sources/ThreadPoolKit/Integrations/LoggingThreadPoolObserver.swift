#if Logging
public import Logging

/// With the `Logging` package trait: a ``ThreadPoolObserver`` that logs what a pool otherwise handles
/// silently to the `Logger` it is given:
///
/// - at `error`: a worker started beyond the pool's first ones whose initializer threw, and a thread
///   the pool could not create while it grew (the pool goes on with the workers it has);
/// - at `error`: a task that threw after its caller had dropped its ``AsyncResult`` (nobody else can
///   see that error);
/// - at `warning`: a pool dropped (its last reference gone) with tasks still queued, which its
///   `deinit` then waits for.
///
/// Each message has the metadata `threadpool.pool` (the pool's name, `"pool"` for an unnamed one),
/// and `threadpool.worker` or `error` where they apply. Tasks and workers that come and go normally
/// are not logged (see `MetricsThreadPoolObserver` for those, with the `Metrics` trait).
///
/// ```swift
/// var configuration = ThreadPool.Configuration()
/// configuration.name = "db"
/// configuration.observer = LoggingThreadPoolObserver(logger: Logger(label: "app.threadpool"))
/// ```
public final class LoggingThreadPoolObserver: ThreadPoolObserver {
    /// The logger messages go to.
    public let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func failure(pool: String, _ failure: ThreadPoolFailure) {
        switch failure {
        case .initializerFailed(let worker, let error):
            logger.error(
                "a worker the pool started to grow failed in its initializer and exited",
                metadata: [
                    "threadpool.pool": "\(pool)", "threadpool.worker": "\(worker)",
                    "error": "\(error)",
                ])
        case .threadCreationFailed(let worker, let code):
            logger.error(
                "the pool could not create a thread to grow and goes on with the workers it has",
                metadata: [
                    "threadpool.pool": "\(pool)", "threadpool.worker": "\(worker)",
                    "error": "\(code)",
                ])
        case .unobservedTaskError(let error):
            logger.error(
                "a task whose result was dropped threw",
                metadata: ["threadpool.pool": "\(pool)", "error": "\(error)"])
        }
    }

    public func poolDropped(pool: String, queuedTasks: Int) {
        logger.warning(
            "the pool was dropped with tasks queued: its deinit waits for them",
            metadata: ["threadpool.pool": "\(pool)", "threadpool.queued": "\(queuedTasks)"])
    }
}
#endif
