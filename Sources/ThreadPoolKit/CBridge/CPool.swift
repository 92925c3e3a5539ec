internal import CThreadPool

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// With RoomWaiter.swift, the only Swift code that talks to the C pool (CThreadPool): a typed wrapper over a `ctp_pool *`,
// the mapping of every `CTP_E*` status to a ThreadPoolError, and the C entry points (trampolines)
// through which the C pool calls back into Swift. Everything else in the module sees Swift types.

/// A C pool (`ctp_pool *`). A value: copying it copies the pointer; the owner (``ThreadPool``, or
/// ``PoolShared`` for the callback thread) destroys it once.
struct CPool: @unchecked Sendable { // the C pool is thread-safe on its own: a mutex and a lock-free inbox inside
    let pointer: OpaquePointer

    /// The largest number of workers a pool accepts.
    static let maximumThreadCount = Int(CTP_MAX_THREADS)

    /// The number of workers a pool created with no count starts (see ``ThreadPool/defaultThreadCount``).
    static var defaultThreadCount: Int { Int(ctp_default_thread_count()) }

    /// Starts `threads` workers (nil: ``defaultThreadCount``). `shared` is the pool's
    /// context: the C pool holds one reference to it and releases it when it frees the pool.
    /// `name` prefixes the workers' names; the initializer and finalizer run through `shared`.
    static func start(
        _ configuration: ThreadPool.Configuration, runsInitializer: Bool, runsFinalizer: Bool,
        shared: PoolShared
    ) throws(ThreadPoolError) -> CPool {
        var options = ctp_options()
        ctp_options_init(&options)
        options.threads = UInt32(configuration.threads ?? 0)
        options.max_threads = UInt32(configuration.maxThreads ?? 0)
        let (seconds, attoseconds) = configuration.keepAlive.components
        options.keep_alive_ns = UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
        options.stack_size = configuration.stackSize ?? 0
        options.queue_capacity = configuration.queueCapacity ?? 0
        if let niceness = configuration.niceness {
            options.set_niceness = 1
            options.niceness = Int32(niceness)
        }
        options.initializer = runsInitializer ? initializeWorker : nil
        options.finalizer = runsFinalizer ? finalizeWorker : nil
        options.context = Unmanaged.passRetained(shared).toOpaque()
        options.context_release = releaseContext
        // The C pool calls the observer with the pool's context (unretained: the pool holds it).
        var observer = ctp_observer()
        if shared.observer != nil {
            observer.task_queued = observeTaskQueued
            observer.task_started = observeTaskStarted
            observer.task_finished = observeTaskFinished
            observer.worker_started = observeWorkerStarted
            observer.worker_exited = observeWorkerExited
            observer.failure = observeFailure
            observer.context = options.context
        }
        let cpus = (configuration.pinnedCPUs ?? []).map { Int32($0) }
        let (status, pool) = withUnsafePointer(to: &observer) { observer in
            cpus.withUnsafeBufferPointer { cpus in
                options.pinned_cpus = cpus.baseAddress // copied by ctp_pool_create
                options.pinned_cpu_count = cpus.count
                if shared.observer != nil { options.observer = observer } // copied by ctp_pool_create
                return create(&options, name: configuration.name)
            }
        }
        guard status == 0, let pool else {
            Unmanaged.passUnretained(shared).release() // on failure the context is still ours
            if status == CTP_EINIT, let failure = shared.initializerFailure.withLock({ $0 }) {
                throw .initializerFailed(worker: failure.worker, underlying: failure.error)
            }
            throw ThreadPoolError(status: status, function: status == CTP_EAGAIN ? "pthread_create" : "ctp_pool_create")
        }
        return CPool(pointer: pool)
    }

    /// A serial pool of one thread named "<name>-1", with no context: a pool's callback thread, or a
    /// worker executor's fallback thread (which process exit leaves alone when `joinedAtExit` is
    /// false). Nil if it could not start.
    static func startSerial(name: String, joinedAtExit: Bool = true) -> CPool? {
        var options = ctp_options()
        ctp_options_init(&options)
        options.threads = 1
        options.skip_join_at_exit = joinedAtExit ? 0 : 1
        let (status, pool) = create(&options, name: name)
        guard status == 0, let pool else { return nil }
        return CPool(pointer: pool)
    }

