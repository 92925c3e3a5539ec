// An actor on one worker: a SerialExecutor whose jobs run on one worker of a pool, in order, between
// that worker's tasks, so that the actor's code sees the thread-local state the pool's initializer
// set up on that worker.
//
// The jobs wait in the executor's own queue; the worker runs them through a "drain", a C task queued
// on that worker alone (ctp_pool_submit_to_worker), which runs the jobs queued so far and queues
// itself again if more came meanwhile. At most one drain exists at a time (queued or running), so
// jobs never run two at once, nor inside one another, and one C task serves a whole batch of jobs.

extension ThreadPool {
    /// A serial executor for actors that live on worker `worker` of this pool: the actor's code runs
    /// on that worker, one job at a time and in the order the jobs were enqueued, between the pool's
    /// tasks, where the thread-local state that the pool's initializer set up on that worker (a
    /// database connection, a compression stream, in a ``ThreadLocal``) is visible.
    ///
    /// ```swift
    /// actor Database {
    ///     static let connection = ThreadLocal<Connection?> { nil } // opened by the pool's initializer
    ///     let executor: ThreadPool.WorkerExecutor
    ///     nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    ///
    ///     init(pool: ThreadPool, worker: Int) {
    ///         executor = pool.serialExecutor(worker: worker)
    ///     }
    ///
    ///     func count(_ table: String) throws -> Int {
    ///         try Self.connection.value!.count(table) // worker `worker`'s connection
    ///     }
    /// }
    /// ```
    ///
    /// The actor must store the executor: the Swift runtime holds serial executors unowned, so the
    /// actor is what keeps it alive. The executor in turn holds the pool, so **an actor keeps its pool
    /// alive**: the pool is deinitialized (closed and joined) only once the actors on it are gone.
    ///
    /// While an executor of a worker is alive, every call for that worker returns that same executor,
    /// so actors on one worker share it, and a call from one to another runs at once on the worker,
    /// without a hop.
    ///
    /// - Parameter worker: the worker's index, in `0 ..< threadCount`. Like an array subscript, an
    ///   index out of range is a precondition failure (the program stops with a message saying so).
    /// - Returns: the worker's executor. After ``close()`` the worker still runs its jobs until it
    ///   exits; after that, or after ``terminate()``, see ``WorkerExecutor``.
    public func serialExecutor(worker: Int) -> WorkerExecutor {
        precondition(
            (0..<threadCount).contains(worker),
            "serialExecutor(worker: \(worker)): no such worker; the index must be in 0..<\(threadCount)")
        return workerExecutor(worker) { WorkerExecutor(pool: self, worker: worker) }
    }

    /// A `SerialExecutor` whose jobs run on one worker of a pool: made by
    /// ``ThreadPool/serialExecutor(worker:)``, for actors that use that worker's thread-local state.
    ///
    /// Jobs run on the worker one at a time, in the order they were enqueued. The worker runs them
    /// after its current task and before it takes more from the pool's shared queue (as it runs a
    /// ``ThreadPool/broadcast(_:)`` entry), waking up for them if it is idle. An actor that is never
    /// idle keeps its worker from the shared queue; the other workers take those tasks.
    ///
    /// Isolation checks: ``checkIsolated()`` and ``isIsolatingCurrentContext()`` say whether the
    /// calling thread is the executor's worker, so `MainActor.assumeIsolated`-style checks
    /// (`actor.assumeIsolated { ... }`) pass in any synchronous code running on that worker: a task or
    /// a ``ThreadPool/broadcast(_:)`` entry on it, as well as the actor's own jobs.
    ///
    /// ### After close, terminate and join
    ///
    /// - After ``ThreadPool/close()`` the worker keeps running the executor's jobs, those enqueued
    ///   after the close too, until it exits: it exits once its own jobs and the shared queue are done.
    /// - Once the worker has exited (after ``ThreadPool/join()-4pmv3``, for one), or once
    ///   ``ThreadPool/terminate()`` has been called (which drops the jobs waiting for the worker; those
    ///   it has already taken up run to the end there), the worker can no longer run them, and a job
    ///   must run or its Swift task never resumes. So they run on a **fallback thread**, started for
    ///   this executor when first needed and named `"<pool name>-<worker number>-fallback-1"`
    ///   (`"pool-..."` for a pool without a name): still one at a time and in order, so the actor's
    ///   isolation holds and its state is safe, but **no longer on the worker**: its thread-local
    ///   values are that thread's own (not the ones the initializer made on the worker),
    ///   ``ThreadPool/currentWorker`` describes that thread (index 0, its name ending in
    ///   `-fallback-1`), and ``checkIsolated()`` fails in code that is not one of the actor's jobs. An
    ///   actor that needs its worker's state should treat that state's absence as "the pool is shut
    ///   down".
    ///
    /// Lifetime: the executor holds its pool (``pool``), the actor holds the executor, and the
    /// fallback thread, if any, stops when the executor is deinitialized.
    ///
    /// The type is separate from the pool's own `TaskExecutor` conformance on purpose: one type
    /// conforming to both protocols sends every job of the runtime down a slower path.
    public final class WorkerExecutor: SerialExecutor, CustomStringConvertible {
        /// The pool whose worker runs the jobs. The executor holds it: the pool lives at least as long
        /// as the executor, and so as long as any actor that uses the executor.
        public let pool: ThreadPool
        /// The index of the worker that runs the jobs, in `0 ..< pool.threadCount`.
        public let worker: Int

