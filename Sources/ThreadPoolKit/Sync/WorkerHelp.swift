/// Lets a worker that must wait (for a result, a map, a broadcast) run its own pool's queued tasks
/// instead of blocking: waiting from inside the pool then never deadlocks, however many workers
/// wait, because the waiter runs the work it waits for (or the work that work waits for).
@usableFromInline
enum WorkerHelp {
    /// On a pool's worker, runs one queued task of that pool and returns true; false when nothing is
    /// queued or the caller is not a worker.
    @usableFromInline
    static func helpOnce() -> Bool {
        CPool.helpCurrentPool()
    }
}
