// make stress: 10^7 tasks through applyAsync, map and imapUnordered from 4 submitting threads into
// pools that are closed or terminated at a random moment, with exact accounting at the end: every
// accepted item ran exactly once, or was reported cancelled and ran at most once (a map chunk or an
// imap item that was already running when terminate() came); nothing ran twice, nothing was lost.
import Foundation
import Synchronization
import ThreadPoolKit

let totalItems = Int(ProcessInfo.processInfo.environment["STRESS_ITEMS"] ?? "") ?? 10_000_000
let itemsPerRound = 250_000
let submitters = 4

/// One flag per item: how many times it ran.
final class RunCounts: @unchecked Sendable {
    let flags: UnsafeMutablePointer<Atomic<UInt8>>
    let count: Int
    init(count: Int) {
        self.count = count
        flags = .allocate(capacity: count)
        for i in 0..<count { (flags + i).initialize(to: Atomic(0)) }
    }
    deinit { flags.deallocate() }
    func ran(_ item: Int) { flags[item].wrappingAdd(1, ordering: .relaxed) }
    func runs(_ item: Int) -> UInt8 { flags[item].load(ordering: .relaxed) }
}

/// What one submitter's work came to: items that must have run once, and items that were
/// cancelled (ran at most once).
struct Ledger {
    var mustHaveRun: [Range<Int>] = []
    var mayHaveRun: [Range<Int>] = [] // reported cancelled
    var refused = 0
}

enum Failure: Error { case check(String) }

/// A result not ready after this long is lost work (or a hang): the run fails.
let limit = Duration.seconds(60)

/// nil for a cancellation; a timeout (or any other error) ends the run as a failure.
func lost(_ error: any Error) -> Bool? {
    if case ThreadPoolError.cancelled = error { return nil }
    print("stress FAILED: a result ended with \(error) instead of a value or .cancelled")
    exit(1)
}

/// Items accepted so far in this round, so that the shutdown can come at a chosen point.
let accepted = Atomic<Int>(0)

func submit(pool: ThreadPool, counts: RunCounts, items: Range<Int>, seed: UInt64) -> Ledger {
    var ledger = Ledger()
    var generator = SplitMix(seed: seed)
    var next = items.lowerBound
    var pending: [(Range<Int>, () -> Bool?)] = [] // range, and "did it succeed" (nil: cancelled)
    // `next` is the first item not yet accepted: everything from it on is refused if a submit throws.
    while next < items.upperBound {
        let size = min(Int(generator.next() % 64) + 1, items.upperBound - next)
        let range = next..<next + size
        do {
            switch generator.next() % 3 {
            case 0:
                for item in range {
                    let result = try pool.applyAsync { counts.ran(item) }
                    pending.append(
                        (
                            item..<item + 1,
                            {
                                do { try result.get(timeout: limit); return true } catch { return lost(error) }
                            }
                        ))
                    next = item + 1
                    accepted.wrappingAdd(1, ordering: .relaxed)
                }
            case 1:
                let result = try pool.mapAsync(range, chunkSize: Int(generator.next() % 4) + 1) { counts.ran($0) }
                pending.append(
                    (
                        range,
                        {
                            do { _ = try result.get(timeout: limit); return true } catch { return lost(error) }
                        }
                    ))
            default:
                let iterator = try pool.imapUnordered(range, chunkSize: Int(generator.next() % 3) + 1) {
                    (item: Int) -> Int in
                    counts.ran(item)
                    return item
                }
                pending.append(
                    (
                        range,
                        {
                            var received = 0
                            do {
                                while try iterator.next(timeout: limit) != nil { received += 1 }
                            } catch { return lost(error) }
                            return received == range.count ? true : nil
                        }
                    ))
            }
            if next != range.upperBound { accepted.wrappingAdd(range.upperBound - next, ordering: .relaxed) }
            next = range.upperBound
        } catch {
            ledger.refused += items.upperBound - next
            break
        }
    }
    for (range, outcome) in pending {
        if outcome() == true { ledger.mustHaveRun.append(range) } else { ledger.mayHaveRun.append(range) }
    }
    return ledger
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let start = Date()
var rounds = 0
var ranOnce = 0
var cancelled = 0
var refused = 0
var generator = SplitMix(seed: UInt64(ProcessInfo.processInfo.environment["STRESS_SEED"] ?? "") ?? 42)
do {
    var done = 0
    while done < totalItems {
        let round = min(itemsPerRound, totalItems - done)
        let counts = RunCounts(count: round)
        let pool = try ThreadPool(threads: Int(generator.next() % 4) + 1)
        let ledgers = Mutex<[Ledger]>([])
        let perSubmitter = round / submitters
        let seeds = (0..<submitters).map { _ in generator.next() }
        let threads = (0..<submitters).map { s in
            Thread {
                let upper = s == submitters - 1 ? round : (s + 1) * perSubmitter
                let ledger = submit(pool: pool, counts: counts, items: s * perSubmitter..<upper, seed: seeds[s])
                ledgers.withLock { $0.append(ledger) }
            }
        }
        accepted.store(0, ordering: .relaxed)
        for thread in threads { thread.start() }
        // Shut down once 50-100% of the round was accepted (or every submitter is done).
        let target = round / 2 + Int(generator.next() % UInt64(round / 2 + 1))
        while accepted.load(ordering: .relaxed) < target && ledgers.withLock({ $0.count }) < submitters {
            sched_yield()
        }
        if generator.next() % 2 == 0 { pool.close() } else { pool.terminate() }
        while ledgers.withLock({ $0.count }) < submitters { usleep(1000) }
        try pool.join()
        let all = ledgers.withLock { $0 }
        var accounted = 0
        for ledger in all {
            for range in ledger.mustHaveRun {
                for item in range where counts.runs(item) != 1 {
                    throw Failure.check("item \(item) of a successful result ran \(counts.runs(item)) times")
                }
                ranOnce += range.count
                accounted += range.count
            }
            for range in ledger.mayHaveRun {
                for item in range where counts.runs(item) > 1 {
                    throw Failure.check("cancelled item \(item) ran \(counts.runs(item)) times")
                }
                cancelled += range.count
                accounted += range.count
            }
            refused += ledger.refused
            accounted += ledger.refused
        }
        guard accounted == round else {
            throw Failure.check("round \(rounds): \(accounted) of \(round) items accounted for")
        }
        let stats = pool.stats
        guard stats.queued == 0, stats.running == 0 else { throw Failure.check("round \(rounds): stats \(stats)") }
        done += round
        rounds += 1
    }
    let seconds = Date().timeIntervalSince(start)
    print(
        "stress: \(rounds) pools, \(totalItems) items: \(ranOnce) ran exactly once, \(cancelled) reported cancelled (none ran twice), \(refused) refused after shutdown; \(String(format: "%.1f", seconds)) s"
    )
} catch {
    print("stress FAILED: \(error)")
    exit(1)
}
