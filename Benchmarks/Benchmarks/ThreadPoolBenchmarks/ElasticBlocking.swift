import Benchmark
import ThreadPoolKit

/// Workload 10: the 64 tasks of W5 that each block 10 ms, on an elastic pool of 2...64 workers
/// (`Configuration.maxThreads`), which starts a worker whenever a task is queued and none is idle:
/// ideally one round of 10 ms. Peers: a fixed pool of 8 (W5's: 80 ms), Dispatch's concurrent queue
/// (which grows its pool slowly when threads block) and a TaskGroup (the cooperative pool never
/// grows: 320 ms on 2 CPUs). Each iteration makes a new pool (package-benchmark calls the closure
/// once per iteration), so the elastic pool starts its 62 extra workers inside the measured region.
private func elasticConfig() -> Benchmark.Configuration {
    throughputConfig(maxDuration: 4, quickIterations: 3, fullIterations: 30, mallocTolerance: .absolute(120))
}

func registerElasticBlocking() {
    var elastic = ThreadPool.Configuration()
    elastic.threads = 2
    elastic.maxThreads = 64
    var fixed = ThreadPool.Configuration()
    fixed.threads = 8
    for (shape, configuration) in [("w2...64", elastic), ("w8 fixed", fixed)] {
        Benchmark("W10 elastic blocking ThreadPoolKit.applyAsync \(shape)", configuration: elasticConfig()) {
            benchmark in
            try measureBlockingTasks(benchmark, on: ThreadPool(configuration))
        }
    }

    registerBlockingPeers("W10 elastic blocking", configuration: elasticConfig())
}
