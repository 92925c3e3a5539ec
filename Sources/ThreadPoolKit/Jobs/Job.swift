import Synchronization

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
/// allocation: the closure, its callbacks and its outcome live in one object (and none when a finished
/// job nobody references is reused: see ``JobRecycler``).
///
/// This class is public only because ``AsyncResult``, a public class, inherits from it; it has no
/// public members and cannot be subclassed outside this module.
@_documentation(visibility: internal)
public class _ThreadPoolJob {
    @usableFromInline
    init() {}

    /// Runs the job. Called once, on a worker, unless ``drop()`` or ``runUnobserved()`` is called
    /// instead.
    func run() {}

    /// Runs the job, which nothing but the queue references: nothing can wait for it, cancel it or
    /// read its outcome, so a job may skip publishing one. Called instead of ``run()``. Returns true if
    /// nothing references the job afterwards either; false if it ran as usual and may have handed
    /// itself on (a result's callbacks go to the callback thread), so that the caller checks again.
    func runUnobserved() -> Bool {
        run()
        return false
    }

    /// The pool discarded the job before it started. Called once, on the thread calling
    /// `terminate()`, unless ``run()`` is called instead.
    func drop() {}

    /// Runs a finished result's callbacks and publishes it; on the pool's callback thread.
    @usableFromInline
    func deliverCallbacks() {}

    /// Called after ``run()`` or ``drop()`` by the holder of the last reference: resets the job for
    /// reuse and returns its class (the key ``JobRecycler`` keeps it under), or returns nil if this
    /// kind of job is not reused.
    func resetForReuse() -> ObjectIdentifier? { nil }

    /// How many references a kept job of this class carries in ``JobRecycler``, 1 or 2: one for the
    /// queue it is submitted to next, and one more if its submitter also keeps it (an ``AsyncResult``
    /// is returned to the caller). Taken by the worker that keeps the job, whose core has its reference
    /// count in cache, not by the submitting thread, to which that cache line has to move first.
    var keptReferences: Int { 1 }
}

// Has no state of its own; each subclass documents how it guards its own.
extension _ThreadPoolJob: @unchecked Sendable {}

/// A job queued as several entries (map chunks, one per worker for broadcast) that share one
/// object: the queue holds a single reference for all of them, and the last entry to finish (run or
/// dropped) completes the job and gives that reference back. No allocation per entry.
@usableFromInline
class SharedJob: _ThreadPoolJob, @unchecked Sendable {
    /// Entries not yet finished.
    private let entriesLeft: Atomic<Int>
    /// Set by the first entry to fail; it alone writes `failure`.
    private let failed = Atomic<Bool>(false)
    // Written once by the entry that set `failed`, before its `entriesLeft` decrement (release);
    // read by the last entry after its decrement (acquire).
    private nonisolated(unsafe) var failure: (any Error)?

    @usableFromInline
    init(entries: Int) {
        entriesLeft = Atomic(entries)
    }

    /// Whether an entry has failed already (later entries may skip their work).
    @usableFromInline
    var hasFailed: Bool { failed.load(ordering: .relaxed) }

    /// Records `error` if it is the first failure.
    @usableFromInline
    func recordFailure(_ error: any Error) {
        if failed.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            failure = error
        }
    }

    /// Runs one entry's work.
    @usableFromInline
    func runEntry() {}

    /// Called once, by the last entry, with the first failure (nil if every entry succeeded).
    @usableFromInline
    func complete(failure: (any Error)?) {}

    override func run() {
        runEntry()
        finishEntry()
    }

    /// Runs one entry on the calling thread instead of queueing it (submit one entry fewer).
    @usableFromInline
    func runEntryHere() {
        run()
    }

    override func drop() {
        dropEntry()
        finishEntry()
    }

    /// terminate() dropped an entry before it started: by default the job fails with `.cancelled`.
    @usableFromInline
    func dropEntry() {
        recordFailure(ThreadPoolError.cancelled)
    }

    private func finishEntry() {
        guard entriesLeft.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
        complete(failure: failure)
        Unmanaged.passUnretained(self).release() // the queue's single reference
    }
}

extension ThreadPool {
    /// Queues `job` as `entries` entries of the shared queue (one lock acquisition), or once on
    /// every worker when `broadcast` is true. On failure nothing is queued and the job is released.
    /// A bounded queue's full-queue policy applies to the entries together (at most
    /// ``sharedEntryLimit`` of them): they wait for room for all of them, or the caller runs them.
    @usableFromInline
    func submitShared(_ job: SharedJob, entries: Int, broadcast: Bool = false) throws(ThreadPoolError) {
        guard queueCapacity != nil, !broadcast, entries > 0 else {
            return try cPool.submitShared(job, entries: entries, broadcast: broadcast)
        }
        switch try admitBlocking(entries) {
        case .reserved:
            try cPool.submitShared(job, entries: entries, broadcast: false, reserved: true)
        case .runHere:
            for _ in 0..<entries { job.runEntryHere() }
        }
    }

    /// Queues `job`; on failure the queue's reference is given back and nothing runs.
    @usableFromInline
    func submit(_ job: _ThreadPoolJob) throws(ThreadPoolError) {
        try submit(queueReference: Unmanaged.passRetained(job))
    }

    /// Queues a job with the reference the queue holds, which the caller has taken already (a job
    /// from ``JobRecycler`` comes with it); on failure that reference is given back and nothing runs.
    @usableFromInline
    func submit(queueReference job: Unmanaged<_ThreadPoolJob>) throws(ThreadPoolError) {
        if submitMayBlock {
            try cPool.submit(queueReference: job)
        } else {
            try cPool.submit(queueReference: job, mayBlock: false, runHereWhenFull: runsOnCallerWhenFull)
        }
    }

    /// As ``submit(queueReference:)``, in the queue's lane for `priority`.
    @usableFromInline
    func submit(queueReference job: Unmanaged<_ThreadPoolJob>, priority: TaskPriority) throws(ThreadPoolError) {
        try cPool.submit(queueReference: job, priority: priority)
    }
}
