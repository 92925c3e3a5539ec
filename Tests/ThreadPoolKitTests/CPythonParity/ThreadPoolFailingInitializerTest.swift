import Foundation
import Testing

@testable import ThreadPoolKit

// Port of CPython's `ThreadPoolFailingInitializerTest` (Lib/test/test_concurrent_futures/test_init.py:
// the `FailingInitializerMixin` tests, made into a class per executor by `create_executor_tests`;
// this is the ThreadPoolExecutor one).
//
// Not ported:
// - FailingInitializerResourcesTest (test_spawn, test_forkserver): checks that a process pool whose
//   initializer fails leaks nothing in multiprocessing's resource tracker; process-only.

@Suite("CPython ThreadPoolFailingInitializerTest", .timeLimit(.minutes(1)))
struct CPythonThreadPoolFailingInitializerTest {
    static let workerCount = 2

    @Test("ThreadPoolFailingInitializerTest.test_initializer")
    func testInitializer() throws {
        // CPython: the initializer (init_fail) sleeps 0.1 s "to let some futures be scheduled", then
        // raises ValueError('error in initializer'), which is logged; the executor becomes broken:
        // the result of a task already submitted, and any later submit(), raise BrokenExecutor.
        // Deliberate difference (README, "A failing initializer fails init"): ThreadPool.init waits for
        // every initializer and throws .initializerFailed with the error, after stopping the workers
        // already started, so there is never a broken pool to submit to.
        let name = uniqueName("finit")
        let ran = Counter()
        var thrown: (any Error)?
        do {
            _ = try ThreadPool(
                threads: Self.workerCount, name: name,
                initializer: {
                    ran.increment()
                    usleep(10_000) // init_fail's sleep, briefer
                    throw Py.ValueError(message: "error in initializer")
                })
        } catch {
            thrown = error
        }
        guard case .initializerFailed(let worker, let underlying)? = thrown as? ThreadPoolError else {
            Issue.record("expected .initializerFailed, got \(String(describing: thrown))")
            return
        }
        #expect((0..<Self.workerCount).contains(worker)) // both fail; the first failure is reported
        #expect(underlying as? Py.ValueError == Py.ValueError(message: "error in initializer"))
        // What CPython finds in the log: the error's message.
        #expect(String(describing: thrown!).contains("error in initializer"))
        #expect(ran.value == Self.workerCount) // init returns only after every initializer has run
        #expect(eventually { threadsNamed(name) == 0 })
    }
}
