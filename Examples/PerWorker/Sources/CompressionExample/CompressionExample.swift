// Per-worker compression streams: each worker of the pool makes its own zlib deflate stream and
// output buffer in the pool's initializer, keeps them in a ThreadLocal and reuses them (deflateReset)
// for every block it compresses, and frees them in the finalizer. `imap` hands the compressed blocks
// back in input order, so the caller writes them out as they come, into one gzip file.
//
// The output is a single gzip member, as pigz makes it: the gzip header, then each block's raw
// deflate data (every block but the last ends with a sync flush, on a byte boundary, without ending
// the deflate stream; the last one ends it), then the trailer. The trailer's CRC-32 of the whole
// input is computed from the blocks' own CRCs (each computed on a worker) with crc32_combine, in
// order. Blocks are compressed independently (no shared history): simple, at a small cost in size.
// A single member is what every gzip reader handles; concatenated members (one per block) would be
// valid gzip too (gunzip reads them all), but a reader that runs zlib's inflate once would stop
// after the first block.
//
// What reuse saves: each zlib stream is about 270 KB of state, allocated by deflateInit2 and freed
// by deflateEnd. With glibc's malloc that costs about a microsecond, small next to compressing a
// 16 KiB block, so the two ways take about the same time here; the program shows the memory zlib
// allocated each way. (Costlier state shows in the time: an SQLite connection, PerWorkerDatabase.)
//
// Everything that runs on a worker is written in this file's functions, which are nonisolated: a
// closure written in main.swift's top-level code would be main-actor isolated and trap on a worker.
import ExampleSupport
import Synchronization
import ThreadPoolKit

// zlib itself (BlockCompressor: the stream and its buffer; the gzip header and trailer) is in Zlib.swift.

// MARK: Each worker's stream

/// One stream's life: the worker that used it and the blocks it compressed.
public struct StreamUse: Sendable, Equatable {
    public let worker: String
    public let blocks: Int
}

/// The compressors of one run: the calling worker's own (in a `ThreadLocal`), and a count of every
/// stream created and ended, which the tests check.
final class Compressors: Sendable {
    private let compressor = ThreadLocal<BlockCompressor?> { nil }
    private let createdCount = Atomic<Int>(0)
    private let endedLog = Locked<[StreamUse]>([])
    let memory = StreamMemory()
    let level: Int32

    init(level: Int32) {
        self.level = level
    }

    var created: Int { createdCount.load(ordering: .relaxed) }
    var ended: [StreamUse] { endedLog.withLock { $0 } }

    // Per worker: the pool's initializer and finalizer call these, on each worker.

    func createForThisWorker() throws(CompressionError) {
        compressor.value = try create()
    }

    func endForThisWorker() {
        if let current = compressor.value {
            end(current)
            compressor.value = nil
        }
    }

    /// The calling worker's compressor, in a task.
    var current: BlockCompressor {
        guard let current = compressor.value else {
            preconditionFailure("the stream is made by the pool's initializer, on each of its workers")
        }
        return current
    }

    // Per task: create, use, end.

    func withNewCompressor<T>(_ body: (BlockCompressor) throws -> T) throws -> T {
        let temporary = try create()
        defer { end(temporary) }
        return try body(temporary)
    }

    private func create() throws(CompressionError) -> BlockCompressor {
        let made = try BlockCompressor(level: level, memory: memory)
        createdCount.add(1, ordering: .relaxed)
        return made
    }

    private func end(_ compressor: BlockCompressor) {
        let use = StreamUse(worker: ThreadPool.currentWorker?.name ?? "main", blocks: compressor.blocks)
        compressor.end()
        endedLog.withLock { $0.append(use) }
    }
}

// MARK: The two ways to compress

/// What a run wrote, how long it took (pool start to join, writing included), and the streams it used.
public struct CompressionRun: Sendable {
    public let compressedBytes: Int
    public let blocks: Int
    public let elapsed: Duration
    public let streamsCreated: Int
    /// Every stream ended, with the worker that ended it and the blocks it compressed.
    public let streamsEnded: [StreamUse]
    /// The memory zlib allocated for the streams, in bytes.
    public let streamMemory: Int
}

