import Synchronization

/// The results of one runner's pull (consecutive input items), as the runner makes them.
///
/// The runner stores each chunk's results here without the iterator's lock and publishes them with
/// one atomic store of `made`; a consumer (under the iterator's lock) takes them from here as soon as
/// they are made, and the runner moves the rest to the shared ``ResultQueue`` once, when its pull is
/// done. So every result is available as soon as its chunk is done (a later item that blocks never
/// holds it back), while the lock is taken once per pull instead of once per chunk.
@usableFromInline
final class PulledBatch<T: Sendable>: @unchecked Sendable {
    /// The input index of the first item. Written by the runner only while nobody else holds the
    /// batch (before it publishes it under the iterator's lock: a batch is reused only when its
    /// runner holds the only reference), so anyone who got the batch under that lock may read it.
    @usableFromInline var firstIndex: Int
    /// How many items were pulled. Written and read as `firstIndex`.
    @usableFromInline var count: Int
    /// How many slots there are (immutable).
    @usableFromInline let capacity: Int
    /// Slot `i` holds the result of item `firstIndex + i`; initialized below `made`, moved out below
    /// `taken`.
    @usableFromInline let slots: UnsafeMutablePointer<Result<T, any Error>>
    /// Results made: written by the runner only, after it initialized their slots; read by anyone.
    /// Sequentially consistent with `watched` (see there).
    @usableFromInline let made = Atomic<Int>(0)
    /// Set (under the iterator's lock) while a consumer waits for a result of this batch, cleared when
    /// none waits any more: the runner then wakes it after storing `made`. A consumer sets it before it
    /// reads `made` and the runner stores `made` before it reads this, both sequentially consistent,
    /// so at least one of them sees the other's store and no wake-up is lost.
    @usableFromInline let watched = Atomic<Bool>(false)
    /// Results moved out of `slots` (by a consumer, or by the runner when it settles the batch).
    /// Guarded by the iterator's lock.
    @usableFromInline var taken = 0

    @inlinable
    init(firstIndex: Int, count: Int, capacity: Int) {
        self.firstIndex = firstIndex
        self.count = count
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
    }

    /// Makes a settled batch that nobody else holds the batch of another pull.
    @inlinable func reuse(firstIndex: Int, count: Int) {
        self.firstIndex = firstIndex
        self.count = count
        made.store(0, ordering: .relaxed)
        watched.store(false, ordering: .relaxed)
        taken = 0
    }

    /// Whether a result is made and not taken. Called with the iterator's lock held.
    @inlinable var hasResult: Bool {
        made.load(ordering: .sequentiallyConsistent) > taken
    }

    /// Moves out the next result not taken, if it is made. Called with the iterator's lock held.
    @inlinable func takeNext() -> Result<T, any Error>? {
        guard hasResult else { return nil }
        let result = (slots + taken).move()
        taken += 1
        return result
    }

    deinit {
        let made = made.load(ordering: .acquiring)
        if taken < made { (slots + taken).deinitialize(count: made - taken) }
        slots.deallocate()
    }
}
