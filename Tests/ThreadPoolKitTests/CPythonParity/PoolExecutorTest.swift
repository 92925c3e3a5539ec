import Foundation
import Testing

@testable import ThreadPoolKit

// Port of CPython's `PoolExecutorTest` (Lib/test/test_concurrent_futures/test_pool.py), for its
// ThreadPoolExecutor half: `Executor.map(..., buffersize=n)` reads at most n items ahead of the
// consumer, which is imap's `bufferSize`.
//
// Not ported:
// - The ProcessPoolExecutor half of the same loop: process-only.
// - "cannot specify both buffersize and timeout": Executor.map's timeout is one deadline for the
//   whole iteration, which it cannot combine with a buffer. imap has no such timeout; a timeout
//   bounds each next(timeout:) call and combines with any bufferSize, so there is nothing to reject.

@Suite("CPython PoolExecutorTest", .timeLimit(.minutes(1)))
struct CPythonPoolExecutorTest {
    @Test("PoolExecutorTest.test_map_buffersize")
    func testMapBuffersize() throws {
        try withThreadPool(threads: 1) { (pool: ThreadPool) throws -> Void in
            // Python: ValueError("buffersize must be None or >= 1."); ours is a typed error.
            expectPoolError({ Py.isPoolError($0, .invalidBufferSize(0)) }) {
                _ = try pool.imap([Int](), bufferSize: 0) { $0 != 0 }
            }
        }
        for (bufferSize, iterableSize) in [(1, 5), (5, 5), (10, 5)] {
            let processedElements = Recorder<Int>()
            try withThreadPool(threads: 1) { (pool: ThreadPool) throws -> Void in
                let iterator = try pool.imap(0..<iterableSize, bufferSize: bufferSize) { processedElements.append($0) }
                // CPython sleeps 0.2 s "to wait for buffered futures to finish"; this waits (bounded)
                // until the pool is idle, after which nothing more is read until the consumer reads.
                #expect(eventually { Py.isIdle(pool) })
                #expect(processedElements.elements.sorted() == Array(0..<min(bufferSize, iterableSize)))
                _ = try iterator.next()
                #expect(
                    eventually {
                        Py.isIdle(pool) && processedElements.elements.count == min(bufferSize + 1, iterableSize)
                    })
                #expect(processedElements.elements.sorted() == Array(0..<min(bufferSize + 1, iterableSize)))
                iterator.cancel()
            }
        }
    }
}
