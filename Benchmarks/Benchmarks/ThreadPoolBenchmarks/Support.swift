import Benchmark
import CBenchSupport
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: Run modes

/// `BENCH_QUICK=1`: the same workload sizes (so that malloc counts, and the thresholds recorded for
/// them, are the same in both modes) but far fewer iterations, for `make bench-quick`/`bench-check`.
let quick: Bool = {
    guard let value = getenv("BENCH_QUICK") else { return false }
    return String(cString: value) != "0" && String(cString: value) != ""
}()

// MARK: Metrics

/// Custom metrics, recorded by every benchmark (the latency one by W4 only).
enum Metrics {
    /// The number of tasks (or items, pools, samples) one iteration runs: the divisor for per-task
    /// figures (`mallocCountTotal / tasks` = mallocs per task).
    static var tasks: BenchmarkMetric { .custom("tasks", polarity: .prefersLarger, useScalingFactor: false) }
    /// Wall-clock nanoseconds of the measured region divided by `tasks` (truncated to whole ns).
    static var nsPerTask: BenchmarkMetric { .custom("ns/task", polarity: .prefersSmaller, useScalingFactor: false) }
    /// CPU time of the whole process (CLOCK_PROCESS_CPUTIME_ID: every thread, user + system) during
    /// the measured region, in ns, less the CPU of a busy third thread where a benchmark runs one
    /// (W6's busy rows); per task: divided by `tasks` (scripts/ do it, so that sub-ns figures keep
    /// their digits). package-benchmark's `cpuTotal` reads /proc/self/stat in scheduler ticks (10 ms
    /// here), too coarse for per-task figures.
    static var cpu: BenchmarkMetric { .custom("cpu ns", polarity: .prefersSmaller, useScalingFactor: false) }
    /// Voluntary + involuntary context switches of the whole process during the measured region
    /// (getrusage(RUSAGE_SELF)); package-benchmark's own `contextSwitches` is macOS-only.
    static var contextSwitches: BenchmarkMetric {
        .custom("ctxSwitches", polarity: .prefersSmaller, useScalingFactor: false)
    }
    /// W4 only: one sample per submitted task, in nanoseconds, from just before the submit call to
    /// the first instruction of the task on the worker (clock_gettime(CLOCK_MONOTONIC) on both sides).
    static var submitToStart: BenchmarkMetric {
        .custom("submitToStart ns", polarity: .prefersSmaller, useScalingFactor: false)
    }
    /// W1 paired only: each half of a pair, in ns per task, and the pair's ratio (NIOThreadPool's time
    /// over ThreadPoolKit's, x100).
    static var pairedThreadPoolKit: BenchmarkMetric {
        .custom("TPK ns/task", polarity: .prefersSmaller, useScalingFactor: false)
    }
    static var pairedNIO: BenchmarkMetric { .custom("NIO ns/task", polarity: .prefersSmaller, useScalingFactor: false) }
    static var pairedRatio: BenchmarkMetric {
        .custom("NIO/TPK x100", polarity: .prefersLarger, useScalingFactor: false)
    }
}

/// The metrics every benchmark reports.
/// - `instructions` is left out: this machine (a VM) has no hardware performance counters
///   (`perf stat -e instructions` says <not supported>).
/// - `peakMemoryResident` (and `threads`) are left out on purpose: asking for them starts
///   package-benchmark's sampling loop, a block that sleeps and samples every few ms on a Dispatch
///   global queue thread for the whole run. On 2 CPUs that takes one of Dispatch's two worker slots,
///   which halves the Dispatch and Swift-concurrency peers (measured: 64 x 10 ms on a TaskGroup took
///   646 ms with it, ~320 ms without).
var standardMetrics: [BenchmarkMetric] {
    [
        .wallClock, .cpuTotal, .throughput, .mallocCountTotal,
        Metrics.tasks, Metrics.nsPerTask, Metrics.cpu, Metrics.contextSwitches,
    ]
}

/// How far a benchmark's p90 malloc count may move from its recorded threshold before
/// `make bench-check` (package-benchmark's `thresholds check`) calls it a regression (or improvement).
/// Only mallocs have recorded thresholds (Thresholds/), so no other metric is checked.
enum MallocTolerance {
    /// For counts that grow with the number of tasks: percent either way.
    case relative(Double)
    /// For small, fixed counts (a pool, a ring buffer, a map's job): mallocs either way.
    case absolute(Int)

    var thresholds: [BenchmarkMetric: BenchmarkThresholds] {
        switch self {
        case .relative(let percent): [.mallocCountTotal: BenchmarkThresholds(relative: [.p90: percent])]
        case .absolute(let count): [.mallocCountTotal: BenchmarkThresholds(absolute: [.p90: count])]
        }
    }
}

