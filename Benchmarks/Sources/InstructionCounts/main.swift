// One workload, run once, for counting instructions under valgrind (scripts/instructions.py).
//
// This machine has no hardware performance counters, so package-benchmark cannot count instructions;
// callgrind can, and the count of the thread that submits the work is the same from run to run (it
// moved by 0.1% between runs, against several percent for wall-clock time). The script runs each
// workload at two sizes and divides the difference by the difference in tasks, which leaves out
// start-up and shutdown: what remains is the submitting thread's instructions per task.
//
//     InstructionCounts <workload> <tasks>
import CBenchSupport
import CThreadPool
import Synchronization
import ThreadPoolKit

#if canImport(Glibc)
import Glibc
#endif

final class Counter: Sendable {
    let count = Atomic<Int>(0)
    @inline(__always) func hit() { count.wrappingAdd(1, ordering: .relaxed) }
}

/// Runs `submit` on a pool of one worker, then waits for the pool to finish: `submit` gets the pool
/// and a counter that each of the `n` tasks it queues must hit once.
func onOneWorker(_ n: Int, _ submit: (ThreadPool, Counter) throws -> Void) throws {
    let pool = try ThreadPool(threads: 1)
    let counter = Counter()
    try submit(pool, counter)
    pool.close()
    try pool.join()
    precondition(counter.count.load(ordering: .relaxed) == n)
}

/// The workloads, by name. Each runs `n` tasks on a pool of one worker and returns once all ran.
let workloads: [String: (Int) throws -> Void] = [
    // W1's: results dropped at once (reused once their worker finishes).
    "applyAsync": { n in
        try onOneWorker(n) { pool, counter in
            for _ in 0..<n { _ = try pool.applyAsync { counter.hit() } }
        }
    },
    // As applyAsync, in rounds of 1,000 that each wait for their tasks: their results are finished,
    // and reused, by the next round (the path W1 takes when the workers keep up).
    "applyAsync reused": { n in
        try onOneWorker(n) { pool, counter in
            for round in stride(from: 0, to: n, by: 1_000) {
                for _ in round..<min(n, round + 1_000) { _ = try pool.applyAsync { counter.hit() } }
                try pool.apply {} // the tasks before it have run, and their results have been kept
            }
        }
    },
    // Python style: every result kept, then read.
    "applyAsync+get": { n in
        try onOneWorker(n) { pool, counter in
            var results: [AsyncResult<Void>] = []
            results.reserveCapacity(n)
            for _ in 0..<n { results.append(try pool.applyAsync { counter.hit() }) }
            for result in results { try result.get() }
        }
    },
    // W6's round trip: each task waited for (polled, then parked) before the next is submitted.
    "apply": { n in
        try onOneWorker(n) { pool, counter in
            for _ in 0..<n { try pool.apply { counter.hit() } }
        }
    },
    "execute": { n in
        try onOneWorker(n) { pool, counter in
            for _ in 0..<n { try pool.execute { counter.hit() } }
        }
    },
    // The C API alone, as W1 measures it.
    "ctp_pool_submit": { n in
        guard let pool = cbench_pool_create(1) else { fatalError("ctp_pool_create failed") }
        precondition(cbench_tiny_ctp(pool, n) == 0)
        cbench_pool_destroy(pool)
    },
]

let arguments = CommandLine.arguments
guard arguments.count == 3, let workload = workloads[arguments[1]], let tasks = Int(arguments[2]) else {
    print("usage: InstructionCounts <\(workloads.keys.sorted().joined(separator: "|"))> <tasks>")
    exit(2)
}
try workload(tasks)
