import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Finished jobs that nobody references any more, kept so that the next `applyAsync` or `execute`
/// reuses one instead of allocating.
///
/// Why: in a stream of tiny tasks the submitting thread allocates every job and a worker frees it.
/// Memory freed on one thread and allocated on another goes through the allocator's shared bins,
/// whose locks and cache lines bounce between the two cores (`_int_malloc` was half of the submitting
/// thread's samples), and freeing a generic `AsyncResult` looks up runtime metadata on the worker.
/// Here the worker that holds a finished job's last reference keeps the job instead (its outcome
/// destroyed by code specialized for its type), and the next submit of the same kind, on any thread,
/// takes it back. As in Bonwick's magazine allocator, each thread keeps up to ``magazineSize`` jobs of
/// one kind (its magazine) and full magazines move between threads through a depot, so the depot's lock
/// is taken once per ``magazineSize`` jobs.
///
/// A job is kept only if its strong reference was the last one, with no weak or unowned references
/// to it, so no one can observe the reuse. A kept job holds no user values: its closure and outcome
/// were destroyed when it finished. Jobs are kept per dynamic class (`AsyncResult<Int>` and
/// `AsyncResult<String>` are different kinds). Memory is bounded: one magazine per thread (released
/// when the thread exits), and in the depot ``depotLimit`` magazines of each of ``depotKinds`` kinds
/// (4,096 jobs, about 460 KiB of `AsyncResult<Void>`, per kind), with up to ``depotLimit`` empty
/// buffers; the rest are freed as usual. The depot is that deep because the queue swings by thousands
/// of tasks when three threads share two CPUs: with 8 magazines, a third of the jobs missed it.
///
/// Thread safety: a thread's magazine is reached only from that thread; the depot is locked.
@usableFromInline
enum JobRecycler {
    /// How many jobs a thread keeps at most: the number moved to or from the depot at once.
    static let magazineSize = 32
    /// How many magazines the depot keeps per kind.
    static let depotLimit = 128
    /// How many kinds the depot keeps magazines of.
    static let depotKinds = 8

    /// A thread's kept jobs, all of one kind. Reached through a pointer (``magazine``), so using it
    /// touches no reference count.
    private struct Magazine {
        var kind: ObjectIdentifier?
        var jobs = JobBuffer()
        /// Takes that find the magazine empty before the next refill from the depot: a thread whose
        /// jobs are never kept (the caller holds its results) must not take the depot's lock every time.
        var takesBeforeRefill = 0
    }

