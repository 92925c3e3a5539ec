import Foundation
import Testing

@testable import ThreadPoolKit

/// Task priorities: applyAsync(priority:), execute(priority:), run(priority:) and jobs enqueued by
/// the runtime with their task's priority. Each ordering test holds a one-worker pool's worker with a
/// task waiting on a semaphore, queues work of mixed priorities behind it, lets it go, and compares
/// the order in which the bodies started with the documented one: by lane, first-in, first-out
/// within a lane.
@Suite("task priorities")
struct PriorityTests {
    /// Mixed priorities, nil for "no priority" (the plain API). Fewer than 16 tasks go ahead of any
    /// lane, so that aging plays no part.
    static let mixed: [TaskPriority?] = [
        .background, nil, .high, .utility, .medium, .low, .userInitiated, .background, .medium, nil, .high,
        .utility, TaskPriority(rawValue: 33), TaskPriority(rawValue: 1), TaskPriority(rawValue: 24),
    ]

    /// The lane of a priority, highest 3: the scale documented in CThreadPool.h.
    static func lane(_ priority: TaskPriority?) -> Int {
        guard let raw = priority?.rawValue, raw != 0 else { return 2 }
        return raw >= 25 ? 3 : raw >= 21 ? 2 : raw >= 17 ? 1 : 0
    }

    /// The order `priorities` (submitted in this order, numbered from 0) must start in: by lane,
    /// highest first, in submission order within a lane.
    static func expectedOrder(_ priorities: [TaskPriority?]) -> [Int] {
        stride(from: 3, through: 0, by: -1).flatMap { lane in
            priorities.indices.filter { Self.lane(priorities[$0]) == lane }
        }
    }

    /// A pool of one worker, held by a task waiting on `gate` until the gate opens.
    static func heldPool() throws -> (ThreadPool, Gate) {
        let pool = try ThreadPool(threads: 1, name: uniqueName("prio"))
        let gate = Gate()
        try pool.execute { gate.pass() }
        #expect(eventually { gate.arrived == 1 })
        return (pool, gate)
    }

    /// As ``heldPool()``, for async tests: waits without holding a thread of the global executor,
    /// which the tasks under test need in order to reach the pool.
    static func heldPool() async throws -> (ThreadPool, Gate) {
        let pool = try ThreadPool(threads: 1, name: uniqueName("prio"))
        let gate = Gate()
        try pool.execute { gate.pass() }
        #expect(await suspendingUntil { gate.arrived == 1 })
        return (pool, gate)
    }

    /// Waits (bounded) until `condition` holds, suspending between polls instead of blocking.
    static func suspendingUntil(within seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
        await waitUntil(polls: Int(seconds * 1_000)) { condition() }
    }

