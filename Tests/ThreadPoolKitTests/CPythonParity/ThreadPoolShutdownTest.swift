import Foundation
import Testing

@testable import ThreadPoolKit

// Port of CPython's `ThreadPoolShutdownTest` (Lib/test/test_concurrent_futures/test_shutdown.py), its
// own tests; the ones it inherits from `ExecutorShutdownTest` are in ExecutorShutdownTest.swift.
// `executor._threads` (the worker threads, joined with `t.join()`) has no public counterpart; the
// tests count the pool's threads by their OS names instead (pools get unique names), and "joined" is
// "no thread of the pool is left".
//
// Ported as an analog:
// - test_cancel_futures_wait_false runs a child interpreter that calls
//   shutdown(wait=False, cancel_futures=True) and exits; a Swift process has no interpreter exit that
//   joins the pool (see ExecutorShutdownTest.swift), so the port checks the same call without the
//   exit: terminate() with no join() lets the running task finish, drops the rest, and the workers
//   exit on their own.

@Suite("CPython ThreadPoolShutdownTest", .timeLimit(.minutes(1)))
struct CPythonThreadPoolShutdownTest {
    static let workerCount = 5

    @Test("ThreadPoolShutdownTest.test_threads_terminate")
    func testThreadsTerminate() throws {
        let name = uniqueName("thrt")
        let executor = try ThreadPool(threads: Self.workerCount, name: name)
        let gate = Gate() // CPython's tasks acquire a semaphore
        for _ in 0..<3 { _ = try executor.applyAsync { gate.pass() } }
        #expect(eventually { gate.arrived == 3 })
        // ThreadPoolExecutor starts a thread per submission (up to max_workers), so it has 3 threads
        // here. ThreadPoolKit, as multiprocessing's ThreadPool, starts every worker up front.
        #expect(eventually { threadsNamed(name) == Self.workerCount })
        gate.open()
        executor.close() // shutdown()
        try executor.join()
        #expect(eventually { threadsNamed(name) == 0 }) // the kernel reaps a joined thread a moment later
    }

    @Test("ThreadPoolShutdownTest.test_context_manager_shutdown")
    func testContextManagerShutdown() throws {
        let name = uniqueName("ctxm")
        let values = try withThreadPool(threads: 5, name: name) { e in
            try Py.list(e.imap(-5..<5) { abs($0) })
        }
        #expect(values == [5, 4, 3, 2, 1, 0, 1, 2, 3, 4])
        #expect(eventually { threadsNamed(name) == 0 })
    }

    @Test("ThreadPoolShutdownTest.test_del_shutdown")
    func testDelShutdown() throws {
        // `del executor`: dropping the last reference shuts the pool down, the running work completes.
        // README ("Dropping the last reference"): deinit closes and joins the pool, so queued tasks
        // still run, and close() lets an imap read the rest of its input.
        let name = uniqueName("dels")
        var executor: ThreadPool? = try ThreadPool(threads: 5, name: name)
        let res = try executor!.imap(-5..<5) { abs($0) }
        executor = nil
        #expect(eventually { threadsNamed(name) == 0 })
        // Make sure the results were all computed before the executor got shutdown.
        #expect(try Py.list(res) == (-5..<5).map { abs($0) })
    }

    @Test("ThreadPoolShutdownTest.test_shutdown_no_wait")
    func testShutdownNoWait() throws {
        // shutdown(wait=False): close() without join(). The workers still finish the work and exit.
        let name = uniqueName("nowt")
        let executor = try ThreadPool(threads: 5, name: name)
        let res = try executor.imap(-5..<5) { abs($0) }
        executor.close()
        #expect(eventually { threadsNamed(name) == 0 })
        #expect(try Py.list(res) == (-5..<5).map { abs($0) })
        try executor.join() // returns at once: every worker has exited
    }

    @Test("ThreadPoolShutdownTest.test_thread_names_assigned")
    func testThreadNamesAssigned() throws {
        // thread_name_prefix='SpecialPool' gives 'SpecialPool_0' … 'SpecialPool_4'. Deliberate
        // difference (README, "Worker names"): `name:` gives "<name>-1" … "<name>-5".
        let executor = try ThreadPool(threads: 5, name: "SpecialPool")
        _ = try executor.map(-5..<5) { abs($0) }
        let names = try executor.broadcast { $0.name } // by worker index
        #expect(names == (1...5).map { "SpecialPool-\($0)" })
        #expect(eventually { threadsNamed("SpecialPool-") == 5 }) // the OS names too
        executor.close()
        try executor.join()
        #expect(eventually { threadsNamed("SpecialPool-") == 0 })
    }

    @Test("ThreadPoolShutdownTest.test_thread_names_default")
    func testThreadNamesDefault() throws {
        // Without a prefix CPython names them 'ThreadPoolExecutor-<n>_0' … '_4': "reasonably sane and
        // unique". Deliberate difference (README, "Worker names"): "Thread-N", N from a counter of
        // ThreadPoolKit's workers, consecutive within a pool and never reused.
        let executor = try ThreadPool(threads: 5)
        _ = try executor.map(-5..<5) { abs($0) }
        let names = try executor.broadcast { $0.name }
        #expect(names.allSatisfy { $0.hasPrefix("Thread-") })
        let numbers = names.compactMap { Int($0.dropFirst("Thread-".count)) }
        #expect(numbers.count == 5)
        if let first = numbers.first { #expect(numbers == Array(first..<first + 5)) }
        executor.close()
        try executor.join()
    }

    @Test("ThreadPoolShutdownTest.test_cancel_futures_wait_false")
    func testCancelFuturesWaitFalse() throws {
        // (An analog: see the note at the top of the file.) CPython's child prints "apple" from a
        // task that sleeps 0.1 s, or nothing if the shutdown came before the task started (gh-116682);
        // here the task has started (it waits on a gate), so it prints, and a second task still queued
        // is dropped.
        let name = uniqueName("cfwf")
        let out = Recorder<String>()
        let executor = try ThreadPool(threads: 1, name: name)
        let gate = Gate()
        let running = try executor.applyAsync {
            gate.pass(); out.append("apple")
        } // sleep_and_print
        let queued = try executor.applyAsync { out.append("pear") }
        #expect(eventually { gate.arrived == 1 })
        executor.terminate() // shutdown(wait=False, cancel_futures=True): no join
        gate.open()
        #expect(eventually { threadsNamed(name) == 0 }) // the worker exits on its own
        #expect(out.elements == ["apple"])
        #expect(try running.successful())
        expectPoolError({ Py.isPoolError($0, .cancelled) }) { try queued.get(timeout: .zero) }
        try executor.join()
    }
}
