import Benchmark
import Dispatch
import ThreadPoolKit

/// Workload 7: actor calls from async code. 64 tasks (a task group, on Swift's cooperative pool) each
/// make 2,000 calls to one counter actor, 128,000 calls per iteration: an actor on a worker's
/// serial executor (`pool.serialExecutor(worker: 0)`, a pool of 2 workers) against an actor on the
/// default actor executor. Each call is a hop onto the actor and back; the counter's final value is
/// checked. ns/task = ns per call.
let actorCallTasks = 64
let actorCallsPerTask = 2_000

/// A counter on the default actor executor.
private actor DefaultCounter {
    private(set) var count = 0
    func hit() { count += 1 }
}

/// The same counter on one worker of a pool.
private actor WorkerCounter {
    let executor: ThreadPool.WorkerExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private(set) var count = 0

    init(_ executor: ThreadPool.WorkerExecutor) { self.executor = executor }

    func hit() { count += 1 }
}

private func actorCallsConfig() -> Benchmark.Configuration {
    throughputConfig(maxDuration: 4, quickIterations: 3, fullIterations: 50, mallocTolerance: .relative(10))
}

func registerActorCalls() {
    let tasks = actorCallTasks
    let calls = actorCallsPerTask
    let total = tasks * calls

    Benchmark("W7 actor calls ThreadPoolKit.WorkerExecutor w2", configuration: actorCallsConfig()) { benchmark async in
        // The async benchmark closure cannot throw: a pool that does not start ends the run.
        let pool = try! ThreadPool(threads: 2)
        let counter = WorkerCounter(pool.serialExecutor(worker: 0))
        let before = await counter.count
        await measureAsync(benchmark, tasks: total) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        for _ in 0..<calls { await counter.hit() }
                    }
                }
            }
        }
        let after = await counter.count
        check(after - before == total, "WorkerExecutor counter: \(after - before) != \(total)")
        pool.close()
        try! await pool.join()
    }

    Benchmark("W7 actor calls default actor executor", configuration: actorCallsConfig()) { benchmark async in
        let counter = DefaultCounter()
        let before = await counter.count
        await measureAsync(benchmark, tasks: total) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        for _ in 0..<calls { await counter.hit() }
                    }
                }
            }
        }
        let after = await counter.count
        check(after - before == total, "default counter: \(after - before) != \(total)")
    }

    // The async offload workload: 64 tasks x 2,000 awaits of a tiny closure on the pool (2 workers),
    // through `run` (the task moves onto a worker), through `run(priority:)` with a priority other
    // than the task's (its job is queued in the high lane), and, as the peer, Dispatch's concurrent
    // queue with a checked continuation. ns/task = ns per offload.
    Benchmark("W7 offload ThreadPoolKit.run w2", configuration: actorCallsConfig()) { benchmark async in
        let pool = try! ThreadPool(threads: 2)
        let done = Countdown(total)
        await measureAsync(benchmark, tasks: total) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask { for _ in 0..<calls { try! await pool.run { done.hit() } } }
                }
            }
        }
        pool.close()
        try! await pool.join()
    }

    Benchmark("W7 offload ThreadPoolKit.run(priority: .high) w2", configuration: actorCallsConfig()) {
        benchmark async in
        let pool = try! ThreadPool(threads: 2)
        let done = Countdown(total)
        await measureAsync(benchmark, tasks: total) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask(priority: .medium) {
                        for _ in 0..<calls { try! await pool.run(priority: .high) { done.hit() } }
                    }
                }
            }
        }
        pool.close()
        try! await pool.join()
    }

    // `run` from tasks already on the pool: each task's loop inside withTaskExecutorPreference(pool),
    // so that no call hops (the task stays on a worker between calls): what `run` costs without the
    // two executor switches of each call above.
    Benchmark("W7 offload ThreadPoolKit.run in withTaskExecutorPreference(pool) w2", configuration: actorCallsConfig())
    { benchmark async in
        let pool = try! ThreadPool(threads: 2)
        let done = Countdown(total)
        await measureAsync(benchmark, tasks: total) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        await withTaskExecutorPreference(pool) {
                            for _ in 0..<calls { try! await pool.run { done.hit() } }
                        }
                    }
                }
            }
        }
        pool.close()
        try! await pool.join()
    }

    // The floor: the closure called inline on the cooperative pool.
    Benchmark("W7 offload inline", configuration: actorCallsConfig()) { benchmark async in
        let done = Countdown(total)
        let body: @Sendable () -> Void = { done.hit() }
        await measureAsync(benchmark, tasks: total) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask { for _ in 0..<calls { body() } }
                }
            }
        }
    }

    Benchmark("W7 offload Dispatch concurrent queue + continuation", configuration: actorCallsConfig()) {
        benchmark async in
        let queue = DispatchQueue(label: "w7", attributes: .concurrent)
        let done = Countdown(total)
        await measureAsync(benchmark, tasks: total) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        for _ in 0..<calls {
                            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                                queue.async {
                                    done.hit(); continuation.resume()
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
