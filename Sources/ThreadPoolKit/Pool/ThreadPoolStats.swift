/// A snapshot of a pool's counters.
///
/// The queue's counters (`idle`, `queued`, `running`, `completed`) are read together under the pool's
/// lock, the count of tasks cancelled with ``AsyncResult/cancel()`` just before and `failed` just
/// after, so while work is in flight the numbers may be a few tasks apart. An accepted task is always
/// counted in `queued`, `running`, `completed` or `cancelled` (for an instant in two of them, as it
/// starts or ends or as a cancelled task leaves the queue; never in none), so
/// `queued == 0 && running == 0` means every task accepted so far has finished or was cancelled;
/// `completed`, `failed` and `cancelled` never decrease. Once the pool is joined they are exact.
/// Counts are of queue entries: a task
/// (`apply`, `applyAsync`, `run`), a chunk of a `map`, a worker's share of a `broadcast` or of a
/// `concurrentPerform`, or a batch of an `imap` runner.
public struct ThreadPoolStats: Sendable, Hashable {
    /// Workers running now: ``ThreadPool/threadCount`` while the pool runs, more while an elastic pool
    /// has grown or workers stand in for blocked ones, 0 once it is joined.
    public let threads: Int
    /// Workers waiting for a task.
    public let idle: Int
    /// Tasks accepted and not yet started.
    public let queued: Int
    /// Queue entries being run now (a worker running a batch of tiny tasks counts each of them).
    public let running: Int
    /// Queue entries that ran to the end, successfully or not.
    public let completed: Int
    /// Bodies that threw: tasks, map chunks, broadcast shares, `concurrentPerform` chunks, and imap
    /// items (each counted once).
    public let failed: Int
    /// Tasks dropped before they started, by ``ThreadPool/terminate()`` or ``AsyncResult/cancel()``.
    public let cancelled: Int
    /// The most workers that ran at once.
    public let peakThreads: Int
    /// Every thread the pool started, its first ``ThreadPool/threadCount`` included.
    public let threadsStarted: Int
    /// Workers beyond ``ThreadPool/threadCount`` that have exited (idle past the keep-alive, no longer
    /// needed to stand in for a blocked worker, or at shutdown).
    public let threadsRetired: Int
    /// Workers the pool tried to add that could not start or whose initializer threw; the pool went on
    /// at the size it had.
    public let growFailures: Int
}
