import Benchmark
import Dispatch
import ThreadPoolKit

/// Workload 8: a data-parallel loop, f(x) = x * x + 1 from an input array into a preallocated output
/// buffer (allocated and written before the measured region, so that no page is faulted in it):
///
/// - **W8 items**: 100,000 items, chunk size 1 (one claim of one index at a time as far as the API
///   goes): `ThreadPoolKit.concurrentPerform(iterations:chunkSize: 1)`, Dispatch's
///   `concurrentPerform` with one iteration per item, `ThreadPoolKit.map(chunkSize: 1)` (which
///   returns a new array instead: that is what it does) and the inline loop.
/// - **W8 10M**: 10,000,000 items, chunked: `concurrentPerform` with its default chunk size (one
///   call of the closure per item), Dispatch's `concurrentPerform` over chunks, each a loop in the
///   closure (Python's default count, ceil(n / (4 × 2)): 8 chunks, as W2; and as many chunks as
///   ThreadPoolKit's default makes on 2 workers, 48), ThreadPoolKit's `concurrentPerform` over the
///   same chunks with the same closure, `ThreadPoolKit.map` with its default chunk size (a new array
///   again) and the inline loop.
///
/// ThreadPoolKit's calling thread takes part in its `concurrentPerform`, as Dispatch's does: on 2
/// workers, 3 threads run the loop (on this 2-CPU machine: one more than the CPUs), so `w1` (the
/// caller and 1 worker, Dispatch's thread count here) is measured too.
let dataParallelItems = 100_000
let dataParallelBigItems = 10_000_000

/// The input and a written output buffer for `count` items, and the output's expected sum.
private final class Buffers: @unchecked Sendable {
    let input: SharedBuffer<Int>
    let output: SharedBuffer<Int>
    let expectedSum: Int

    init(count: Int) {
        input = SharedBuffer(count: count, repeating: 0)
        for i in 0..<count { input[i] = i }
        output = SharedBuffer(count: count, repeating: 0)
        expectedSum = (0..<count).reduce(0) { $0 &+ f($1) }
    }

    /// The output's sum must be the expected one; the output is cleared for the next iteration.
    func checkAndClear() {
        var sum = 0
        for i in 0..<output.count {
            sum &+= output[i]
            output[i] = 0
        }
        check(sum == expectedSum, "wrong results: sum \(sum), expected \(expectedSum)")
    }

    deinit {
        input.deallocate()
        output.deallocate()
    }
}

// Made on first use, outside every measured region, and kept (1.6 MB and 160 MB): making and
// checking 10,000,000 items takes longer than the loops measured.
private let itemBuffers = Buffers(count: dataParallelItems)
private let bigBuffers = Buffers(count: dataParallelBigItems)

