/// A snapshot of a pool's counters, taken atomically under the pool's lock.
public struct ThreadPoolStats: Sendable, Hashable {
    /// Workers the pool started.
    public let threads: Int
    /// Workers waiting for a task.
    public let idle: Int
    /// Tasks accepted and not yet started.
    public let queued: Int
    /// Tasks running now.
    public let running: Int
    /// Tasks that ran to the end, successfully or not.
    public let completed: Int
    /// Of `completed`, the tasks that threw.
    public let failed: Int
    /// Tasks dropped before they started, by ``ThreadPool/terminate()`` or ``AsyncResult/cancel()``.
    public let cancelled: Int
}
