import Foundation
import Testing

@testable import ThreadPoolKit

// Port of CPython's `ThreadPoolExecutorTest` (Lib/test/test_concurrent_futures/test_thread_pool.py),
// its own tests; the ones it inherits from `ExecutorTest` are in ExecutorTest.swift. See there for how
// concurrent.futures calls map to ThreadPoolKit.
//
// Not ported:
// - test_hang_global_shutdown_lock (bpo-45021): forks ProcessPoolExecutor children from a process
//   whose thread pool is busy; about fork and process pools.
// - test_process_fork_from_a_threadpool (bpo-43944): forks a child process from a worker thread;
//   about fork.

@Suite("CPython ThreadPoolExecutorTest", .timeLimit(.minutes(1)))
struct CPythonThreadPoolExecutorTest {
    @Test("ThreadPoolExecutorTest.test_map_submits_without_iteration")
    func testMapSubmitsWithoutIteration() throws {
        // Issue 11777: map() runs the work without the results being iterated.
        let executor = try ThreadPool(threads: 5)
        let finished = Recorder<Int>()
        // Deliberate difference (README, "Dropping an imap iterator cancels it"): CPython discards the
        // iterator that map() returns and the work goes on; here dropping it would cancel the items not
        // yet started, so it is kept (and never read).
        let results = try executor.imap(0..<10) { finished.append($0) }
        executor.close() // shutdown(wait=True)
        try executor.join()
        #expect(finished.elements.sorted() == Array(0..<10))
        withExtendedLifetime(results) {}
    }

    @Test("ThreadPoolExecutorTest.test_default_workers")
    func testDefaultWorkers() throws {
        // ThreadPoolExecutor's default is min(32, cpu count + 4). ThreadPoolKit follows
        // multiprocessing's ThreadPool, whose default is the CPU count (README, "Coming from Python":
        // `ThreadPool()` (cpu count) → `try ThreadPool()`): one worker per CPU this process may use
        // (ThreadPool.defaultThreadCount, which counts a container's CPU quota too).
        let executor = try ThreadPool()
        #expect(executor.threadCount == ThreadPool.defaultThreadCount)
        executor.close()
        try executor.join()
    }

    @Test("ThreadPoolExecutorTest.test_saturation")
    func testSaturation() throws {
        // 15 × max_workers tasks that all block: the executor must not start more than max_workers
        // threads. The tasks block on a gate instead of acquiring a semaphore.
        let name = uniqueName("satur")
        let executor = try ThreadPool(threads: 4, name: name)
        let gate = Gate()
        let futures = try (0..<15 * executor.threadCount).map { _ in try executor.applyAsync { gate.pass() } }
        #expect(eventually { gate.arrived == 4 }) // every worker is blocked...
        #expect(executor.stats.threads == 4)
        #expect(eventually { threadsNamed(name) == 4 }) // ...and there are no more threads than workers
        #expect(gate.arrived == 4)
        gate.open()
        executor.close()
        try executor.join()
        #expect(gate.arrived == 60)
        #expect(executor.stats.completed == 60)
        for future in futures { try future.get(timeout: .zero) }
    }

    @Test("ThreadPoolExecutorTest.test_idle_thread_reuse")
    func testIdleThreadReuse() throws {
        // ThreadPoolExecutor starts threads on demand and reuses an idle one, so after three tasks run
        // one after another it has one thread. ThreadPoolKit follows multiprocessing's ThreadPool,
        // which starts all its workers up front (README: init returns after every worker's
        // initializer has run), and starts no thread per task: the thread count stays the pool's size.
        let name = uniqueName("reuse")
        let executor = try ThreadPool(name: name)
        #expect(try executor.applyAsync { Py.mul(21, 2) }.get() == 42)
        #expect(try executor.applyAsync { Py.mul(6, 7) }.get() == 42)
        #expect(try executor.applyAsync { Py.mul(3, 14) }.get() == 42)
        #expect(executor.stats.threads == executor.threadCount)
        #expect(eventually { threadsNamed(name) == executor.threadCount })
        executor.close()
        try executor.join()
    }

    @Test("ThreadPoolExecutorTest.test_executor_map_current_future_cancel")
    func testExecutorMapCurrentFutureCancel() throws {
        let stopEvent = Gate()
        let log = Recorder<String>()
        let logNWait: @Sendable (String) -> Void = { ident in
            log.append("ident='\(ident)' started")
            stopEvent.pass()
            log.append("ident='\(ident)' stopped")
        }
        try withThreadPool(threads: 1) { (pool: ThreadPool) throws -> Void in
            let future = try pool.applyAsync { logNWait("first") } // saturates the pool
            let gen = try pool.imap(["second", "third"]) { logNWait($0) }
            // pool.map(..., timeout=0), then next(gen): TimeoutError.
            expectPoolError({ Py.isPoolError($0, .timeout) }) { _ = try gen.next(timeout: .zero) }
            // contextlib.closing(gen): close() on the way out → cancel(). CPython cancels "second"
            // when the timeout is raised and "third" when the generator closes. Deliberate difference
            // (ResultIterator.next(timeout:): "nothing is lost"): the timeout cancels nothing here; the
            // cancel() does, and as neither item has started, neither ever runs.
            gen.cancel()
            stopEvent.open()
            try future.get()
        }
        #expect(log.elements == ["ident='first' started", "ident='first' stopped"])
    }
}
