import ExampleSupport
import Foundation

/// A console that keeps what the program prints.
final class CapturedConsole {
    var out = ""
    var err = ""

    var console: Console {
        Console(out: { self.out += $0 + "\n" }, err: { self.err += $0 + "\n" })
    }
}

/// Runs a program and returns its exit status, standard output and standard error (read from files:
/// no pipe to fill up).
func runProgram(_ executable: String, _ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    let directory = try TemporaryDirectory(prefix: "ExamplesTests-run")
    defer { directory.remove() }
    let outPath = directory.file("stdout")
    let errPath = directory.file("stderr")
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    try process.run()
    process.waitUntilExit()
    let out = String(decoding: try readFile(outPath), as: UTF8.self)
    let err = String(decoding: try readFile(errPath), as: UTF8.self)
    // A crash (a trap, a signal) is not an exit status.
    let status = process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
    return (status, out, err)
}

/// The path of a program on PATH, or nil.
func onPath(_ name: String) -> String? {
    let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
    return directories.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// The path of one of this package's executables, built next to the test bundle (`swift build
/// --build-tests`, as `make examples-test` does, builds them; `swift test` alone may not).
func builtProduct(_ name: String) -> String? {
    var candidates: [URL] = []
    // Linux: the test runner is the .xctest executable itself, in the products directory.
    if let first = CommandLine.arguments.first {
        candidates.append(URL(fileURLWithPath: first).deletingLastPathComponent())
    }
    #if canImport(Darwin)
    // macOS: xctest loads the .xctest bundle, which sits in the products directory.
    for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
        candidates.append(bundle.bundleURL.deletingLastPathComponent())
    }
    #endif
    return candidates.map { $0.appendingPathComponent(name).path }.first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
}
