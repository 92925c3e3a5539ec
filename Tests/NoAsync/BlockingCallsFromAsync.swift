// Type-checked by scripts/check-noasync.sh: every call below blocks its thread and is made from an
// async function, so each must draw a diagnostic that points to the async spelling: "unavailable
// from asynchronous contexts" (`noasync`), or, where an async overload of the same name exists
// (`map`, `broadcast`, `join`, `concurrentPerform`), "is 'async' but is not marked with 'await'" (async code picks it).
// The script checks each line that ends in an "expect" comment naming the API.
import ThreadPoolKit

func blockingCallsFromAsyncCode(pool: ThreadPool, result: AsyncResult<Int>, iterator: ResultIterator<Int>) async throws
{
    _ = try result.get() // expect: get
    _ = result.wait() // expect: wait
    _ = try pool.apply { 1 } // expect: apply
    _ = try iterator.next(timeout: nil) // expect: next
    _ = try withThreadPool(threads: 1) { pool in try pool.apply { 1 } } // expect: withThreadPool
    _ = try pool.map([1, 2]) { $0 } // expect: map
    _ = try pool.broadcast { $0.index } // expect: broadcast
    try pool.join() // expect: join
    try pool.concurrentPerform(iterations: 2) { _ in } // expect: concurrentPerform
}