    /// Frees the calling thread's magazine when the thread exits (the magazine is in
    /// the C library's thread slot (``CPool/threadSlot``), which has no destructor of its own). Nil if the process had used up its
    /// keys (at least 128): then nothing is kept, and nothing else changes.
    private static let key: pthread_key_t? = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { magazine in
            guard let magazine = magazine?.assumingMemoryBound(to: Magazine.self) else { return }
            CPool.threadSlot.pointee = nil // a later destructor that submits gets a new one
            magazine.move().jobs.free()
            magazine.deallocate()
        }
        return status == 0 ? key : nil
    }()

    /// The calling thread's magazine, made on first use (nil without a key). Only this thread uses it.
    /// Kept in the C library's thread-local slot: reaching it there is a few instructions, where
    /// pthread_getspecific and the lazy key's initialization check cost about 25 on every take and keep.
    private static var magazine: UnsafeMutablePointer<Magazine>? {
        let slot = CPool.threadSlot
        if let existing = slot.pointee { return existing.assumingMemoryBound(to: Magazine.self) }
        return makeMagazine(slot)
    }

    /// Makes the calling thread's magazine and registers it for freeing when the thread exits.
    @inline(never)
    private static func makeMagazine(_ slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> UnsafeMutablePointer<
        Magazine
    >? {
        guard let key else { return nil }
        let magazine = UnsafeMutablePointer<Magazine>.allocate(capacity: 1)
        magazine.initialize(to: Magazine())
        guard pthread_setspecific(key, magazine) == 0 else {
            magazine.deinitialize(count: 1)
            magazine.deallocate()
            return nil
        }
        slot.pointee = UnsafeMutableRawPointer(magazine)
        return magazine
    }

    /// Full buffers, and emptied ones, on their way between threads.
    private static let depot = Locked(JobDepot(magazinesPerKind: depotLimit, kinds: depotKinds))

    /// A kept job of class `kind`, with the references its class keeps (its queue's, and its caller's
    /// if ``_ThreadPoolJob/keptReferences`` is 2), or nil. The caller reinitializes it before use.
    @usableFromInline
    static func take(_ kind: ObjectIdentifier) -> Unmanaged<_ThreadPoolJob>? {
        guard let magazine else { return nil }
        if magazine.pointee.kind == kind, let job = magazine.pointee.jobs.pop() { return job }
        if magazine.pointee.takesBeforeRefill > 0 {
            magazine.pointee.takesBeforeRefill -= 1
            return nil
        }
        return refill(magazine, kind)
    }

    /// Keeps `job`, which the caller has checked nobody else references (``isUnreferenced(_:)``) and
    /// has reset for reuse, with the references its next submit needs (``_ThreadPoolJob/keptReferences``):
    /// taken here, on the thread that ran the job and has its reference count in cache, they spare the
    /// submitting thread an atomic increment of a cache line another core wrote last (a fifth of its time
    /// in a stream of tiny tasks).
    static func keep(_ job: consuming _ThreadPoolJob, kind: ObjectIdentifier) {
        guard let magazine else { return } // freed as usual
        if magazine.pointee.kind != kind {
            // The magazine holds another kind: its jobs are freed (not taken to the depot), so that a
            // thread alternating kinds never takes the lock.
            magazine.pointee.jobs.removeAll()
            magazine.pointee.kind = kind
        } else if magazine.pointee.jobs.isFull {
            // Full: it goes to the depot, in exchange for an empty buffer if the depot has one.
            var leftovers: [JobBuffer] = []
            let full = magazine.pointee.jobs
            let empty = depot.withLock { depot -> JobBuffer? in
                leftovers = depot.storeFull(full, kind: kind)
                return depot.takeEmpty()
            }
            magazine.pointee.jobs = empty ?? JobBuffer()
            for buffer in leftovers { buffer.free() } // outside the depot's lock
        }
        magazine.pointee.jobs.push(job)
    }

    /// Whether `job` is referenced by nothing but the caller's strong reference.
    static func isUnreferenced(_ job: inout _ThreadPoolJob) -> Bool {
        // With no other strong reference, no new weak or unowned one can be made; an existing one would
        // see the reuse (a weak one would not become nil). Both counts include one for the object itself.
        guard isKnownUniquelyReferenced(&job) && _getWeakRetainCount(job) <= 1 && _getUnownedRetainCount(job) <= 1
        else { return false }
        // The uniqueness check is a relaxed load on ARM64 (the runtime reads the count with consume
        // ordering). The last other holder's release (swift_release, a releasing decrement) published
        // what it wrote before letting go: a result's state word after cancel(), the closure it dropped.
        // This fence pairs with that release, so the loads that follow (the state word, `body`) see
        // those writes and never a stale body of a result that was cancelled and dropped. Free on x86.
        atomicMemoryFence(ordering: .acquiring)
        return true
    }

    /// Slow path of `take`: swaps the thread's magazine (empty, or of another kind) for a full one of
    /// `kind` from the depot, if it has one.
    private static func refill(_ magazine: UnsafeMutablePointer<Magazine>, _ kind: ObjectIdentifier) -> Unmanaged<
        _ThreadPoolJob
    >? {
        var leftovers: [JobBuffer] = []
        let old = magazine.pointee.jobs
        let oldKind = magazine.pointee.kind
        let full = depot.withLock { depot -> JobBuffer? in
            guard let full = depot.takeFull(kind) else { return nil }
            if old.isFull, let oldKind {
                leftovers = depot.storeFull(old, kind: oldKind)
            } else if !(old.isEmpty && depot.storeEmpty(old)) {
                leftovers = [old] // part of a magazine of another kind, or a buffer the depot has no room for
            }
            return full
        }
        guard let full else {
            magazine.pointee.takesBeforeRefill = magazineSize
            return nil
        }
        magazine.pointee.jobs = full
        magazine.pointee.kind = kind
        for buffer in leftovers { buffer.free() } // outside the depot's lock
        return magazine.pointee.jobs.pop()
    }

    /// How many jobs of `kind` the depot keeps (for tests).
    static func depotCount(_ kind: ObjectIdentifier) -> Int {
        depot.withLock { $0.count(of: kind) }
    }
}
