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
    /// Workers the pool started.
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
}
