import Foundation
import Testing

@testable import ThreadPoolKit

// Port of CPython's `ExecutorTest` (Lib/test/test_concurrent_futures/executor.py, the version with
// Executor.map's `buffersize` tests, gh-132063 and the continuing test_map_exception), the tests that
// test_thread_pool.py mixes into `ThreadPoolExecutorTest` (its own tests are in
// ThreadPoolExecutorTest.swift). The executor is a `ThreadPoolExecutor(max_workers=5)` made in setUp
// and shut down (wait=True) in tearDown: here `withThreadPool(threads: 5)`.
//
// concurrent.futures → ThreadPoolKit: `submit(f, *args)` → `applyAsync { f(args) }`;
// `future.result()` → `get()`; `Executor.map(f, it1, it2, ...)` → `imap(zip(it1, it2)) { f($0, $1) }`
// (a lazy iterator of results in input order; `buffersize` → `bufferSize`); `shutdown(wait=True)` →
// `close()` then `join()`; `future.cancel()` → `AsyncResult.cancel()`.
//
// Not ported:
// - The TypeError half of test_submit_keyword (`submit(fn=capture, arg=1)`, `submit(arg=1)`): a closure
//   has no keyword arguments to get wrong; such calls do not compile.
// - test_map_buffersize_type_validation: a buffer size of "foo" or 2.0 does not compile.
// - test_map_buffersize_without_iterable: `Executor.map(str, buffersize=2)` with no iterable at all;
//   imap always takes one input (an empty one is test_map_buffersize_on_empty_iterable).

@Suite("CPython ExecutorTest (ThreadPoolExecutorTest)", .timeLimit(.minutes(1)))
struct CPythonExecutorTest {
    static let workerCount = 5

    static func mul(_ x: Int, y: Int) -> Int { x * y }

    /// `capture(*args, **kwargs)`, for the keywords that clash with submit's own parameters.
    static func capture(_ args: Int..., self this: Int, fn: Int) -> (args: [Int], kwargs: [String: Int]) {
        (args, ["self": this, "fn": fn])
    }

    final class MyObject: Sendable {
        let collected: Counter
        init(collected: Counter) { self.collected = collected }
        func myMethod() {}
        deinit { collected.increment() }
    }

