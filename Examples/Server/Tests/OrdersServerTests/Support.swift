// What the tests need around the server: a database in a temporary directory, the built server as a
// subprocess, and a blocking HTTP/1.1 client on plain sockets (one request per connection, so that
// each request's fate is known: refused, dropped unanswered, cut short, or answered).
import Foundation
import OrdersDatabase

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: A database

/// A database of `orders` orders and `customers` customers in a new temporary directory.
final class TestDatabase {
    let directory: String
    let path: String
    let orders: Int
    let customers: Int

    init(orders: Int = 5_000, customers: Int = 50) throws {
        var template = Array("\(NSTemporaryDirectory())/OrdersServerTests-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed: errno \(errno)") }
        directory = String(cString: made)
        path = directory + "/orders.sqlite"
        self.orders = orders
        self.customers = customers
        try createDatabase(at: path, orders: orders, customers: customers)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// The answers computed directly, with SQL of their own: the order by id, and every customer's
/// total with one GROUP BY.
struct Reference {
    let orders: [Int: Order]
    let totals: [Int: CustomerTotal]

    init(path: String) throws {
        let connection = try Connection(path: path, readOnly: true)
        defer { connection.close() }
        var orders: [Int: Order] = [:]
        let all = try connection.prepare("SELECT id, customer, amount, day FROM orders")
        try all.run { row in
            orders[Int(row[0])] = Order(id: Int(row[0]), customer: Int(row[1]), amount: Int(row[2]), day: Int(row[3]))
        }
        all.finalize()
        var totals: [Int: CustomerTotal] = [:]
        let grouped = try connection.prepare("SELECT customer, COUNT(*), SUM(amount) FROM orders GROUP BY customer")
        try grouped.run { row in
            totals[Int(row[0])] = CustomerTotal(customer: Int(row[0]), orders: Int(row[1]), total: Int(row[2]))
        }
        grouped.finalize()
        self.orders = orders
        self.totals = totals
    }
}

// MARK: The server

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

/// The built `orders-server`, started on a free port; its standard output goes to a file the tests read.
final class ServerProcess {
    let process = Process()
    let outputPath: String
    private(set) var port = 0

    /// Starts the server with `arguments` (plus `--port 0`) and waits for its "listening on" line.
    init(_ arguments: [String], outputDirectory: String) async throws {
        guard let executable = builtProduct("orders-server") else {
            throw TestFailure("orders-server is not built: run `swift build --build-tests` first")
        }
        outputPath = outputDirectory + "/server-\(UUID().uuidString).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + ["--port", "0"]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardError = process.standardOutput
        try process.run()
        let line = try await waitForLine { $0.hasPrefix("listening on ") }
        guard let text = line.split(separator: ":").last, let port = Int(text) else {
            throw TestFailure("no port in \"\(line)\"")
        }
        self.port = port
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    var output: String {
        (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }

    /// Polls the output for a line (the server writes each line at once); gives up after 60 s or
    /// when the process exits.
    func waitForLine(timeout: Duration = .seconds(60), _ matches: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let line = output.split(separator: "\n").map(String.init).first(where: matches) { return line }
            guard process.isRunning else { throw TestFailure("the server exited:\n\(output)") }
            guard ContinuousClock.now < deadline else { throw TestFailure("the server did not say it:\n\(output)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Waits up to 60 s for the process to exit; its exit status, or 128 + the signal that ended it.
    func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw TestFailure("the server did not exit:\n\(output)") }
            try await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
    }

    /// The count in the server's last line, "stopped: N requests received".
    var requestsReceived: Int? {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("stopped: ") }) else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }
}

// MARK: A client

/// What became of one request.
enum ClientResult: Equatable, CustomStringConvertible {
    /// The connection was refused: the server was not listening (any more).
    case refused
    /// Connected, but the connection closed (or was reset) before a byte of answer: the server had not
    /// read the request (a connection still in the listen backlog when the server closed it).
    case unanswered
    /// Part of an answer, then the connection closed: always a failure.
    case truncated(bytes: Int)
    /// A complete answer (all of its Content-Length).
    case answer(status: Int, body: String)

    var description: String {
        switch self {
        case .refused: "refused"
        case .unanswered: "unanswered"
        case .truncated(let bytes): "truncated after \(bytes) bytes"
        case .answer(let status, let body): "\(status) \(body)"
        }
    }
}

/// GET `path` from 127.0.0.1:`port` on a new connection (`Connection: close`), blocking.
func httpGet(port: Int, path: String) -> ClientResult {
    #if canImport(Glibc)
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    var one: Int32 = 1
    setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
    #endif
    guard descriptor >= 0 else { return .refused }
    defer { close(descriptor) }
    var timeout = timeval(tv_sec: 60, tv_usec: 0) // a hung server fails the test rather than hanging it
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { return .refused }

    #if canImport(Glibc)
    let noSignal = Int32(MSG_NOSIGNAL)
    #else
    let noSignal: Int32 = 0
    #endif
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    var sent = 0
    while sent < request.count {
        let count = request[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, noSignal) }
        if count <= 0 { break } // reset by the server; what it answered, if anything, is read below
        sent += count
    }

    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break } // 0: closed; < 0: reset or timed out
        received += buffer[..<count]
    }
    return parseAnswer(received)
}

/// Splits an HTTP/1.1 answer into status and body, checking the body against its Content-Length.
func parseAnswer(_ bytes: [UInt8]) -> ClientResult {
    guard !bytes.isEmpty else { return .unanswered }
    let separator = Array("\r\n\r\n".utf8)
    guard
        let end = (0...max(0, bytes.count - separator.count)).first(where: {
            bytes[$0..<$0 + separator.count].elementsEqual(separator)
        }),
        bytes.count >= separator.count
    else {
        return .truncated(bytes: bytes.count)
    }
    let head = String(decoding: bytes[..<end], as: UTF8.self).split(separator: "\r\n")
    let body = bytes[(end + separator.count)...]
    guard let statusLine = head.first, statusLine.hasPrefix("HTTP/1.1 "),
        let status = Int(statusLine.split(separator: " ")[1])
    else {
        return .truncated(bytes: bytes.count)
    }
    let length = head.dropFirst().compactMap { line -> Int? in
        let parts = line.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
        return Int(parts[1].trimmingCharacters(in: .whitespaces))
    }.first
    guard let length, body.count == length else { return .truncated(bytes: bytes.count) }
    return .answer(status: status, body: String(decoding: body, as: UTF8.self))
}
