import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

/// Where a call on an actor ran: the worker (index and name) and that thread's `WorkerBound.tag`.
struct Placement: Sendable, Equatable {
    let index: Int?
    let name: String?
    let tag: String

    /// Read on the calling thread (synchronous: ThreadLocal.value is unavailable in async code).
    static func here() -> Placement {
        let worker = ThreadPool.currentWorker
        return Placement(index: worker?.index, name: worker?.name, tag: WorkerBound.tag.value)
    }
}

/// An actor on one worker of a pool, as the documentation shows it.
actor WorkerBound {
    /// Set by the test pools' initializer to "set by <worker name>"; "unset" on other threads.
    static let tag = ThreadLocal<String> { "unset" }
    static func initializer() { tag.value = "set by \(ThreadPool.currentWorker!.name)" }

    let executor: ThreadPool.WorkerExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private(set) var count = 0
    private(set) var log: [Int] = []
    /// The placement of every call to `increment`, for checking that all of them ran on the worker.
    private(set) var placements: [Placement] = []

    init(_ executor: ThreadPool.WorkerExecutor) {
        self.executor = executor
    }

    func placement() -> Placement { .here() }

    func increment() -> Int {
        placements.append(.here())
        count += 1
        return count
    }

    func record(_ value: Int) { log.append(value) }

    /// Starts `count` tasks isolated to this actor, in order: each one's first job is enqueued on the
    /// actor's executor as the task is created, so they run in creation order on a FIFO executor.
    func startRecorders(_ count: Int) {
        for value in 0..<count {
            Task { self.record(value) }
        }
    }

    /// A call to another actor: on the same worker's executor it runs without a hop.
    func ask(_ other: WorkerBound) async -> (mine: Placement, theirs: Placement) {
        let mine = Placement.here()
        return (mine, await other.placement())
    }
}

/// Runs `body` isolated to `actor` from synchronous code, where the runtime must ask the executor
/// (there is no Swift task, so no current executor to compare with).
func assumeIsolatedCount(_ actor: WorkerBound) -> Int {
    actor.assumeIsolated { $0.count }
}

@Suite("ThreadPool.WorkerExecutor: actors on one worker")
struct WorkerExecutorTests {
    static func makePool(_ threads: Int, _ name: String) throws -> ThreadPool {
        try ThreadPool(threads: threads, name: uniqueName(name), initializer: { WorkerBound.initializer() })
    }

