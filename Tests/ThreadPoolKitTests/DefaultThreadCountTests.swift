import Foundation
import Testing
import ThreadPoolKit

/// `ThreadPool.defaultThreadCount`. The cgroup quota and every malformed file are tested in C on fake
/// cgroup trees (Tests/CThreadPoolTests/test_platform.c); here, what the Swift API promises, and the
/// environment variable in a process of its own (setting it here would change the pools that the
/// tests running beside this one create without a count).
@Suite("The default thread count")
struct DefaultThreadCountTests {
    @Test("at least 1, at most maximumThreadCount, and what ThreadPool() starts")
    func poolWithoutCount() throws {
        let count = ThreadPool.defaultThreadCount
        #expect((1...ThreadPool.maximumThreadCount).contains(count))
        let pool = try ThreadPool()
        #expect(pool.threadCount == count)
        #expect(pool.stats.threads == count)
        pool.close()
        try pool.join()
    }

    @Test(
        "no more than the CPUs of the machine",
        .enabled(if: ProcessInfo.processInfo.environment["THREADPOOLKIT_THREADS"] == nil))
    func atMostTheMachinesCPUs() {
        #expect(ThreadPool.defaultThreadCount <= ProcessInfo.processInfo.processorCount)
    }

    @Test("THREADPOOLKIT_THREADS overrides it; anything but a whole number from 1 up is ignored")
    func environmentOverride() throws {
        let unset = try probe(threads: nil)
        let counts = unset.split(separator: " ").compactMap { Int($0) }
        try #require(counts.count == 2, "\(unset)")
        #expect(counts[0] == counts[1]) // defaultThreadCount is what ThreadPool() starts
        if ProcessInfo.processInfo.environment["THREADPOOLKIT_THREADS"] == nil {
            #expect(counts[0] == ThreadPool.defaultThreadCount) // the same process environment
        }
        #expect(try probe(threads: "3") == "3 3")
        #expect(try probe(threads: "1") == "1 1")
        // Above maximumThreadCount it means maximumThreadCount: tested in C (test_platform.c), without
        // starting 1,024 threads.
        for ignored in ["", "0", "-2", "abc", "3x", " 3", "2.5"] {
            #expect(try probe(threads: ignored) == unset, "THREADPOOLKIT_THREADS=\"\(ignored)\"")
        }
    }

    /// Runs ThreadPoolExitProbe --default-thread-count with THREADPOOLKIT_THREADS set to `threads`
    /// (nil: unset) and returns its line (within 10 s): "<defaultThreadCount> <ThreadPool().threadCount>".
    private func probe(threads: String?) throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment["THREADPOOLKIT_THREADS"] = threads
        return try runExitProbe(arguments: ["--default-thread-count"], environment: environment)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
