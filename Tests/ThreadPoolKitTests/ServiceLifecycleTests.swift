#if ServiceLifecycle
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import ThreadPoolKit

/// Submits tasks to a pool until graceful shutdown or cancellation; counts what was accepted and how
/// each accepted task ended (its callback or its error callback).
final class ProducerService: Service {
    let pool: ThreadPool
    let taskLength: Duration
    let accepted = Atomic<Int>(0)
    let ran = Atomic<Int>(0)
    let cancelled = Atomic<Int>(0)

    init(pool: ThreadPool, taskLength: Duration = .zero) {
        self.pool = pool
        self.taskLength = taskLength
    }

    func run() async throws {
        let length = taskLength
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            for _ in 0..<50 {
                do {
                    _ = try pool.applyAsync(
                        {
                            let start = ContinuousClock.now
                            while ContinuousClock.now - start < length {}
                        },
                        callback: { [self] _ in ran.wrappingAdd(1, ordering: .relaxed) },
                        errorCallback: { [self] _ in cancelled.wrappingAdd(1, ordering: .relaxed) })
                    accepted.wrappingAdd(1, ordering: .relaxed)
                } catch {
                    return // the pool no longer accepts work
                }
            }
            await Task.yield()
        }
    }
}

@Suite("ServiceLifecycle trait: ThreadPool as a Service")
struct ServiceLifecycleTests {
    private var quietLogger: Logger {
        var logger = Logger(label: "test.service")
        logger.logLevel = .critical
        return logger
    }

    @Test("graceful shutdown mid-stream: every accepted task ran, no worker left (5 rounds)")
    func gracefulShutdown() async throws {
        for _ in 0..<5 {
            let name = uniqueName("svc")
            let pool = try ThreadPool(threads: 2, name: name)
            let producer = ProducerService(pool: pool)
            // The pool first: the group shuts the producer down first, then the pool.
            let group = ServiceGroup(services: [pool, producer], logger: quietLogger)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                while producer.ran.load(ordering: .relaxed) < 1_000 { try await Task.sleep(for: .milliseconds(1)) }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            let accepted = producer.accepted.load(ordering: .relaxed)
            #expect(accepted >= 1_000)
            #expect(producer.ran.load(ordering: .relaxed) == accepted)
            #expect(producer.cancelled.load(ordering: .relaxed) == 0)
            #expect(pool.stats.completed == accepted)
            #expect(pool.description.contains("closed"))
            #expect(eventually { threadsNamed(name + "-") == 0 })
            expectPoolError({ if case .notRunning = $0 { true } else { false } }) { _ = try pool.applyAsync { 1 } }
        }
    }

    @Test("cancellation terminates: every accepted task ran or was reported cancelled, no worker left")
    func cancellation() async throws {
        for _ in 0..<5 {
            let name = uniqueName("svx")
            let pool = try ThreadPool(threads: 2, name: name)
            // Tasks of 100 µs: work is still queued when the group is cancelled.
            let producer = ProducerService(pool: pool, taskLength: .microseconds(100))
            let group = ServiceGroup(services: [pool, producer], logger: quietLogger)
            let running = Task { try await group.run() }
            while producer.ran.load(ordering: .relaxed) < 100 { try await Task.sleep(for: .milliseconds(1)) }
            running.cancel()
            _ = try? await running.value
            #expect(pool.description.contains("terminated"))
            let accepted = producer.accepted.load(ordering: .relaxed)
            let ran = producer.ran.load(ordering: .relaxed)
            let cancelled = producer.cancelled.load(ordering: .relaxed)
            #expect(ran + cancelled == accepted)
            #expect(ran >= 100)
            #expect(pool.stats.cancelled == cancelled)
            #expect(eventually { threadsNamed(name + "-") == 0 })
        }
    }

    @Test("SIGTERM to a program running the pool in a ServiceGroup: graceful shutdown, no task lost")
    func sigterm() throws {
        for _ in 0..<3 {
            let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable).deletingLastPathComponent()
                .appendingPathComponent("ThreadPoolServiceProbe")
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            // Reads until "ready" (tasks are running), then sends SIGTERM mid-stream.
            var output = ""
            let reader = pipe.fileHandleForReading
            while !output.contains("ready\n") {
                let data = reader.availableData
                if data.isEmpty { break }
                output += String(decoding: data, as: UTF8.self)
            }
            #expect(output.contains("ready"))
            kill(process.processIdentifier, SIGTERM)
            output += String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)
            let exited = eventually { !process.isRunning }
            if !exited { process.terminate() }
            #expect(exited)
            process.waitUntilExit()
            #expect(process.terminationReason == .exit)
            #expect(process.terminationStatus == 0)
            // "accepted=N ran=N cancelled=0 workers=0"
            let line = output.split(separator: "\n").first { $0.hasPrefix("accepted=") } ?? ""
            let fields = Dictionary(
                uniqueKeysWithValues: line.split(separator: " ").compactMap { field in
                    let parts = field.split(separator: "=")
                    return parts.count == 2 ? (String(parts[0]), Int(parts[1]) ?? -1) : nil
                })
            #expect((fields["accepted"] ?? 0) > 0, "output: \(output)")
            #expect(fields["ran"] == fields["accepted"], "output: \(output)")
            #expect(fields["cancelled"] == 0, "output: \(output)")
            #expect(fields["workers"] == 0, "output: \(output)")
        }
    }
}
#endif
