import Benchmark
import CBenchSupport
import CThreadPool
import NIOPosix
import Synchronization
import ThreadPoolKit

/// Workload 6: pool start-up and shutdown. One iteration creates 100 pools of 2 workers each with an
/// initializer (ThreadPool.init returns once both initializers ran), then closes and joins each.
/// NIOThreadPool has no initializer: start() + syncShutdownGracefully(). The floor is
/// pthread_create + pthread_join of 2 threads running the same trivial initializer.
///
/// Also `broadcast` (run a closure once on every worker and collect the results) on 2 workers:
/// 10,000 broadcasts per iteration, ns/task = ns per broadcast.
let lifecyclePools = 100
let broadcastCount = 10_000

private let initializedWorkers = Atomic<Int>(0)

func registerLifecycle() {
    let pools = lifecyclePools

    Benchmark(
        "W6 lifecycle ThreadPoolKit init+close+join w2",
        configuration: throughputConfig(mallocTolerance: .absolute(48))
    ) { benchmark in
        try measure(benchmark, tasks: pools) {
            for _ in 0..<pools {
                let pool = try ThreadPool(
                    threads: 2,
                    initializer: {
                        initializedWorkers.wrappingAdd(1, ordering: .relaxed)
                    })
                pool.close()
                try pool.join()
            }
        }
    }

    Benchmark(
        "W6 lifecycle CThreadPool create+close+join w2",
        configuration: throughputConfig(mallocTolerance: .absolute(24))
    ) { benchmark in
        measure(benchmark, tasks: pools) {
            checkC(cbench_lifecycle_ctp(Int32(pools), 2), "cbench_lifecycle_ctp")
        }
    }

    Benchmark("W6 lifecycle NIOThreadPool start+shutdown w2", configuration: throughputConfig()) { benchmark in
        try measure(benchmark, tasks: pools) {
            for _ in 0..<pools {
                let pool = NIOThreadPool(numberOfThreads: 2)
                pool.start()
                try pool.syncShutdownGracefully()
            }
        }
    }

    Benchmark("W6 lifecycle pthread_create+join x2", configuration: throughputConfig()) { benchmark in
        measure(benchmark, tasks: pools) {
            checkC(cbench_lifecycle_pthread(Int32(pools), 2), "cbench_lifecycle_pthread")
        }
    }

    Benchmark("W6 broadcast ThreadPoolKit.broadcast w2", configuration: throughputConfig()) { benchmark in
        let pool = try ThreadPool(threads: 2)
        var total = 0
        try measure(benchmark, tasks: broadcastCount) {
            for _ in 0..<broadcastCount {
                total &+= try pool.broadcast { worker in worker.index }.reduce(0, +)
            }
        }
        check(total == broadcastCount, "broadcast: every call must see workers 0 and 1 (total \(total))")
        pool.close()
        try pool.join()
    }
}
