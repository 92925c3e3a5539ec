import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

extension ResultIterator {
    /// Every remaining result (stops at the first error).
    func collect() throws -> [T] {
        var values: [T] = []
        while let value = try next(timeout: .seconds(30)) { values.append(value) }
        return values
    }
}

@Suite("imap and imapUnordered")
struct ImapTests {
    @Test("imap gives results in input order, each item run exactly once", arguments: [1, 3, 64])
    func ordered(chunkSize: Int) throws {
        let pool = try ThreadPool(threads: 3)
        let calls = Counter()
        let iterator = try pool.imap(0..<10_000, chunkSize: chunkSize) { (x: Int) -> Int in
            calls.increment()
            return x * x + 1
        }
        #expect(try iterator.collect() == (0..<10_000).map { $0 * $0 + 1 })
        #expect(try iterator.next() == nil)
        #expect(calls.value == 10_000)
        pool.close()
        try pool.join()
    }

    @Test("imapUnordered gives every result exactly once; with one worker, in input order")
    func unordered() throws {
        let pool = try ThreadPool(threads: 4)
        let values = try pool.imapUnordered(0..<10_000, chunkSize: 2) { $0 }.collect()
        #expect(values.count == 10_000 && Set(values) == Set(0..<10_000))
        pool.close()
        try pool.join()
        let single = try ThreadPool(threads: 1)
        #expect(try single.imapUnordered(0..<1000) { $0 }.collect() == Array(0..<1000))
        single.close()
        try single.join()
    }

    @Test("next(timeout:) throws .timeout and loses nothing")
    func timeout() throws {
        let pool = try ThreadPool(threads: 2)
        let gate = Gate()
        let iterator = try pool.imap(0..<3) { (x: Int) -> Int in
            if x == 0 { gate.pass() }
            return x
        }
        expectPoolError({ if case .timeout = $0 { true } else { false } }) {
            _ = try iterator.next(timeout: .milliseconds(20))
        }
        gate.open()
        #expect(try iterator.collect() == [0, 1, 2])
        pool.close()
        try pool.join()
    }

    @Test("an endless input runs in bounded memory: at most bufferSize items pulled ahead")
    func boundedWindow() throws {
        let pool = try ThreadPool(threads: 2)
        let pulled = Counter()
        let iterator = try pool.imap(
            from: { () -> Int? in
                pulled.increment()
                return pulled.value
            }, bufferSize: 8
        ) { $0 }
        for consumed in 1...200 {
            _ = try iterator.next()
            #expect(pulled.value <= consumed + 8)
        }
        // Left alone, the runners stop once the window is full.
        #expect(eventually { pool.stats.running == 0 })
        #expect(pulled.value <= 200 + 8)
        iterator.cancel()

        // The default window: 2 × threads × chunkSize, at least 256.
        #expect(pool.defaultBufferSize() == 256 && pool.defaultBufferSize(chunkSize: 100) == 400)
        let pulledByDefault = Counter()
        let endless = try pool.imapUnordered(from: { () -> Int? in
            pulledByDefault.increment()
            return 1
        }) { $0 }
        for _ in 0..<1000 { _ = try endless.next() }
        #expect(eventually { pool.stats.running == 0 })
        #expect(pulledByDefault.value <= 1000 + 256)
        endless.cancel()
        pool.close()
        try pool.join()
    }

    @Test("Python's imap, close(), join(), then reading the iterator gives every result")
    func closeThenRead() throws {
        let pool = try ThreadPool(threads: 2)
        let iterator = try pool.imap(0..<5000, bufferSize: 4) { $0 * 2 }
        let unordered = try pool.imapUnordered(0..<5000, bufferSize: 4) { $0 * 3 }
        pool.close()
        try pool.join()
        #expect(try iterator.collect() == (0..<5000).map { $0 * 2 })
        #expect(try unordered.collect().sorted() == (0..<5000).map { $0 * 3 })
    }

    @Test("cancel() and dropping the iterator: items not yet started never run")
    func cancellation() throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        let ran = Counter()
        let iterator = try pool.imap(0..<1000, bufferSize: 100) { (x: Int) -> Int in
            if x == 0 { gate.pass() }
            ran.increment()
            return x
        }
        #expect(eventually { gate.arrived == 1 })
        iterator.cancel()
        gate.open()
        #expect(try iterator.next() == 0) // item 0 was running: it finishes and is delivered
        #expect(try iterator.next() == nil)
        #expect(ran.value == 1)

