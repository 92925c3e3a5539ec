// What the server relies on from ThreadPoolKit's Service conformance (trait ServiceLifecycle), checked
// as the example uses it: graceful shutdown runs the queued work and joins; cancellation drops it and
// joins.
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import ThreadPoolKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class Count: Sendable {
    let value = Atomic<Int>(0)
}

struct ThreadPoolServiceTests {
    static let tasks = 200

    /// 200 tasks of 1 ms queued on 2 workers; graceful shutdown comes while most are queued: all run,
    /// and `run()` returns once the pool is joined.
    @Test func gracefulShutdownRunsTheQueuedTasksAndJoins() async throws {
        let pool = try ThreadPool(threads: 2, name: "service")
        let ran = Count()
        for _ in 0..<Self.tasks {
            try pool.execute {
                usleep(1_000); ran.value.add(1, ordering: .relaxed)
            }
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [pool],
                logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(ran.value.load(ordering: .relaxed) == Self.tasks)
        #expect(pool.stats.completed == Self.tasks)
        #expect(throws: ThreadPoolError.self) { try pool.execute {} } // closed
    }

    /// The same, the group's task cancelled instead: the tasks still queued are dropped (counted
    /// cancelled), every task either ran or was cancelled, and `run()` returns once the pool is joined.
    @Test func cancellationDropsTheQueuedTasksAndJoins() async throws {
        let pool = try ThreadPool(threads: 2, name: "service")
        let ran = Count()
        for _ in 0..<Self.tasks {
            try pool.execute {
                usleep(1_000); ran.value.add(1, ordering: .relaxed)
            }
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [pool],
                logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        running.cancel()
        _ = await running.result
        let stats = pool.stats
        #expect(stats.cancelled > 0)
        #expect(stats.completed + stats.cancelled == Self.tasks)
        #expect(ran.value.load(ordering: .relaxed) == stats.completed)
    }
}
