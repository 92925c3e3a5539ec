import Foundation
import Testing

@testable import ThreadPoolKit

// Port of CPython's `_TestPoolWorkerErrors` (Lib/test/_test_multiprocessing.py). CPython runs the class
// for processes only (ALLOWED_TYPES = ('processes',)), but test_async_error_callback checks the pool's
// error callback, which a thread pool has too.
//
// Not ported:
// - test_unpickleable_result: a result that cannot be pickled back from a worker process
//   (MaybeEncodingError) has no counterpart in a thread pool: results are never encoded.

@Suite("CPython _TestPoolWorkerErrors", .timeLimit(.minutes(1)))
struct CPythonTestPoolWorkerErrors {
    @Test("_TestPoolWorkerErrors.test_async_error_callback")
    func testAsyncErrorCallback() throws {
        let pool = try ThreadPool(threads: 2)
        let scratchpad = Recorder<any Error>()
        let successes = Counter()
        let result = try pool.applyAsync(
            { () throws -> Int in throw Py.KeyError(key: "key") }, // raising()
            callback: { _ in successes.increment() },
            errorCallback: { scratchpad.append($0) })
        #expect(throws: Py.KeyError(key: "key")) { try result.get() }
        // The error callback has run, exactly once, before the result became ready.
        #expect(scratchpad.elements.count == 1)
        #expect(scratchpad.elements.first as? Py.KeyError == Py.KeyError(key: "key"))
        #expect(successes.value == 0)
        pool.close()
        try pool.join()
    }
}
