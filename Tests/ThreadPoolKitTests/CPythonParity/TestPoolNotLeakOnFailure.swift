import Foundation
import Testing

@testable import ThreadPoolKit

// Port of CPython's `TestPoolNotLeakOnFailure` (Lib/test/_test_multiprocessing.py).
//
// test_release_unused_processes (issue #19675): when pool creation fails part-way (there, the fourth
// process fails to start), the workers already started must not leak. CPython injects the failure
// with a fake Process class; a test cannot make pthread_create fail on the fourth call without
// starving the whole test process, so the failure here is the other way a ThreadPoolKit worker can
// fail to start: its initializer throws. README ("A failing initializer fails init"): init stops and
// joins the workers already started, then throws .initializerFailed.

@Suite("CPython TestPoolNotLeakOnFailure", .timeLimit(.minutes(1)))
struct CPythonTestPoolNotLeakOnFailure {
    @Test("TestPoolNotLeakOnFailure.test_release_unused_processes")
    func testReleaseUnusedProcesses() throws {
        let willFailIn = 3 // the fourth worker fails
        let name = uniqueName("leak")
        let started = Recorder<Int>()
        let finalized = Recorder<Int>()
        var thrown: (any Error)?
        do {
            _ = try ThreadPool(
                threads: 5, name: name,
                initializer: {
                    let index = ThreadPool.currentWorker!.index
                    started.append(index)
                    if index == willFailIn { throw Py.RuntimeError(message: "Manually induced OSError") }
                }, finalizer: { finalized.append(ThreadPool.currentWorker!.index) })
        } catch {
            thrown = error
        }
        guard case .initializerFailed(let worker, let underlying)? = thrown as? ThreadPoolError else {
            Issue.record("expected .initializerFailed, got \(String(describing: thrown))")
            return
        }
        #expect(worker == willFailIn)
        #expect(underlying as? Py.RuntimeError == Py.RuntimeError(message: "Manually induced OSError"))
        // No worker is left alive, and every worker whose initializer succeeded was finalized.
        #expect(eventually { threadsNamed(name) == 0 }) // the kernel reaps a joined thread a moment later
        #expect(started.elements.sorted() == [0, 1, 2, 3, 4]) // init returns only after every initializer has run
        #expect(finalized.elements.sorted() == [0, 1, 2, 4])
    }
}
