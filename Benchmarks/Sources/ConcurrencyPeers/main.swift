// Swift-concurrency peers measured outside package-benchmark.
//
// package-benchmark 1.38.1 runs every benchmark closure from its async `run()`, i.e. on a thread of
// Swift's cooperative pool, and blocks that thread (a DispatchSemaphore) while an async benchmark
// runs. On a 2-CPU machine the cooperative pool has 2 threads, so inside the harness TaskGroup
// benchmarks get one thread (W5 withTaskGroup: ~646 ms instead of ~323 ms). This executable runs
// the same TaskGroup workloads from the main thread, where both cooperative threads are free, and
// runs ThreadPoolKit's W1 the same way for a same-run ratio. Median of `runs` runs each.
//
//     swift run -c release ConcurrencyPeers          (BENCH_QUICK=1: 3 runs instead of 11)
import CBenchSupport
import Dispatch
import Synchronization
import ThreadPoolKit

#if canImport(Glibc)
import Glibc
#endif

let quick = (getenv("BENCH_QUICK").map { String(cString: $0) } ?? "0") != "0"
let runs = quick ? 3 : 11
let tinyTasks = 200_000

final class Countdown: Sendable {
    let count = Atomic<Int>(0)
    let target: Int
    init(_ target: Int) { self.target = target }
    @inline(__always) func hit() { count.wrappingAdd(1, ordering: .relaxed) }
    var isComplete: Bool { count.load(ordering: .acquiring) == target }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2]
        : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func report(_ name: String, tasks: Int, _ samples: [Double]) {
    let ms = median(samples) / 1e6
    let perTask = median(samples) / Double(tasks)
    let padded = name + String(repeating: " ", count: max(0, 48 - name.count))
    print(
        "\(padded) \(String(tasks).leftPad(8)) \(format(ms, 1).leftPad(10)) ms \(format(perTask, 0).leftPad(12)) ns/task"
    )
}

func format(_ value: Double, _ decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return decimals == 0 ? String(Int(rounded)) : String(rounded)
}

extension String {
    func leftPad(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}

func time(_ body: () async throws -> Void) async rethrows -> Double {
    let start = cbench_now_ns()
    try await body()
    return Double(cbench_now_ns() - start)
}

print("Outside package-benchmark, from the main thread; median of \(runs) runs")

var samples: [Double] = []
for _ in 0..<runs {
    let counter = Countdown(tinyTasks)
    samples.append(
        await time {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<tinyTasks { group.addTask { counter.hit() } }
                await group.waitForAll()
            }
        })
    precondition(counter.isComplete)
}
report("W1 tiny withTaskGroup", tasks: tinyTasks, samples)

samples = []
for _ in 0..<runs {
    let counter = Countdown(tinyTasks)
    samples.append(
        await time {
            await withDiscardingTaskGroup { group in
                for _ in 0..<tinyTasks { group.addTask { counter.hit() } }
            }
        })
    precondition(counter.isComplete)
}
report("W1 tiny withDiscardingTaskGroup", tasks: tinyTasks, samples)

samples = []
for _ in 0..<runs {
    let pool = try ThreadPool(threads: 2)
    let counter = Countdown(tinyTasks)
    var last: AsyncResult<Void>?
    samples.append(
        try await time {
            for _ in 0..<tinyTasks { last = try pool.applyAsync { counter.hit() } }
            try waitBlocking(last!)
            while !counter.isComplete { sched_yield() } // the others started earlier: a few µs at most
        })
    pool.close()
    try joinBlocking(pool)
}
report("W1 tiny ThreadPoolKit.applyAsync w2", tasks: tinyTasks, samples)

samples = []
for _ in 0..<runs {
    samples.append(
        await time {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<64 { group.addTask { usleep(10_000) } }
                await group.waitForAll()
            }
        })
}
report("W5 blocking withTaskGroup (64 x 10 ms)", tasks: 64, samples)

/// The blocking wait the W1 row measures (as Python's `r.wait()`), from a synchronous function: the
/// blocking calls are unavailable in async code, which this top-level program is.
func waitBlocking(_ result: AsyncResult<Void>) throws {
    try result.get()
}

func joinBlocking(_ pool: ThreadPool) throws {
    try pool.join()
}
