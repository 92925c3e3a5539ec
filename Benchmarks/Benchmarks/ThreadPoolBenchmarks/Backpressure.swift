import Benchmark
import CBenchSupport
import Dispatch
import Synchronization
import ThreadPoolKit

#if canImport(Glibc)
import Glibc
#endif

/// Workload 11: backpressure. One producer submits 200,000 tasks of about 1 us of work each as fast
/// as it can, to 2 workers: it is ten times faster than they are, so without a bound the queue holds
/// nearly every task (and their closures) at once. With `queueCapacity` 1,024 and `.wait`, the
/// producer blocks (sync `execute`) or suspends (async `run`, 2,000 producer tasks on the cooperative
/// pool) while it is full. Reported beside the time: the most tasks queued (the producer reads
/// `stats.queued` every 256 submits) and how far the process's peak resident memory rose above its
/// resident memory at the start of the iteration (VmHWM, reset first through /proc/self/clear_refs,
/// after malloc_trim).
/// Dispatch's concurrent queue, unbounded, as the peer.
let backpressureTasks = 200_000
let backpressureCapacity = 1_024
let backpressureProducers = 2_000

extension Metrics {
    /// W11: the most tasks queued that the producer saw.
    static var peakQueued: BenchmarkMetric { .custom("peakQueued", polarity: .prefersSmaller, useScalingFactor: false) }
    /// W11: how far the process's peak resident set rose during the iteration, in KiB.
    static var peakRSS: BenchmarkMetric {
        .custom("peakRSS growth KiB", polarity: .prefersSmaller, useScalingFactor: false)
    }
}

private func backpressureConfig() -> Benchmark.Configuration {
    var configuration = throughputConfig(
        maxDuration: 4, quickIterations: 3, fullIterations: 20,
        mallocTolerance: .relative(25))
    configuration.metrics += [Metrics.peakQueued, Metrics.peakRSS]
    return configuration
}

/// About 1 us of work that the optimizer cannot remove.
@inline(never)
func microsecondOfWork(_ seed: Int) -> Int {
    var x = seed
    for _ in 0..<400 { x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407 }
    return x
}

/// Gives the heap's free memory back to the system (malloc_trim(0): what earlier iterations freed would
/// otherwise stay resident and hide this one's growth), then resets the process's peak resident set
/// (VmHWM) to its current size and returns that size in KiB.
func resetPeakRSS() -> Int {
    cbench_trim_heap()
    let fd = open("/proc/self/clear_refs", O_WRONLY)
    guard fd >= 0 else { return 0 }
    _ = write(fd, "5", 1)
    close(fd)
    return peakRSSKiB()
}

/// The process's peak resident set (VmHWM) in KiB, or 0 if /proc cannot tell.
func peakRSSKiB() -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("VmHWM:") {
            return Int(text.dropFirst(6).trimmingCharacters(in: " \t\nkB")) ?? 0
        }
    }
    return 0
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in characters: String) -> String {
        String(self.filter { !characters.contains($0) })
    }
}

/// A pool of 2 workers, bounded or not.
private func backpressurePool(capacity: Int?) throws -> ThreadPool {
    var configuration = ThreadPool.Configuration()
    configuration.threads = 2
    configuration.queueCapacity = capacity
    configuration.whenFull = .wait
    return try ThreadPool(configuration)
}

/// Submits the tasks with `execute`, sampling the queue; returns the most queued seen.
private func produce(_ pool: ThreadPool, _ counter: Countdown) throws -> Int {
    var peak = 0
    for i in 0..<backpressureTasks {
        try pool.execute {
            _ = microsecondOfWork(i)
            counter.hit()
        }
        if i % 256 == 0 { peak = max(peak, pool.stats.queued) }
    }
    return peak
}

/// What the async producers count.
private final class Tally: Sendable {
    let ran = Atomic<Int>(0)
    let peak = Atomic<Int>(0)
}

func registerBackpressure() {
    let n = backpressureTasks

    for capacity in [nil, backpressureCapacity] {
        let label = capacity.map { "cap\($0)" } ?? "unbounded"
        Benchmark("W11 backpressure ThreadPoolKit.execute \(label) w2", configuration: backpressureConfig()) {
            benchmark in
            let pool = try backpressurePool(capacity: capacity)
            let counter = Countdown(n)
            let baseRSS = resetPeakRSS()
            var peak = 0
            try measure(benchmark, tasks: n) {
                peak = try produce(pool, counter)
                counter.wait()
            }
            benchmark.measurement(Metrics.peakQueued, peak)
            benchmark.measurement(Metrics.peakRSS, peakRSSKiB() - baseRSS)
            if let capacity { check(peak <= capacity, "peak queued \(peak) > \(capacity)") }
            pool.close()
            try pool.join()
        }
    }

    Benchmark(
        "W11 backpressure ThreadPoolKit.run cap\(backpressureCapacity) \(backpressureProducers) async producers w2",
        configuration: backpressureConfig()
    ) { benchmark async throws in
        let pool = try backpressurePool(capacity: backpressureCapacity)
        let tally = Tally()
        let baseRSS = resetPeakRSS()
        let perProducer = n / backpressureProducers
        try await measureAsync(benchmark, tasks: n) {
            try await withThrowingDiscardingTaskGroup { group in
                for producer in 0..<backpressureProducers {
                    group.addTask {
                        for i in 0..<perProducer {
                            try await pool.run {
                                _ = microsecondOfWork(i)
                                tally.ran.wrappingAdd(1, ordering: .relaxed)
                            }
                            if i == perProducer / 2 && producer % 16 == 0 {
                                let queued = pool.stats.queued
                                var seen = tally.peak.load(ordering: .relaxed)
                                while queued > seen {
                                    let (exchanged, original) = tally.peak.compareExchange(
                                        expected: seen, desired: queued,
                                        ordering: .relaxed)
                                    if exchanged { break }
                                    seen = original
                                }
                            }
                        }
                    }
                }
            }
        }
        check(tally.ran.load(ordering: .relaxed) == n, "ran \(tally.ran.load(ordering: .relaxed))")
        benchmark.measurement(Metrics.peakQueued, tally.peak.load(ordering: .relaxed))
        benchmark.measurement(Metrics.peakRSS, peakRSSKiB() - baseRSS)
        check(tally.peak.load(ordering: .relaxed) <= backpressureCapacity, "peak queued over the capacity")
        pool.close()
        try await pool.join()
    }

    Benchmark("W11 backpressure Dispatch.concurrentQueue unbounded", configuration: backpressureConfig()) { benchmark in
        let queue = DispatchQueue(label: "bench.backpressure", attributes: .concurrent)
        let counter = Countdown(n)
        let baseRSS = resetPeakRSS()
        measure(benchmark, tasks: n) {
            for i in 0..<n {
                queue.async {
                    _ = microsecondOfWork(i)
                    counter.hit()
                }
            }
            counter.wait()
        }
        benchmark.measurement(Metrics.peakRSS, peakRSSKiB() - baseRSS)
    }
}