    private static func create(_ options: inout ctp_options, name: String?) -> (Int32, OpaquePointer?) {
        var pool: OpaquePointer?
        guard let name else { return (ctp_pool_create(&options, &pool), pool) }
        let status = name.withCString { prefix in
            options.name_prefix = prefix // copied by ctp_pool_create
            return ctp_pool_create(&options, &pool)
        }
        return (status, pool)
    }

    var threadCount: Int { Int(ctp_pool_thread_count(pointer)) }
    var maxThreadCount: Int { Int(ctp_pool_max_thread_count(pointer)) }

    // MARK: Submitting

    /// Queues `job` with the reference the queue holds; on failure that reference is given back and
    /// nothing runs. The job runs through ``runJob``. A bounded queue that is full blocks the caller;
    /// with `mayBlock` false, the job runs at once on the calling thread if `runHereWhenFull`, else
    /// this throws ``ThreadPoolError/queueFull``.
    func submit(
        queueReference job: Unmanaged<_ThreadPoolJob>, mayBlock: Bool = true,
        runHereWhenFull: Bool = false
    ) throws(ThreadPoolError) {
        let argument = job.toOpaque()
        let status =
            mayBlock ? ctp_pool_submit(pointer, runJob, argument) : ctp_pool_try_submit(pointer, runJob, argument)
        if status == 0 { return }
        if status == CTP_EAGAIN && runHereWhenFull {
            runJob(argument, 0) // as a worker would, with the queue's reference
            return
        }
        Unmanaged<_ThreadPoolJob>.fromOpaque(argument).release()
        if status == CTP_EAGAIN { throw .queueFull }
        throw ThreadPoolError(status: status, function: "ctp_pool_submit")
    }

    /// Queues `job` as ``submit(queueReference:)`` does, in the lane of `priority`: the C pool takes
    /// Swift's raw values as they are (see `ctp_pool_submit_priority`).
    func submit(queueReference job: Unmanaged<_ThreadPoolJob>, priority: TaskPriority) throws(ThreadPoolError) {
        let argument = job.toOpaque()
        let status = ctp_pool_submit_priority(pointer, runJob, argument, Int32(priority.rawValue))
        if status != 0 {
            Unmanaged<_ThreadPoolJob>.fromOpaque(argument).release()
            throw ThreadPoolError(status: status, function: "ctp_pool_submit_priority")
        }
    }

    /// Queues `job` as `entries` entries of the shared queue (one lock acquisition), or once on every
    /// worker when `broadcast` is true, holding one reference for all; on failure the reference is
    /// given back and nothing is queued.
    /// With `reserved`, the entries go into slots of a bounded queue reserved for them (``reserve(_:)``,
    /// ``waitForRoom(_:shared:)``), which are given back on failure.
    func submitShared(_ job: SharedJob, entries: Int, broadcast: Bool, reserved: Bool = false) throws(ThreadPoolError) {
        let argument = Unmanaged.passRetained(job).toOpaque()
        let status =
            broadcast
            ? ctp_pool_broadcast(pointer, runSharedJob, argument)
            : reserved
                ? ctp_pool_submit_many_reserved(pointer, runSharedJob, argument, entries)
                : ctp_pool_submit_many(pointer, runSharedJob, argument, entries)
        if status != 0 {
            Unmanaged<SharedJob>.fromOpaque(argument).release()
            if status == CTP_EAGAIN { throw .queueFull } // more entries than the bounded queue has room for
            throw ThreadPoolError(status: status, function: broadcast ? "ctp_pool_broadcast" : "ctp_pool_submit_many")
        }
    }

    /// Queues a Swift concurrency job in the lane of its priority (a `JobPriority` raw value, on the
    /// same scale as `TaskPriority`'s; 0, unspecified, is the default lane); false if the pool no
    /// longer accepts work. Never waits for room in a bounded queue: the job goes into a slot reserved
    /// for it (`reserved`, given back on failure), or beyond the capacity (see `ctp_pool_submit_job`).
    func submit(_ job: UnownedJob, priority: UInt8, reserved: Bool) -> Bool {
        let argument = unsafeBitCast(job, to: UnsafeMutableRawPointer.self)
        return reserved
            ? ctp_pool_submit_reserved(pointer, runExecutorJob, argument, Int32(priority)) == 0
            : ctp_pool_submit_job(pointer, runExecutorJob, argument, Int32(priority)) == 0
    }

