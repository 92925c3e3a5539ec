/// Identifies one worker thread of a ``ThreadPool``.
public struct WorkerInfo: Sendable, Hashable {
    /// The worker's 0-based position in its pool, in `0 ..< threadCount`.
    public let index: Int
    /// The worker's full name: `"Thread-N"` (N from a process-wide counter, as Python names threads), or
    /// `"<name>-<index + 1>"` when the pool was given a name. The OS thread name is this cut to 15 bytes.
    public let name: String

    /// Makes a worker description (for tests and comparisons; the pool makes its own).
    public init(index: Int, name: String) {
        self.index = index
        self.name = name
    }
}
