import Benchmark
import CBenchSupport
import CThreadPool
import Dispatch
import NIOPosix
import ThreadPoolKit

/// Workload 4: submit-to-start latency on an idle pool.
///
/// 10,000 samples (after 200 unrecorded warm-up samples), one submit about every 100 µs, so the
/// workers have parked again before each submit. A sample is (clock_gettime(CLOCK_MONOTONIC) as the
/// task starts on the worker) minus (the same clock just before the submit call), so it includes the
/// submit call itself (for Swift: allocating the closure context and the AsyncResult) and the futex
/// wake of a parked worker.
///
/// After each submit the submitting thread waits for the task to start (a semaphore the task signals
/// once it has read the clock: Python's `apply`, submit and wait), then sleeps 100 µs (a nanosleep;
/// the kernel's 50 µs timer slack comes on top). Why it waits first: on this VM the kernel wakes the
/// parked worker on the submitting thread's CPU (a wake on the other, halted, vCPU takes ~20 µs), so
/// the worker runs only once the submitter gives up that CPU, and a nanosleep arms a timer first,
/// which here costs a VM exit: with the submitter going to sleep at once, a bare
/// pthread_cond_signal took ~10 µs in a third of the samples instead of ~3.3 (p90 9.7-10.5 µs
/// against 4.2-4.7 µs blocking on a semaphore; a C test program run three times each way). That
/// was the submitter's sleep, not the wake, so the rows marked "submitter sleeps at once" keep the
/// old method for ThreadPoolKit, the C API and the floor, to show the difference.
///
/// Each sample is handed to package-benchmark as one value of the custom metric
/// `submitToStart ns` (one iteration, 10,000 values), so its p50/p90/p99 are the percentiles of
/// the 10,000 samples, not of iterations. The wallClock of these benchmarks means nothing.
let latencySamples = 10_000
let latencyWarmupSamples = 200
let latencyGapNanoseconds: Int64 = 100_000

private func latencyConfig() -> Benchmark.Configuration {
    .init(
        metrics: standardMetrics + [Metrics.submitToStart],
        timeUnits: .microseconds,
        warmupIterations: 0,
        maxDuration: .seconds(60),
        maxIterations: 1)
}

/// Runs `submit(probe, index)` for warm-up + recorded samples; `submit` must arrange for
/// `probe.started(index)` to be called first thing on the worker. With `waitForStart`, the submitting
/// thread waits for that call before it sleeps for the gap.
private func sampleLatency(
    _ benchmark: Benchmark, waitForStart: Bool = true,
    _ submit: (LatencyProbe, Int) throws -> Void
) rethrows {
    let total = latencyWarmupSamples + latencySamples
    let probe = LatencyProbe(count: total, acknowledges: waitForStart)
    defer { probe.deallocate() }
    try measure(benchmark, tasks: latencySamples) {
        for i in 0..<total {
            probe.submitted[i] = cbench_now_ns()
            try submit(probe, i)
            if waitForStart { probe.waitForStart() }
            cbench_sleep_ns(latencyGapNanoseconds)
        }
        probe.counter.wait()
    }
    for i in latencyWarmupSamples..<total {
        benchmark.measurement(Metrics.submitToStart, Int(probe.latency(i)))
    }
}

/// Runs a C latency loop (`run` fills one sample per submit, warm-up first) as the measured region,
/// and records its samples after the warm-up ones.
private func sampleLatencyInC(
    _ benchmark: Benchmark, _ function: String,
    _ run: (Int32, UnsafeMutablePointer<Int64>) -> Int32
) {
    let total = latencyWarmupSamples + latencySamples
    var samples = [Int64](repeating: 0, count: total)
    measure(benchmark, tasks: latencySamples) {
        checkC(samples.withUnsafeMutableBufferPointer { run(Int32(total), $0.baseAddress!) }, function)
    }
    for sample in samples[latencyWarmupSamples...] { benchmark.measurement(Metrics.submitToStart, Int(sample)) }
}

