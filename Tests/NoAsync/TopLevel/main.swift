// Type-checked by scripts/check-noasync.sh as a program's main.swift: top-level code that awaits the
// pool, as a script is written, must compile (overload resolution treats top-level code as
// synchronous, so the blocking overloads of map, broadcast, join and withThreadPool must not be
// `noasync`).
import ThreadPoolKit

let pool = try ThreadPool(threads: 2)
let squares = try await pool.map([1, 2, 3]) { $0 * $0 }
let indices = try await pool.broadcast { $0.index }
let sum = try await withThreadPool(threads: 1) { inner in try inner.apply { 40 + 2 } }
print(squares, indices, sum)
pool.close()
try await pool.join()

// Inside a loop body at the top level, overload resolution picks the blocking overloads: they must
// compile there (they block the main thread, as a script expects).
for round in 0..<2 {
    let roundPool = try ThreadPool(threads: 1)
    _ = try await roundPool.map([round]) { $0 }
    roundPool.close()
    try await roundPool.join()
}
