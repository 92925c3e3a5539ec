import Synchronization

/// The priorities that ``ThreadPool/run(priority:_:)`` gives a task's own job instead of the task's,
/// for ``ThreadPool/enqueue(_:)`` to queue it with, and the slots of a bounded queue it reserved for
/// that job (``ThreadPool/Configuration/queueCapacity``: `run` waits for room before the task moves
/// onto the pool, and the job then goes into the room it holds).
///
/// A job's `ExecutorJob/priority` is its task's, and cannot be set. A child task created with another
/// priority does not carry it either: in Swift 6.3 a child task's job is enqueued with its parent's
/// priority, whatever priority the child was created with (its base priority). So `run` names the
/// calling task here, with the priority, just before the task moves onto the pool; the runtime then
/// enqueues the task's job, from the same thread, and `enqueue` takes the entry. A task's job is the
/// task itself (`AsyncTask` is a `Job`, its first base), so the two are matched by address, which is
/// only compared, never followed: were the runtime to change that, the job would simply keep its
/// task's priority.
final class JobPriorities: Sendable {
    /// One table for every pool: an entry is taken by the next enqueue of its task's job, which `run`
    /// makes on the pool that set it.
    static let shared = JobPriorities()

    /// Entries, so that every other job costs `enqueue` one load. Relaxed: an entry is made on the
    /// thread that then enqueues the task's job, or that hands the task to the thread that does.
    private let count = Atomic<Int>(0)
    /// Task (job) address -> what its next enqueue takes.
    private let entries = Locked<[UInt: Entry]>([:])

    /// What `run` set for a task's job: a priority raw value (nil: the job's own), and whether a slot
    /// of the pool's bounded queue is reserved for it.
    struct Entry {
        var priority: UInt8?
        var reserved: Bool
    }

    /// The calling task's address, or nil outside a task.
    static var currentTask: UInt? {
        withUnsafeCurrentTask { task in
            task.map { UInt(bitPattern: unsafeBitCast($0, to: Int.self)) } // one pointer (checked in tests)
        }
    }

    /// The job of `task` (the calling task's ``currentTask``) is to be queued with `priority` at its
    /// next enqueue (on the pool `run` moves it to).
    func set(_ priority: TaskPriority?, reserved: Bool, forJobOf task: UInt) {
        entries.withLock { $0[task] = Entry(priority: priority?.rawValue, reserved: reserved) }
        count.wrappingAdd(1, ordering: .relaxed)
    }

    /// Removes the entry of `task` if its job has not taken it (it ran without being enqueued: the
    /// task was on a worker of this pool already), and returns it: a slot it reserved is the caller's
    /// to give back.
    func remove(forJobOf task: UInt) -> Entry? {
        let entry = entries.withLock { $0.removeValue(forKey: task) }
        if entry != nil { count.wrappingSubtract(1, ordering: .relaxed) }
        return entry
    }

    /// The priority raw value `job` is to be queued with (its own, or the one `run` set for it), and
    /// whether it goes into a reserved slot.
    @inline(__always)
    func take(for job: UnownedJob, own: UInt8) -> (priority: UInt8, reserved: Bool) {
        guard count.load(ordering: .relaxed) > 0 else { return (own, false) }
        let key = UInt(bitPattern: unsafeBitCast(job, to: Int.self))
        guard let entry = entries.withLock({ $0.removeValue(forKey: key) }) else { return (own, false) }
        count.wrappingSubtract(1, ordering: .relaxed)
        return (entry.priority ?? own, entry.reserved)
    }
}
