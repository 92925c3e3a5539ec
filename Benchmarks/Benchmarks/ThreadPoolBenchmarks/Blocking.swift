import Benchmark
import CBenchSupport
import CThreadPool
import Dispatch
import NIOPosix
import ThreadPoolKit

#if canImport(Glibc)
import Glibc
#endif

/// Workload 5: 64 tasks that each block 10 ms in usleep, on 8 workers: ideally 8 rounds of 10 ms,
/// 80 ms (plus usleep's own overshoot, ~0.1 ms a sleep here). Dispatch and the Swift concurrency pool
/// take no worker count: Dispatch grows its pool when threads block (slowly), the cooperative pool
/// of Swift concurrency never does (2 threads here: 320 ms is its ideal).
let blockingTasks = 64
let blockingMicroseconds: UInt32 = 10_000
let blockingWorkers = 8

/// The malloc tolerance covers the 64 results: dropped ones are reused, as many as timing allows.
private func blockingConfig() -> Benchmark.Configuration {
    throughputConfig(maxDuration: 4, quickIterations: 3, fullIterations: 30, mallocTolerance: .absolute(88))
}

/// W5's and W10's ThreadPoolKit body: the blocking tasks through `applyAsync`, results dropped, the
/// iteration ending when the last one has run; then `pool` is closed and joined.
func measureBlockingTasks(_ benchmark: Benchmark, on pool: ThreadPool) throws {
    let n = blockingTasks
    let sleep = blockingMicroseconds
    let counter = Countdown(n)
    try measure(benchmark, tasks: n) {
        for _ in 0..<n {
            _ = try pool.applyAsync {
                usleep(sleep)
                counter.hit()
            }
        }
        counter.wait()
    }
    pool.close()
    try pool.join()
}

func registerBlocking() {
    let n = blockingTasks
    let sleep = blockingMicroseconds

    Benchmark("W5 blocking ThreadPoolKit.applyAsync w8", configuration: blockingConfig()) { benchmark in
        try measureBlockingTasks(benchmark, on: ThreadPool(threads: blockingWorkers))
    }

    Benchmark("W5 blocking CThreadPool.ctp_pool_submit w8", configuration: blockingConfig()) { benchmark in
        guard let pool = cbench_pool_create(UInt32(blockingWorkers)) else { fatalError("ctp_pool_create failed") }
        measure(benchmark, tasks: n) {
            checkC(cbench_blocking_ctp(pool, Int32(n), sleep), "cbench_blocking_ctp")
        }
        cbench_pool_destroy(pool)
    }

    Benchmark("W5 blocking NIOThreadPool.submit w8", configuration: blockingConfig()) { benchmark in
        let pool = NIOThreadPool(numberOfThreads: blockingWorkers)
        pool.start()
        let counter = Countdown(n)
        measure(benchmark, tasks: n) {
            for _ in 0..<n {
                pool.submit { _ in
                    usleep(sleep)
                    counter.hit()
                }
            }
            counter.wait()
        }
        try pool.syncShutdownGracefully()
    }

    registerBlockingPeers("W5 blocking", configuration: blockingConfig())
}

/// The peers that take no worker count, for W5 and W10: `n` tasks that each block `sleep` µs on
/// Dispatch's concurrent queue and in a TaskGroup on the cooperative pool.
func registerBlockingPeers(_ prefix: String, configuration: Benchmark.Configuration) {
    let n = blockingTasks
    let sleep = blockingMicroseconds
    Benchmark("\(prefix) Dispatch.concurrentQueue+group", configuration: configuration) { benchmark in
        let queue = DispatchQueue(label: "bench.blocking", attributes: .concurrent)
        measure(benchmark, tasks: n) {
            let group = DispatchGroup()
            for _ in 0..<n {
                queue.async(group: group) { usleep(sleep) }
            }
            group.wait()
        }
    }

    Benchmark("\(prefix) withTaskGroup", configuration: configuration) { benchmark async in
        await measureAsync(benchmark, tasks: n) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<n {
                    group.addTask { usleep(sleep) }
                }
                await group.waitForAll()
            }
        }
    }
}
