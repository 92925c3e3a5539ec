import Benchmark
import ThreadPoolKit

/// Workload 3: imap / imapUnordered over 1,000,000 items (a lazy `Range`, so the input is pulled as
/// the window allows), consumed with next(): items/s (= 1e9 / ns/task) and peak resident memory. The
/// iterator's window is bounded (bufferSize, default 2 x threads x chunkSize), so peak memory should
/// not grow with the number of items.
///
/// These are the only benchmarks with `peakMemoryResident`/`peakMemoryResidentDelta`: those metrics
/// start package-benchmark's sampling thread (see `standardMetrics`), which is harmless here since
/// no Dispatch or Swift-concurrency peer runs in W3.
let imapItemCount = 1_000_000

/// imap's malloc count depends on timing (how often the consumer or a worker finds nothing to do and
/// parks): it moved by 20% to 4x between consecutive runs here, so `make bench-check` does not gate
/// imap benchmarks (bench.mk skips them); their allocations are reported in RESULTS.md instead.
private func imapConfig() -> Benchmark.Configuration {
    // No warm-up: one iteration took seconds with an earlier imap.
    var config = throughputConfig(maxDuration: 5, quickIterations: 1, fullIterations: 50, warmup: 0)
    config.metrics += [.peakMemoryResident, .peakMemoryResidentDelta]
    return config
}

func registerImap() {
    let n = imapItemCount
    let expectedSum = (0..<n).reduce(0) { $0 &+ f($1) }

    for workers in [2, 4] {
        for chunkSize in [1, 64] {
            Benchmark("W3 imap ThreadPoolKit.imap chunk\(chunkSize) w\(workers)", configuration: imapConfig()) {
                benchmark in
                let pool = try ThreadPool(threads: workers)
                var inOrder = true
                var count = 0
                try measure(benchmark, tasks: n) {
                    let results = try pool.imap(0..<n, chunkSize: chunkSize) { f($0) }
                    while let value = try results.next() {
                        if value != f(count) { inOrder = false }
                        count += 1
                    }
                }
                check(inOrder && count == n, "imap: \(count) results, in order: \(inOrder)")
                pool.close()
                try pool.join()
            }
        }

        Benchmark("W3 imap ThreadPoolKit.imapUnordered chunk1 w\(workers)", configuration: imapConfig()) { benchmark in
            let pool = try ThreadPool(threads: workers)
            var sum = 0
            var count = 0
            try measure(benchmark, tasks: n) {
                let results = try pool.imapUnordered(0..<n) { f($0) }
                while let value = try results.next() {
                    sum &+= value
                    count += 1
                }
            }
            check(count == n && sum == expectedSum, "imapUnordered: \(count) results, sum \(sum)")
            pool.close()
            try pool.join()
        }
    }
}
