import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Polling another thread's progress, giving the CPU away between polls so that the thread waited
/// for can run if it shares this CPU. Two uses: waiting for a thread that is a few instructions from
/// done and never blocks there (``wait(until:)``), and polling briefly for a result before sleeping
/// on it (``pollBeforeParking(until:)``), which saves the caller the wake of a parked thread (on this
/// project's VM a wake of a halted vCPU takes several to 20 µs) when the result comes soon.
enum SpinThenYield {
    /// Returns once `done()` is true.
    static func wait(until done: () -> Bool) {
        var polls = 0
        while !done() {
            polls += 1
            if polls >= 64 { sched_yield() }
        }
    }

    /// How long a waiter polls before it parks: a few wakes' worth.
    static let pollNanoseconds: UInt64 = 20_000
    static let pollWindow = Duration.nanoseconds(Int64(pollNanoseconds))

    /// Whether the last waits that polled ended while polling (process-wide). A wait polls only then:
    /// when results come later than the polling window, waiting parks at once and costs no more CPU
    /// than a plain sleep; a wait that parks and is woken within the window turns polling back on.
    private static let pollingPays = Atomic<Bool>(true)

    /// A yield that kept this thread off the CPU this long gave it to a thread that does not block
    /// (a time slice is milliseconds): the CPUs are oversubscribed.
    static let lostSliceNanoseconds: UInt64 = 100_000
    /// For how long after such a yield waits park at once (process-wide).
    static let oversubscribedNanoseconds: UInt64 = 20_000_000
    /// Until when (a ``monotonicNanoseconds()`` reading) waits do not poll; 0: they may.
    private static let pollAgainAt = Atomic<UInt64>(0)

    /// Polls `done()` for up to ``pollNanoseconds`` if recent waits show that it pays, yielding the
    /// CPU every 64 polls. Returns true if `done()` became true; false means: park now. Call
    /// ``noteParkedWait(startedAt:)`` after the parked wait ends.
    ///
    /// Next to a thread that keeps its CPU busy (more runnable threads than CPUs), a yield can hand
    /// the CPU over for the rest of a time slice, so that a result that came in microseconds is
    /// seen a millisecond later, on every wait. A yield that took that long stops polling, for this
    /// wait and every wait of the next ``oversubscribedNanoseconds``: they park at once, as a
    /// semaphore would, and the result's wake reaches them in microseconds.
    static func pollBeforeParking(until done: () -> Bool) -> Bool {
        guard pollingPays.load(ordering: .relaxed) else { return false }
        var now = monotonicNanoseconds()
        let quietUntil = pollAgainAt.load(ordering: .relaxed)
        if quietUntil != 0 {
            if now < quietUntil { return false }
            pollAgainAt.store(0, ordering: .relaxed)
        }
        let deadline = now &+ pollNanoseconds
        var polls: UInt32 = 0
        while true {
            if done() { return true }
            polls &+= 1
            if polls & 63 == 0 {
                if now >= deadline { break }
                sched_yield()
                let before = now
                now = monotonicNanoseconds()
                if now &- before >= lostSliceNanoseconds {
                    pollAgainAt.store(now &+ oversubscribedNanoseconds, ordering: .relaxed)
                    return done()
                }
            }
        }
        if pollingPays.load(ordering: .relaxed) { pollingPays.store(false, ordering: .relaxed) }
        return false
    }

    /// Learns from a wait that parked: if it ended within the polling window after `start` (a
    /// ``monotonicNanoseconds()`` reading taken before parking), polling would have caught it.
    static func noteParkedWait(startedAt start: UInt64) {
        if !pollingPays.load(ordering: .relaxed), monotonicNanoseconds() &- start <= pollNanoseconds {
            pollingPays.store(true, ordering: .relaxed)
        }
    }
}
