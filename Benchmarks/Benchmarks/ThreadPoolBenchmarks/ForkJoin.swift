import Benchmark
import Dispatch
import ThreadPoolKit

/// Workload 9: fork-join, tasks that wait for tasks. A balanced recursive sum of 2^22 Ints, split in
/// halves down to a cutoff (2^12: 1,024 leaves; 2^8: 16,384 leaves and 32,767 waits), and fib(32)
/// with a cutoff of 20 (fib below it runs sequentially: 377 leaves), on 2 workers. ThreadPoolKit
/// two ways: `applyAsync` for one half and `get` on it after computing the other half (the waiting
/// worker runs the queued half itself, or helps, or blocks with a stand-in: see RecursionTests), and
/// a recursive `map` over the two halves. The peers: `async let` and a TaskGroup on the cooperative
/// pool. The floor: the sequential loop (one thread). Each result is checked.
let forkJoinCount = 1 << 22
let forkJoinWorkers = 2
let fibN = 32
let fibCutoff = 20

/// 0..<2^22 in a buffer that is never freed (the benchmark process ends first), written once before
/// any task reads it.
struct ForkJoinData: @unchecked Sendable {
    let base: UnsafePointer<Int>
    var count: Int { forkJoinCount }
    subscript(index: Int) -> Int { base[index] }
}
let forkJoinData: ForkJoinData = {
    let buffer = UnsafeMutablePointer<Int>.allocate(capacity: forkJoinCount)
    for i in 0..<forkJoinCount { buffer[i] = i }
    return ForkJoinData(base: UnsafePointer(buffer))
}()
let forkJoinExpected = forkJoinCount * (forkJoinCount - 1) / 2

@inline(never)
func sequentialSum(_ lo: Int, _ hi: Int) -> Int {
    var total = 0
    for i in lo..<hi { total &+= forkJoinData[i] }
    return total
}

func sumApply(_ pool: ThreadPool, _ lo: Int, _ hi: Int, cutoff: Int) throws -> Int {
    if hi - lo <= cutoff { return sequentialSum(lo, hi) }
    let mid = (lo + hi) / 2
    let left = try pool.applyAsync { try sumApply(pool, lo, mid, cutoff: cutoff) }
    let right = try sumApply(pool, mid, hi, cutoff: cutoff)
    return try left.get() &+ right
}

func sumMap(_ pool: ThreadPool, _ lo: Int, _ hi: Int, cutoff: Int) throws -> Int {
    if hi - lo <= cutoff { return sequentialSum(lo, hi) }
    let mid = (lo + hi) / 2
    return try pool.map([(lo, mid), (mid, hi)], chunkSize: 1) { try sumMap(pool, $0.0, $0.1, cutoff: cutoff) }
        .reduce(0, &+)
}

func sumAsyncLet(_ lo: Int, _ hi: Int, cutoff: Int) async -> Int {
    if hi - lo <= cutoff { return sequentialSum(lo, hi) }
    let mid = (lo + hi) / 2
    async let left = sumAsyncLet(lo, mid, cutoff: cutoff)
    let right = await sumAsyncLet(mid, hi, cutoff: cutoff)
    return await left &+ right
}

func sumTaskGroup(_ lo: Int, _ hi: Int, cutoff: Int) async -> Int {
    if hi - lo <= cutoff { return sequentialSum(lo, hi) }
    let mid = (lo + hi) / 2
    return await withTaskGroup(of: Int.self) { group in
        group.addTask { await sumTaskGroup(lo, mid, cutoff: cutoff) }
        group.addTask { await sumTaskGroup(mid, hi, cutoff: cutoff) }
        return await group.reduce(0, &+)
    }
}

@inline(never)
func fibSequential(_ n: Int) -> Int {
    n < 2 ? n : fibSequential(n - 1) &+ fibSequential(n - 2)
}

func fibApply(_ pool: ThreadPool, _ n: Int) throws -> Int {
    if n <= fibCutoff { return fibSequential(n) }
    let left = try pool.applyAsync { try fibApply(pool, n - 1) }
    let right = try fibApply(pool, n - 2)
    return try left.get() &+ right
}

func fibMap(_ pool: ThreadPool, _ n: Int) throws -> Int {
    if n <= fibCutoff { return fibSequential(n) }
    return try pool.map([n - 1, n - 2], chunkSize: 1) { try fibMap(pool, $0) }.reduce(0, &+)
}

func fibAsyncLet(_ n: Int) async -> Int {
    if n <= fibCutoff { return fibSequential(n) }
    async let left = fibAsyncLet(n - 1)
    let right = await fibAsyncLet(n - 2)
    return await left &+ right
}