/// A configuration for throughput-style benchmarks (one iteration = one run of the workload).
func throughputConfig(
    maxDuration seconds: Int = 4, quickIterations: Int = 5, fullIterations: Int = 1_000,
    warmup: Int = 1, mallocTolerance: MallocTolerance = .relative(3)
) -> Benchmark.Configuration {
    .init(
        metrics: standardMetrics,
        timeUnits: .microseconds,
        warmupIterations: warmup,
        maxDuration: quick ? .seconds(1) : .seconds(seconds),
        maxIterations: quick ? quickIterations : fullIterations,
        thresholds: mallocTolerance.thresholds)
}

// MARK: Measuring

func contextSwitches() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Int(usage.ru_nvcsw) + Int(usage.ru_nivcsw)
}

/// Measures `body` (which runs `tasks` tasks) as the benchmark's measured region and records the
/// custom metrics. Whatever comes before and after (creating and shutting down a pool) is not measured.
/// `hog`: a busy thread running meanwhile, whose CPU time is left out of the process's.
func measure(_ benchmark: Benchmark, tasks: Int, hog: OpaquePointer? = nil, _ body: () throws -> Void) rethrows {
    let switches = contextSwitches()
    let cpu = cpuNanoseconds(excluding: hog)
    benchmark.startMeasurement()
    let start = cbench_now_ns()
    try body()
    let end = cbench_now_ns()
    benchmark.stopMeasurement()
    record(
        benchmark, tasks: tasks, nanoseconds: end - start, cpu: cpuNanoseconds(excluding: hog) - cpu,
        switches: contextSwitches() - switches)
}

func measureAsync(_ benchmark: Benchmark, tasks: Int, _ body: () async throws -> Void) async rethrows {
    let switches = contextSwitches()
    let cpu = cpuNanoseconds(excluding: nil)
    benchmark.startMeasurement()
    let start = cbench_now_ns()
    try await body()
    let end = cbench_now_ns()
    benchmark.stopMeasurement()
    record(
        benchmark, tasks: tasks, nanoseconds: end - start, cpu: cpuNanoseconds(excluding: nil) - cpu,
        switches: contextSwitches() - switches)
}

private func cpuNanoseconds(excluding hog: OpaquePointer?) -> Int64 {
    // Two clocks read back to back: the hog's few ns between the reads are on both ends and cancel.
    let hogCPU = hog.map { cbench_hog_cpu_ns($0) } ?? 0
    return cbench_process_cpu_ns() - hogCPU
}

private func record(_ benchmark: Benchmark, tasks: Int, nanoseconds: Int64, cpu: Int64, switches: Int) {
    benchmark.measurement(Metrics.tasks, tasks)
    benchmark.measurement(Metrics.nsPerTask, Int(nanoseconds) / max(tasks, 1))
    benchmark.measurement(Metrics.cpu, Int(max(cpu, 0)))
    benchmark.measurement(Metrics.contextSwitches, switches)
}

/// Fails the benchmark run loudly: a wrong result must not produce a number.
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("benchmark check failed: \(message())") }
}

func checkC(_ status: Int32, _ what: String) {
    check(status == 0, "\(what) returned \(status): \(String(cString: ctp_strerror(status)))")
}

// MARK: Shared state for tasks

/// Counts completed tasks; the task that brings the count to `target` signals `done`.
/// The shared atomic of workload 1 is `count`.
final class Countdown: Sendable {
    let count = Atomic<Int>(0)
    let target: Int
    private let done = DispatchSemaphore(value: 0)

    init(_ target: Int) { self.target = target }

    @inline(__always)
    func hit() {
        if count.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == target { done.signal() }
    }

    func wait() {
        done.wait()
        check(count.load(ordering: .acquiring) == target, "count \(count.load(ordering: .relaxed)) != \(target)")
    }
}

/// A buffer that tasks write disjoint elements of; the caller waits for all tasks before reading.
struct SharedBuffer<Element>: @unchecked Sendable {
    let base: UnsafeMutablePointer<Element>
    let count: Int

    init(count: Int, repeating value: Element) {
        base = .allocate(capacity: count)
        base.initialize(repeating: value, count: count)
        self.count = count
    }

    func deallocate() {
        base.deinitialize(count: count)
        base.deallocate()
    }

    subscript(index: Int) -> Element {
        get { base[index] }
        nonmutating set { base[index] = newValue }
    }
}

/// The work item of workload 2.
@inline(__always)
func f(_ x: Int) -> Int { x &* x &+ 1 }

/// Python's default chunksize for map: ceil(n / (4 * workers)).
func pythonDefaultChunkSize(items: Int, workers: Int) -> Int {
    let chunks = 4 * workers
    return (items + chunks - 1) / chunks
}
