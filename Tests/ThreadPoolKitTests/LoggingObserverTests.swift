#if Logging
import Foundation
import Logging
import Testing
import ThreadPoolKit

/// A LogHandler that keeps every message it is given.
struct CapturingLogHandler: LogHandler {
    final class Store: @unchecked Sendable {
        private let lock = NSLock()
        private var events: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] = [] // lock
        func append(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) {
            lock.withLock { events.append((level, message, metadata)) }
        }
        var all: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] { lock.withLock { events } }
    }

    let store: Store
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        store.append(event.level, event.message.description, metadata.merging(event.metadata ?? [:]) { $1 })
    }
}

@Suite("Logging trait: LoggingThreadPoolObserver")
struct LoggingObserverTests {
    private func logger(_ store: CapturingLogHandler.Store) -> Logger {
        Logger(label: "test.threadpool") { _ in CapturingLogHandler(store: store) }
    }

    @Test("a grown worker's failed initializer is logged once, at error, with the worker and the error")
    func initializerFailure() async throws {
        let store = CapturingLogHandler.Store()
        let name = uniqueName("log")
        var configuration = ThreadPool.Configuration()
        configuration.threads = 1
        configuration.maxThreads = 4
        configuration.name = name
        configuration.observer = LoggingThreadPoolObserver(logger: logger(store))
        let calls = Counter()
        let pool = try ThreadPool(
            configuration,
            initializer: {
                calls.increment()
                if ThreadPool.currentWorker!.index >= 1 { throw TestError(code: 7) }
            })
        let gate = Gate()
        try pool.execute { gate.pass() }
        #expect(await eventuallyAsync { gate.arrived == 1 })
        try pool.execute {} // queued with the only worker busy: the pool grows, and that worker fails
        #expect(await eventuallyAsync { !store.all.isEmpty })
        gate.open()
        pool.close()
        try await pool.join()
        let failures = store.all.filter { $0.level == .error }
        #expect(failures.count == pool.stats.growFailures)
        #expect(failures.count >= 1)
        #expect(failures.first?.metadata["threadpool.pool"] == "\(name)")
        #expect(failures.first?.metadata["error"]?.description.contains("TestError") == true)
        #expect(failures.first?.metadata["threadpool.worker"] != nil)
    }

    @Test("a task error nobody can read and a pool dropped with work queued are logged")
    func droppedErrorAndPool() async throws {
        let store = CapturingLogHandler.Store()
        let name = uniqueName("lgd")
        let gate = Gate()
        do {
            var configuration = ThreadPool.Configuration()
            configuration.threads = 1
            configuration.name = name
            configuration.observer = GateOpeningLogger(logger: logger(store), gate: gate)
            let pool = try ThreadPool(configuration)
            try pool.execute { gate.pass() }
            #expect(await eventuallyAsync { gate.arrived == 1 })
            _ = try pool.applyAsync { () throws -> Int in throw TestError(code: 9) } // result dropped at once
            for _ in 0..<3 { try pool.execute {} }
        } // dropped with 4 tasks queued; the observer opens the gate, deinit waits for them
        let events = store.all
        #expect(events.count == 2)
        let dropped = events.first { $0.level == .warning }
        #expect(dropped?.metadata["threadpool.queued"] == "4")
        #expect(dropped?.metadata["threadpool.pool"] == "\(name)")
        let unobserved = events.first { $0.level == .error }
        #expect(unobserved?.metadata["error"]?.description.contains("TestError(code: 9)") == true)
    }
}

/// LoggingThreadPoolObserver that also opens a gate when the pool is dropped (so its queued work runs).
final class GateOpeningLogger: ThreadPoolObserver {
    let logging: LoggingThreadPoolObserver
    let gate: Gate
    init(logger: Logger, gate: Gate) {
        logging = LoggingThreadPoolObserver(logger: logger)
        self.gate = gate
    }
    func failure(pool: String, _ failure: ThreadPoolFailure) { logging.failure(pool: pool, failure) }
    func poolDropped(pool: String, queuedTasks: Int) {
        logging.poolDropped(pool: pool, queuedTasks: queuedTasks)
        gate.open()
    }
}
#endif