/// The example: a pool whose initializer makes one deflate stream per worker and whose finalizer
/// ends it; `imap` compresses the blocks on the workers, each with its worker's stream, and returns
/// them in input order, as they are ready; `write` gets the gzip file piece by piece, on the calling
/// thread.
/// - Parameter level: zlib's compression level, 0...9.
public func gzipWithPerWorkerStreams(
    _ input: [UInt8], blockSize: Int, threads: Int?, level: Int32,
    write: (UnsafeRawBufferPointer) throws -> Void
) throws -> CompressionRun {
    let compressors = Compressors(level: level)
    let blocks = Block.split(count: input.count, size: blockSize)
    let (size, elapsed) = try timed {
        try withThreadPool(
            threads: threads, name: "gzip",
            initializer: { try compressors.createForThisWorker() },
            finalizer: { compressors.endForThisWorker() }
        ) { pool in
            // At most `bufferSize` blocks are compressed ahead of the writer: memory stays bounded
            // however large the input.
            let compressed = try pool.imap(blocks, bufferSize: 4 * pool.threadCount) { block in
                try compressors.current.compress(block, of: input)
            }
            return try writeGzipMember(compressed, write: write)
        }
    }
    return CompressionRun(
        compressedBytes: size, blocks: blocks.count, elapsed: elapsed,
        streamsCreated: compressors.created, streamsEnded: compressors.ended,
        streamMemory: compressors.memory.bytes)
}

/// The same work without worker state: every task makes a deflate stream and its buffer, compresses
/// its block, and frees them.
public func gzipWithStreamPerTask(
    _ input: [UInt8], blockSize: Int, threads: Int?, level: Int32,
    write: (UnsafeRawBufferPointer) throws -> Void
) throws -> CompressionRun {
    let compressors = Compressors(level: level)
    let blocks = Block.split(count: input.count, size: blockSize)
    let (size, elapsed) = try timed {
        try withThreadPool(threads: threads, name: "gzip") { pool in
            let compressed = try pool.imap(blocks, bufferSize: 4 * pool.threadCount) { block in
                try compressors.withNewCompressor { try $0.compress(block, of: input) }
            }
            return try writeGzipMember(compressed, write: write)
        }
    }
    return CompressionRun(
        compressedBytes: size, blocks: blocks.count, elapsed: elapsed,
        streamsCreated: compressors.created, streamsEnded: compressors.ended,
        streamMemory: compressors.memory.bytes)
}

/// Writes the gzip header, each block's data as `blocks` hands it out (in input order), and the
/// trailer, with the CRCs of the blocks combined in order. Returns the bytes written.
func writeGzipMember(
    _ blocks: ResultIterator<CompressedBlock>,
    write: (UnsafeRawBufferPointer) throws -> Void
) throws -> Int {
    try Gzip.header.withUnsafeBytes(write)
    var written = Gzip.header.count
    var crc: UInt = 0
    var length = 0
    while let block = try blocks.next() {
        try block.deflated.withUnsafeBytes(write)
        written += block.deflated.count
        crc = Gzip.combine(crc, block.crc, secondLength: block.length)
        length += block.length
    }
    let trailer = Gzip.trailer(crc: crc, length: length)
    try trailer.withUnsafeBytes(write)
    return written + trailer.count
}

// MARK: The blocks, and checking the result

/// A block of the input: its byte range, and whether it is the last one (which ends the stream).
public struct Block: Sendable {
    public let range: Range<Int>
    public let isLast: Bool

    /// The input cut into blocks of `size` bytes (the last may be shorter). Empty input: one empty
    /// block, which still makes a valid (empty) deflate stream.
    public static func split(count: Int, size: Int) -> [Block] {
        let starts = Array(stride(from: 0, to: max(count, 1), by: size))
        return starts.map { Block(range: $0..<min($0 + size, count), isLast: $0 == starts.last) }
    }
}

/// Decompresses gzip data with zlib, as gunzip would. Returns the data and the number of gzip members.
public func gunzipWithZlib(_ data: [UInt8]) throws(CompressionError) -> (bytes: [UInt8], members: Int) {
    try Gzip.decompress(data)
}
