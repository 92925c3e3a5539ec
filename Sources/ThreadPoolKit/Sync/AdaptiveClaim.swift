/// How many consecutive chunks a runner of a chunked loop (`map`, `concurrentPerform`) claims from the
/// loop's shared counter at once. With chunk size 1 and cheap items, one atomic increment per item on a
/// counter every runner writes would cost more than the items; claiming many at once costs balance
/// when items are slow. So a claim starts at one chunk, doubles while claims take under half of
/// ``targetNanoseconds``, halves when one takes over twice that, and never exceeds a fair share of what
/// is left, so that the runners finish together.
///
/// Inlined into the loops (and from them into the client's code), where it costs one clock read per
/// claim (a vDSO call, no syscall).
@usableFromInline
struct AdaptiveClaim {
    /// How long the chunks of one claim should take: long enough to amortize the claim, short enough
    /// that load balance does not suffer.
    @inlinable static var targetNanoseconds: UInt64 { 4_000 }

    /// The chunks the next claim takes.
    @usableFromInline var size = 1
    /// When the last claim was made.
    @usableFromInline var claimedAt: UInt64

    @inlinable
    init() {
        claimedAt = monotonicNanoseconds()
    }

    /// Sizes the next claim, after the chunks of the last one, which ended at chunk `end` of
    /// `chunkCount`, have run; `runners` threads share the loop.
    @inlinable
    mutating func update(end: Int, chunkCount: Int, runners: Int) {
        let now = monotonicNanoseconds()
        let elapsed = now &- claimedAt
        claimedAt = now
        if elapsed < Self.targetNanoseconds / 2 {
            size = size < Int.max / 2 ? size &* 2 : size
        } else if elapsed > Self.targetNanoseconds &* 2 && size > 1 {
            size /= 2
        }
        size = min(size, max(1, (chunkCount &- end) / (2 &* max(runners, 1))))
    }
}
