import CompressionExample
import ExampleSupport
import Foundation
import Testing
import ThreadPoolKit

@Suite("PerWorkerCompression")
struct PerWorkerCompressionTests {
    /// Compresses `input` one of the two ways into memory.
    static func gzip(
        _ input: [UInt8], perWorker: Bool, blockSize: Int, threads: Int,
        level: Int32 = 6
    ) throws -> (output: [UInt8], run: CompressionRun) {
        var output: [UInt8] = []
        let append = { (bytes: UnsafeRawBufferPointer) in output.append(contentsOf: bytes) }
        let run =
            perWorker
            ? try gzipWithPerWorkerStreams(input, blockSize: blockSize, threads: threads, level: level, write: append)
            : try gzipWithStreamPerTask(input, blockSize: blockSize, threads: threads, level: level, write: append)
        return (output, run)
    }

    @Test(
        "one stream per worker: decompresses byte for byte; exactly `threads` streams made and ended",
        arguments: [1, 2, 3, 5])
    func perWorkerStreams(threads: Int) throws {
        let input = generateLogText(count: 1_000_003)
        let blockSize = 8 * 1024
        let (output, run) = try Self.gzip(input, perWorker: true, blockSize: blockSize, threads: threads)
        let check = try gunzipWithZlib(output)
        #expect(check.bytes == input)
        #expect(check.members == 1)
        #expect(run.compressedBytes == output.count)
        #expect(output.count < input.count / 3)
        #expect(run.blocks == (input.count + blockSize - 1) / blockSize)
        #expect(run.streamsCreated == threads)
        #expect(run.streamsEnded.count == threads)
        #expect(Set(run.streamsEnded.map(\.worker)) == Set((1...threads).map { "gzip-\($0)" }))
        #expect(run.streamsEnded.reduce(0) { $0 + $1.blocks } == run.blocks)
    }

    @Test("a stream per task: the same bytes, one stream per block")
    func streamPerTask() throws {
        let input = generateLogText(count: 300_000)
        let perWorker = try Self.gzip(input, perWorker: true, blockSize: 4096, threads: 3)
        let perTask = try Self.gzip(input, perWorker: false, blockSize: 4096, threads: 3)
        #expect(perTask.output == perWorker.output)
        #expect(perTask.run.streamsCreated == perTask.run.blocks)
        #expect(perTask.run.streamsEnded.count == perTask.run.blocks)
        #expect(perTask.run.streamMemory > perWorker.run.streamMemory * 10)
    }

    @Test(
        "edge sizes and levels: empty, one byte, exactly a block, a block and a byte",
        arguments: [0, 1, 4096, 4097], [0, 1, 9])
    func edgeSizes(count: Int, level: Int) throws {
        let input = generateLogText(count: count)
        let (output, run) = try Self.gzip(input, perWorker: true, blockSize: 4096, threads: 2, level: Int32(level))
        #expect(try gunzipWithZlib(output).bytes == input)
        #expect(run.blocks == max(1, (count + 4095) / 4096))
        #expect(run.streamsCreated == 2)
        #expect(run.streamsEnded.count == 2)
    }

    @Test("random bytes (incompressible) survive too")
    func incompressible() throws {
        var random = SplitMix64(seed: 7)
        let input = (0..<200_000).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let (output, _) = try Self.gzip(input, perWorker: true, blockSize: 10_000, threads: 2)
        #expect(try gunzipWithZlib(output).bytes == input)
    }

    @Test("damaged gzip data is an error, not a crash")
    func damaged() throws {
        let input = generateLogText(count: 50_000)
        var (output, _) = try Self.gzip(input, perWorker: true, blockSize: 4096, threads: 2)
        output[output.count - 6] ^= 0xff // the CRC in the trailer
        #expect(throws: (any Error).self) { try gunzipWithZlib(output) }
        #expect(throws: (any Error).self) { try gunzipWithZlib(Array(output.prefix(output.count / 2))) }
    }

    @Test("gunzip reads the file back byte for byte", .enabled(if: onPath("gunzip") != nil, "gunzip is not installed"))
    func gunzip() throws {
        let directory = try TemporaryDirectory(prefix: "PerWorkerCompressionTests")
        defer { directory.remove() }
        let input = generateLogText(count: 2_500_000)
        let gzPath = directory.file("output.gz")
        let run = try gzipFile(input, to: gzPath, perWorkerStreams: true, blockSize: 16 * 1024, threads: 2, level: 6)
        #expect(run.streamsCreated == 2 && run.streamsEnded.count == 2)
        let result = try runProgram(onPath("gunzip")!, ["-c", gzPath])
        #expect(result.status == 0, "\(result.err)")
        #expect(Array(result.out.utf8) == input) // the generated text is ASCII
        let test = try runProgram(onPath("gunzip")!, ["-t", gzPath])
        #expect(test.status == 0, "\(test.err)")
    }

    @Test("the program writes a file that decompresses to its input, and exits 0")
    func program() throws {
        let directory = try TemporaryDirectory(prefix: "PerWorkerCompressionTests")
        defer { directory.remove() }
        let inputPath = directory.file("input.txt")
        let input = generateLogText(count: 700_000)
        let file = try OutputFile(path: inputPath)
        try input.withUnsafeBytes { try file.write($0) }
        try file.close()
        let gzPath = directory.file("input.txt.gz")
        let captured = CapturedConsole()
        let status = runCompressionExample(
            arguments: ["--threads", "3", "--input", inputPath, "--block-kib", "32", gzPath],
            console: captured.console)
        #expect(status == 0, "\(captured.err)")
        #expect(captured.out.contains("3 made by the initializer"))
        #expect(captured.out.contains("3 ended by the finalizer"))
        #expect(captured.out.contains("identical to the input"))
        #expect(try gunzipWithZlib(readFile(gzPath)).bytes == input)
        if let gunzip = onPath("gunzip") {
            #expect(Array(try runProgram(gunzip, ["-c", gzPath]).out.utf8) == input)
        }
    }

    @Test("bad input: a clear message and exit 1 or 2, never a crash")
    func badInput() {
        let missing = "/nonexistent-\(getpid())"
        let cases: [([String], Int32, String)] = [
            (
                ["--megabytes", "1", "\(missing)/out.gz"], 1,
                "error: cannot write \(missing)/out.gz: No such file or directory\n"
            ),
            (["--input", "\(missing)/in.txt"], 1, "error: cannot read \(missing)/in.txt: No such file or directory\n"),
            (["--level", "10"], 2, "error: --level must be a whole number in 0...9, not \"10\""),
            (["--input", "x", "--megabytes", "1"], 2, "error: give --input or --megabytes, not both"),
            (["a.gz", "b.gz"], 2, "error: give at most one output file"),
        ]
        for (arguments, expected, message) in cases {
            let captured = CapturedConsole()
            #expect(runCompressionExample(arguments: arguments, console: captured.console) == expected, "\(arguments)")
            #expect(captured.err.hasPrefix(message), "\(arguments): \(captured.err)")
        }
    }

    @Test(
        "the built program exits 1 with the message on an unwritable output, without crashing",
        .enabled(
            if: builtProduct("PerWorkerCompression") != nil, "build the executables first: swift build --build-tests"))
    func builtProgram() throws {
        let path = "/nonexistent-\(getpid())/out.gz"
        let result = try runProgram(builtProduct("PerWorkerCompression")!, ["--megabytes", "1", path])
        #expect(result.status == 1)
        #expect(result.err == "error: cannot write \(path): No such file or directory\n")
    }
}
