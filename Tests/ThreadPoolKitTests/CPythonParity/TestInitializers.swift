import Foundation
import Testing

@testable import ThreadPoolKit

// Port of CPython's `TestInitializers` (Lib/test/_test_multiprocessing.py, issue 5585: the pool's
// initializer feature).
//
// Not ported:
// - test_manager_initializer: multiprocessing managers have no counterpart.
// - The first line of test_pool_initializer, `assertRaises(TypeError, Pool, initializer=1)`: a
//   non-callable initializer does not compile in Swift.

@Suite("CPython TestInitializers", .timeLimit(.minutes(1)))
struct CPythonTestInitializers {
    @Test("TestInitializers.test_pool_initializer")
    func testPoolInitializer() throws {
        // `initializer(ns)` increments ns.test; `initargs=(ns,)` is captured by the closure.
        let ns = Counter()
        let pool = try ThreadPool(threads: 1, initializer: { ns.increment() })
        pool.close()
        try pool.join()
        #expect(ns.value == 1)
    }
}
