// The PerWorkerCompression program: arguments, the runs, what it prints, and its exit status.
import ExampleSupport
import ThreadPoolKit

public let compressionUsage = """
    usage: PerWorkerCompression [--threads N] [--input FILE | --megabytes N] [--block-kib N] [--level N] [OUTPUT.gz]

    Compresses data in blocks on a thread pool whose workers each make their own zlib stream and
    buffer in the pool's initializer, reuse them for every block, and free them in the finalizer;
    imap returns the blocks in order and they are written as one gzip file, which is then checked by
    decompressing it with zlib. Then does the same work making a stream for every block, and compares.

      OUTPUT.gz      the gzip file to write (default: one in a temporary directory, removed at the end)
      --input FILE   the data to compress (default: generated log text)
      --megabytes N  how much log text to generate (default: 8)
      --block-kib N  block size in KiB (default: 16)
      --level N      zlib's compression level, 0-9 (default: 6)
      --threads N    workers (default: the number of CPUs)
    """

/// Each way of running is timed this many times; the best time is shown.
let timedCompressionRuns = 3

/// Runs the program with `arguments` (without the program's name) and returns its exit status:
/// 0, 1 for an error (a message on `console.err`, never a crash), 2 for a usage error.
public func runCompressionExample(arguments: [String], console: Console = .standard) -> Int32 {
    var temporary: TemporaryDirectory?
    defer { temporary?.remove() }
    do {
        let parsed = try Arguments(
            arguments, valued: ["threads", "input", "megabytes", "block-kib", "level"],
            flags: ["help"])
        if parsed.flags.contains("help") {
            console.out(compressionUsage)
            return 0
        }
        let threads: Int? =
            parsed.options["threads"] == nil
            ? nil : try parsed.integer("threads", default: 1, in: 1...ThreadPool.maximumThreadCount)
        let megabytes = try parsed.integer("megabytes", default: 8, in: 0...4096)
        let blockSize = try parsed.integer("block-kib", default: 16, in: 1...65536) * 1024
        let level = Int32(try parsed.integer("level", default: 6, in: 0...9))
        guard parsed.positional.count <= 1 else { throw UsageError("give at most one output file") }
        if parsed.options["input"] != nil && parsed.options["megabytes"] != nil {
            throw UsageError("give --input or --megabytes, not both")
        }

        let input: [UInt8]
        let what: String
        if let path = parsed.options["input"] {
            input = try readFile(path)
            what = path
        } else {
            input = generateLogText(count: megabytes * 1024 * 1024)
            what = "generated log text"
        }
        let outputPath: String
        if let given = parsed.positional.first {
            outputPath = given
        } else {
            temporary = try TemporaryDirectory(prefix: "PerWorkerCompression")
            outputPath = temporary!.file("output.gz")
        }

        // The example: one stream per worker. Timed a few times; every run writes the same file.
        var perWorker = try gzipFile(
            input, to: outputPath, perWorkerStreams: true, blockSize: blockSize,
            threads: threads, level: level)
        for _ in 1..<timedCompressionRuns {
            let again = try gzipFile(
                input, to: outputPath, perWorkerStreams: true, blockSize: blockSize,
                threads: threads, level: level)
            if again.elapsed < perWorker.elapsed { perWorker = again }
        }
        console.out(
            """
            Compressed \(mebibytes(input.count)) of \(what) in \(counted(perWorker.blocks, "block")) \
            of \(blockSize / 1024) KiB, level \(level), on \(counted(perWorker.streamsEnded.count, "worker")).
            Wrote \(outputPath): \(counted(perWorker.compressedBytes, "byte"))\
            \(percentage(perWorker.compressedBytes, of: input.count)).
            """)
        let uses = perWorker.streamsEnded.sorted { $0.worker < $1.worker }
            .map { "\($0.worker) compressed \(counted($0.blocks, "block"))" }
        console.out(
            "Streams: \(perWorker.streamsCreated) made by the initializer (zlib allocated "
                + "\(mebibytes(perWorker.streamMemory)) for them), \(perWorker.streamsEnded.count) ended by the finalizer "
                + "(\(uses.joined(separator: ", ")))")

        let written = try readFile(outputPath)
        let check = try gunzipWithZlib(written)
        guard check.bytes == input else {
            console.err("error: \(outputPath) does not decompress to the input")
            return 1
        }
        console.out(
            "Checked with zlib's inflate: \(counted(check.members, "gzip member")), "
                + "\(counted(check.bytes.count, "byte")), identical to the input.")

        // The same work with a stream per block.
        var perTask = try gzipFile(
            input, to: outputPath, perWorkerStreams: false, blockSize: blockSize,
            threads: threads, level: level)
        for _ in 1..<timedCompressionRuns {
            let again = try gzipFile(
                input, to: outputPath, perWorkerStreams: false, blockSize: blockSize,
                threads: threads, level: level)
            if again.elapsed < perTask.elapsed { perTask = again }
        }
        guard try readFile(outputPath) == written else {
            console.err("error: the output with a stream per block differs")
            return 1
        }
        console.out(
            """

            Time for pool start, imap and writing the file (\(counted(perWorker.streamsEnded.count, "worker")), \
            best of \(timedCompressionRuns) runs; both ways write the same file):
              a stream per worker, reused with deflateReset: \(perWorker.elapsed.formatted) \
            (\(counted(perWorker.streamsCreated, "stream")), \(mebibytes(perWorker.streamMemory)) allocated by zlib)
              a new stream and buffer for every block:       \(perTask.elapsed.formatted) \
            (\(counted(perTask.streamsCreated, "stream")), \(mebibytes(perTask.streamMemory)) allocated by zlib, \
            \(ratio(perTask.elapsed, against: perWorker.elapsed)))
            """)
        return 0
    } catch let error as UsageError {
        console.err("error: \(error)\n\n\(compressionUsage)")
        return 2
    } catch {
        console.err("error: \(describeCompressionError(error))")
        return 1
    }
}

/// Compresses `input` into the gzip file `path` (created or truncated) with one of the two ways.
public func gzipFile(
    _ input: [UInt8], to path: String, perWorkerStreams: Bool, blockSize: Int, threads: Int?,
    level: Int32
) throws -> CompressionRun {
    let file = try OutputFile(path: path)
    let run =
        perWorkerStreams
        ? try gzipWithPerWorkerStreams(input, blockSize: blockSize, threads: threads, level: level, write: file.write)
        : try gzipWithStreamPerTask(input, blockSize: blockSize, threads: threads, level: level, write: file.write)
    try file.close()
    return run
}

/// A sentence for the user. A worker whose initializer could not make its stream makes the pool's
/// `init` throw `ThreadPoolError.initializerFailed`: say which worker and what zlib said.
public func describeCompressionError(_ error: any Error) -> String {
    if let poolError = error as? ThreadPoolError, case .initializerFailed(let worker, let underlying) = poolError {
        return "worker \(worker + 1) could not make its zlib stream: \(underlying)"
    }
    return "\(error)"
}

/// " (22.4% of the input)", or nothing for an empty input.
func percentage(_ part: Int, of whole: Int) -> String {
    whole == 0 ? "" : " (\(decimal(100 * Double(part) / Double(whole), digits: 1))% of the input)"
}

/// 8388608 as "8.0 MiB".
func mebibytes(_ count: Int) -> String {
    "\(decimal(Double(count) / 1_048_576, digits: 1)) MiB"
}
