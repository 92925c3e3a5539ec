/// Runs `body` with a new pool and shuts the pool down when `body` ends.
///
/// Normal exit: ``ThreadPool/close()`` and ``ThreadPool/join()-4pmv3``, so every submitted task finishes
/// before this returns. A thrown error: ``ThreadPool/terminate()`` and ``ThreadPool/join()-4pmv3`` (queued
/// tasks are dropped, running ones finish), then the error is rethrown. Python's `with` always
/// terminates; this is the structured reading, where leaving a scope normally means its work is done.
/// Closing and joining inside `body`, as the Python tutorial does, works unchanged.
// Disfavoured, not `noasync`: async functions and top-level code pick the async overload
// (ThreadPool+AsyncWaits.swift), and the compiler asks them for `await`; top-level code inside
// a loop body still resolves to this one, which `noasync` would then reject.
@_disfavoredOverload
public func withThreadPool<R>(
    threads: Int? = nil, name: String? = nil,
    initializer: (@Sendable () throws -> Void)? = nil,
    finalizer: (@Sendable () -> Void)? = nil,
    _ body: (ThreadPool) throws -> R
) throws -> R {
    let pool = try ThreadPool(threads: threads, name: name, initializer: initializer, finalizer: finalizer)
    let result: R
    do {
        result = try body(pool)
    } catch {
        pool.terminate()
        try? pool.joinBlocking()
        throw error
    }
    pool.close()
    try pool.joinBlocking()
    return result
}