    @Test("every call runs on worker k, with the thread-local value that worker's initializer set")
    func callsRunOnTheWorker() async throws {
        let pool = try Self.makePool(3, "wexA")
        for k in 0..<3 {
            let actor = WorkerBound(pool.serialExecutor(worker: k))
            let placements = await withTaskGroup(of: Placement.self) { group in
                for _ in 0..<50 { group.addTask { await actor.placement() } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(placements.count == 50)
            #expect(
                placements.allSatisfy { $0.index == k && $0.name != nil && $0.tag == "set by \($0.name!)" },
                "\(placements.filter { $0.index != k })")
        }
        pool.close()
        try await pool.join()
    }

    @Test("1,000 concurrent tasks on a counter actor: an exact count, every call on the worker")
    func concurrentCallsAreExact() async throws {
        let pool = try Self.makePool(2, "wexB")
        let counter = WorkerBound(pool.serialExecutor(worker: 1))
        let returned = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<1_000 { group.addTask { await counter.increment() } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(await counter.count == 1_000)
        #expect(Set(returned) == Set(1...1_000)) // each call saw the count it made: no two interleaved
        let placements = await counter.placements
        #expect(placements.count == 1_000)
        #expect(placements.allSatisfy { $0.index == 1 && $0.tag == "set by \($0.name ?? "")" })
        pool.close()
        try await pool.join()
    }

    @Test("jobs run in the order they were enqueued")
    func enqueueOrder() async throws {
        let pool = try Self.makePool(2, "wexC")
        let actor = WorkerBound(pool.serialExecutor(worker: 0))
        await actor.startRecorders(2_000)
        #expect(await waitUntil { await actor.log.count == 2_000 })
        #expect(await actor.log == Array(0..<2_000))
        pool.close()
        try await pool.join()
    }

    @Test("assumeIsolated works in synchronous code on the worker (a broadcast entry), not elsewhere")
    func assumeIsolatedOnTheWorker() async throws {
        let pool = try Self.makePool(3, "wexD")
        let actor = WorkerBound(pool.serialExecutor(worker: 2))
        _ = await actor.increment()
        _ = await actor.increment()
        let seen = try await pool.broadcast { worker -> Int? in
            worker.index == 2 ? assumeIsolatedCount(actor) : nil
        }
        #expect(seen == [nil, nil, 2])
        // What the runtime asks the executor: only worker 2 is isolated to it.
        let answers = try await pool.broadcast { _ in actor.executor.isIsolatingCurrentContext() }
        #expect(answers == [false, false, true])
        #expect(actor.executor.isIsolatingCurrentContext() == false)
        pool.close()
        try await pool.join()
    }

    @Test("one executor per worker while it lives: actors on one worker call each other in place")
    func oneExecutorPerWorker() async throws {
        let pool = try Self.makePool(2, "wexE")
        let first = WorkerBound(pool.serialExecutor(worker: 1))
        let second = WorkerBound(pool.serialExecutor(worker: 1))
        let other = WorkerBound(pool.serialExecutor(worker: 0))
        #expect(first.executor === second.executor)
        #expect(first.executor !== other.executor)
        #expect(first.executor.worker == 1 && first.executor.pool === pool)
        let same = await first.ask(second)
        #expect(same.mine.index == 1 && same.theirs.index == 1)
        let across = await first.ask(other)
        #expect(across.mine.index == 1 && across.theirs.index == 0)
        #expect(first.executor.description == "<WorkerExecutor worker=1 of \(pool)>")
        pool.close()
        try await pool.join()
    }

    @Test("after close, the worker runs the actor's jobs until it exits; after join, the fallback thread does")
    func afterCloseAndJoin() async throws {
        let name = uniqueName("wexF")
        let pool = try ThreadPool(threads: 2, name: name, initializer: { WorkerBound.initializer() })
        let actor = WorkerBound(pool.serialExecutor(worker: 1))
        let gate = Gate()
        // Both workers held in a broadcast entry: alive after close until the gate opens.
        let held = Task { try await pool.broadcast { _ in gate.pass() } }
        #expect(await waitUntil { gate.arrived == 2 })
        pool.close()
        let calls = Task {
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<100 { group.addTask { await actor.increment() } }
                return await group.reduce(into: 0) { $0 += $1 > 0 ? 1 : 0 }
            }
        }
        // All queued while the worker is held (alive): it runs them before it can exit.
        #expect(await waitUntil { actor.executor.waitingJobs == 100 })
        gate.open()
        #expect(await calls.value == 100)
        _ = try await held.value
        #expect(await actor.placements.allSatisfy { $0.index == 1 && $0.tag == "set by \(name)-2" })
        try await pool.join()

        // The worker has exited: the jobs run on the executor's fallback thread, still one at a time.
        let after = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<200 { group.addTask { await actor.increment() } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(after) == Set(101...300))
        let placement = await actor.placement()
        #expect(placement.name == "\(name)-2-fallback-1")
        #expect(placement.tag == "unset") // that thread's own value: the worker's is gone
        #expect(actor.executor.isIsolatingCurrentContext() == false)
    }

    @Test("the contrast: after close the pool as a TaskExecutor takes no job, even while its workers still run")
    func closedTaskExecutorVersusWorkerExecutor() async throws {
        let name = uniqueName("wexI")
        let pool = try ThreadPool(threads: 2, name: name, initializer: { WorkerBound.initializer() })
        let actor = WorkerBound(pool.serialExecutor(worker: 0))
        let gate = Gate()
        let held = Task { try await pool.broadcast { _ in gate.pass() } }
        #expect(await waitUntil { gate.arrived == 2 })
        pool.close()
        // Both workers are alive (held), yet the preference's jobs run on the global concurrent executor.
        let preferred = await withTaskExecutorPreference(pool) { Placement.here() }
        #expect(preferred.index == nil && preferred.tag == "unset")
        // The actor's job waits for its worker instead, and runs there once the worker is free.
        let call = Task { await actor.placement() }
        #expect(await waitUntil { actor.executor.waitingJobs == 1 })
        gate.open()
        #expect(await call.value == Placement(index: 0, name: "\(name)-1", tag: "set by \(name)-1"))
        _ = try await held.value
        try await pool.join()
    }

    @Test("terminate drops the jobs waiting for the worker: they run on the fallback thread, one at a time, none lost")
    func afterTerminate() async throws {
        let name = uniqueName("wexG")
        let pool = try ThreadPool(threads: 2, name: name, initializer: { WorkerBound.initializer() })
        let actor = WorkerBound(pool.serialExecutor(worker: 0))
        let gate = Gate()
        let held = Task { try? await pool.broadcast { _ in gate.pass() } }
        #expect(await waitUntil { gate.arrived == 2 })
        // 300 calls waiting for worker 0, which is held; terminate drops them from its queue.
        let calls = Task {
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<300 { group.addTask { await actor.increment() } }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(await waitUntil { actor.executor.waitingJobs == 300 })
        pool.terminate()
        #expect(Set(await calls.value) == Set(1...300))
        let placements = await actor.placements
        #expect(placements.count == 300)
        #expect(placements.allSatisfy { $0.name == "\(name)-1-fallback-1" && $0.tag == "unset" })
        // Later jobs go to the fallback thread too, in the order they were enqueued.
        await actor.startRecorders(500)
        #expect(await waitUntil { await actor.log.count == 500 })
        #expect(await actor.log == Array(0..<500))
        gate.open()
        _ = await held.value
        try await pool.join()
    }

    @Test("an actor keeps its pool alive; the pool is joined once the actor is gone")
    func actorKeepsItsPool() async throws {
        let name = uniqueName("wexH")
        weak var weakPool: ThreadPool?
        var actor: WorkerBound? = try {
            let pool = try ThreadPool(threads: 2, name: name, initializer: { WorkerBound.initializer() })
            weakPool = pool
            return WorkerBound(pool.serialExecutor(worker: 1))
        }()
        #expect(weakPool != nil)
        #expect(await actor?.placement() == Placement(index: 1, name: "\(name)-2", tag: "set by \(name)-2"))
        #expect(weakPool != nil)
        actor = nil
        #expect(await waitUntil { weakPool == nil && threadsNamed(name) == 0 })
    }

    @Test("a worker index out of range is a precondition failure")
    func indexOutOfRange() async {
        await #expect(processExitsWith: .failure) {
            let pool = try! ThreadPool(threads: 2)
            _ = pool.serialExecutor(worker: 2)
        }
        await #expect(processExitsWith: .failure) {
            let pool = try! ThreadPool(threads: 2)
            _ = pool.serialExecutor(worker: -1)
        }
    }

    @Test("checkIsolated, and so assumeIsolated, off the worker stops the program")
    func checkIsolatedOffTheWorker() async {
        await #expect(processExitsWith: .failure) {
            let pool = try! ThreadPool(threads: 1)
            pool.serialExecutor(worker: 0).checkIsolated()
        }
        await #expect(processExitsWith: .failure) {
            let pool = try! ThreadPool(threads: 2)
            let actor = WorkerBound(pool.serialExecutor(worker: 1))
            _ = try! await pool.broadcast { worker in worker.index == 0 ? assumeIsolatedCount(actor) : 0 }
        }
    }
}