        let gate2 = Gate()
        let ran2 = Counter()
        var dropped: ResultIterator<Int>? = try pool.imap(0..<1000, bufferSize: 100) { (x: Int) -> Int in
            if x == 0 { gate2.pass() }
            ran2.increment()
            return x
        }
        #expect(eventually { gate2.arrived == 1 })
        #expect(dropped != nil)
        dropped = nil // cancels it
        gate2.open()
        pool.close()
        try pool.join()
        #expect(ran2.value == 1)
    }

    @Test("a failing task: earlier results first, then its error at its position, then the rest")
    func failingItem() throws {
        let pool = try ThreadPool(threads: 3)
        let iterator = try pool.imap(0..<10) { (x: Int) throws -> Int in
            if x == 4 { throw TestError(code: 4) }
            return x
        }
        var seen: [Int] = []
        for _ in 0..<4 { seen.append(try #require(try iterator.next())) }
        #expect(seen == [0, 1, 2, 3])
        #expect(throws: TestError(code: 4)) { try iterator.next() }
        #expect(try iterator.collect() == [5, 6, 7, 8, 9])
        pool.close()
        try pool.join()
    }

    @Test("a throwing input: the results before it, then its error; the pool stays usable")
    func throwingInput() throws {
        let pool = try ThreadPool(threads: 2)
        for ordered in [true, false] {
            let next = Counter()
            let producer = { () throws -> Int? in
                next.increment()
                if next.value == 6 { throw TestError(code: 99) }
                return next.value
            }
            let iterator =
                ordered
                ? try pool.imap(from: producer) { $0 * 10 }
                : try pool.imapUnordered(from: producer) { $0 * 10 }
            var values: [Int] = []
            #expect(throws: TestError(code: 99)) {
                while let value = try iterator.next() { values.append(value) }
            }
            #expect(values.sorted() == [10, 20, 30, 40, 50])
            #expect(try iterator.next() == nil)
        }
        #expect(try pool.apply { 7 } == 7)
        pool.close()
        try pool.join()
    }

    @Test("for try await over an iterator")
    func asyncSequence() async throws {
        let pool = try ThreadPool(threads: 2)
        var values: [Int] = []
        for try await value in try pool.imap(0..<1000, { $0 + 1 }) { values.append(value) }
        #expect(values == Array(1...1000))
        pool.close()
        try await pool.join()
    }

    @Test("terminate() cuts an iterator short: its results so far, then .cancelled")
    func terminated() throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        let iterator = try pool.imap(0..<100, bufferSize: 10) { (x: Int) -> Int in
            if x == 3 { gate.pass() }
            return x
        }
        #expect(eventually { gate.arrived == 1 })
        pool.terminate()
        gate.open()
        var values: [Int] = []
        expectPoolError({ if case .cancelled = $0 { true } else { false } }) {
            while let value = try iterator.next(timeout: .seconds(10)) { values.append(value) }
        }
        #expect(values == [0, 1, 2, 3])
        #expect(try iterator.next() == nil)
        try pool.join()
    }

    @Test("imap from inside the pool, on a 1-worker pool")
    func nested() throws {
        let pool = try ThreadPool(threads: 1)
        #expect(try pool.apply { try pool.imap(0..<100) { $0 }.collect() } == Array(0..<100))
        pool.close()
        try pool.join()
    }

    @Test("invalid chunk and buffer sizes, and imap after close")
    func invalid() throws {
        let pool = try ThreadPool(threads: 1)
        expectPoolError({ if case .invalidChunkSize(0) = $0 { true } else { false } }) {
            _ = try pool.imap(0..<3, chunkSize: 0) { $0 }
        }
        expectPoolError({ if case .invalidBufferSize(-1) = $0 { true } else { false } }) {
            _ = try pool.imap(0..<3, bufferSize: -1) { $0 }
        }
        expectPoolError({ if case .invalidBufferSize(0) = $0 { true } else { false } }) {
            _ = try pool.imapUnordered(0..<3, bufferSize: 0) { $0 }
        }
        pool.close()
        expectPoolError({ if case .notRunning = $0 { true } else { false } }) { _ = try pool.imap(0..<3) { $0 } }
        try pool.join()
    }
}

@Suite("imap with slow items")
struct ImapSlowItemTests {
    @Test("slow items are spread over the workers and each result is handed out as soon as it is ready")
    func slowItemsSpread() throws {
        let pool = try ThreadPool(threads: 2)
        let gate = Gate()
        // Item 2 blocks until the consumer has read items 0 and 1: were they pulled together with it
        // by one runner, they would be held back and this would time out.
        let iterator = try pool.imap(0..<4) { (x: Int) -> Int in
            if x == 2 { gate.pass() }
            return ThreadPool.currentWorker!.index
        }
        _ = try iterator.next(timeout: .seconds(10))
        _ = try iterator.next(timeout: .seconds(10))
        gate.open()
        _ = try iterator.next(timeout: .seconds(10))
        _ = try iterator.next(timeout: .seconds(10))
        #expect(try iterator.next() == nil)
        // Items that take a while go to both workers.
        let workers = try pool.imap(0..<8) { (_: Int) -> Int in
            usleep(20_000) // work that takes a while
            return ThreadPool.currentWorker!.index
        }.collect()
        #expect(Set(workers) == [0, 1])
        pool.close()
        try pool.join()
    }
}
