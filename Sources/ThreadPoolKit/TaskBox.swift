internal import CThreadPool

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A unit of work in a pool's queue: the one place where Swift objects cross into C and back.
///
/// Every job is queued with one strong reference (`Unmanaged.passRetained`), which the pool hands
/// back exactly once: to ``run()`` on a worker, or to ``drop()`` when ``ThreadPool/terminate()``
/// discards the job before it started. ``AsyncResult`` is a job, so that a task costs one
/// allocation: the closure, its callbacks and its outcome live in one object.
///
/// This class is public only because ``AsyncResult``, a public class, inherits from it; it has no
/// public members and cannot be subclassed outside this module.
@_documentation(visibility: internal)
public class _ThreadPoolJob {
    init() {}

    /// Runs the job. Called once, on a worker, unless ``drop()`` is called instead.
    func run() {}

    /// The pool discarded the job before it started. Called once, on the thread calling
    /// `terminate()`, unless ``run()`` is called instead.
    func drop() {}
}

// Has no state of its own; each subclass documents how it guards its own.
extension _ThreadPoolJob: @unchecked Sendable {}

/// The C entry point of every job: takes back the reference the queue held.
let runJob: ctp_task_fn = { argument, status in
    guard let argument else { return }
    let job = Unmanaged<_ThreadPoolJob>.fromOpaque(argument).takeRetainedValue()
    if status == 0 {
        job.run()
    } else {
        job.drop()
    }
}

extension ThreadPool {
    /// Queues `job`; on failure the queue's reference is given back and nothing runs.
    func submit(_ job: _ThreadPoolJob) throws(ThreadPoolError) {
        let argument = Unmanaged.passRetained(job).toOpaque()
        let status = ctp_pool_submit(handle, runJob, argument)
        if status != 0 {
            Unmanaged<_ThreadPoolJob>.fromOpaque(argument).release()
            throw ThreadPoolError(status: status, function: "ctp_pool_submit")
        }
    }
}

extension ThreadPoolError {
    /// The Swift error for a `CTP_E*` status.
    init(status: Int32, function: String) {
        switch status {
        case CTP_ECLOSED: self = .notRunning
        case CTP_ERUNNING: self = .stillRunning
        case CTP_ETIMEDOUT: self = .timeout
        case CTP_ECANCELED: self = .cancelled
        case CTP_EDEADLK: self = .wouldDeadlock
        case CTP_ENOMEM: self = .systemError(function: function, code: ENOMEM)
        case CTP_EAGAIN: self = .systemError(function: function, code: EAGAIN)
        default: self = .systemError(function: function, code: EINVAL)
        }
    }
}
