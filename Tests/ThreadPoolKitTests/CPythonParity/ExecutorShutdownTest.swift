import Foundation
import Testing

@testable import ThreadPoolKit

// Port of CPython's `ExecutorShutdownTest` (Lib/test/test_concurrent_futures/test_shutdown.py), the
// tests that `ThreadPoolShutdownTest` inherits (its own are in ThreadPoolShutdownTest.swift). The
// executor is a `ThreadPoolExecutor(max_workers=5)`: here a pool of 5. `shutdown()` (wait=True) is
// `close()` then `join()`; `shutdown(cancel_futures=True)` is `terminate()` then `join()`.
//
// Not ported (each runs a child interpreter and checks what happens at interpreter exit, through the
// atexit hook that joins concurrent.futures' threads; a Swift process has no such hook: exit() does
// not wait for a pool's threads, and objects still referenced are not finalized):
// - test_interpreter_shutdown: a task still running at exit completes and prints "apple".
// - test_submit_after_interpreter_shutdown: submit() from an atexit hook raises RuntimeError.
// - test_hang_gh83386: shutdown(wait=False) with a running task does not hang at exit.

@Suite("CPython ExecutorShutdownTest (ThreadPoolShutdownTest)", .timeLimit(.minutes(1)))
struct CPythonExecutorShutdownTest {
    static let workerCount = 5

    /// Whether a result was dropped (`future.cancelled()`).
    static func wasCancelled<T>(_ result: AsyncResult<T>) -> Bool {
        do {
            _ = try result.get(timeout: .zero)
            return false
        } catch ThreadPoolError.cancelled {
            return true
        } catch {
            return false
        }
    }

    @Test("ExecutorShutdownTest.test_run_after_shutdown")
    func testRunAfterShutdown() throws {
        let executor = try ThreadPool(threads: Self.workerCount)
        executor.close()
        try executor.join()
        // Python raises RuntimeError; ours is a typed error (README, "Typed errors").
        expectPoolError({ Py.isPoolError($0, .notRunning) }) { _ = try executor.applyAsync { Py.pow(2, 5) } }
    }

    @Test("ExecutorShutdownTest.test_hang_issue12364")
    func testHangIssue12364() throws {
        // Issue #12364: shutdown() with many tasks still queued must not hang. CPython's 50 tasks
        // sleep 0.1 s each; briefer here.
        let executor = try ThreadPool(threads: Self.workerCount)
        let futures = try (0..<50).map { _ in try executor.applyAsync { () -> Void in _ = usleep(2_000) } }
        executor.close()
        #expect(Py.join(executor, within: 10))
        for future in futures { try future.get(timeout: .zero) }
    }

    @Test("ExecutorShutdownTest.test_cancel_futures")
    func testCancelFutures() throws {
        // CPython's 50 tasks sleep 0.1 s, so it can only bound the counts ("greater than 20"
        // cancelled, "at least one" finished). Here the tasks block on a gate and the test waits until
        // every worker holds one, which makes the counts exact: 5 finish, 45 are cancelled.
        let executor = try ThreadPool(threads: Self.workerCount)
        let gate = Gate()
        let futures = try (0..<50).map { _ in try executor.applyAsync { gate.pass() } }
        #expect(eventually { gate.arrived == Self.workerCount })
        executor.terminate() // shutdown(cancel_futures=True) ...
        gate.open()
        try executor.join() // ... and wait=True
        let cancelled = futures.filter { Self.wasCancelled($0) }
        #expect(cancelled.count == 50 - Self.workerCount)
        // The others finished, without an exception.
        let others = futures.filter { !Self.wasCancelled($0) }
        #expect(others.count == Self.workerCount)
        for future in others {
            #expect(future.isReady)
            #expect(try future.successful())
        }
    }

    @Test("ExecutorShutdownTest.test_hang_gh94440")
    func testHangGh94440() throws {
        // gh-94440: shutdown(wait=True) must not hang when a task was submitted and cancelled right
        // before it. CPython guards the test with signal.alarm(5); here join is bounded. In CPython the
        // cancel may come too late (the task has started); here the worker is held until the cancel
        // has been made, so that it surely comes first.
        let executor = try ThreadPool(threads: 1)
        #expect(try executor.applyAsync { try Py.int("0") }.get() == 0) // executor.submit(int).result()
        let gate = Gate()
        _ = try executor.applyAsync { gate.pass() }
        let ran = Counter()
        let future = try executor.applyAsync { () -> Int in
            ran.increment()
            return 0
        }
        #expect(future.cancel())
        gate.open()
        executor.close()
        #expect(Py.join(executor, within: 10))
        #expect(ran.value == 0)
        #expect(Self.wasCancelled(future))
    }
}
