#if Metrics
public import CoreMetrics

/// With the `Metrics` package trait: a ``ThreadPoolObserver`` that reports a pool's activity through
/// swift-metrics.
///
/// | Metric | Kind | Value |
/// |---|---|---|
/// | `threadpool.threads` | gauge | workers running |
/// | `threadpool.tasks.queued` | gauge | tasks queued and not started |
/// | `threadpool.tasks.running` | gauge | tasks running |
/// | `threadpool.tasks.completed` | counter | tasks that ran and returned |
/// | `threadpool.tasks.failed` | counter | tasks that ran and threw |
/// | `threadpool.tasks.cancelled` | counter | tasks dropped by `terminate()` or cancelled through their result |
/// | `threadpool.task.wait` | timer | each task's time in the queue, queued to started |
/// | `threadpool.task.run` | timer | each task's run, of those that ran |
///
/// Each has the dimension `pool`: the pool's ``ThreadPool/Configuration/name`` (`"pool"` for an
/// unnamed one), so one observer can serve several pools. Tasks are what ``ThreadPoolStats`` counts
/// (closures, map chunks, broadcast shares, Swift jobs).
///
/// ```swift
/// var configuration = ThreadPool.Configuration()
/// configuration.name = "db"
/// configuration.observer = MetricsThreadPoolObserver()   // the bootstrapped MetricsSystem's factory
/// let pool = try ThreadPool(configuration)
/// ```
///
/// It never bootstraps the metrics system: without a `factory` it uses the one the application
/// bootstrapped (`MetricsSystem.factory`, read when a pool's metrics are first made). Each event
/// takes a lock of the observer's and updates the metrics under it, so that a gauge's last recorded
/// value is always the current count.
public final class MetricsThreadPoolObserver: ThreadPoolObserver {
    private let factory: (any MetricsFactory)?
    private let pools = Locked<[String: PoolMetrics]>([:])

    /// Reports to `factory`, or to the bootstrapped `MetricsSystem.factory` when it is nil.
    public init(factory: (any MetricsFactory)? = nil) {
        self.factory = factory
    }

    public func taskQueued(pool: String, count: Int) {
        update(pool) { metrics in
            metrics.queued += count
            metrics.queuedGauge.record(metrics.queued)
        }
    }

    public func taskStarted(pool: String, wait: Duration) {
        update(pool) { metrics in
            metrics.queued -= 1
            metrics.running += 1
            metrics.queuedGauge.record(metrics.queued)
            metrics.runningGauge.record(metrics.running)
            metrics.wait.recordNanoseconds(wait.nanosecondsForMetrics)
        }
    }

    public func taskFinished(pool: String, outcome: ThreadPoolTaskOutcome, wait: Duration, run: Duration?) {
        update(pool) { metrics in
            if run != nil {
                metrics.running -= 1
                metrics.runningGauge.record(metrics.running)
            } else {
                metrics.queued -= 1 // dropped from the queue without starting
                metrics.queuedGauge.record(metrics.queued)
            }
            switch outcome {
            case .completed: metrics.completed.increment()
            case .failed: metrics.failed.increment()
            case .cancelled: metrics.cancelled.increment()
            }
            if let run, outcome != .cancelled { metrics.run.recordNanoseconds(run.nanosecondsForMetrics) }
        }
    }

    public func workerStarted(pool: String, worker: WorkerInfo) {
        update(pool) { metrics in
            metrics.threads += 1
            metrics.threadsGauge.record(metrics.threads)
        }
    }

    public func workerExited(pool: String, worker: WorkerInfo, retired: Bool) {
        update(pool) { metrics in
            metrics.threads -= 1
            metrics.threadsGauge.record(metrics.threads)
        }
    }

    private func update(_ pool: String, _ body: (inout PoolMetrics) -> Void) {
        pools.withLock { pools in
            if pools[pool] == nil { pools[pool] = PoolMetrics(pool: pool, factory: factory ?? MetricsSystem.factory) }
            body(&pools[pool]!)
        }
    }
}

/// One pool's metrics and the counts behind its gauges (the observer's lock).
private struct PoolMetrics {
    var threads = 0, queued = 0, running = 0
    let threadsGauge, queuedGauge, runningGauge: Gauge
    let completed, failed, cancelled: Counter
    let wait, run: CoreMetrics.Timer

    init(pool: String, factory: any MetricsFactory) {
        let dimensions = [("pool", pool)]
        threadsGauge = Gauge(label: "threadpool.threads", dimensions: dimensions, factory: factory)
        queuedGauge = Gauge(label: "threadpool.tasks.queued", dimensions: dimensions, factory: factory)
        runningGauge = Gauge(label: "threadpool.tasks.running", dimensions: dimensions, factory: factory)
        completed = Counter(label: "threadpool.tasks.completed", dimensions: dimensions, factory: factory)
        failed = Counter(label: "threadpool.tasks.failed", dimensions: dimensions, factory: factory)
        cancelled = Counter(label: "threadpool.tasks.cancelled", dimensions: dimensions, factory: factory)
        wait = CoreMetrics.Timer(label: "threadpool.task.wait", dimensions: dimensions, factory: factory)
        run = CoreMetrics.Timer(label: "threadpool.task.run", dimensions: dimensions, factory: factory)
    }
}

extension Duration {
    fileprivate var nanosecondsForMetrics: Int64 {
        let (seconds, attoseconds) = components
        return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }
}
#endif
