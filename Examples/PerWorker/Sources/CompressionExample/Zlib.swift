// Just enough of zlib for the example: a raw-deflate stream reused block after block, and inflate to
// check the result.
import CZlib
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What went wrong inside zlib.
public struct CompressionError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// One block of the input, compressed: raw deflate data that ends on a byte boundary, and the CRC-32
/// and length of the block's input, for the gzip trailer.
public struct CompressedBlock: Sendable {
    public let deflated: [UInt8]
    public let crc: UInt
    public let length: Int
}

/// Counts the memory zlib allocates for its streams (through the z_stream's zalloc hook).
final class StreamMemory: Sendable {
    private let allocated = Atomic<Int>(0)

    var bytes: Int { allocated.load(ordering: .relaxed) }

    /// zlib's allocator for a z_stream whose `opaque` is a StreamMemory: malloc, counted.
    static let allocator: alloc_func = { opaque, items, size in
        let bytes = Int(items) * Int(size)
        Unmanaged<StreamMemory>.fromOpaque(opaque!).takeUnretainedValue().allocated.add(bytes, ordering: .relaxed)
        return malloc(bytes)
    }

    static let deallocator: free_func = { _, address in
        free(address)
    }
}

/// A deflate stream (about 270 KB of zlib state at the default memory level) and an output buffer,
/// reused for block after block: `deflateReset` puts the stream back to its state after
/// `deflateInit2` without freeing or zeroing its memory anew.
final class BlockCompressor {
    // zlib's state points back at its z_stream and checks it on every call: the z_stream must stay
    // at one address, so it is allocated, not a Swift property that may move.
    private let stream: UnsafeMutablePointer<z_stream>
    private var output: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var blocks = 0

    /// - Parameters:
    ///   - level: 0 (store) to 9 (smallest), or Z_DEFAULT_COMPRESSION.
    ///   - memory: counts what zlib allocates for the stream; it must outlive the stream.
    init(level: Int32, memory: StreamMemory) throws(CompressionError) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        stream.pointee.zalloc = StreamMemory.allocator
        stream.pointee.zfree = StreamMemory.deallocator
        stream.pointee.opaque = Unmanaged.passUnretained(memory).toOpaque()
        // windowBits -15: raw deflate, without zlib's or gzip's wrapper: the program writes one gzip
        // header and trailer around every block. memLevel 8 is zlib's default.
        let status = deflateInit2_(
            stream, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            throw CompressionError("deflateInit2 failed (\(status)): \(Self.message(status))")
        }
        capacity = 64 * 1024
        output = .allocate(capacity: capacity)
    }

    /// Frees the stream's memory; the compressor is not used afterwards.
    func end() {
        deflateEnd(stream)
        stream.deallocate()
        output.deallocate()
    }

    /// Compresses `block` on its own (no history from the blocks before it). A block that is not the
    /// last ends with a sync flush: its data ends on a byte boundary and does not end the deflate
    /// stream, so the next block's data can follow it. The last block ends the stream (Z_FINISH).
    func compress(_ block: UnsafeBufferPointer<UInt8>, isLast: Bool) throws(CompressionError) -> CompressedBlock {
        deflateReset(stream)
        blocks += 1
        // deflateBound is for Z_FINISH; a sync flush adds an empty stored block (5 bytes) at most.
        reserve(Int(deflateBound(stream, uLong(block.count))) + 16)
        stream.pointee.next_in = UnsafeMutablePointer(mutating: block.baseAddress)
        stream.pointee.avail_in = uInt(block.count)
        var produced = 0
        while true {
            stream.pointee.next_out = output + produced
            stream.pointee.avail_out = uInt(capacity - produced)
            let status = deflate(stream, isLast ? Z_FINISH : Z_SYNC_FLUSH)
            produced = capacity - Int(stream.pointee.avail_out)
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw CompressionError("deflate failed (\(status)): \(Self.message(status))")
            }
            let done = isLast ? status == Z_STREAM_END : stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0
            if done { break }
            if stream.pointee.avail_out == 0 { reserve(capacity * 2) } // never with the bound above
        }
        let crc = crc32(0, block.baseAddress, uInt(block.count))
        return CompressedBlock(
            deflated: Array(UnsafeBufferPointer(start: output, count: produced)), crc: crc,
            length: block.count)
    }

    /// Compresses the bytes of `input` in `block` (see ``compress(_:isLast:)``).
    func compress(_ block: Block, of input: [UInt8]) throws(CompressionError) -> CompressedBlock {
        try input.withUnsafeBufferPointer { (whole) throws(CompressionError) in
            try compress(UnsafeBufferPointer(rebasing: whole[block.range]), isLast: block.isLast)
        }
    }

    /// Makes the output buffer at least `size` bytes, keeping what it holds.
    private func reserve(_ size: Int) {
        guard size > capacity else { return }
        let larger = UnsafeMutablePointer<UInt8>.allocate(capacity: size)
        larger.update(from: output, count: capacity)
        output.deallocate()
        output = larger
        capacity = size
    }

    static func message(_ status: Int32) -> String {
        String(cString: zError(status))
    }
}

