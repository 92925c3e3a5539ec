import Foundation
import Synchronization
import Testing

@testable import ThreadPoolKit

/// Waits (bounded) until `condition` holds; tests use it where a thread exits asynchronously.
func eventually(within seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(1_000)
    }
    return condition()
}

/// Polls `condition` from async code, sleeping 1 ms between polls, until it holds; false after
/// `polls` polls (the default: 10 s or more). Bounded by polls, not by the clock: each poll resumes
/// behind the jobs enqueued before it on the global executor, so while parallel synchronous tests
/// hold that executor's threads (2 on this machine) the tasks a condition waits for are delayed no
/// less than the poller, and the delay does not count against them.
func waitUntil(polls: Int = 10_000, _ condition: () async -> Bool) async -> Bool {
    for _ in 0..<polls {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return await condition()
}

/// A thread-safe counter for tests.
final class Counter: Sendable {
    private let storage = Atomic<Int>(0)
    func increment() { storage.wrappingAdd(1, ordering: .relaxed) }
    var value: Int { storage.load(ordering: .relaxed) }
}

/// A thread-safe list for tests. (NSLock, not Synchronization.Mutex: ThreadSanitizer cannot see the
/// latter on Linux.)
final class Recorder<Element: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Element] = [] // guarded by lock
    func append(_ element: Element) { lock.withLock { storage.append(element) } }
    var elements: [Element] { lock.withLock { storage } }
}

struct TestError: Error, Equatable {
    let code: Int
}

/// How many of this process's threads have an OS name starting with `prefix` (from /proc/self/task).
/// Pools in tests get unique names, so this counts one pool's threads even while other tests run.
func threadsNamed(_ prefix: String) -> Int {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.filter { task in readSmallFile("/proc/self/task/\(task)/comm").hasPrefix(prefix) }.count
}

/// A small text file's contents, read with stdio (Foundation's String(contentsOfFile:) leaks a
/// buffer that LeakSanitizer reports, in swift 6.3.1).
func readSmallFile(_ path: String) -> String {
    guard let file = fopen(path, "r") else { return "" }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 256)
    let count = fread(&buffer, 1, buffer.count - 1, file)
    return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A unique pool name prefix, short enough that "<prefix>-<i>" fits the 15-byte OS name.
func uniqueName(_ base: String) -> String {
    "\(base.prefix(4))\(nameCounter.add())"
}

private let nameCounter = NameCounter()
private final class NameCounter: Sendable {
    private let next = Atomic<Int>(0)
    func add() -> Int { next.wrappingAdd(1, ordering: .relaxed).newValue }
}

/// Asserts that `body` throws a ThreadPoolError for which `matches` is true.
func expectPoolError(
    _ matches: (ThreadPoolError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected a ThreadPoolError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as ThreadPoolError {
        #expect(matches(error), "unexpected \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a ThreadPoolError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// A gate that tasks block on until the test opens it.
final class Gate: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let opened = Atomic<Bool>(false)
    private let waiters = Atomic<Int>(0)
    /// Blocks until `open()`.
    func pass() {
        waiters.wrappingAdd(1, ordering: .relaxed)
        semaphore.wait()
        semaphore.signal() // let the next one through too
    }
    /// How many have reached the gate.
    var arrived: Int { waiters.load(ordering: .relaxed) }
    func open() {
        if !opened.exchange(true, ordering: .relaxed) { semaphore.signal() }
    }
}

/// The calling thread's OS name, as the kernel has it.
func currentOSThreadName() -> String {
    let comm = readSmallFile("/proc/thread-self/comm")
    return comm.hasSuffix("\n") ? String(comm.dropLast()) : comm
}

/// Runs the ThreadPoolExitProbe program (built beside the tests) with `arguments` and `environment`
/// (nil: this process's) and returns its standard output; records an issue unless it exits with 0
/// within 10 s.
func runExitProbe(
    arguments: [String], environment: [String: String]? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> String {
    let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable).deletingLastPathComponent()
        .appendingPathComponent("ThreadPoolExitProbe")
    process.arguments = arguments
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    let exited = eventually { !process.isRunning }
    if !exited { process.terminate() }
    #expect(exited, "the probe did not exit", sourceLocation: sourceLocation)
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, sourceLocation: sourceLocation)
    return String(decoding: data, as: UTF8.self)
}
