/// Where threads hand each other magazines of kept jobs (see ``JobRecycler``): full magazines by kind,
/// and the arrays of emptied ones, so that moving jobs between threads allocates nothing.
///
/// Bounded: ``magazinesPerKind`` full magazines of each of ``kinds`` kinds, and as many empty arrays.
/// What it has no room for is handed back to the caller, to be freed after the lock is released.
///
/// Not synchronized: ``JobRecycler`` keeps it in a `Locked`.
struct JobDepot {
    /// The full magazines of one kind.
    private struct Shelf {
        let kind: ObjectIdentifier
        var magazines: [[_ThreadPoolJob]]
    }

    let magazinesPerKind: Int
    let kinds: Int
    /// Found by a linear search (a dictionary's in-place updates allocated on every miss). An empty
    /// shelf stays until another kind needs its place, so that its array is not made again and again.
    private var shelves: [Shelf] = []
    /// Emptied magazine arrays, with their capacity.
    private var empties: [[_ThreadPoolJob]] = []

    init(magazinesPerKind: Int, kinds: Int) {
        self.magazinesPerKind = magazinesPerKind
        self.kinds = kinds
    }

    /// A full magazine of `kind`, or nil.
    mutating func takeFull(_ kind: ObjectIdentifier) -> [_ThreadPoolJob]? {
        guard let shelf = shelves.firstIndex(where: { $0.kind == kind }) else { return nil }
        return shelves[shelf].magazines.popLast()
    }

    /// Stores a full magazine of `kind`. Returns what the depot did not keep: the magazine, if its kind
    /// has no room, or the magazines of the kind evicted to make room for a new kind.
    mutating func storeFull(_ magazine: [_ThreadPoolJob], kind: ObjectIdentifier) -> [[_ThreadPoolJob]] {
        if let shelf = shelves.firstIndex(where: { $0.kind == kind }) {
            guard shelves[shelf].magazines.count < magazinesPerKind else { return [magazine] }
            shelves[shelf].magazines.append(magazine)
            return []
        }
        var evicted: [[_ThreadPoolJob]] = []
        if shelves.count >= kinds {
            let victim = shelves.firstIndex(where: { $0.magazines.isEmpty }) ?? 0
            evicted = shelves.remove(at: victim).magazines
        }
        shelves.append(Shelf(kind: kind, magazines: [magazine]))
        return evicted
    }

    /// An emptied magazine array (with room for a magazine), or nil.
    mutating func takeEmpty() -> [_ThreadPoolJob]? {
        empties.popLast()
    }

    /// Keeps an emptied magazine array for ``takeEmpty()``; false if the depot has enough of them.
    mutating func storeEmpty(_ magazine: inout [_ThreadPoolJob]) -> Bool {
        guard magazine.isEmpty, empties.count < kinds * magazinesPerKind else { return false }
        empties.append(magazine)
        magazine = []
        return true
    }

    /// How many jobs of `kind` the depot keeps.
    func count(of kind: ObjectIdentifier) -> Int {
        shelves.first { $0.kind == kind }?.magazines.reduce(0) { $0 + $1.count } ?? 0
    }
}
