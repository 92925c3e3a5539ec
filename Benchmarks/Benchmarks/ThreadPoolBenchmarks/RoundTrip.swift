import Benchmark
import CBenchSupport
import CThreadPool
import Dispatch
import NIOPosix
import Synchronization
import ThreadPoolKit

/// Workload 6, round trips: one thread hands a tiny task to the pool (2 workers) and waits for it
/// before it hands over the next, 20,000 times per iteration: `apply { 1 }`, `applyAsync` + `get`,
/// the C API with a semaphore the task posts, `NIOThreadPool.submit` + a semaphore, Dispatch's
/// concurrent queue `async` + a semaphore, and the floor, two threads spinning on one word (no
/// pool, no yield, no park). ns/task = ns per round trip; cpu ns / tasks = CPU time of every thread
/// of the process per round trip, so that a waiter that polls shows what its speed costs.
///
/// The `busy` rows run the same round trips while a third thread spins on the 2 CPUs (its CPU time
/// is left out of cpu ns): a poll that wins by keeping a core to itself loses there. They run
/// fewer round trips: the spinning floor can lose a whole time slice (ms) per round trip there.
let roundTrips = 20_000
let busyRoundTrips = 2_000
let busyFloorRoundTrips = 200

private func roundTripConfig(mallocTolerance: MallocTolerance = .relative(3)) -> Benchmark.Configuration {
    throughputConfig(maxDuration: 4, quickIterations: 3, fullIterations: 100, mallocTolerance: mallocTolerance)
}

/// Runs `body` (which runs `tasks` round trips) as the measured region, with a spinning third
/// thread when `busy`.
private func measureRoundTrips(_ benchmark: Benchmark, tasks: Int, busy: Bool, _ body: () throws -> Void) rethrows {
    guard busy else { return try measure(benchmark, tasks: tasks, body) }
    guard let hog = cbench_hog_start() else { fatalError("cbench_hog_start failed") }
    defer { cbench_hog_stop(hog) }
    try measure(benchmark, tasks: tasks, hog: hog, body)
}

/// A count the tasks of NIO and Dispatch rows bump, checked after the loop.
private final class Hits: Sendable {
    let count = Atomic<Int>(0)
    func hit() { count.wrappingAdd(1, ordering: .relaxed) }
    func verify(_ expected: Int) {
        let seen = count.exchange(0, ordering: .relaxed)
        check(seen == expected, "round trips: \(seen) != \(expected)")
    }
}

func registerRoundTrip() {
    for busy in [false, true] {
        let prefix = busy ? "W6 roundtrip busy" : "W6 roundtrip"
        let n = busy ? busyRoundTrips : roundTrips

        Benchmark("\(prefix) ThreadPoolKit.apply w2", configuration: roundTripConfig()) { benchmark in
            let pool = try ThreadPool(threads: 2)
            var sum = 0
            try measureRoundTrips(benchmark, tasks: n, busy: busy) {
                for _ in 0..<n { sum &+= try pool.apply { 1 } }
            }
            check(sum == n, "apply: \(sum) != \(n)")
            pool.close()
            try pool.join()
        }

        Benchmark("\(prefix) ThreadPoolKit.applyAsync+get w2", configuration: roundTripConfig()) { benchmark in
            let pool = try ThreadPool(threads: 2)
            var sum = 0
            try measureRoundTrips(benchmark, tasks: n, busy: busy) {
                for _ in 0..<n { sum &+= try pool.applyAsync { 1 }.get() }
            }
            check(sum == n, "applyAsync+get: \(sum) != \(n)")
            pool.close()
            try pool.join()
        }

        Benchmark(
            "\(prefix) CThreadPool.ctp_pool_submit+sem_wait w2",
            configuration: roundTripConfig(mallocTolerance: .absolute(16))
        ) { benchmark in
            guard let pool = cbench_pool_create(2) else { fatalError("ctp_pool_create failed") }
            measureRoundTrips(benchmark, tasks: n, busy: busy) {
                checkC(cbench_roundtrip_ctp(pool, n), "cbench_roundtrip_ctp")
            }
            cbench_pool_destroy(pool)
        }

        Benchmark("\(prefix) NIOThreadPool.submit+semaphore w2", configuration: roundTripConfig()) { benchmark in
            let pool = NIOThreadPool(numberOfThreads: 2)
            pool.start()
            let hits = Hits()
            let done = DispatchSemaphore(value: 0)
            measureRoundTrips(benchmark, tasks: n, busy: busy) {
                for _ in 0..<n {
                    pool.submit { _ in
                        hits.hit()
                        done.signal()
                    }
                    done.wait()
                }
            }
            hits.verify(n)
            try pool.syncShutdownGracefully()
        }

        Benchmark("\(prefix) Dispatch.concurrentQueue+semaphore", configuration: roundTripConfig()) { benchmark in
            let queue = DispatchQueue(label: "w6.roundtrip", attributes: .concurrent)
            let hits = Hits()
            let done = DispatchSemaphore(value: 0)
            measureRoundTrips(benchmark, tasks: n, busy: busy) {
                for _ in 0..<n {
                    queue.async {
                        hits.hit()
                        done.signal()
                    }
                    done.wait()
                }
            }
            hits.verify(n)
        }

        let floorTrips = busy ? busyFloorRoundTrips : n
        Benchmark("\(prefix) floor spin ping-pong", configuration: roundTripConfig()) { benchmark in
            guard let spinner = cbench_spinner_start() else { fatalError("cbench_spinner_start failed") }
            measureRoundTrips(benchmark, tasks: floorTrips, busy: busy) {
                checkC(cbench_roundtrip_spin(spinner, floorTrips), "cbench_roundtrip_spin")
            }
            cbench_spinner_stop(spinner)
        }
    }
}
