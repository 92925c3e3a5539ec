import Foundation
import Testing

@testable import ThreadPoolKit

// Port of CPython's `_TestPoolWorkerLifetime` (Lib/test/_test_multiprocessing.py), a process-only class
// (ALLOWED_TYPES = ('processes',)) about `maxtasksperchild`. ThreadPoolKit has no `maxtasksperchild`
// (README, "Coming from Python": threads are not processes, there is nothing to recycle; Python's
// ThreadPool does not accept it either), so only what does not depend on it is ported.
//
// Not ported:
// - test_pool_worker_lifetime: checks that workers are replaced after `maxtasksperchild` tasks.
// - test_pool_maxtasksperchild_invalid: the parameter does not exist.
//
// Ported without `maxtasksperchild`:
// - test_pool_worker_lifetime_early_close: issue #10332 (closing a pool before its tasks completed
//   made join() hang) does not need worker replacement to apply: close() before the tasks finish,
//   then join() must return with every result right.
// - test_worker_finalization_via_atexit_handler_of_multiprocessing: bpo-38744/bpo-39360, a pool that
//   is still running when the program lets go of it (there, at interpreter exit, through an object
//   holding it) must be finalized without hanging or failing. A Swift process does not finalize
//   objects at exit; the counterpart is an object holding a running pool going away.

@Suite("CPython _TestPoolWorkerLifetime", .timeLimit(.minutes(1)))
struct CPythonTestPoolWorkerLifetime {
    @Test("_TestPoolWorkerLifetime.test_pool_worker_lifetime_early_close")
    func testPoolWorkerLifetimeEarlyClose() throws {
        let pool = try ThreadPool(threads: 3) // CPython: Pool(3, maxtasksperchild=1)
        // sqr(i, 0.3) in CPython: the tasks sleep to be still running at close(); briefer here.
        let results = try (0..<6).map { i in try pool.applyAsync { Py.sqr(i, wait: 0.02) } }
        pool.close()
        try pool.join()
        for (j, result) in results.enumerated() {
            #expect(try result.get(timeout: .zero) == Py.sqr(j))
        }
    }

    /// `class A: def __init__(self): self.pool = Pool(processes=1)`
    final class A: Sendable {
        let pool: ThreadPool
        init(name: String) throws {
            pool = try ThreadPool(threads: 1, name: name)
        }
    }

    @Test("_TestPoolWorkerLifetime.test_worker_finalization_via_atexit_handler_of_multiprocessing")
    func testWorkerFinalizationViaAtexitHandlerOfMultiprocessing() throws {
        let name = uniqueName("atexit")
        var problem: A? = try A(name: name)
        // problem.pool.map(float, tuple(range(10)))
        #expect(try problem?.pool.map(0..<10) { Double($0) } == (0..<10).map(Double.init))
        problem = nil // the pool was never closed: dropping it closes and joins it (README)
        #expect(eventually { threadsNamed(name) == 0 })
    }
}