func fibTaskGroup(_ n: Int) async -> Int {
    if n <= fibCutoff { return fibSequential(n) }
    return await withTaskGroup(of: Int.self) { group in
        group.addTask { await fibTaskGroup(n - 1) }
        group.addTask { await fibTaskGroup(n - 2) }
        return await group.reduce(0, &+)
    }
}

private func forkJoinConfig() -> Benchmark.Configuration {
    throughputConfig(maxDuration: 4, quickIterations: 3, fullIterations: 200, mallocTolerance: .relative(25))
}

func registerForkJoin() {
    // forkJoinData is made on first use, in a warmup iteration: not resident in the processes of
    // other workloads (W11 measures resident memory).
    let fibExpected = fibSequential(fibN)

    for cutoff in [1 << 12, 1 << 8] {
        let leaves = forkJoinCount / cutoff
        let name = "W9 forkjoin sum cutoff\(cutoff)"

        Benchmark("\(name) ThreadPoolKit.applyAsync+get w\(forkJoinWorkers)", configuration: forkJoinConfig()) {
            benchmark in
            let pool = try ThreadPool(threads: forkJoinWorkers)
            try measure(benchmark, tasks: leaves) {
                let total = try pool.apply { try sumApply(pool, 0, forkJoinCount, cutoff: cutoff) }
                check(total == forkJoinExpected, "sum \(total)")
            }
            pool.close()
            try pool.join()
        }

        Benchmark("\(name) ThreadPoolKit.map w\(forkJoinWorkers)", configuration: forkJoinConfig()) { benchmark in
            let pool = try ThreadPool(threads: forkJoinWorkers)
            try measure(benchmark, tasks: leaves) {
                let total = try pool.apply { try sumMap(pool, 0, forkJoinCount, cutoff: cutoff) }
                check(total == forkJoinExpected, "sum \(total)")
            }
            pool.close()
            try pool.join()
        }

        Benchmark("\(name) async let", configuration: forkJoinConfig()) { benchmark async in
            await measureAsync(benchmark, tasks: leaves) {
                let total = await sumAsyncLet(0, forkJoinCount, cutoff: cutoff)
                check(total == forkJoinExpected, "sum \(total)")
            }
        }

        Benchmark("\(name) withTaskGroup", configuration: forkJoinConfig()) { benchmark async in
            await measureAsync(benchmark, tasks: leaves) {
                let total = await sumTaskGroup(0, forkJoinCount, cutoff: cutoff)
                check(total == forkJoinExpected, "sum \(total)")
            }
        }
    }

    Benchmark("W9 forkjoin sum sequential", configuration: forkJoinConfig()) { benchmark in
        measure(benchmark, tasks: 1) {
            let total = sequentialSum(0, forkJoinCount)
            check(total == forkJoinExpected, "sum \(total)")
        }
    }

    let fibName = "W9 forkjoin fib\(fibN) cutoff\(fibCutoff)"
    let fibLeaves = fibSequential(fibN - fibCutoff + 1) // calls that reach the cutoff, about

    Benchmark("\(fibName) ThreadPoolKit.applyAsync+get w\(forkJoinWorkers)", configuration: forkJoinConfig()) {
        benchmark in
        let pool = try ThreadPool(threads: forkJoinWorkers)
        try measure(benchmark, tasks: fibLeaves) {
            let value = try pool.apply { try fibApply(pool, fibN) }
            check(value == fibExpected, "fib \(value)")
        }
        pool.close()
        try pool.join()
    }

    Benchmark("\(fibName) ThreadPoolKit.map w\(forkJoinWorkers)", configuration: forkJoinConfig()) { benchmark in
        let pool = try ThreadPool(threads: forkJoinWorkers)
        try measure(benchmark, tasks: fibLeaves) {
            let value = try pool.apply { try fibMap(pool, fibN) }
            check(value == fibExpected, "fib \(value)")
        }
        pool.close()
        try pool.join()
    }

    Benchmark("\(fibName) async let", configuration: forkJoinConfig()) { benchmark async in
        await measureAsync(benchmark, tasks: fibLeaves) {
            let value = await fibAsyncLet(fibN)
            check(value == fibExpected, "fib \(value)")
        }
    }

    Benchmark("\(fibName) withTaskGroup", configuration: forkJoinConfig()) { benchmark async in
        await measureAsync(benchmark, tasks: fibLeaves) {
            let value = await fibTaskGroup(fibN)
            check(value == fibExpected, "fib \(value)")
        }
    }

    Benchmark("\(fibName) sequential", configuration: forkJoinConfig()) { benchmark in
        measure(benchmark, tasks: 1) {
            let value = fibSequential(fibN)
            check(value == fibExpected, "fib \(value)")
        }
    }
}
