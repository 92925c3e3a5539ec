#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Waiting for another thread that is a few instructions from done (it holds no lock and never
/// blocks there), but may have been preempted: poll, and give the CPU away between polls so that the
/// thread waited for can run if it shares this CPU.
enum SpinThenYield {
    /// Returns once `done()` is true.
    static func wait(until done: () -> Bool) {
        var polls = 0
        while !done() {
            polls += 1
            if polls >= 64 { sched_yield() }
        }
    }
}
