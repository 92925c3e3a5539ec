import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

@Suite("Worker names, indices and thread-local state")
struct WorkerTests {
    @Test("named pools: \"<name>-<i>\", i = index + 1; the OS name is the same, cut to 15 bytes")
    func namedWorkers() throws {
        let seen = Recorder<WorkerInfo>()
        let osNames = Recorder<String>()
        let pool = try ThreadPool(
            threads: 3, name: "fetch",
            initializer: {
                seen.append(ThreadPool.currentWorker!)
                osNames.append(currentOSThreadName())
            })
        pool.close()
        try pool.join()
        let workers = seen.elements.sorted { $0.index < $1.index }
        #expect(
            workers == [
                WorkerInfo(index: 0, name: "fetch-1"), WorkerInfo(index: 1, name: "fetch-2"),
                WorkerInfo(index: 2, name: "fetch-3"),
            ])
        #expect(osNames.elements.sorted() == ["fetch-1", "fetch-2", "fetch-3"])
    }

    @Test("the OS name is cut to 15 bytes on a UTF-8 boundary; the full name stays available")
    func longNames() throws {
        let prefix = "données-rapides-é" // the 15th byte falls inside "é"
        let seen = Recorder<[String]>()
        let pool = try ThreadPool(
            threads: 1, name: prefix,
            initializer: {
                seen.append([ThreadPool.currentWorker!.name, currentOSThreadName()])
            })
        pool.close()
        try pool.join()
        let names = try #require(seen.elements.first)
        #expect(names[0] == prefix + "-1")
        #expect(names[1] == "données-rapide") // 15 bytes would end inside "é": cut before it
        #expect(names[1].utf8.count <= 15)
    }

    @Test("unnamed pools: \"Thread-N\" with consecutive N from a process-wide counter")
    func threadN() throws {
        let seen = Recorder<WorkerInfo>()
        let pool = try ThreadPool(threads: 4, initializer: { seen.append(ThreadPool.currentWorker!) })
        pool.close()
        try pool.join()
        let workers = seen.elements.sorted { $0.index < $1.index }
        let numbers = workers.map { Int($0.name.dropFirst("Thread-".count))! }
        #expect(workers.allSatisfy { $0.name.hasPrefix("Thread-") })
        #expect(numbers == Array(numbers[0]..<numbers[0] + 4))
        #expect(workers.map(\.index) == [0, 1, 2, 3])
    }

    @Test("currentWorker is nil off the pool, and tasks see the index of the worker running them")
    func currentWorker() throws {
        #expect(ThreadPool.currentWorker == nil)
        let pool = try ThreadPool(threads: 2, name: "idx")
        let results = try (0..<200).map { _ in try pool.applyAsync { ThreadPool.currentWorker! } }
        pool.close()
        try pool.join()
        for result in results {
            let worker = try result.get()
            #expect(worker.name == "idx-\(worker.index + 1)")
        }
    }

    final class Connection: Sendable {
        static let opened = Counter()
        static let closed = Counter()
        let worker: Int
        init(worker: Int) {
            self.worker = worker
            Connection.opened.increment()
        }
        deinit { Connection.closed.increment() }
    }

    static let connection = ThreadLocal<Connection?> { nil }

    @Test("a ThreadLocal set in the initializer is seen by every task on that worker and freed at exit")
    func threadLocalPerWorker() throws {
        let threads = 4
        let pool = try ThreadPool(
            threads: threads,
            initializer: {
                Self.connection.value = Connection(worker: ThreadPool.currentWorker!.index)
            })
        #expect(Connection.opened.value == threads)
        let results = try (0..<10_000).map { _ in
            try pool.applyAsync { () -> Bool in
                Self.connection.value?.worker == ThreadPool.currentWorker!.index
            }
        }
        pool.close()
        try pool.join()
        #expect(try results.allSatisfy { try $0.get() })
        #expect(Connection.closed.value == threads)
    }

    @Test("a ThreadLocal makes its value lazily, once per thread")
    func threadLocalLazy() throws {
        let made = Counter()
        let local = ThreadLocal<Int> {
            made.increment(); return 5
        }
        #expect(made.value == 0)
        #expect(local.value == 5)
        local.value = 6
        #expect(local.value == 6)
        #expect(made.value == 1)
        let pool = try ThreadPool(threads: 2)
        let fromWorker = try pool.apply { local.value }
        pool.close()
        try pool.join()
        #expect(fromWorker == 5)
        #expect(made.value == 2)
    }
}
