import Foundation
import Testing

/// Runs the tutorial's two example programs (built next to this test binary) and checks their output
/// against the tutorial's: order may differ only where the tutorial's own order is not determined.
@Suite("The tutorial's programs")
struct TutorialTests {
    /// Runs a sibling executable and returns its non-empty output lines.
    func run(_ program: String) throws -> [String] {
        let directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            .deletingLastPathComponent()
        let executable = directory.appendingPathComponent(program)
        try #require(
            FileManager.default.isExecutableFile(atPath: executable.path),
            "build the examples first (swift build): \(executable.path)")
        let process = Process()
        process.executableURL = executable
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test("InitializeWorkers prints the first example's six lines")
    func initializeWorkers() throws {
        let lines = try run("InitializeWorkers")
        #expect(
            lines == Array(repeating: "Initializing worker...", count: 2)
                + Array(repeating: "Worker executing task...", count: 4))
    }

    @Test("WorkerNames: initializers on Thread-1 and Thread-2 first, then two tasks on each")
    func workerNames() throws {
        let lines = try run("WorkerNames")
        try #require(lines.count == 6, "\(lines)")
        let initPrefix = "Initializing worker, thread="
        let taskPrefix = "Worker executing task, thread="
        #expect(lines[..<2].allSatisfy { $0.hasPrefix(initPrefix) })
        #expect(lines[2...].allSatisfy { $0.hasPrefix(taskPrefix) })
        let initNames = lines[..<2].map { String($0.dropFirst(initPrefix.count)) }
        let taskNames = lines[2...].map { String($0.dropFirst(taskPrefix.count)) }
        #expect(initNames.sorted() == ["Thread-1", "Thread-2"])
        #expect(taskNames.sorted() == ["Thread-1", "Thread-1", "Thread-2", "Thread-2"])
    }
}
