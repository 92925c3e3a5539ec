/// Room for ``JobRecycler/magazineSize`` kept jobs, each with the references its class needs
/// (``_ThreadPoolJob/keptReferences``), in raw storage: taking or keeping a job is a load or a store
/// and a count, with none of an array's uniqueness checks on the path that runs once per task.
///
/// A buffer has exactly one owner at a time: a thread's magazine, the ``JobDepot``, or a local
/// variable about to ``free()`` it. Copies share the storage, so the owner hands it on by moving it
/// and never uses its copy again.
struct JobBuffer {
    private let slots: UnsafeMutablePointer<Unmanaged<_ThreadPoolJob>>
    /// The jobs are `slots[0..<count]`.
    private(set) var count = 0

    static var capacity: Int { JobRecycler.magazineSize }

    init() {
        slots = .allocate(capacity: Self.capacity)
    }

    var isEmpty: Bool { count == 0 }
    var isFull: Bool { count == Self.capacity }

    /// Adds `job`, whose reference moves in, with as many more as its class keeps
    /// (``_ThreadPoolJob/keptReferences``). The buffer must not be full.
    @inline(__always)
    mutating func push(_ job: consuming _ThreadPoolJob) {
        let secondReference = job.keptReferences == 2
        let kept = Unmanaged.passRetained(job)
        if secondReference { _ = kept.retain() }
        (slots + count).initialize(to: kept)
        count += 1
    }

    /// The last job added, whose references move out; nil when empty.
    mutating func pop() -> Unmanaged<_ThreadPoolJob>? {
        guard count > 0 else { return nil }
        count -= 1
        return slots[count]
    }

    /// Drops every job's references (they are freed as usual), leaving the buffer empty.
    mutating func removeAll() {
        for index in 0..<count {
            if slots[index]._withUnsafeGuaranteedRef({ $0.keptReferences == 2 }) { slots[index].release() }
            slots[index].release()
        }
        count = 0
    }

    /// Drops every job's references and frees the storage. The buffer must not be used again.
    consuming func free() {
        removeAll()
        slots.deallocate()
    }
}