    @Test("applyAsync(priority:): queued tasks start by lane, FIFO within a lane")
    func applyAsyncOrder() throws {
        let (pool, gate) = try Self.heldPool()
        let started = Recorder<Int>()
        var results: [AsyncResult<Int>] = []
        for (id, priority) in Self.mixed.enumerated() {
            let body: @Sendable () -> Int = {
                started.append(id)
                return id
            }
            results.append(try priority.map { try pool.applyAsync(priority: $0, body) } ?? pool.applyAsync(body))
        }
        #expect(pool.stats.queued == Self.mixed.count)
        gate.open()
        for (id, result) in results.enumerated() { #expect(try result.get(timeout: .seconds(10)) == id) }
        #expect(started.elements == Self.expectedOrder(Self.mixed))
        pool.close()
        try pool.join()
        let stats = pool.stats
        #expect(stats.completed == Self.mixed.count + 1 && stats.queued == 0 && stats.cancelled == 0)
    }

    @Test("execute(priority:): queued tasks start by lane, FIFO within a lane")
    func executeOrder() throws {
        let (pool, gate) = try Self.heldPool()
        let started = Recorder<Int>()
        for (id, priority) in Self.mixed.enumerated() {
            if let priority {
                try pool.execute(priority: priority) { started.append(id) }
            } else {
                try pool.execute { started.append(id) }
            }
        }
        #expect(pool.stats.queued == Self.mixed.count)
        gate.open()
        pool.close()
        try pool.join()
        #expect(started.elements == Self.expectedOrder(Self.mixed))
        #expect(pool.stats.completed == Self.mixed.count + 1)
    }

    /// Priorities a Swift task can be created with (no "unspecified": a task always has one).
    static let taskPriorities: [TaskPriority] = [
        .background, .high, .utility, .medium, .low, .userInitiated, .background, .medium, .high, .utility,
    ]

    /// Starts one task per priority, each making `enqueue` queue one job on the pool, and waits for
    /// each job to be queued before starting the next, so that the queue's order is known. Then lets
    /// the worker go and returns the order in which the tasks reached the worker.
    static func taskOrder(
        _ makeTask: (ThreadPool, TaskPriority, @escaping @Sendable () -> Void) -> Task<Void, any Error>
    )
        async throws -> [Int]
    {
        let (pool, gate) = try await heldPool()
        let started = Recorder<Int>()
        var tasks: [Task<Void, any Error>] = []
        for (id, priority) in taskPriorities.enumerated() {
            tasks.append(makeTask(pool, priority) { started.append(id) })
            #expect(await suspendingUntil { pool.stats.queued == id + 1 })
        }
        gate.open()
        for task in tasks { try await task.value }
        pool.close()
        try await pool.join()
        #expect(pool.stats.queued == 0)
        return started.elements
    }

    @Test("enqueue honours ExecutorJob.priority: Task(priority:) with withTaskExecutorPreference(pool)")
    func executorPreferenceOrder() async throws {
        let order = try await Self.taskOrder { pool, priority, record in
            Task(priority: priority) {
                await withTaskExecutorPreference(pool) {
                    #expect(ThreadPool.currentWorker != nil)
                    record()
                }
            }
        }
        #expect(order == Self.expectedOrder(Self.taskPriorities))
    }

    @Test("enqueue honours ExecutorJob.priority: Task(executorPreference:priority:)")
    func taskExecutorPreferenceOrder() async throws {
        let order = try await Self.taskOrder { pool, priority, record in
            Task(executorPreference: pool, priority: priority) {
                #expect(ThreadPool.currentWorker != nil)
                record()
            }
        }
        #expect(order == Self.expectedOrder(Self.taskPriorities))
    }

    @Test("run() queues the task's own job, with the task's priority")
    func runTaskPriorityOrder() async throws {
        let order = try await Self.taskOrder { pool, priority, record in
            Task(priority: priority) { try await pool.run { record() } }
        }
        #expect(order == Self.expectedOrder(Self.taskPriorities))
    }

    @Test("run(priority:) queues the body with the given priority, whatever the task's")
    func runPriorityOrder() async throws {
        // Every task has one priority; each body is queued with another (a child task), or with the
        // task's own when they are equal.
        let taskPriorities = Self.taskPriorities
        let order = try await Self.taskOrder { pool, priority, record in
            let task: TaskPriority = priority == .medium ? .medium : priority == .high ? .background : .high
            return Task(priority: task) { () async throws -> Void in
                let worker = try await pool.run(priority: priority) { () -> String? in
                    record()
                    return ThreadPool.currentWorker?.name
                }
                #expect(worker?.hasPrefix("prio") == true)
            }
        }
        #expect(order == Self.expectedOrder(taskPriorities))
    }

    @TaskLocal static var traceID = "none"

    @Test("run(priority:) with another priority than the task's keeps task-locals and cancellation")
    func runPriorityChildTask() async throws {
        let (pool, gate) = try await Self.heldPool()
        // Task-locals reach the body.
        let seen = Task(priority: .medium) {
            try await Self.$traceID.withValue("t-42") {
                try await pool.run(priority: .high) { Self.traceID }
            }
        }
        #expect(await Self.suspendingUntil { pool.stats.queued == 1 })
        // A cancelled caller's body never runs; the caller gets CancellationError.
        let ran = Counter()
        let cancelled = Task(priority: .medium) {
            try await pool.run(priority: .background) { ran.increment() }
        }
        #expect(await Self.suspendingUntil { pool.stats.queued == 2 })
        cancelled.cancel()
        gate.open()
        #expect(try await seen.value == "t-42")
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(ran.value == 0)
        // The body's error is rethrown.
        await #expect(throws: TestError(code: 7)) {
            try await pool.run(priority: .background) { () throws -> Int in throw TestError(code: 7) }
        }
        pool.close()
        do {
            _ = try await pool.run(priority: .high) { 1 }
            Issue.record("run after close returned")
        } catch ThreadPoolError.notRunning {
        } catch {
            Issue.record("run after close threw \(error)")
        }
        try await pool.join()
    }

