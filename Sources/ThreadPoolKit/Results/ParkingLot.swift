#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where threads block until a result becomes ready.
///
/// Results do not each own a mutex and condition variable: a result that nobody waits for never
/// touches one. A waiter hashes its result's address to one of a fixed set of stripes, each a
/// `pthread_mutex_t` with a `pthread_cond_t`, and sleeps there; a result that finds its waiter bit
/// set broadcasts on that stripe. The stripe's mutex also guards each result's list of async
/// continuations. This is the only place that touches pthread condition variables.
final class ParkingLot {
    static let shared = ParkingLot()

    private static let stripeCount = 64
    private let mutexes: UnsafeMutablePointer<pthread_mutex_t>
    private let conditions: UnsafeMutablePointer<pthread_cond_t>

    private init() {
        mutexes = .allocate(capacity: Self.stripeCount)
        conditions = .allocate(capacity: Self.stripeCount)
        var attributes = pthread_condattr_t()
        precondition(pthread: pthread_condattr_init(&attributes), "pthread_condattr_init")
        #if !canImport(Darwin)
        precondition(pthread: pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC), "pthread_condattr_setclock")
        #endif
        for i in 0..<Self.stripeCount {
            precondition(pthread: pthread_mutex_init(mutexes + i, nil), "pthread_mutex_init")
            precondition(pthread: pthread_cond_init(conditions + i, &attributes), "pthread_cond_init")
        }
        pthread_condattr_destroy(&attributes)
    }
    // Never deinitialized: `shared` lives as long as the process.

    /// The stripe for an object; stable for the object's lifetime.
    func stripe(for object: AnyObject) -> Int {
        let address = UInt(bitPattern: ObjectIdentifier(object).hashValue)
        return Int((address >> 4) ^ (address >> 10)) & (Self.stripeCount - 1)
    }

    /// Runs `body` holding the stripe's mutex.
    func withLock<R>(_ stripe: Int, _ body: () throws -> R) rethrows -> R {
        assert(pthread: pthread_mutex_lock(mutexes + stripe), "pthread_mutex_lock")
        defer { assert(pthread: pthread_mutex_unlock(mutexes + stripe), "pthread_mutex_unlock") }
        return try body()
    }

    /// Sleeps on the stripe until woken (spuriously, maybe) or until `deadline`. Must be called from
    /// inside ``withLock(_:_:)`` on the same stripe. Returns false once the deadline has passed.
    func wait(_ stripe: Int, until deadline: Deadline?) -> Bool {
        (conditions + stripe).wait(on: mutexes + stripe, until: deadline)
    }

    /// Wakes every thread sleeping on the stripe. Call it holding the stripe's mutex.
    func broadcast(_ stripe: Int) {
        assert(pthread: pthread_cond_broadcast(conditions + stripe), "pthread_cond_broadcast")
    }
}

extension ParkingLot: @unchecked Sendable {} // The stripes are only used under their own mutexes.

/// The monotonic clock in nanoseconds, for measuring how long work takes (a vDSO call, no syscall).
@inlinable
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// A point in time on the monotonic clock, for bounded waits.
@usableFromInline
struct Deadline: Sendable {
    private let time: timespec

    /// `timeout` from now; a negative timeout is a deadline already passed.
    @usableFromInline
    init(after timeout: Duration) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = timeout.components
        // Clamped to about a century either way, so that the sums below cannot overflow.
        let clamped = min(max(seconds, -3_000_000_000), 3_000_000_000)
        var wholeSeconds = Int64(now.tv_sec) + clamped
        var nanoseconds = Int64(now.tv_nsec) + (clamped == seconds ? attoseconds / 1_000_000_000 : 0)
        if nanoseconds >= 1_000_000_000 {
            wholeSeconds += 1
            nanoseconds -= 1_000_000_000
        } else if nanoseconds < 0 {
            wholeSeconds -= 1
            nanoseconds += 1_000_000_000
        }
        time = timespec(tv_sec: Int(max(wholeSeconds, 0)), tv_nsec: Int(nanoseconds))
    }

    /// Whether the deadline is in the past.
    @usableFromInline
    var hasPassed: Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec > time.tv_sec || (now.tv_sec == time.tv_sec && now.tv_nsec >= time.tv_nsec)
    }

    /// Waits on `condition` (created with CLOCK_MONOTONIC) until woken or until this deadline.
    /// Returns false once the deadline has passed.
    func wait(
        on condition: UnsafeMutablePointer<pthread_cond_t>,
        mutex: UnsafeMutablePointer<pthread_mutex_t>
    ) -> Bool {
        #if canImport(Darwin)
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        var relative = timespec(tv_sec: time.tv_sec - now.tv_sec, tv_nsec: time.tv_nsec - now.tv_nsec)
        if relative.tv_nsec < 0 {
            relative.tv_nsec += 1_000_000_000
            relative.tv_sec -= 1
        }
        if relative.tv_sec < 0 { return false }
        return pthread_cond_timedwait_relative_np(condition, mutex, &relative) != ETIMEDOUT
        #else
        var absolute = time
        return pthread_cond_timedwait(condition, mutex, &absolute) != ETIMEDOUT
        #endif
    }
}
