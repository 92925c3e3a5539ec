import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

@Suite("Pool creation and lifecycle")
struct LifecycleTests {
    @Test(
        "thread counts 0, -1 and absurd are rejected",
        arguments: [0, -1, Int.min, ThreadPool.maximumThreadCount + 1, 1_000_000])
    func invalidThreadCounts(threads: Int) {
        expectPoolError({ if case .invalidThreadCount(threads) = $0 { true } else { false } }) {
            _ = try ThreadPool(threads: threads)
        }
    }

    @Test("nil threads means the CPUs this process may use")
    func defaultThreadCount() throws {
        let pool = try ThreadPool()
        #expect(pool.threadCount == ThreadPool.defaultThreadCount) // DefaultThreadCountTests: what that is
        pool.close()
        try pool.join()
    }

    @Test("initializer runs once per worker, on that worker, before its first task (200 pools)")
    func initializerOncePerWorker() throws {
        for _ in 0..<200 {
            let initialized = Recorder<Int>()
            let firstTaskSawInit = Recorder<Bool>()
            let pool = try ThreadPool(
                threads: 3,
                initializer: {
                    initialized.append(ThreadPool.currentWorker!.index)
                })
            #expect(initialized.elements.count == 3) // the start barrier: init returns after every initializer
            let results = try (0..<30).map { _ in
                try pool.applyAsync { () -> Int in
                    let me = ThreadPool.currentWorker!.index
                    firstTaskSawInit.append(initialized.elements.contains(me))
                    return me
                }
            }
            pool.close()
            try pool.join()
            #expect(try results.allSatisfy { (0..<3).contains(try $0.get()) })
            #expect(initialized.elements.sorted() == [0, 1, 2])
            #expect(firstTaskSawInit.elements.count == 30 && firstTaskSawInit.elements.allSatisfy { $0 })
        }
    }

    @Test("finalizer runs once per worker, on that worker, before join returns")
    func finalizerOncePerWorker() throws {
        let finalized = Recorder<Int>()
        let pool = try ThreadPool(threads: 4, finalizer: { finalized.append(ThreadPool.currentWorker!.index) })
        pool.close()
        try pool.join()
        #expect(finalized.elements.sorted() == [0, 1, 2, 3])
    }

    @Test("an initializer throwing on one worker: .initializerFailed with its error, no thread left")
    func initializerFailure() throws {
        for failing in [0, 3] {
            let name = uniqueName("ifail")
            let finalized = Counter()
            expectPoolError({
                if case .initializerFailed(let worker, let underlying) = $0 {
                    worker == failing && (underlying as? TestError) == TestError(code: 7)
                } else {
                    false
                }
            }) {
                _ = try ThreadPool(
                    threads: 4, name: name,
                    initializer: {
                        if ThreadPool.currentWorker!.index == failing { throw TestError(code: 7) }
                    }, finalizer: { finalized.increment() })
            }
            #expect(eventually { threadsNamed(name) == 0 }) // the kernel reaps a joined thread a moment later
            #expect(finalized.value == 3) // the workers whose initializer succeeded were finalized
        }
    }

    @Test("after join() no worker thread is left")
    func noThreadLeftAfterJoin() throws {
        let name = uniqueName("left")
        let pool = try ThreadPool(threads: 4, name: name)
        // /proc readdir may miss entries while other tests start threads.
        #expect(eventually { threadsNamed(name) == 4 })
        for _ in 0..<100 { _ = try pool.applyAsync { 1 } }
        pool.close()
        try pool.join()
        #expect(eventually { threadsNamed(name) == 0 }) // the kernel reaps a joined thread a moment later
    }

    @Test("submit after close or terminate throws .notRunning")
    func submitAfterShutdown() throws {
        for useTerminate in [false, true] {
            let pool = try ThreadPool(threads: 2)
            if useTerminate { pool.terminate() } else { pool.close() }
            expectPoolError({ if case .notRunning = $0 { true } else { false } }) {
                _ = try pool.applyAsync { 1 }
            }
            expectPoolError({ if case .notRunning = $0 { true } else { false } }) {
                _ = try pool.apply { 1 }
            }
            try pool.join()
        }
    }

    @Test("join() while running throws .stillRunning; repeated calls are harmless")
    func joinWhileRunning() throws {
        let pool = try ThreadPool(threads: 2)
        expectPoolError({ if case .stillRunning = $0 { true } else { false } }) { try pool.join() }
        pool.close()
        pool.close()
        pool.terminate()
        try pool.join()
        try pool.join()
        #expect(pool.description == "<ThreadPool state=terminated threads=2>")
    }

    @Test("join() from one of the pool's own workers throws .wouldDeadlock")
    func joinFromWorker() throws {
        let pool = try ThreadPool(threads: 1)
        pool.close()
        let result = try? pool.applyAsync { () -> Bool in false }
        #expect(result == nil) // closed
        let pool2 = try ThreadPool(threads: 1)
        let inner = try pool2.applyAsync { () throws -> Bool in
            pool2.close()
            do { try pool2.join() } catch ThreadPoolError.wouldDeadlock { return true }
            return false
        }
        #expect(try inner.get() == true)
        try pool2.join()
    }

    @Test("description shows state and size")
    func description() throws {
        let pool = try ThreadPool(threads: 3)
        #expect(pool.description == "<ThreadPool state=running threads=3>")
        pool.close()
        #expect(pool.description == "<ThreadPool state=closed threads=3>")
        try pool.join()
    }

    @Test("dropping the last reference to a running pool runs its queued work and leaves no thread")
    func dropRunningPool() throws {
        let name = uniqueName("drop")
        let ran = Counter()
        do {
            let pool = try ThreadPool(threads: 2, name: name)
            for _ in 0..<1000 { _ = try pool.applyAsync { ran.increment() } }
        }
        #expect(ran.value == 1000)
        #expect(eventually { threadsNamed(name) == 0 }) // the kernel reaps a joined thread a moment later
    }

    @Test("dropping the last reference on one of the pool's own workers: the workers exit on their own")
    func dropOnOwnWorker() throws {
        let name = uniqueName("self")
        let ran = Counter()
        let gate = Gate()
        do {
            let pool = try ThreadPool(threads: 2, name: name)
            // The task holds the only other reference; it is released on the worker after the task ran.
            _ = try pool.applyAsync { [pool] in
                gate.pass()
                _ = pool.threadCount
                ran.increment()
            }
        }
        gate.open()
        #expect(eventually { threadsNamed(name) == 0 })
        #expect(ran.value == 1)
    }
}

@Suite("A task that never returns")
struct BlockedTaskTests {
    @Test("terminate() cannot stop a running task: join() waits for it, and returns once it does")
    func joinWaitsForRunningTask() throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        let running = try pool.applyAsync { gate.pass() }
        #expect(eventually { gate.arrived == 1 })
        let queued = try pool.applyAsync { 1 }
        pool.terminate()
        expectPoolError({ if case .cancelled = $0 { true } else { false } }) { _ = try queued.get() }
        let joined = Counter()
        let joiner = Thread {
            try? pool.join()
            joined.increment()
        }
        joiner.start()
        // Bounded: join must still be waiting while the task runs (it cannot be interrupted).
        #expect(!eventually(within: 0.2) { joined.value == 1 })
        gate.open()
        #expect(eventually { joined.value == 1 })
        try running.get()
    }
}
