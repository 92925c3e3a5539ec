import Foundation
import Testing

@testable import ThreadPoolKit

/// Reads a thread-local from synchronous code (ThreadLocal.value is unavailable from async code).
func readTag(_ local: ThreadLocal<String>) -> String { local.value }
func currentWorkerName() -> String? { ThreadPool.currentWorker?.name }

@Suite("async/await and the TaskExecutor")
struct ConcurrencyTests {
    static let tag = ThreadLocal<String> { "unset" }

    @Test("UnownedJob is one pointer, as the executor's queue entries assume")
    func jobLayout() {
        #expect(MemoryLayout<UnownedJob>.size == MemoryLayout<UnsafeMutableRawPointer>.size)
    }

    @Test("withTaskExecutorPreference runs async code on the pool's workers, with their thread-locals")
    func executorPreference() async throws {
        let pool = try ThreadPool(
            threads: 2, name: "exec",
            initializer: {
                Self.tag.value = "initialized on \(ThreadPool.currentWorker!.name)"
            })
        let seen = await withTaskExecutorPreference(pool) { () -> [String?] in
            var names: [String?] = []
            for _ in 0..<20 {
                names.append(currentWorkerName())
                await Task.yield()
            }
            return names
        }
        #expect(seen.allSatisfy { $0 == "exec-1" || $0 == "exec-2" })
        let tags = await Task(executorPreference: pool) { () -> (String?, String) in
            (currentWorkerName(), readTag(Self.tag))
        }.value
        #expect(tags.0 != nil && tags.1 == "initialized on \(tags.0!)")
        // Child tasks inherit the preference.
        let children = await withTaskExecutorPreference(pool) {
            await withTaskGroup(of: String?.self) { group in
                for _ in 0..<50 { group.addTask { currentWorkerName() } }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(children.count == 50 && children.allSatisfy { $0?.hasPrefix("exec-") == true })
        pool.close()
        try await pool.join()
    }

    @Test("jobs a closed pool cannot take run on the global executor: no task is lost")
    func closedExecutor() async throws {
        let pool = try ThreadPool(threads: 1)
        pool.close()
        try await pool.join()
        let value = await Task(executorPreference: pool) { () -> (Int, String?) in (7, currentWorkerName()) }.value
        #expect(value.0 == 7 && value.1 == nil)
    }
}
