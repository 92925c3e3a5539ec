// ThreadPoolServiceProbe: run by the tests (ServiceLifecycleTests) as a subprocess, with the
// ServiceLifecycle trait: a ServiceGroup of a pool and a producer that submits tasks without end,
// shut down gracefully by SIGTERM. It prints "ready" once tasks run, then, after the group returns,
// "accepted=N ran=N cancelled=N workers=N" (workers: the pool's threads still alive, from
// /proc/self/task) and exits 0. Without the trait it prints "no ServiceLifecycle" and exits 0.
#if ServiceLifecycle
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ThreadPoolKit

/// Writes a line to standard output at once (no buffering: the test reads it while this runs).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Submits tasks until graceful shutdown, then stops; counts what it submitted and how each ended.
final class Producer: Service {
    let pool: ThreadPool
    let accepted = Atomic<Int>(0)
    let ran = Atomic<Int>(0)
    let cancelled = Atomic<Int>(0)
    let ready = Atomic<Bool>(false)

    init(pool: ThreadPool) { self.pool = pool }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            for _ in 0..<100 {
                do {
                    _ = try pool.applyAsync(
                        { () -> Void in
                            var x = 0
                            for i in 0..<1_000 { x &+= i }
                            if x == 42 { print("unexpected") }
                        },
                        callback: { [self] _ in
                            ran.wrappingAdd(1, ordering: .relaxed)
                            if !ready.exchange(true, ordering: .relaxed) { say("ready") }
                        },
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

let name = "svcprobe"
let pool = try ThreadPool(threads: 2, name: name)
let producer = Producer(pool: pool)
var logger = Logger(label: "probe")
logger.logLevel = .error
// The pool first: a group shuts its services down in reverse order, the producer before the pool.
let group = ServiceGroup(services: [pool, producer], gracefulShutdownSignals: [.sigterm], logger: logger)
try await group.run()

func poolThreads() -> Int {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.filter { task in
        ((try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? "").hasPrefix(name + "-")
    }.count
}
let accepted = producer.accepted.load(ordering: .relaxed)
let ran = producer.ran.load(ordering: .relaxed)
let cancelled = producer.cancelled.load(ordering: .relaxed)
say("accepted=\(accepted) ran=\(ran) cancelled=\(cancelled) workers=\(poolThreads())")
#else
print("no ServiceLifecycle")
#endif