func registerDataParallel() {
    let n = dataParallelItems
    let big = dataParallelBigItems

    func checkArray(_ values: [Int], _ buffers: Buffers) {
        check(
            values.count == buffers.input.count && values.reduce(0, &+) == buffers.expectedSum,
            "wrong results: \(values.count) items")
    }

    // MARK: 100,000 items, chunk size 1

    for workers in [1, 2] {
        Benchmark(
            "W8 items ThreadPoolKit.concurrentPerform chunk1 w\(workers)",
            configuration: throughputConfig(mallocTolerance: .absolute(16))
        ) { benchmark in
            let pool = try ThreadPool(threads: workers)
            let buffers = itemBuffers
            let input = buffers.input
            let output = buffers.output
            try measure(benchmark, tasks: n) {
                try pool.concurrentPerform(iterations: n, chunkSize: 1) { i in output[i] = f(input[i]) }
            }
            buffers.checkAndClear()
            pool.close()
            try pool.join()
        }
    }

    Benchmark("W8 items Dispatch.concurrentPerform chunk1", configuration: throughputConfig()) { benchmark in
        let buffers = itemBuffers
        let input = buffers.input
        let output = buffers.output
        measure(benchmark, tasks: n) {
            DispatchQueue.concurrentPerform(iterations: n) { i in output[i] = f(input[i]) }
        }
        buffers.checkAndClear()
    }

    Benchmark("W8 items ThreadPoolKit.map chunk1 w2", configuration: throughputConfig(mallocTolerance: .absolute(16))) {
        benchmark in
        let pool = try ThreadPool(threads: 2)
        let buffers = itemBuffers
        let items = Array(UnsafeBufferPointer(start: buffers.input.base, count: n))
        var values: [Int] = []
        try measure(benchmark, tasks: n) {
            values = try pool.map(items, chunkSize: 1) { f($0) }
        }
        checkArray(values, buffers)
        pool.close()
        try pool.join()
    }

    Benchmark("W8 items inline loop", configuration: throughputConfig()) { benchmark in
        let buffers = itemBuffers
        let input = buffers.input
        let output = buffers.output
        measure(benchmark, tasks: n) {
            for i in 0..<n { output[i] = f(input[i]) }
        }
        buffers.checkAndClear()
    }

    // MARK: 10,000,000 items, chunked

    for workers in [1, 2] {
        Benchmark(
            "W8 10M ThreadPoolKit.concurrentPerform default chunk w\(workers)",
            configuration: throughputConfig(mallocTolerance: .absolute(16))
        ) { benchmark in
            let pool = try ThreadPool(threads: workers)
            let buffers = bigBuffers
            let input = buffers.input
            let output = buffers.output
            try measure(benchmark, tasks: big) {
                try pool.concurrentPerform(iterations: big) { i in output[i] = f(input[i]) }
            }
            buffers.checkAndClear()
            pool.close()
            try pool.join()
        }
    }

    // Python's default count (8 chunks on 2 CPUs, as W2) and ThreadPoolKit's default count on 2
    // workers (16 per thread, the caller counted: 48), each chunk a loop the compiler sees into.
    // ThreadPoolKit with the same body: the same work as Dispatch's, where the rows above call the
    // closure once per item.
    for chunks in [8, 48] {
        for workers in [1, 2] {
            Benchmark(
                "W8 10M ThreadPoolKit.concurrentPerform chunked \(chunks) w\(workers)",
                configuration: throughputConfig(mallocTolerance: .absolute(16))
            ) { benchmark in
                let pool = try ThreadPool(threads: workers)
                let buffers = bigBuffers
                let input = buffers.input
                let output = buffers.output
                let chunk = (big + chunks - 1) / chunks
                try measure(benchmark, tasks: big) {
                    try pool.concurrentPerform(iterations: chunks, chunkSize: 1) { c in
                        for i in (c * chunk)..<min(big, (c + 1) * chunk) { output[i] = f(input[i]) }
                    }
                }
                buffers.checkAndClear()
                pool.close()
                try pool.join()
            }
        }

        Benchmark("W8 10M Dispatch.concurrentPerform chunked \(chunks)", configuration: throughputConfig()) {
            benchmark in
            let buffers = bigBuffers
            let input = buffers.input
            let output = buffers.output
            let chunk = (big + chunks - 1) / chunks
            measure(benchmark, tasks: big) {
                DispatchQueue.concurrentPerform(iterations: chunks) { c in
                    for i in (c * chunk)..<min(big, (c + 1) * chunk) { output[i] = f(input[i]) }
                }
            }
            buffers.checkAndClear()
        }
    }

    Benchmark(
        "W8 10M ThreadPoolKit.map default chunk w2", configuration: throughputConfig(mallocTolerance: .absolute(16))
    ) { benchmark in
        let pool = try ThreadPool(threads: 2)
        let buffers = bigBuffers
        let items = Array(UnsafeBufferPointer(start: buffers.input.base, count: big))
        var values: [Int] = []
        try measure(benchmark, tasks: big) {
            values = try pool.map(items) { f($0) }
        }
        checkArray(values, buffers)
        pool.close()
        try pool.join()
    }

    Benchmark("W8 10M inline loop", configuration: throughputConfig()) { benchmark in
        let buffers = bigBuffers
        let input = buffers.input
        let output = buffers.output
        measure(benchmark, tasks: big) {
            for i in 0..<big { output[i] = f(input[i]) }
        }
        buffers.checkAndClear()
    }
}