/// Per-sample timestamps: `submitted` written by the submitting thread, `started` by the worker.
final class LatencyProbe: Sendable {
    let submitted: SharedBuffer<Int64>
    let startedAt: SharedBuffer<Int64>
    let counter: Countdown
    /// Posted by `started(_:)` after it has read the clock, if the submitter waits for it: a C sem_t,
    /// as in the C probes, so that every row's submitter blocks the same way.
    private nonisolated(unsafe) let acknowledgement: OpaquePointer?

    init(count: Int, acknowledges: Bool) {
        submitted = SharedBuffer(count: count, repeating: 0)
        startedAt = SharedBuffer(count: count, repeating: 0)
        counter = Countdown(count)
        acknowledgement = acknowledges ? cbench_ack_create() : nil
        check(!acknowledges || acknowledgement != nil, "cbench_ack_create failed")
    }

    @inline(__always)
    func started(_ index: Int) {
        cbench_store_i64(startedAt.base + index, cbench_now_ns())
        if let acknowledgement { cbench_ack_post(acknowledgement) }
        counter.hit()
    }

    func waitForStart() {
        if let acknowledgement { cbench_ack_wait(acknowledgement) }
    }

    func latency(_ index: Int) -> Int64 {
        cbench_load_i64(startedAt.base + index) - submitted[index]
    }

    func deallocate() {
        submitted.deallocate()
        startedAt.deallocate()
        cbench_ack_destroy(acknowledgement)
    }
}

func registerLatency() {
    for waitForStart in [true, false] {
        let suffix = waitForStart ? "" : ", submitter sleeps at once"
        Benchmark("W4 latency ThreadPoolKit.applyAsync w2\(suffix)", configuration: latencyConfig()) { benchmark in
            let pool = try ThreadPool(threads: 2)
            try sampleLatency(benchmark, waitForStart: waitForStart) { probe, i in
                _ = try pool.applyAsync { probe.started(i) }
            }
            pool.close()
            try pool.join()
        }

        if waitForStart {
            // The fire-and-forget path: no result object.
            Benchmark("W4 latency ThreadPoolKit.execute w2", configuration: latencyConfig()) { benchmark in
                let pool = try ThreadPool(threads: 2)
                try sampleLatency(benchmark) { probe, i in
                    try pool.execute { probe.started(i) }
                }
                pool.close()
                try pool.join()
            }
        }

        Benchmark("W4 latency CThreadPool.ctp_pool_submit w2\(suffix)", configuration: latencyConfig()) { benchmark in
            guard let pool = cbench_pool_create(2) else { fatalError("ctp_pool_create failed") }
            sampleLatencyInC(benchmark, "cbench_latency_ctp") {
                cbench_latency_ctp(pool, $0, latencyGapNanoseconds, waitForStart, $1)
            }
            cbench_pool_destroy(pool)
        }

        // The floor of every pool's idle wake: pthread_cond_signal to a thread waiting on the
        // condition variable, nothing queued or chosen.
        Benchmark("W4 latency floor pthread_cond_signal\(suffix)", configuration: latencyConfig()) { benchmark in
            sampleLatencyInC(benchmark, "cbench_latency_condvar") {
                cbench_latency_condvar($0, latencyGapNanoseconds, waitForStart, $1)
            }
        }
    }

    Benchmark("W4 latency NIOThreadPool.submit w2", configuration: latencyConfig()) { benchmark in
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        sampleLatency(benchmark) { probe, i in
            pool.submit { _ in probe.started(i) }
        }
        try pool.syncShutdownGracefully()
    }

    Benchmark("W4 latency Dispatch.concurrentQueue", configuration: latencyConfig()) { benchmark in
        let queue = DispatchQueue(label: "bench.concurrent", attributes: .concurrent)
        sampleLatency(benchmark) { probe, i in
            queue.async { probe.started(i) }
        }
    }

    Benchmark("W4 latency Task.detached", configuration: latencyConfig()) { benchmark in
        sampleLatency(benchmark) { probe, i in
            Task.detached { probe.started(i) }
        }
    }

    // Thread start latency: pthread_create to the thread's first instruction (joined each time: the
    // submitting thread waits for the start, as above).
    Benchmark("W4 latency pthread_create", configuration: latencyConfig()) { benchmark in
        sampleLatencyInC(benchmark, "cbench_latency_pthread") {
            cbench_latency_pthread($0, latencyGapNanoseconds, $1)
        }
    }
}
