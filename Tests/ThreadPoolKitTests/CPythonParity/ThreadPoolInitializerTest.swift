import Foundation
import Testing

@testable import ThreadPoolKit

// Port of CPython's `ThreadPoolInitializerTest` (Lib/test/test_concurrent_futures/test_init.py: the
// `InitializerMixin` tests, made into a class per executor by `create_executor_tests`; this is the
// ThreadPoolExecutor one). The failing-initializer class is in ThreadPoolFailingInitializerTest.swift.

@Suite("CPython ThreadPoolInitializerTest", .timeLimit(.minutes(1)))
struct CPythonThreadPoolInitializerTest {
    static let workerCount = 2

    /// CPython's INITIALIZER_STATUS, a global that `init(x)` sets. Per worker here (a ThreadLocal),
    /// which makes the check stronger: each task sees what its own worker's initializer set.
    static let initializerStatus = ThreadLocal<String> { "uninitialized" }

    @Test("ThreadPoolInitializerTest.test_initializer")
    func testInitializer() throws {
        let status = "initialized" // initargs=('initialized',), captured by the closure
        let executor = try ThreadPool(threads: Self.workerCount, initializer: { Self.initializerStatus.value = status })
        let futures = try (0..<Self.workerCount).map { _ in try executor.applyAsync { Self.initializerStatus.value } }
        for future in futures {
            #expect(try future.get() == "initialized") // get_init_status()
        }
        // And on every worker, whichever ran the tasks above.
        #expect(try executor.broadcast { _ in Self.initializerStatus.value } == ["initialized", "initialized"])
        executor.close()
        try executor.join()
    }
}
