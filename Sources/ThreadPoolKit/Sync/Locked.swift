#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a `pthread_mutex_t`, with a condition variable for waiting on it.
///
/// Why not `Synchronization.Mutex`: on Linux it synchronizes through futexes inside the standard
/// library, which ThreadSanitizer cannot see, so every access it guards would be reported as a race
/// and `make sanitize` would be useless. pthread mutexes are intercepted by the sanitizer.
///
/// The mutex and the condition variable each have a cache line of their own: as two small blocks they
/// may land next to other objects' hot data, or next to each other, depending on the heap's layout,
/// and an imap's consumer and runners, locking two different `Locked`s, then fight over one line
/// (docs/DESIGN.md has the figures).
@usableFromInline
final class Locked<Value> {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let condition: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by `mutex`.
    @usableFromInline var value: Value

    /// The size of a cache line, on the targets that matter (a larger one only costs some padding).
    private static var lineSize: Int { 64 }

    @usableFromInline
    init(_ value: Value) {
        self.value = value
        let lines = UnsafeMutableRawPointer.allocate(byteCount: 2 * Self.lineSize, alignment: Self.lineSize)
        mutex = lines.bindMemory(to: pthread_mutex_t.self, capacity: 1)
        condition = (lines + Self.lineSize).bindMemory(to: pthread_cond_t.self, capacity: 1)
        var mutexAttributes = pthread_mutexattr_t()
        precondition(pthread: pthread_mutexattr_init(&mutexAttributes), "pthread_mutexattr_init")
        #if canImport(Glibc)
        // Critical sections here are short and taken from several threads at once (an imap's
        // consumer and runners): spinning briefly on a held lock is much cheaper than sleeping on
        // its futex and being woken.
        precondition(
            pthread: pthread_mutexattr_settype(&mutexAttributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP)),
            "pthread_mutexattr_settype")
        #endif
        precondition(pthread: pthread_mutex_init(mutex, &mutexAttributes), "pthread_mutex_init")
        pthread_mutexattr_destroy(&mutexAttributes)
        var attributes = pthread_condattr_t()
        precondition(pthread: pthread_condattr_init(&attributes), "pthread_condattr_init")
        #if !canImport(Darwin)
        precondition(pthread: pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC), "pthread_condattr_setclock")
        #endif
        precondition(pthread: pthread_cond_init(condition, &attributes), "pthread_cond_init")
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        assert(pthread: pthread_cond_destroy(condition), "pthread_cond_destroy")
        assert(pthread: pthread_mutex_destroy(mutex), "pthread_mutex_destroy")
        UnsafeMutableRawPointer(mutex).deallocate() // the block holding both
    }

    /// Runs `body` with the lock held.
    @inlinable
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        assert(pthread: pthread_mutex_lock(mutex), "pthread_mutex_lock")
        defer { assert(pthread: pthread_mutex_unlock(mutex), "pthread_mutex_unlock") }
        return try body(&value)
    }

    /// With the lock held: runs `begin`, waits until `isDone` returns true or `deadline` passes, then
    /// runs `end` either way. Returns false when the deadline passed first.
    @inlinable
    func wait(
        until deadline: Deadline?, begin: (inout Value) -> Void, for isDone: (inout Value) -> Bool,
        end: (inout Value) -> Void
    ) -> Bool {
        assert(pthread: pthread_mutex_lock(mutex), "pthread_mutex_lock")
        defer { assert(pthread: pthread_mutex_unlock(mutex), "pthread_mutex_unlock") }
        begin(&value)
        defer { end(&value) }
        while !isDone(&value) {
            if !condition.wait(on: mutex, until: deadline) {
                return isDone(&value)
            }
        }
        return true
    }

    /// Wakes every thread waiting in ``wait(until:begin:for:end:)``. Call it after changing the value.
    @inlinable
    func broadcast() {
        assert(pthread: pthread_cond_broadcast(condition), "pthread_cond_broadcast")
    }
}

// The value is only reached with the mutex held.
extension Locked: @unchecked Sendable {}

extension UnsafeMutablePointer where Pointee == pthread_cond_t {
    @usableFromInline
    /// Waits on the condition until woken (perhaps spuriously) or until `deadline` (nil: no limit).
    /// Returns false once the deadline has passed.
    func wait(on mutex: UnsafeMutablePointer<pthread_mutex_t>, until deadline: Deadline?) -> Bool {
        guard let deadline else {
            assert(pthread: pthread_cond_wait(self, mutex), "pthread_cond_wait")
            return true
        }
        return deadline.wait(on: self, mutex: mutex)
    }
}