/// The gzip format (RFC 1952) around one deflate stream: a 10-byte header, the data, and a trailer of
/// the CRC-32 and the length (mod 2^32) of the uncompressed data, both little-endian.
enum Gzip {
    /// ID1 ID2, CM = 8 (deflate), FLG = 0 (no name, no comment), MTIME = 0 (none), XFL = 0, OS = 255
    /// (unknown).
    static let header: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]

    static func trailer(crc: UInt, length: Int) -> [UInt8] {
        let crc = UInt32(truncatingIfNeeded: crc)
        let size = UInt32(truncatingIfNeeded: length)
        return (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * $0)) }
            + (0..<4).map { UInt8(truncatingIfNeeded: size >> (8 * $0)) }
    }

    /// The CRC-32 of two pieces of data one after the other, from their own CRCs and the second one's
    /// length: what lets the workers compute the CRCs of their blocks in parallel.
    static func combine(_ first: UInt, _ second: UInt, secondLength: Int) -> UInt {
        crc32_combine(first, second, .init(secondLength)) // a z_off_t (off_t)
    }

    /// Decompresses gzip data as gunzip does (members one after another, each with its own trailer
    /// checked by zlib). Returns the data and the number of members.
    static func decompress(_ data: [UInt8]) throws(CompressionError) -> (bytes: [UInt8], members: Int) {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        // windowBits 15 + 16: a gzip wrapper (header and trailer) around a deflate stream.
        let status = inflateInit2_(stream, MAX_WBITS + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw CompressionError("inflateInit2 failed: \(BlockCompressor.message(status))") }
        defer { inflateEnd(stream) }
        var bytes: [UInt8] = []
        var members = 0
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        return try data.withUnsafeBufferPointer { (input) throws(CompressionError) in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.pointee.avail_in = uInt(input.count)
            while true {
                let (status, made) = chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.pointee.next_out = buffer.baseAddress
                    stream.pointee.avail_out = uInt(buffer.count)
                    let status = inflate(stream, Z_NO_FLUSH)
                    return (status, buffer.count - Int(stream.pointee.avail_out))
                }
                bytes.append(contentsOf: chunk[..<made])
                switch status {
                case Z_STREAM_END:
                    members += 1
                    if stream.pointee.avail_in == 0 { return (bytes, members) }
                    inflateReset(stream) // another member follows
                case Z_OK:
                    continue
                case Z_BUF_ERROR where stream.pointee.avail_in == 0:
                    throw CompressionError("the gzip data is cut short")
                default:
                    let detail = stream.pointee.msg.map { String(cString: $0) } ?? BlockCompressor.message(status)
                    throw CompressionError("not valid gzip data: \(detail)")
                }
            }
        }
    }
}