    @Test("ExecutorTest.test_submit")
    func testSubmit() throws {
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            let future = try executor.applyAsync { Py.pow(2, 8) }
            #expect(try future.get() == 256)
        }
    }

    @Test("ExecutorTest.test_submit_keyword")
    func testSubmitKeyword() throws {
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            #expect(try executor.applyAsync { Self.mul(2, y: 8) }.get() == 16)
            let captured = try executor.applyAsync { Self.capture(1, self: 2, fn: 3) }.get()
            #expect(captured.args == [1])
            #expect(captured.kwargs == ["self": 2, "fn": 3])
        }
    }

    @Test("ExecutorTest.test_map")
    func testMap() throws {
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            let expected = zip(0..<10, 0..<10).map { Py.pow($0, $1) }
            #expect(try Py.list(executor.imap(zip(0..<10, 0..<10)) { Py.pow($0, $1) }) == expected)
            #expect(try Py.list(executor.imap(zip(0..<10, 0..<10), chunkSize: 3) { Py.pow($0, $1) }) == expected)
        }
    }

    @Test("ExecutorTest.test_map_exception")
    func testMapException() throws {
        // A task's error is raised at its position and the iteration goes on, whatever the chunk size:
        // the same in CPython's newest Executor.map and here (README, "imap errors").
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            let i = try executor.imap(zip([5, 5, 5, 5], [2, 3, 0, 5])) { try Py.divmod($0, $1) }
            #expect(try i.next() == Py.DivMod(2, 1))
            #expect(try i.next() == Py.DivMod(1, 2))
            #expect(throws: Py.ZeroDivisionError()) { try i.next() }
            #expect(try i.next() == Py.DivMod(1, 0))
            #expect(try i.next() == nil) // StopIteration
            #expect(try i.next() == nil)

            let chunked = try executor.imap(zip([5, 5, 5, 5], [2, 0, 3, 5]), chunkSize: 3) { try Py.divmod($0, $1) }
            #expect(try chunked.next() == Py.DivMod(2, 1))
            #expect(throws: Py.ZeroDivisionError()) { try chunked.next() }
            #expect(try chunked.next() == Py.DivMod(1, 2))
            #expect(try chunked.next() == Py.DivMod(1, 0))
            #expect(try chunked.next() == nil)
            #expect(try chunked.next() == nil)
        }
    }

    @Test("ExecutorTest.test_map_timeout_from_callable")
    func testMapTimeoutFromCallable() throws {
        // A timeout error thrown by the task itself is not the iterator's own timeout, whether or not
        // a timeout is given: it is the task's error, at its position, and the iteration goes on. The
        // task throws ThreadPoolError.timeout itself, the very error a bounded wait throws.
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            for timeout in [nil, Duration.seconds(30)] { // None, support.SHORT_TIMEOUT
                let i = try executor.imap([0, 1, 2, 3]) { (x: Int) throws -> Int in // timeout_on_one
                    if x == 1 { throw ThreadPoolError.timeout }
                    return x
                }
                #expect(try i.next(timeout: timeout) == 0)
                expectPoolError({ Py.isPoolError($0, .timeout) }) { _ = try i.next(timeout: timeout) }
                #expect(try i.next(timeout: timeout) == 2)
                #expect(try i.next(timeout: timeout) == 3)
                #expect(try i.next(timeout: timeout) == nil)
            }
        }
    }

    @Test("ExecutorTest.test_map_timeout")
    func testMapTimeout() throws {
        // CPython maps time.sleep over [0, 0, 6] with timeout=5 (a deadline for the whole iteration):
        // two results, then TimeoutError. The third task blocks on a gate here instead of sleeping 6 s.
        // next(timeout:) bounds each call, so the two calls that succeed get a generous bound and the
        // third the short one.
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            let gate = Gate()
            let i = try executor.imap([0, 0, 6]) { (seconds: Int) -> Int in
                if seconds > 0 { gate.pass() }
                return seconds
            }
            var results: [Int] = []
            results.append(try #require(try i.next(timeout: .seconds(30))))
            results.append(try #require(try i.next(timeout: .seconds(30))))
            expectPoolError({ Py.isPoolError($0, .timeout) }) { _ = try i.next(timeout: Py.timeout) }
            #expect(results == [0, 0])
            // CPython: "The remaining calls are cancelled, so the iterator is exhausted" (StopIteration
            // twice). Deliberate difference (ResultIterator.next(timeout:), and README's "get(timeout:)
            // ... nothing is lost"): a timeout cancels nothing, the next call returns that same result.
            // Cancelling is explicit: cancel(), or dropping the iterator (test_map_close).
            gate.open()
            #expect(try i.next(timeout: .seconds(30)) == 6)
            #expect(try i.next() == nil)
            #expect(try i.next() == nil)
        }
    }

    @Test("ExecutorTest.test_map_close")
    func testMapClose() throws {
        // `i.close()` → `i.cancel()`. Deliberate difference (ResultIterator.cancel(), and README's
        // "Dropping an imap iterator cancels it: items not yet started never run"): cancelling stops
        // items that have not started, but a result already made, or being made, is still handed out
        // before the end; Python's generator ends at once (StopIteration). To make "not yet started"
        // exact, the window is one item (bufferSize 1: the next item starts only once the previous
        // result has been read) and the item running at the cancel blocks on a gate until then.
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            let gate = Gate()
            let calls = Counter()
            let i = try executor.imap(zip([5, 5, 5, 5], [2, 0, 3, 5]), bufferSize: 1) {
                (x: Int, y: Int) throws -> Py.DivMod in
                calls.increment()
                if y == 0 { gate.pass() }
                return try Py.divmod(x, y)
            }
            #expect(try i.next() == Py.DivMod(2, 1))
            #expect(eventually { gate.arrived == 1 }) // item 1 has started
            i.cancel()
            gate.open()
            #expect(throws: Py.ZeroDivisionError()) { try i.next() } // item 1 was running: it is handed out
            #expect(try i.next() == nil) // StopIteration
            #expect(try i.next() == nil)
            #expect(calls.value == 2) // items 2 and 3 never ran

            // chunksize=3 (the window is raised to one chunk): items 0-2 run as one chunk, and once
            // item 0 has been read the next chunk (item 3) starts; it is running at the cancel.
            let gate3 = Gate()
            let calls3 = Counter()
            let chunked = try executor.imap(zip([5, 5, 5, 5], [2, 0, 3, 5]), chunkSize: 3, bufferSize: 1) {
                (x: Int, y: Int) throws -> Py.DivMod in
                calls3.increment()
                if y == 5 { gate3.pass() }
                return try Py.divmod(x, y)
            }
            #expect(try chunked.next() == Py.DivMod(2, 1))
            #expect(eventually { gate3.arrived == 1 })
            chunked.cancel()
            gate3.open()
            // Every item had started, so every result is still handed out, then the end.
            #expect(throws: Py.ZeroDivisionError()) { try chunked.next() }
            #expect(try chunked.next() == Py.DivMod(1, 2))
            #expect(try chunked.next() == Py.DivMod(1, 0))
            #expect(try chunked.next() == nil)
            #expect(try chunked.next() == nil)
            #expect(calls3.value == 4)
        }
    }

    @Test("ExecutorTest.test_map_buffersize_value_validation")
    func testMapBuffersizeValueValidation() throws {
        // Python raises ValueError("buffersize must be None or > 0"); ours is a typed error.
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            for bufferSize in [0, -1] {
                expectPoolError({ Py.isPoolError($0, .invalidBufferSize(bufferSize)) }) {
                    _ = try executor.imap(0..<4, bufferSize: bufferSize) { String($0) }
                }
            }
        }
    }

    @Test("ExecutorTest.test_map_buffersize")
    func testMapBuffersize() throws {
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            let ints = 0..<4
            for bufferSize in [1, 2, ints.count, ints.count * 2] {
                let res = try executor.imap(ints, bufferSize: bufferSize) { String($0) }
                #expect(try Py.list(res) == ["0", "1", "2", "3"], "bufferSize \(bufferSize)")
            }
        }
    }

    @Test("ExecutorTest.test_map_buffersize_on_multiple_iterables")
    func testMapBuffersizeOnMultipleIterables() throws {
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            let ints = 0..<4
            for bufferSize in [1, 2, ints.count, ints.count * 2] {
                let res = try executor.imap(zip(ints, ints), bufferSize: bufferSize) { $0 + $1 }
                #expect(try Py.list(res) == [0, 2, 4, 6], "bufferSize \(bufferSize)")
            }
        }
    }

    @Test("ExecutorTest.test_map_buffersize_on_infinite_iterable")
    func testMapBuffersizeOnInfiniteIterable() throws {
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            let res = try executor.imap(0..., bufferSize: 2) { String($0) } // itertools.count()
            #expect(try res.next() == "0")
            #expect(try res.next() == "1")
            #expect(try res.next() == "2")
            // Python's shutdown leaves the rest of an endless input alone. Here close() lifts the
            // window (README: with an endless input, join() then never returns), so the iteration is
            // cancelled first.
            res.cancel()
        }
    }

    @Test("ExecutorTest.test_map_buffersize_on_multiple_infinite_iterables")
    func testMapBuffersizeOnMultipleInfiniteIterables() throws {
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            let res = try executor.imap(zip(0..., 0...), bufferSize: 2) { $0 + $1 }
            #expect(try res.next() == 0)
            #expect(try res.next() == 2)
            #expect(try res.next() == 4)
            res.cancel() // as in test_map_buffersize_on_infinite_iterable
        }
    }

    @Test("ExecutorTest.test_map_buffersize_on_empty_iterable")
    func testMapBuffersizeOnEmptyIterable() throws {
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            let res = try executor.imap([Int](), bufferSize: 2) { String($0) }
            #expect(try res.next() == nil)
        }
    }

    @Test("ExecutorTest.test_map_buffersize_when_buffer_is_full")
    func testMapBuffersizeWhenBufferIsFull() throws {
        // CPython: map(str, iter(range(4)), buffersize=2), shutdown(wait=True), then next(ints) == 2:
        // only `buffersize` elements were fetched. The input is a producer here, so that the test can
        // count what was fetched (a sequence is handed over to imap).
        let executor = try ThreadPool(threads: Self.workerCount)
        let fetched = Counter()
        let res = try executor.imap(
            from: { () -> Int? in
                guard fetched.value < 4 else { return nil }
                defer { fetched.increment() }
                return fetched.value
            }, bufferSize: 2
        ) { String($0) }
        // While the pool runs, exactly `buffersize` elements are fetched ahead of the consumer.
        #expect(eventually { Py.isIdle(executor) })
        #expect(fetched.value == 2)
        // Deliberate difference (README: "close() lifts the window, so imap, close(), join(), then
        // reading gives every result, as in Python"): shutting down reads the rest of the input.
        executor.close()
        try executor.join()
        #expect(fetched.value == 4)
        #expect(try Py.list(res) == ["0", "1", "2", "3"])
    }

    @Test("ExecutorTest.test_shutdown_race_issue12456")
    func testShutdownRaceIssue12456() throws {
        // Issue #12456: shutting down while the call queue is full must not block.
        let executor = try ThreadPool(threads: Self.workerCount)
        let res = try executor.imap(Array(repeating: 2, count: Self.workerCount + 1)) { String($0) }
        executor.close()
        #expect(Py.join(executor, within: 10))
        #expect(try Py.list(res) == Array(repeating: "2", count: Self.workerCount + 1))
    }

    @Test("ExecutorTest.test_no_stale_references")
    func testNoStaleReferences() throws {
        // Issue #16284: the executor must not hang on to a task's references.
        let collected = Counter()
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            do {
                let myObject = MyObject(collected: collected)
                _ = try executor.applyAsync { myObject.myMethod() } // the future is discarded
            }
            #expect(eventually { collected.value == 1 }, "Stale reference not collected within timeout.")
        }
    }

    @Test("ExecutorTest.test_max_workers_negative")
    func testMaxWorkersNegative() {
        // Python: ValueError("max_workers must be greater than 0"); ours is a typed error.
        for number in [0, -1] {
            expectPoolError({ Py.isPoolError($0, .invalidThreadCount(number)) }) { _ = try ThreadPool(threads: number) }
        }
    }

    @Test("ExecutorTest.test_free_reference")
    func testFreeReference() throws {
        // Issue #14406: the result iterator must not keep a reference to the results it handed out.
        let collected = Counter()
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            let results = try executor.imap(0..<10) { _ in MyObject(collected: collected) } // make_dummy_object
            for _ in 0..<10 {
                weak var weakObject: MyObject?
                do {
                    let object = try #require(try results.next())
                    weakObject = object
                }
                #expect(eventually { weakObject == nil })
            }
            #expect(try results.next() == nil)
        }
        #expect(collected.value == 10)
    }

    struct FalseyBoolException: Error, Equatable {
        let message: String
        var isTrue: Bool { false } // Python: __bool__ returns False
    }

    struct FalseyLenException: Error, Equatable {
        let message: String
        var count: Int { 0 } // Python: __len__ returns 0
    }

    @Test("ExecutorTest.test_swallows_falsey_exceptions")
    func testSwallowsFalseyExceptions() throws {
        // gh-132063: exceptions that evaluate as false must not be ignored. Swift errors have no truth
        // value, but the check stands: an error is rethrown whatever it holds.
        try withThreadPool(threads: Self.workerCount) { (executor: ThreadPool) throws -> Void in
            #expect(throws: FalseyBoolException(message: "boolbool")) {
                try executor.applyAsync { () throws -> Void in throw FalseyBoolException(message: "boolbool") }.get()
            }
            #expect(throws: FalseyLenException(message: "lenlen")) {
                try executor.applyAsync { () throws -> Void in throw FalseyLenException(message: "lenlen") }.get()
            }
        }
    }
}