    /// Queues a drain of `executor`'s jobs on worker `worker` only (ahead of the shared queue), with a
    /// reference to the executor of its own; false (and the reference given back) once that worker
    /// takes no more work: it has exited, or the pool was terminated. Traps when the worker's queue
    /// cannot grow (out of memory), as a Swift allocation does: a job must not be lost.
    func submit(drainOf executor: ThreadPool.WorkerExecutor, toWorker worker: Int) -> Bool {
        let argument = Unmanaged.passRetained(executor).toOpaque()
        let status = ctp_pool_submit_to_worker(pointer, UInt32(worker), drainWorkerExecutor, argument)
        if status == 0 { return true }
        Unmanaged<ThreadPool.WorkerExecutor>.fromOpaque(argument).release()
        precondition(
            status == CTP_ECLOSED,
            "ctp_pool_submit_to_worker failed: \(String(cString: ctp_strerror(status)))")
        return false
    }

    /// Queues a drain of `executor`'s jobs on this (serial) pool, with a reference of its own; false
    /// (and the reference given back) if the pool no longer accepts work.
    func submit(drainOf executor: ThreadPool.WorkerExecutor) -> Bool {
        let argument = Unmanaged.passRetained(executor).toOpaque()
        if ctp_pool_submit(pointer, drainWorkerExecutor, argument) == 0 { return true }
        Unmanaged<ThreadPool.WorkerExecutor>.fromOpaque(argument).release()
        return false
    }

    /// Queues the delivery of a finished result's callbacks (on a pool's callback thread), with a
    /// reference of its own; false (and the reference given back) if the pool no longer accepts work.
    func submitCallbacks(of job: _ThreadPoolJob) -> Bool {
        let argument = Unmanaged.passRetained(job).toOpaque()
        if ctp_pool_submit(pointer, deliverCallbacksOfJob, argument) == 0 { return true }
        Unmanaged<_ThreadPoolJob>.fromOpaque(argument).release()
        return false
    }

    // MARK: Lifecycle

    /// Stops accepting work; true if the pool was running until now.
    @discardableResult
    func close() -> Bool { ctp_pool_close(pointer) == 0 }

    /// Stops accepting work and drops the queued tasks (each gets its cancellation call here).
    func terminate() { _ = ctp_pool_terminate(pointer) }

    /// Waits until every worker has exited.
    func join() throws(ThreadPoolError) {
        let status = ctp_pool_join(pointer)
        if status != 0 { throw ThreadPoolError(status: status, function: "ctp_pool_join") }
    }

    /// Frees the pool (closing and joining it first; from one of its own workers, the last worker
    /// to exit frees it).
    func destroy() { ctp_pool_destroy(pointer) }

    /// The C pool's counters, read together under its lock.
    func counters() -> CPoolCounters {
        var stats = ctp_stats()
        _ = ctp_pool_stats(pointer, &stats)
        return CPoolCounters(
            threads: Int(stats.threads), idle: Int(stats.idle), queued: Int(stats.queued),
            running: Int(stats.running), completed: Int(stats.completed),
            cancelled: Int(stats.cancelled), declined: Int(stats.declined),
            peakThreads: Int(stats.peak_threads), threadsStarted: Int(stats.threads_started),
            threadsRetired: Int(stats.threads_retired), growFailures: Int(stats.grow_failures))
    }

    // MARK: The calling thread

    /// Whether the calling thread is one of this pool's workers.
    var isCurrentWorker: Bool { ctp_current_pool() == pointer }

    /// Whether the calling thread is this pool's worker `index`.
    func isCurrentWorker(index: Int) -> Bool {
        ctp_current_pool() == pointer && Int(ctp_current_worker_index()) == index
    }

    /// The calling worker's index and name, or nil off every pool's threads.
    static var currentWorker: (index: Int, name: String)? {
        let index = ctp_current_worker_index()
        guard index >= 0, let name = ctp_current_worker_name() else { return nil }
        return (Int(index), String(cString: name))
    }

    /// The context of the pool whose worker is calling, or nil off every pool's threads.
    static var currentShared: PoolShared? {
        guard let context = ctp_current_context() else { return nil }
        return Unmanaged<PoolShared>.fromOpaque(context).takeUnretainedValue()
    }

    /// On a pool's worker, runs one queued task of that pool and returns true; false when nothing is
    /// queued or the caller is not a worker.
    static func helpCurrentPool() -> Bool {
        guard let pool = ctp_current_pool() else { return false }
        return ctp_pool_help(pool) == 1
    }

