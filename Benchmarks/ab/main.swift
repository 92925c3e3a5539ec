// The A/B harness: the same workloads built against two versions of the library (see ab.sh), for
// measurements a change must not make worse and package-benchmark cannot compare across versions.
// It uses only API that every version since the first round has: ThreadPool(threads:), apply,
// applyAsync, get, execute, run, the pool as a TaskExecutor, close and join.
//
// Each workload prints one line: its median over the repetitions, wall time and process CPU time
// (getrusage) per operation, and context switches where they matter.
import Dispatch
import Foundation
import Synchronization
import ThreadPoolKit

func cpuNanoseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let seconds = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec
    let micros = usage.ru_utime.tv_usec + usage.ru_stime.tv_usec
    return Double(seconds) * 1e9 + Double(micros) * 1e3
}

func contextSwitches() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_nvcsw + usage.ru_nivcsw
}

func nanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func median(_ values: [Double]) -> Double { percentile(values, 0.5) }

/// W5's blocking workload: 64 tasks of 10 ms (usleep) on 8 workers; CPU per task.
func blocking() {
    let pool = try! ThreadPool(threads: 8)
    var walls: [Double] = []
    var cpus: [Double] = []
    for _ in 0..<15 {
        let cpu = cpuNanoseconds()
        let start = nanoseconds()
        let results = (0..<64).map { _ in try! pool.applyAsync { usleep(10_000) } }
        for result in results { try! result.get() }
        walls.append(Double(nanoseconds() - start) / 1e6)
        cpus.append((cpuNanoseconds() - cpu) / 64)
    }
    pool.close()
    try! pool.join()
    print(
        String(
            format: "blocking 64 x 10 ms, 8 workers: wall %.1f ms, cpu %.1f us per task", median(walls),
            median(cpus) / 1000))
}

/// An idle pool: the process's CPU time in the 100 ms after its last task finished.
func idle() {
    let pool = try! ThreadPool(threads: 2)
    var cpus: [Double] = []
    for _ in 0..<10 {
        for _ in 0..<100 { try! pool.apply {} }
        let cpu = cpuNanoseconds()
        usleep(100_000)
        cpus.append(cpuNanoseconds() - cpu)
    }
    pool.close()
    try! pool.join()
    print(String(format: "idle, 100 ms after work: cpu %.1f us (most %.1f)", median(cpus) / 1000, cpus.max()! / 1000))
}

final class Stamp: @unchecked Sendable {
    var nanoseconds: UInt64 = 0
}

final class Semaphore: @unchecked Sendable {
    private var semaphore = sem_t()
    init() { sem_init(&semaphore, 0, 0) }
    func post() { sem_post(&semaphore) }
    func wait() { while sem_wait(&semaphore) != 0 {} }
}

/// W4's idle wake, 100 us apart, 2 workers: from submit to the task's start. With `waitForResult`
/// the submitter waits in `get()` (Python's apply); otherwise on a semaphore the task posts (W4).
func idleWake(waitForResult: Bool) {
    let pool = try! ThreadPool(threads: 2)
    let started = Semaphore()
    var latencies: [Double] = []
    let samples = 3000
    let cpu = cpuNanoseconds()
    for _ in 0..<samples {
        let stamp = Stamp()
        let start = nanoseconds()
        let result = try! pool.applyAsync {
            stamp.nanoseconds = nanoseconds()
            if !waitForResult { started.post() }
        }
        if waitForResult { try! result.get() } else { started.wait() }
        latencies.append(Double(stamp.nanoseconds - start))
        usleep(100)
    }
    let cpuPerSample = (cpuNanoseconds() - cpu) / Double(samples)
    pool.close()
    try! pool.join()
    print(
        String(
            format: "idle wake (%@): p50 %.2f us, p99 %.2f us, cpu %.1f us per sample",
            waitForResult ? "get" : "semaphore", median(latencies) / 1000, percentile(latencies, 0.99) / 1000,
            cpuPerSample / 1000))
}

final class Counter: Sendable {
    let count = Atomic<Int>(0)
    func hit() { count.wrappingAdd(1, ordering: .relaxed) }
}

/// W7's async offload: 64 tasks x 2,000 awaits of a tiny closure, 2 workers, through `offload`; with
/// `onPool`, each task's loop runs inside `withTaskExecutorPreference(onPool)`.
func offload(_ name: String, onPool: ThreadPool? = nil, _ offload: @escaping @Sendable (Counter) async -> Void) async {
    let tasks = 64
    let calls = 2000
    let total = tasks * calls
    let counter = Counter()
    var walls: [Double] = []
    var cpus: [Double] = []
    var switches: [Double] = []
    for _ in 0..<7 {
        let cpu = cpuNanoseconds()
        let switched = contextSwitches()
        let start = nanoseconds()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    await withTaskExecutorPreference(onPool) { for _ in 0..<calls { await offload(counter) } }
                }
            }
        }
        walls.append(Double(nanoseconds() - start) / Double(total))
        cpus.append((cpuNanoseconds() - cpu) / Double(total))
        switches.append(Double(contextSwitches() - switched) / Double(total))
    }
    precondition(counter.count.load(ordering: .relaxed) == 7 * total)
    print(
        String(
            format: "offload %@: wall %.0f ns, cpu %.0f ns, %.3f context switches per offload",
            name, median(walls), median(cpus), median(switches)))
}

func offloads(_ which: String) async {
    let pool = try! ThreadPool(threads: 2)
    let queue = DispatchQueue(label: "ab", attributes: .concurrent)
    if which == "run" {
        await offload("run") { counter in try! await pool.run { counter.hit() } }
    } else if which == "run-in-scope" {
        await offload("run from tasks on the pool", onPool: pool) { counter in try! await pool.run { counter.hit() } }
    } else if which == "preference" {
        await offload("withTaskExecutorPreference") { counter in
            await withTaskExecutorPreference(pool) { counter.hit() }
        }
    } else if which == "execute" {
        await offload("execute + continuation") { counter in
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                try! pool.execute {
                    counter.hit()
                    continuation.resume()
                }
            }
        }
    } else {
        await offload("Dispatch + continuation") { counter in
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                queue.async {
                    counter.hit()
                    continuation.resume()
                }
            }
        }
    }
    pool.close()
    try! await pool.join()
}

nonisolated func main() async {
    switch CommandLine.arguments.dropFirst().first ?? "" {
    case "blocking": blocking()
    case "idle": idle()
    case "wake-get": idleWake(waitForResult: true)
    case "wake": idleWake(waitForResult: false)
    case let other where other.hasPrefix("offload-"): await offloads(String(other.dropFirst("offload-".count)))
    default:
        print(
            "usage: ab blocking|idle|wake|wake-get|offload-run|offload-run-in-scope|offload-preference|offload-execute|offload-dispatch"
        )
    }
}

await main()
