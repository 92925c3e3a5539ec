import Foundation
import Testing

@testable import ThreadPoolKit

/// Recursion that waits on the pool: a waiting worker runs the subtask it waits for itself (when no
/// worker has started it), so nesting follows the program's recursion, not the queue's length.
@Suite("Recursion through the pool: no crash, no hang, correct results", .timeLimit(.minutes(2)))
struct RecursionTests {
    /// Under the sanitizers (make sanitize sets THREADPOOLKIT_SANITIZER) the workloads are a tenth as
    /// large: TSan runs these tens of times slower, and the stack depth is tested without it.
    static let scale = ProcessInfo.processInfo.environment["THREADPOOLKIT_SANITIZER"] == nil ? 1 : 10

    /// Sum of `range` by splitting it in two halves with `map` down to `leaf` items.
    static func treeSum(_ pool: ThreadPool, _ range: Range<Int>, leaf: Int) throws -> Int {
        if range.count <= leaf { return range.reduce(0, +) }
        let middle = range.lowerBound + range.count / 2
        let halves = [range.lowerBound..<middle, middle..<range.upperBound]
        return try pool.map(halves, chunkSize: 1) { try treeSum(pool, $0, leaf: leaf) }.reduce(0, +)
    }

    static func fib(_ pool: ThreadPool, _ n: Int) throws -> Int {
        if n < 2 { return n }
        let first = try pool.applyAsync { try fib(pool, n - 1) }
        let second = try pool.apply { try fib(pool, n - 2) }
        return try first.get() + second
    }

    @Test("recursive tree sum with map: 10^6 with leaves of 16, 10^7 with leaves of 1,000", arguments: [1, 2, 4])
    func treeSums(workers: Int) throws {
        let name = uniqueName("tre")
        let pool = try ThreadPool(threads: workers, name: name)
        let small = 1_000_000 / Self.scale
        let large = 10_000_000 / Self.scale
        #expect(try pool.apply { try Self.treeSum(pool, 0..<small, leaf: 16) } == (small - 1) * small / 2)
        #expect(try pool.apply { try Self.treeSum(pool, 0..<large, leaf: 1_000) } == (large - 1) * large / 2)
        #expect(eventually { threadsNamed(name) == workers }) // stand-ins retire once not needed
        pool.close()
        try pool.join()
        #expect(threadsNamed(name) == 0)
    }

    @Test("fib(27) through applyAsync and apply", arguments: [1, 2, 4])
    func fibonacci(workers: Int) throws {
        let name = uniqueName("fib")
        let pool = try ThreadPool(threads: workers, name: name)
        let n = Self.scale == 1 ? 27 : 20
        #expect(try pool.apply { try Self.fib(pool, n) } == (n == 27 ? 196_418 : 6_765))
        #expect(eventually { threadsNamed(name) == workers }) // stand-ins retire once not needed
        pool.close()
        try pool.join()
    }

    @Test("100,000 flat tasks, each waiting for a subtask", arguments: [1, 2, 4])
    func flatTasksWaitingForSubtasks(workers: Int) throws {
        let name = uniqueName("flt")
        let pool = try ThreadPool(threads: workers, name: name)
        let count = 100_000 / Self.scale
        let results = try (0..<count).map { i in
            try pool.applyAsync { try pool.apply { i * 2 } + 1 }
        }
        var sum = 0
        for result in results { sum += try result.get() }
        #expect(sum == (0..<count).reduce(0) { $0 + $1 * 2 + 1 })
        #expect(eventually { threadsNamed(name) == workers }) // stand-ins retire once not needed
        pool.close()
        try pool.join()
        // Exact once joined. (Not before: a worker counts a task completed after its result is ready,
        // so the caller can see the last value a moment before the count.)
        #expect(pool.stats.completed == 2 * count && pool.stats.queued == 0)
    }
}
