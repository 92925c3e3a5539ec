/// Results an imap's consumer took from the shared ``ResultQueue`` in one go and has not handed out
/// yet, in reading order.
///
/// Taking every ready result per acquisition of the iterator's shared lock (which the runners take
/// to pull and settle batches) and handing them out one by one from here, under a lock of their own that only
/// consumers take, saves a contended lock round trip per result. The window still counts these as
/// in flight: `handedOut` tells the shared state how many were read, the next time the consumer
/// takes results from it.
@usableFromInline
struct TakenResults<T: Sendable> {
    /// Nil once handed out: the iterator keeps no reference to a result it handed out.
    @usableFromInline var results: [Result<T, any Error>?] = []
    /// Index in `results` of the next one to hand out.
    @usableFromInline var head = 0
    /// Results handed out from here since the shared state last heard of it.
    @usableFromInline var handedOut = 0

    @inlinable init() {}

    /// Removes and returns the next result, if any.
    @inlinable mutating func pop() -> Result<T, any Error>? {
        guard head < results.count, let result = results[head] else { return nil }
        results[head] = nil
        head += 1
        handedOut += 1
        if head == results.count {
            results.removeAll(keepingCapacity: true)
            head = 0
        }
        return result
    }

    /// How many results are here, handed out or not.
    @inlinable var count: Int { results.count }

    /// Adds a result at the back.
    @inlinable mutating func append(_ result: Result<T, any Error>) {
        results.append(result)
    }
}