    /// Around a wait of the calling worker (see ``ThreadPool/blocking(_:)``): the pool starts a worker
    /// to stand in while it blocks. Nothing happens off the pool's workers.
    static func blockBegin() {
        guard let pool = ctp_current_pool() else { return }
        _ = ctp_pool_block_begin(pool)
    }

    static func blockEnd() {
        guard let pool = ctp_current_pool() else { return }
        _ = ctp_pool_block_end(pool)
    }

    /// Tells the C pool that the task it is calling did no work (see ``PoolShared/declineCurrentTask()``).
    static func declineCurrentTask() { ctp_task_declined() }

    /// As ``declineCurrentTask()`` for a task a waiting worker ran itself: the observer is told it
    /// completed or failed.
    static func declineRanInlineTask(failed: Bool) {
        ctp_task_declined_with_outcome(failed ? CTP_TASK_FAILED : CTP_TASK_COMPLETED)
    }

    /// Tells the C pool, for its observer, that the task running on this thread failed.
    static func markTaskFailed() { ctp_task_failed() }

    /// Whether ``markTaskFailed()`` was called on this thread since the last call; clears it.
    static func takeTaskFailed() -> Bool { ctp_task_take_failed() != 0 }

    /// The calling thread's slot for the recycler's magazine (see ``JobRecycler``).
    static var threadSlot: UnsafeMutablePointer<UnsafeMutableRawPointer?> { ctp_thread_slot()! }

    /// Whether pools are joined at process exit (see ``ThreadPool/joinsAtExit``).
    static var joinsAtExit: Bool {
        get { ctp_joins_at_exit() != 0 }
        set { ctp_set_join_at_exit(newValue ? 1 : 0) }
    }
}

/// What ``CPool/counters()`` reads.
struct CPoolCounters {
    var threads, idle, queued, running, completed, cancelled, declined: Int
    var peakThreads, threadsStarted, threadsRetired, growFailures: Int
}

extension ThreadPoolError {
    /// The Swift error for a `CTP_E*` status returned by `function`.
    init(status: Int32, function: String) {
        switch status {
        case CTP_ECLOSED: self = .notRunning
        case CTP_ERUNNING: self = .stillRunning
        case CTP_ECANCELED: self = .cancelled
        case CTP_EDEADLK: self = .wouldDeadlock
        case CTP_ENOMEM: self = .systemError(function: function, code: ENOMEM)
        case CTP_EAGAIN: self = .systemError(function: function, code: EAGAIN)
        default: self = .systemError(function: function, code: EINVAL)
        }
    }
}

// MARK: The C entry points

/// Every job: takes back the reference the queue held (also called by ``CPool/runHere(queueReference:)``). If that is the only one (the caller dropped its
/// result before it ran), the job runs unobserved; if it is the last one once the job is done, the job
/// is kept for reuse instead of being freed.
private let runJob: ctp_task_fn = { argument, status in
    guard let argument else { return }
    var job = Unmanaged<_ThreadPoolJob>.fromOpaque(argument).takeRetainedValue()
    var unreferenced = false
    if status != 0 {
        job.drop()
    } else if JobRecycler.isUnreferenced(&job) {
        unreferenced = job.runUnobserved()
    } else {
        job.run()
    }
    if unreferenced || JobRecycler.isUnreferenced(&job), let kind = job.resetForReuse() {
        JobRecycler.keep(consume job, kind: kind)
    }
}

/// A shared job's entries: borrow the queue's single reference (the job keeps itself alive until its
/// last entry: no retain and release per entry).
private let runSharedJob: ctp_task_fn = { argument, status in
    guard let argument else { return }
    Unmanaged<_ThreadPoolJob>.fromOpaque(argument)._withUnsafeGuaranteedRef { job in
        if status == 0 {
            job.run()
        } else {
            job.drop()
        }
    }
}

/// A callback delivery on the callback thread: takes back the queue's reference. Delivered even when
/// the status says the callback pool dropped it: every callback runs once.
private let deliverCallbacksOfJob: ctp_task_fn = { argument, _ in
    guard let argument else { return }
    Unmanaged<_ThreadPoolJob>.fromOpaque(argument).takeRetainedValue().deliverCallbacks()
}

/// A Swift concurrency job: runs on this worker with the pool as its executor; one the pool dropped
/// runs on the global concurrent executor instead (a Swift task is never lost).
private let runExecutorJob: ctp_task_fn = { argument, status in
    guard let argument else { return }
    let job = unsafeBitCast(argument, to: UnownedJob.self) // UnownedJob is one pointer (checked in tests)
    if status == 0, let executor = CPool.currentShared?.taskExecutor {
        job.runSynchronously(on: executor)
    } else {
        globalConcurrentExecutor.enqueue(job)
    }
}