        /// The jobs waiting to run, and where the drain runs.
        private let queue = Locked(JobQueue())
        /// The batch the drain is running: only the drain touches it (there is one at a time, handed
        /// on through `queue`'s lock), and swaps it with the queue's jobs so that both keep their storage.
        nonisolated(unsafe) private var batch: [UnownedJob] = []

        private struct JobQueue {
            var jobs: [UnownedJob] = []
            /// A drain is queued or running. While it is, enqueues only add jobs: the drain runs them.
            var draining = false
            /// The worker takes no more work (it exited, or the pool was terminated): drains go to
            /// the fallback thread from now on.
            var workerGone = false
            /// The fallback thread, once started.
            var fallback: CPool?
        }

        /// Where a drain runs.
        private enum DrainPlace {
            case worker, fallback
        }

        init(pool: ThreadPool, worker: Int) {
            self.pool = pool
            self.worker = worker
        }

        deinit {
            // No drain is queued or running (each holds the executor), so the fallback thread is idle.
            // From that thread itself (its drain released the last reference) it exits on its own.
            queue.withLock { $0.fallback }?.destroy()
        }

        /// Queues a job to run on the worker (called by the Swift runtime).
        public func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            let start = queue.withLock { q -> DrainPlace? in
                q.jobs.append(job)
                if q.draining { return nil }
                q.draining = true
                return q.workerGone ? .fallback : .worker
            }
            if let start { submitDrain(start) }
        }

        /// The executor as the runtime refers to it (the value of an actor's `unownedExecutor`). The
        /// runtime does not retain it: keep the executor alive in the actor.
        public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
            UnownedSerialExecutor(ordinary: self)
        }

        /// Stops the program unless the calling thread is the executor's worker (called by the
        /// runtime when code checks that it is isolated to an actor on this executor, as
        /// `assumeIsolated` does).
        public func checkIsolated() {
            precondition(
                isOnWorker,
                """
                not isolated to \(self): the calling thread is \
                \(ThreadPool.currentWorker.map { "worker \($0.index) (\($0.name))" } ?? "not one of a pool's workers")
                """)
        }

        /// Whether the calling thread is the executor's worker (called by the runtime, as
        /// ``checkIsolated()`` is, where a thread that is not may be told apart without stopping).
        public func isIsolatingCurrentContext() -> Bool? {
            isOnWorker
        }

        /// `<WorkerExecutor worker=1 of <ThreadPool state=running threads=4>>`.
        public var description: String {
            "<WorkerExecutor worker=\(worker) of \(pool)>"
        }

        /// Jobs enqueued and not yet taken by a drain (for tests).
        var waitingJobs: Int {
            queue.withLock { $0.jobs.count }
        }

        private var isOnWorker: Bool {
            pool.cPool.isCurrentWorker(index: worker)
        }

        // MARK: The drain

        /// Queues the drain, which the caller owns (it set `draining`, or it is the drain), on the
        /// worker, or on the fallback thread once the worker takes no more work.
        private func submitDrain(_ place: DrainPlace) {
            if place == .worker {
                if pool.cPool.submit(drainOf: self, toWorker: worker) { return }
                queue.withLock { $0.workerGone = true }
            }
            // Only the drain's owner starts the thread, so no other thread can be starting one too.
            var fallback = queue.withLock { $0.fallback }
            if fallback == nil {
                fallback = CPool.startSerial(
                    name: "\(pool.shared.name ?? "pool")-\(worker + 1)-fallback",
                    joinedAtExit: false)
                queue.withLock { $0.fallback = fallback }
            }
            // A fallback thread stops only in deinit, and runs every drain queued before that.
            guard let fallback, fallback.submit(drainOf: self) else {
                fatalError("\(self): its worker has exited and no fallback thread could be started for its jobs")
            }
        }

        /// Runs the jobs queued so far, on the worker (or the fallback thread); queues the drain again
        /// if more came meanwhile, behind whatever else the worker was given meanwhile.
        func drain() {
            queue.withLock { swap(&batch, &$0.jobs) }
            let executor = asUnownedSerialExecutor()
            for job in batch {
                job.runSynchronously(on: executor)
            }
            batch.removeAll(keepingCapacity: true)
            let next = queue.withLock { q -> DrainPlace? in
                if q.jobs.isEmpty {
                    q.draining = false
                    return nil
                }
                return q.workerGone ? .fallback : .worker
            }
            if let next { submitDrain(next) }
        }

        /// terminate() dropped the drain before it ran: the worker takes no more work, and the jobs go
        /// to the fallback thread (called on the thread calling terminate).
        func workerDroppedDrain() {
            queue.withLock { $0.workerGone = true }
            submitDrain(.fallback)
        }
    }
}
