/// Where threads hand each other buffers of kept jobs (see ``JobRecycler``): full buffers by kind, and
/// emptied ones, so that moving jobs between threads allocates nothing.
///
/// Bounded: ``magazinesPerKind`` full buffers of each of ``kinds`` kinds, and ``magazinesPerKind`` empty
/// ones. What it has no room for is handed back to the caller, to be freed after the lock is released.
///
/// Not synchronized: ``JobRecycler`` keeps it in a `Locked`.
struct JobDepot {
    /// The full buffers of one kind.
    private struct Shelf {
        let kind: ObjectIdentifier
        var full: [JobBuffer]
    }

    let magazinesPerKind: Int
    let kinds: Int
    /// Found by a linear search (a dictionary's in-place updates allocated on every miss). An empty
    /// shelf stays until another kind needs its place, so that its array is not made again and again.
    private var shelves: [Shelf] = []
    private var empties: [JobBuffer] = []

    init(magazinesPerKind: Int, kinds: Int) {
        self.magazinesPerKind = magazinesPerKind
        self.kinds = kinds
    }

    /// A full buffer of `kind`, or nil.
    mutating func takeFull(_ kind: ObjectIdentifier) -> JobBuffer? {
        guard let shelf = shelves.firstIndex(where: { $0.kind == kind }) else { return nil }
        return shelves[shelf].full.popLast()
    }

    /// Stores a full buffer of `kind`. Returns what the depot did not keep: the buffer, if its kind has
    /// no room, or the buffers of the kind evicted to make room for a new kind.
    mutating func storeFull(_ buffer: JobBuffer, kind: ObjectIdentifier) -> [JobBuffer] {
        if let shelf = shelves.firstIndex(where: { $0.kind == kind }) {
            guard shelves[shelf].full.count < magazinesPerKind else { return [buffer] }
            shelves[shelf].full.append(buffer)
            return []
        }
        var evicted: [JobBuffer] = []
        if shelves.count >= kinds {
            let victim = shelves.firstIndex(where: { $0.full.isEmpty }) ?? 0
            evicted = shelves.remove(at: victim).full
        }
        shelves.append(Shelf(kind: kind, full: [buffer]))
        return evicted
    }

    /// An empty buffer, or nil.
    mutating func takeEmpty() -> JobBuffer? {
        empties.popLast()
    }

    /// Keeps an empty buffer for ``takeEmpty()``; false (the caller keeps it) if the depot has enough.
    mutating func storeEmpty(_ buffer: JobBuffer) -> Bool {
        guard buffer.isEmpty, empties.count < magazinesPerKind else { return false }
        empties.append(buffer)
        return true
    }

    /// How many jobs of `kind` the depot keeps.
    func count(of kind: ObjectIdentifier) -> Int {
        shelves.first { $0.kind == kind }?.full.reduce(0) { $0 + $1.count } ?? 0
    }
}
