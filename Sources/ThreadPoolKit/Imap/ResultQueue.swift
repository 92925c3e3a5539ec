/// The results of an imap that the consumer has not read yet, in the order it reads them.
///
/// For `imap` every pulled item reserves a slot at the back, in input order, and its result fills
/// the slot when it is done; the front is ready once its slot is filled. For `imapUnordered` results
/// are appended as they complete. Slots live in one array with a moving head (`head`), compacted when
/// the read part dominates, so each result costs no allocation of its own.
@usableFromInline
struct ResultQueue<T: Sendable> {
    @usableFromInline var slots: [Result<T, any Error>?] = []

    @inlinable init() {}
    /// Index in `slots` of the next result to read.
    @usableFromInline var head = 0
    /// The input index of `slots[head]` (imap only).
    @usableFromInline var headIndex = 0

    /// Reserves the slot of the next input index (imap).
    @inlinable mutating func reserve() {
        slots.append(nil)
    }

    /// Fills the reserved slot of input index `index` (imap).
    @inlinable mutating func fill(_ index: Int, with result: Result<T, any Error>) {
        slots[head + (index - headIndex)] = result
    }

    /// Appends a result in completion order (imapUnordered).
    @inlinable mutating func append(_ result: Result<T, any Error>) {
        slots.append(result)
    }

    /// Whether the front result is ready.
    @inlinable var hasReady: Bool {
        head < slots.count && slots[head] != nil
    }

    /// Removes and returns the front result if it is ready.
    @inlinable mutating func popReady() -> Result<T, any Error>? {
        guard head < slots.count, let result = slots[head] else { return nil }
        slots[head] = nil
        advance()
        return result
    }

    /// Removes the front slot, reserved and empty: its result was handed out from the runner's
    /// ``PulledBatch`` directly (imap).
    @inlinable mutating func skipReserved() {
        advance()
    }

    /// Moves past the front slot.
    @inlinable mutating func advance() {
        head += 1
        headIndex += 1
        if head == slots.count {
            slots.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= slots.count {
            slots.removeFirst(head)
            head = 0
        }
    }
}
