// What both example programs need besides their subject: arguments, output, timing, temporary files.
// Nothing here runs on a pool's worker.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a program's output goes: the terminal for the executables, strings for the tests.
public struct Console {
    public let out: (String) -> Void
    public let err: (String) -> Void

    public init(out: @escaping (String) -> Void, err: @escaping (String) -> Void) {
        self.out = out
        self.err = err
    }

    /// Standard output and standard error (written with write(2): the C `stderr` global is shared
    /// mutable state that Swift 6 does not let nonisolated code touch).
    public static var standard: Console {
        Console(
            out: { print($0) },
            err: { line in
                let text = line + "\n"
                _ = text.withCString { write(2, $0, strlen($0)) }
            })
    }
}

/// A mistake on the command line: the program prints it with its usage and exits with status 2.
public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `--name value`, `--name=value`, `--flag` and positional arguments.
public struct Arguments {
    public private(set) var options: [String: String] = [:]
    public private(set) var flags: Set<String> = []
    public private(set) var positional: [String] = []

    /// - Parameters:
    ///   - arguments: the arguments after the program's name.
    ///   - valued: the options that take a value (`--threads`), without dashes.
    ///   - flags: the options that take none (`--help`), without dashes.
    public init(_ arguments: some Sequence<String>, valued: Set<String>, flags known: Set<String>) throws(UsageError) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            if argument == "-h" {
                flags.insert("help")
            } else if argument.hasPrefix("--") {
                var name = String(argument.dropFirst(2))
                var value: String?
                if let equals = name.firstIndex(of: "=") {
                    value = String(name[name.index(after: equals)...])
                    name = String(name[..<equals])
                }
                if known.contains(name), value == nil {
                    flags.insert(name)
                } else if valued.contains(name) {
                    guard let given = value ?? iterator.next() else { throw UsageError("--\(name) needs a value") }
                    options[name] = given
                } else {
                    throw UsageError("unknown option \(argument)")
                }
            } else {
                positional.append(argument)
            }
        }
    }

    /// The integer value of `--name`, or `defaultValue` when it is not given.
    public func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(UsageError) -> Int
    {
        guard let text = options[name] else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw UsageError(
                "--\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), not \"\(text)\"")
        }
        return value
    }
}

// MARK: Locking

/// A value guarded by a pthread mutex, for state the workers share (counters, logs).
///
/// Not `Synchronization.Mutex`: on Linux it locks with futexes that ThreadSanitizer cannot see, so
/// everything it guards would be reported as a race (ThreadPoolKit's own `Locked` says the same).
public final class Locked<Value> {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value // guarded by `mutex`

    public init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

// Every access to the value holds the mutex.
extension Locked: @unchecked Sendable where Value: Sendable {}

// MARK: Timing and numbers

/// Runs `body` and returns its value and how long it took.
public func timed<T>(_ body: () throws -> T) rethrows -> (value: T, elapsed: Duration) {
    let clock = ContinuousClock()
    let start = clock.now
    let value = try body()
    return (value, clock.now - start)
}

extension Duration {
    /// Milliseconds, as a Double.
    public var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }

    /// "38.2 ms".
    public var formatted: String {
        "\(decimal(milliseconds, digits: 1)) ms"
    }
}

/// `value` with `digits` digits after the point (no Foundation needed).
public func decimal(_ value: Double, digits: Int) -> String {
    var scale = 1
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int((value * Double(scale)).rounded())
    let sign = scaled < 0 ? "-" : ""
    let whole = abs(scaled) / scale
    guard digits > 0 else { return sign + grouped(whole) }
    var fraction = String(abs(scaled) % scale)
    while fraction.count < digits { fraction = "0" + fraction }
    return "\(sign)\(grouped(whole)).\(fraction)"
}

/// 1234567 as "1,234,567".
public func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var result = ""
    for (offset, digit) in digits.enumerated() {
        if offset > 0 && (digits.count - offset) % 3 == 0 { result.append(",") }
        result.append(digit)
    }
    return value < 0 ? "-" + result : result
}

/// "1 block", "512 blocks", "1,201 connections" ("1 query", "2 queries" with the plural given).
public func counted(_ count: Int, _ singular: String, _ plural: String? = nil) -> String {
    "\(grouped(count)) \(count == 1 ? singular : plural ?? singular + "s")"
}

/// "4.2x the time": how long `other` took compared with `reference`.
public func ratio(_ other: Duration, against reference: Duration) -> String {
    let factor = other.milliseconds / max(reference.milliseconds, 0.001)
    return "\(decimal(factor, digits: 1))x the time"
}

// MARK: Files

/// A file that cannot be read or written, or a temporary directory that cannot be made.
public struct FileError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The C library's message for `errno`.
public func systemMessage(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// Whether anything (file, directory, ...) exists at `path`.
public func pathExists(_ path: String) -> Bool {
    access(path, F_OK) == 0
}

/// Removes a file, if it exists.
public func removeFile(_ path: String) {
    unlink(path)
}

/// A directory made with mkdtemp under $TMPDIR (or /tmp), removed with the files made in it.
public final class TemporaryDirectory {
    public let path: String
    private var files: [String] = []

    public init(prefix: String) throws(FileError) {
        var base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        if base.isEmpty { base = "/tmp" }
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw FileError("cannot make a temporary directory in \(base): \(systemMessage(errno))")
        }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// The path of a file in the directory, removed with it (with `name-journal`, `name-wal`, ...).
    public func file(_ name: String) -> String {
        files.append(name)
        return "\(path)/\(name)"
    }

    /// Removes the files handed out and the directory.
    public func remove() {
        for name in files {
            for suffix in ["", "-journal", "-wal", "-shm"] { unlink("\(path)/\(name)\(suffix)") }
        }
        rmdir(path)
    }
}

/// Reads a whole file.
public func readFile(_ path: String) throws(FileError) -> [UInt8] {
    guard let file = fopen(path, "rb") else { throw FileError("cannot read \(path): \(systemMessage(errno))") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        bytes.append(contentsOf: chunk[..<count])
        if count < chunk.count {
            if ferror(file) != 0 { throw FileError("cannot read \(path): \(systemMessage(errno))") }
            return bytes
        }
    }
}

/// A file being written, from its start. Errors name the file and say what the system said.
public final class OutputFile {
    public let path: String
    private var file: UnsafeMutablePointer<FILE>?

    /// Creates or truncates `path`.
    public init(path: String) throws(FileError) {
        self.path = path
        guard let file = fopen(path, "wb") else { throw FileError("cannot write \(path): \(systemMessage(errno))") }
        self.file = file
    }

    deinit {
        if let file { fclose(file) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
        guard bytes.count > 0 else { return }
        if fwrite(bytes.baseAddress, 1, bytes.count, file) != bytes.count {
            throw FileError("cannot write \(path): \(systemMessage(errno))")
        }
    }

    /// Flushes and closes the file (where a full disk shows).
    public func close() throws(FileError) {
        guard let file else { return }
        self.file = nil
        if fclose(file) != 0 { throw FileError("cannot write \(path): \(systemMessage(errno))") }
    }
}

/// A small pseudo-random generator with a fixed seed: the examples' data is the same on every run.
public struct SplitMix64 {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in 0..<bound.
    public mutating func next(below bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }
}
