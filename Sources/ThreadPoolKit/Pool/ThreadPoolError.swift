/// Errors thrown by ``ThreadPool``, ``AsyncResult`` and ``ResultIterator``.
///
/// A task's own error is never wrapped: ``AsyncResult/get(timeout:)`` rethrows it unchanged.
public enum ThreadPoolError: Error, Sendable {
    /// The thread count was below 1 or above ``ThreadPool/maximumThreadCount``.
    case invalidThreadCount(Int)
    /// A chunk size below 1.
    case invalidChunkSize(Int)
    /// An `imap` or `imapUnordered` buffer size below 1.
    case invalidBufferSize(Int)
    /// A ``ThreadPool/Configuration`` value out of range; the text says which and what to use.
    case invalidConfiguration(String)
    /// A bounded queue was full and the pool's ``ThreadPool/FullQueuePolicy`` is
    /// ``ThreadPool/FullQueuePolicy/fail``.
    case queueFull
    /// Work was submitted after ``ThreadPool/close()`` or ``ThreadPool/terminate()``.
    case notRunning
    /// ``ThreadPool/join()-4pmv3`` was called before ``ThreadPool/close()`` or ``ThreadPool/terminate()``.
    case stillRunning
    /// ``AsyncResult/successful()`` was called before the result was ready.
    case notReady
    /// A bounded wait ran out before the result was ready. Nothing is lost: wait again.
    case timeout
    /// The task was dropped before it started, by ``ThreadPool/terminate()`` or ``AsyncResult/cancel()``.
    case cancelled
    /// A worker's initializer threw while the pool was starting. `worker` is its 0-based index and
    /// `underlying` the error it threw. Every worker already started was stopped and joined.
    case initializerFailed(worker: Int, underlying: any Error)
    /// A system call failed (`pthread_create` and the like); `code` is an `errno` value: `EAGAIN`
    /// (no thread could be created), `ENOMEM` (out of memory) or `EINVAL`.
    case systemError(function: String, code: Int32)
    /// A blocking call on one of the pool's own workers would wait for itself forever
    /// (for example ``ThreadPool/join()-4pmv3`` from a task).
    case wouldDeadlock
}

extension ThreadPoolError: CustomStringConvertible {
    /// A sentence saying what went wrong and, for misuse, what to do instead.
    public var description: String {
        switch self {
        case .invalidThreadCount(let count):
            return "invalid thread count \(count): use 1...\(ThreadPool.maximumThreadCount), or nil for the CPU count"
        case .invalidChunkSize(let size): return "invalid chunk size \(size): it must be at least 1"
        case .invalidBufferSize(let size):
            return "invalid buffer size \(size): it must be at least 1, or nil for the default"
        case .invalidConfiguration(let problem): return "invalid configuration: \(problem)"
        case .queueFull: return "the pool's queue is full"
        case .notRunning: return "the pool is closed or terminated and accepts no new work"
        case .stillRunning: return "join() needs close() or terminate() first"
        case .notReady: return "the result is not ready yet"
        case .timeout: return "timed out waiting for the result"
        case .cancelled: return "the task was cancelled before it started"
        case .initializerFailed(let worker, let underlying):
            return "the initializer of worker \(worker) threw: \(underlying)"
        case .systemError(let function, let code): return "\(function) failed with error \(code)"
        case .wouldDeadlock: return "a worker of the pool would wait for itself"
        }
    }
}
