import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

/// ThreadPool.Configuration: elastic workers, a bounded queue and its full-queue policies, and
/// `ThreadPool.blocking`.
@Suite("Elastic workers and backpressure")
struct ElasticTests {
    @Test("2...64 grows for 64 blocking tasks and retires to 2 after the keep-alive; grown workers are named")
    func growsAndRetires() throws {
        var configuration = ThreadPool.Configuration()
        configuration.threads = 2
        configuration.maxThreads = 64
        configuration.keepAlive = .milliseconds(200)
        configuration.name = uniqueName("ela")
        let initialized = Counter()
        let finalized = Counter()
        let pool = try ThreadPool(
            configuration, initializer: { initialized.increment() }, finalizer: { finalized.increment() })
        #expect(pool.threadCount == 2 && pool.maxThreadCount == 64)
        let names = Recorder<String>()
        let results = try (0..<64).map { _ in
            try pool.applyAsync { () -> Void in
                usleep(10_000)
                names.append(ThreadPool.currentWorker?.name ?? "")
            }
        }
        for result in results { try result.get() }
        // A task counts as completed just after its result is published.
        #expect(eventually { pool.stats.completed == 64 })
        var stats = pool.stats
        #expect(stats.peakThreads > 2 && stats.peakThreads <= 64)
        #expect(initialized.value == stats.threadsStarted) // every grown worker ran the initializer
        #expect(Set(names.elements).allSatisfy { $0.hasPrefix("\(configuration.name!)-") })
        #expect(eventually { pool.stats.threads == 2 && threadsNamed(configuration.name!) == 2 })
        stats = pool.stats
        #expect(stats.threadsRetired == stats.threadsStarted - 2)
        #expect(finalized.value == stats.threadsRetired)
        pool.close()
        try pool.join()
        #expect(threadsNamed(configuration.name!) == 0 && finalized.value == initialized.value)
    }

    @Test("a producer far faster than the pool never has more than queueCapacity queued; every task runs once")
    func backpressureWaits() throws {
        var configuration = ThreadPool.Configuration()
        configuration.threads = 2
        configuration.queueCapacity = 8
        let pool = try ThreadPool(configuration)
        let ran = Counter()
        let stop = Flag()
        let overfull = Counter()
        let sampled = Counter()
        let sampler = Thread {
            while !stop.value {
                if pool.stats.queued > 8 { overfull.increment() }
                sampled.increment()
            }
        }
        sampler.start()
        for _ in 0..<2_000 {
            try pool.execute {
                usleep(50); ran.increment()
            }
        }
        pool.close()
        try pool.join()
        stop.value = true
        #expect(eventually { sampled.value > 0 })
        #expect(ran.value == 2_000)
        #expect(overfull.value == 0)
    }

    @Test("whenFull .fail throws queueFull; .runOnCaller runs the task on the submitting thread")
    func fullQueuePolicies() throws {
        var configuration = ThreadPool.Configuration()
        configuration.threads = 1
        configuration.queueCapacity = 2
        configuration.whenFull = .fail
        let failing = try ThreadPool(configuration)
        let gate = Gate()
        let ran = Counter()
        try failing.execute { gate.pass() }
        #expect(eventually { gate.arrived == 1 })
        try failing.execute { ran.increment() }
        try failing.execute { ran.increment() }
        expectPoolError({ if case .queueFull = $0 { true } else { false } }) { try failing.execute { ran.increment() } }
        expectPoolError({ if case .queueFull = $0 { true } else { false } }) { _ = try failing.applyAsync { 1 } }
        gate.open()
        failing.close()
        try failing.join()
        #expect(ran.value == 2)

        configuration.whenFull = .runOnCaller
        let callerRuns = try ThreadPool(configuration)
        let gate2 = Gate()
        try callerRuns.execute { gate2.pass() }
        #expect(eventually { gate2.arrived == 1 })
        _ = try callerRuns.applyAsync { 1 }
        _ = try callerRuns.applyAsync { 2 }
        let onCaller = try callerRuns.applyAsync { ThreadPool.currentWorker == nil }
        #expect(onCaller.isReady) // it ran before applyAsync returned
        #expect(try onCaller.get())
        gate2.open()
        callerRuns.close()
        try callerRuns.join()
    }

    @Test("invalid configurations throw invalidConfiguration saying which value")
    func invalidConfigurations() {
        func expectInvalid(_ change: (inout ThreadPool.Configuration) -> Void, mentioning word: String) {
            var configuration = ThreadPool.Configuration()
            change(&configuration)
            expectPoolError({ if case .invalidConfiguration(let text) = $0 { text.contains(word) } else { false } }) {
                _ = try ThreadPool(configuration)
            }
        }
        expectInvalid({ $0.threads = 0 }, mentioning: "threads")
        expectInvalid(
            {
                $0.threads = 4; $0.maxThreads = 2
            }, mentioning: "maxThreads")
        expectInvalid({ $0.maxThreads = 5000 }, mentioning: "maxThreads")
        expectInvalid({ $0.keepAlive = .zero }, mentioning: "keepAlive")
        expectInvalid({ $0.queueCapacity = 0 }, mentioning: "queueCapacity")
        expectInvalid({ $0.stackSize = 100 }, mentioning: "stackSize")
        expectInvalid({ $0.pinnedCPUs = [-1] }, mentioning: "pinnedCPUs")
        expectInvalid({ $0.niceness = 40 }, mentioning: "niceness")
    }

    @Test("ThreadPool.blocking: a 1-worker pool whose task blocks for a task it queued completes, 100 rounds")
    func blockingStandsIn() throws {
        let name = uniqueName("blk")
        let pool = try ThreadPool(threads: 1, name: name)
        for _ in 0..<100 {
            let value = try pool.apply { () throws -> Int in
                let posted = DispatchSemaphore(value: 0)
                try pool.execute { posted.signal() }
                return ThreadPool.blocking { posted.wait(timeout: .now() + 10) == .success ? 1 : 0 }
            }
            #expect(value == 1)
        }
        #expect(ThreadPool.blocking { 7 } == 7) // off the pool: just runs
        #expect(eventually { threadsNamed(name) == 1 })
        pool.close()
        try pool.join()
    }

    @Test("pinned CPUs and niceness are applied to the workers (Linux)")
    func placement() throws {
        var configuration = ThreadPool.Configuration()
        configuration.threads = 2
        configuration.pinnedCPUs = [0]
        configuration.niceness = 5
        let pool = try ThreadPool(configuration)
        let seen = try pool.broadcast { _ -> (String, Int32) in
            // On Linux, PRIO_PROCESS with 0 is the calling thread; its allowed CPUs are in its status.
            let status = (try? String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8)) ?? ""
            let cpus =
                status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
                .map { $0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces) } ?? ""
            return (cpus, getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0))
        }
        #expect(seen.allSatisfy { $0.0 == "0" && $0.1 == 5 }, "\(seen)")
        pool.close()
        try pool.join()
    }
}

/// A thread-safe Bool for tests.
private final class Flag: Sendable {
    private let storage = Atomic<Bool>(false)
    var value: Bool {
        get { storage.load(ordering: .relaxed) }
        set { storage.store(newValue, ordering: .relaxed) }
    }
}