/// A worker executor's drain: takes back the queue's reference. Status 0: runs the jobs queued so far
/// (on the executor's worker, or on its fallback thread); CTP_ECANCELED (terminate dropped it, on the
/// terminating thread): hands the jobs to the fallback thread, since a Swift job must run.
private let drainWorkerExecutor: ctp_task_fn = { argument, status in
    guard let argument else { return }
    let executor = Unmanaged<ThreadPool.WorkerExecutor>.fromOpaque(argument).takeRetainedValue()
    if status == 0 {
        executor.drain()
    } else {
        executor.workerDroppedDrain()
    }
}

// `context` is always an unretained PoolShared.
private let initializeWorker: ctp_init_fn = { context, index in
    Unmanaged<PoolShared>.fromOpaque(context!).takeUnretainedValue().initialize(worker: Int(index))
}
private let finalizeWorker: ctp_fini_fn = { context, _ in
    Unmanaged<PoolShared>.fromOpaque(context!).takeUnretainedValue().finalizer?()
}
private let releaseContext: @convention(c) (UnsafeMutableRawPointer?) -> Void = { context in
    Unmanaged<PoolShared>.fromOpaque(context!).release()
}

// The observer hook: `context` is the pool's unretained PoolShared, whose observer is not nil.
private func observedShared(_ context: UnsafeMutableRawPointer?) -> PoolShared {
    Unmanaged<PoolShared>.fromOpaque(context!).takeUnretainedValue()
}

private let observeTaskQueued: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void = { context, count in
    let shared = observedShared(context)
    shared.observer?.taskQueued(pool: shared.observedName, count: count)
}

private let observeTaskStarted: @convention(c) (UnsafeMutableRawPointer?, UInt64) -> Void = { context, wait in
    let shared = observedShared(context)
    shared.observer?.taskStarted(pool: shared.observedName, wait: .nanoseconds(Int64(clamping: wait)))
}

private let observeTaskFinished: @convention(c) (UnsafeMutableRawPointer?, Int32, UInt64, UInt64) -> Void = {
    context, outcome, wait, run in
    let shared = observedShared(context)
    let taskOutcome: ThreadPoolTaskOutcome
    switch outcome {
    case CTP_TASK_COMPLETED: taskOutcome = .completed
    case CTP_TASK_FAILED: taskOutcome = .failed
    default: taskOutcome = .cancelled // dropped by terminate, or declined: cancelled by its caller
    }
    shared.observer?.taskFinished(
        pool: shared.observedName, outcome: taskOutcome,
        wait: .nanoseconds(Int64(clamping: wait)),
        run: outcome == CTP_TASK_CANCELLED ? nil : .nanoseconds(Int64(clamping: run)))
}

private let observeWorkerStarted: @convention(c) (UnsafeMutableRawPointer?, UInt32, UnsafePointer<CChar>?) -> Void = {
    context, index, name in
    let shared = observedShared(context)
    let worker = WorkerInfo(index: Int(index), name: name.map { String(cString: $0) } ?? "")
    shared.observer?.workerStarted(pool: shared.observedName, worker: worker)
}

private let observeWorkerExited:
    @convention(c) (UnsafeMutableRawPointer?, UInt32, UnsafePointer<CChar>?, Int32)
        -> Void = { context, index, name, retired in
            let shared = observedShared(context)
            let worker = WorkerInfo(index: Int(index), name: name.map { String(cString: $0) } ?? "")
            shared.observer?.workerExited(pool: shared.observedName, worker: worker, retired: retired != 0)
        }

private let observeFailure: @convention(c) (UnsafeMutableRawPointer?, Int32, UInt32, Int32) -> Void = {
    context, kind, index, code in
    let shared = observedShared(context)
    let worker = Int(index)
    let failure: ThreadPoolFailure
    if kind == CTP_FAILURE_GROW_INIT {
        let error = shared.grownInitializerErrors?.withLock { $0.removeValue(forKey: worker) }
        failure = .initializerFailed(
            worker: worker, error: error ?? ThreadPoolError.systemError(function: "initializer", code: code))
    } else {
        failure = .threadCreationFailed(worker: worker, code: Int(code))
    }
    shared.observer?.failure(pool: shared.observedName, failure)
}
