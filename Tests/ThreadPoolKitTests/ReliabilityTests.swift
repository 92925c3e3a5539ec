import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

/// The races a review of the pool's protocols found: cancel() while the pool goes away, stats that
/// counted a task nowhere, jobs reaching a pool that is gone, and work lost at process exit.
@Suite("Reliability: races with the pool's lifetime and its counters")
struct ReliabilityTests {
    @Test("cancel() racing the drop of its pool's last reference finishes before the pool is freed")
    func cancelWhilePoolIsDropped() throws {
        // A hook delays cancel() between its claim and its use of the pool's shared state while the
        // pool is dropped: the drop (close, join, free) must wait for cancel() (under ASan a
        // use-after-free otherwise).
        for _ in 0..<20 {
            var pool: ThreadPool? = try ThreadPool(threads: 1)
            let gate = Gate()
            let blocker = try pool!.applyAsync { gate.pass() }
            let errorCallbacks = Counter()
            let result = try pool!.applyAsync({ 1 }, errorCallback: { _ in errorCallbacks.increment() })
            let claimed = DispatchSemaphore(value: 0)
            let neverSignalled = DispatchSemaphore(value: 0)
            pool!.shared.afterCancelClaimed = {
                claimed.signal()
                _ = neverSignalled.wait(timeout: .now() + .milliseconds(30)) // the window for the drop
            }
            let cancelReturned = DispatchSemaphore(value: 0)
            let cancelled = Flag()
            Thread.detachNewThread {
                cancelled.value = result.cancel()
                cancelReturned.signal()
            }
            claimed.wait()
            gate.open()
            pool = nil // close, join, free: the worker takes the cancelled task and waits for cancel()
            #expect(cancelReturned.wait(timeout: .now() + 10) == .success)
            #expect(cancelled.value)
            #expect(throws: ThreadPoolError.self) { try result.get() }
            #expect(errorCallbacks.value == 1)
            #expect(throws: Never.self) { try blocker.get() }
        }
    }

    @Test("stats while tasks are submitted, cancelled, run and terminated: counted somewhere, monotonic, exact")
    func statsUnderCancellation() throws {
        for round in 0..<4 {
            let pool = try ThreadPool(threads: 2)
            let accepted = Counter()
            let stop = Flag()
            let lost = Counter()
            let decreased = Counter()
            let snapshots = Counter()
            let pollerDone = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                var last = (completed: 0, failed: 0, cancelled: 0)
                while !stop.value {
                    let before = accepted.value
                    let s = pool.stats
                    if s.queued + s.running + s.completed + s.cancelled < before { lost.increment() }
                    if s.completed < last.completed || s.failed < last.failed || s.cancelled < last.cancelled {
                        decreased.increment()
                    }
                    last = (s.completed, s.failed, s.cancelled)
                    snapshots.increment()
                }
                pollerDone.signal()
            }
            #expect(eventually { snapshots.value > 0 })
            var results: [AsyncResult<Int>] = []
            var cancelledByCaller = 0
            for i in 0..<20_000 {
                if round == 3 && i == 10_000 { pool.terminate() }
                guard
                    let result = try? pool.applyAsync({ () throws -> Int in
                        if i % 7 == 0 { throw TestError(code: i) }
                        return i
                    })
                else { continue }
                accepted.increment()
                if i % 3 == 0 && result.cancel() { cancelledByCaller += 1 }
                results.append(result)
            }
            pool.close()
            try pool.join()
            stop.value = true
            pollerDone.wait()
            #expect(lost.value == 0, "a snapshot counted a task nowhere")
            #expect(decreased.value == 0, "completed, failed or cancelled decreased")
            let s = pool.stats
            let outcomes = results.map { result -> Int in
                do { _ = try result.get(); return 0 } catch ThreadPoolError.cancelled { return 1 } catch { return 2 }
            }
            let cancelled = outcomes.filter { $0 == 1 }.count
            #expect(s.queued == 0 && s.running == 0)
            #expect(s.completed + s.cancelled == accepted.value)
            #expect(s.cancelled == cancelled && cancelled >= cancelledByCaller)
            #expect(s.failed == outcomes.filter { $0 == 2 }.count)
        }
    }

    @Test("executor preference scopes and async let children on fresh pools, each dropped when its scopes end")
    func executorJobsOnFreshPools() async throws {
        // THREADPOOLKIT_EXECUTOR_ROUNDS: make sanitize runs 10,000 under ASan.
        let rounds = ProcessInfo.processInfo.environment["THREADPOOLKIT_EXECUTOR_ROUNDS"].flatMap(Int.init) ?? 1_000
        for round in 0..<rounds {
            var pool: ThreadPool? = try ThreadPool(threads: 2)
            let total = try await withThrowingTaskGroup(of: Int.self) { [pool] group in
                for task in 0..<4 {
                    group.addTask {
                        await withTaskExecutorPreference(pool!) {
                            async let left = onWorker(task)
                            async let right = onWorker(task + 1)
                            return await left + right
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(total == 4 * 2 + 2 * (0 + 1 + 2 + 3) + 4) // each onWorker(k) is k + 1 on a worker
            if round % 2 == 0 {
                pool = nil // the last reference, right after the scopes ended
            } else {
                // The last reference held by an unstructured task on the pool: dropped on a worker.
                let task = Task(executorPreference: pool!) { onWorker(round) }
                pool = nil
                #expect(await task.value == round + 1)
            }
        }
    }

    @Test("a pool in a top-level let: queued tasks run at process exit; joinsAtExit = false exits at once")
    func poolsAreJoinedAtExit() throws {
        let output = try runExitProbe(arguments: [])
        for task in 0..<4 { #expect(output.contains("task \(task) done\n"), "\(output)") }
        #expect(output.contains("main done\n"))
        // A task that never returns, with the join turned off: the program exits anyway.
        #expect(try runExitProbe(arguments: ["--no-join-at-exit"]) == "main done\n")
    }
}

/// `k + 1` if called on a pool's worker, else `-1000`.
private func onWorker(_ k: Int) -> Int {
    ThreadPool.currentWorker == nil ? -1000 : k + 1
}

/// A thread-safe Bool for tests.
private final class Flag: Sendable {
    private let storage = Atomic<Bool>(false)
    var value: Bool {
        get { storage.load(ordering: .relaxed) }
        set { storage.store(newValue, ordering: .relaxed) }
    }
}