    @Test("aging: a background task waits behind at most 16 high tasks in a row")
    func aging() throws {
        let (pool, gate) = try Self.heldPool()
        let started = Recorder<String>()
        try pool.execute(priority: .background) { started.append("B") }
        for i in 0..<20 { try pool.execute(priority: .high) { started.append("H\(i)") } }
        try pool.execute(priority: .utility) { started.append("U") }
        gate.open()
        pool.close()
        try pool.join()
        // After 16 high tasks both lower lanes are due: the higher of the two goes first.
        let expected = (0..<16).map { "H\($0)" } + ["U", "B"] + (16..<20).map { "H\($0)" }
        #expect(started.elements == expected)
    }

    @Test("terminate drops the tasks of every lane, with exact counts")
    func terminate() throws {
        let (pool, gate) = try Self.heldPool()
        let ran = Counter()
        let failed = Counter()
        var results: [AsyncResult<Void>] = []
        for priority in Self.mixed {
            let body: @Sendable () -> Void = { ran.increment() }
            let onError: @Sendable (any Error) -> Void = { _ in failed.increment() }
            results.append(
                try priority.map { try pool.applyAsync(priority: $0, body, errorCallback: onError) }
                    ?? pool.applyAsync(body, errorCallback: onError))
        }
        for priority in Self.taskPriorities { try pool.execute(priority: priority) { ran.increment() } }
        let queued = Self.mixed.count + Self.taskPriorities.count
        #expect(pool.stats.queued == queued)
        pool.terminate()
        let stats = pool.stats
        #expect(stats.queued == 0 && stats.cancelled == queued && stats.running == 1)
        gate.open()
        try pool.join()
        #expect(ran.value == 0 && failed.value == Self.mixed.count)
        for result in results {
            expectPoolError({ if case .cancelled = $0 { true } else { false } }) {
                try result.get(timeout: .seconds(10))
            }
        }
        #expect(pool.stats.completed == 1 && pool.stats.cancelled == queued)
        let notRunning: (ThreadPoolError) -> Bool = { if case .notRunning = $0 { true } else { false } }
        expectPoolError(notRunning) { _ = try pool.applyAsync(priority: .high) { 1 } }
        expectPoolError(notRunning) { try pool.execute(priority: .background) {} }
    }

    @Test("after close, queued tasks of every lane still run; jobs go to the global executor")
    func close() async throws {
        let (pool, gate) = try await Self.heldPool()
        let ran = Counter()
        for priority in Self.taskPriorities { try pool.execute(priority: priority) { ran.increment() } }
        pool.close()
        gate.open()
        try await pool.join()
        #expect(ran.value == Self.taskPriorities.count)
        let worker = await Task(executorPreference: pool, priority: .high) { ThreadPool.currentWorker }.value
        #expect(worker == nil)
    }
}

/// Records the address of every job enqueued on it, and passes the job on to a pool.
final class AddressRecordingExecutor: TaskExecutor {
    let pool: ThreadPool
    let addresses = Recorder<UInt>()
    init(_ pool: ThreadPool) { self.pool = pool }
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        addresses.append(UInt(bitPattern: unsafeBitCast(job, to: Int.self)))
        pool.enqueue(ExecutorJob(job))
    }
}

extension PriorityTests {
    @Test("a task's job is the task: run(priority:) finds the job it names by the task's address")
    func currentTaskIsItsJob() async throws {
        #expect(MemoryLayout<UnsafeCurrentTask>.size == MemoryLayout<UnsafeRawPointer>.size)
        let pool = try ThreadPool(threads: 1)
        let executor = AddressRecordingExecutor(pool)
        let address = await Task.detached { () -> UInt? in
            let address = JobPriorities.currentTask
            await withTaskExecutorPreference(executor) { #expect(ThreadPool.currentWorker != nil) }
            return address
        }.value
        #expect(address != nil && executor.addresses.elements.first == address)
        pool.close()
        try await pool.join()
    }
}
