import DatabaseExample
import ExampleSupport
import Foundation
import Testing
import ThreadPoolKit

@Suite("PerWorkerDatabase")
struct PerWorkerDatabaseTests {
    static let orders = 12_345
    static let customers = 150
    static let rangeSize = 500

    /// A new database in a temporary directory, removed with it.
    static func makeDatabase() throws -> (directory: TemporaryDirectory, path: String) {
        let directory = try TemporaryDirectory(prefix: "PerWorkerDatabaseTests")
        let path = directory.file("orders.sqlite")
        try createDatabase(at: path, orders: orders, customers: customers)
        return (directory, path)
    }

    @Test("the reference answers cover every order")
    func referenceAnswers() throws {
        let (directory, path) = try Self.makeDatabase()
        defer { directory.remove() }
        let reference = try queryWithOneConnection(path: path, rangeSize: Self.rangeSize)
        #expect(reference.shape == DatabaseShape(orders: Self.orders, customers: Self.customers))
        #expect(reference.ranges.count == 25)
        #expect(reference.ranges.last?.ids == 12_001...12_345)
        #expect(reference.ranges.reduce(0) { $0 + $1.orders } == Self.orders)
        #expect(reference.customers.reduce(0) { $0 + $1.orders } == Self.orders)
        #expect(reference.ranges.reduce(0) { $0 + $1.total } == reference.customers.reduce(0) { $0 + $1.total })
    }

    @Test(
        "one connection per worker: the answers of a single connection; exactly `threads` opened and closed",
        arguments: [1, 2, 3, 5])
    func perWorkerConnections(threads: Int) throws {
        let (directory, path) = try Self.makeDatabase()
        defer { directory.remove() }
        let reference = try queryWithOneConnection(path: path, rangeSize: Self.rangeSize)
        let run = try queryWithPerWorkerConnections(path: path, threads: threads, rangeSize: Self.rangeSize)
        #expect(run.answers == reference)
        #expect(run.connectionsOpened == threads)
        #expect(run.connectionsClosed.count == threads)
        // Each worker closed its own connection, in its finalizer.
        #expect(Set(run.connectionsClosed.map(\.worker)) == Set((1...threads).map { "db-\($0)" }))
        // Every query ran on one of them: the shape, one per id range, one per customer.
        #expect(run.connectionsClosed.reduce(0) { $0 + $1.queries } == 1 + 25 + Self.customers)
    }

    @Test("a connection per task: the same answers, one connection per query")
    func connectionPerTask() throws {
        let (directory, path) = try Self.makeDatabase()
        defer { directory.remove() }
        let reference = try queryWithOneConnection(path: path, rangeSize: Self.rangeSize)
        let run = try queryWithConnectionPerTask(path: path, threads: 3, rangeSize: Self.rangeSize)
        #expect(run.answers == reference)
        #expect(run.connectionsOpened == 1 + 25 + Self.customers)
        #expect(run.connectionsClosed.count == run.connectionsOpened)
        #expect(run.connectionsClosed.allSatisfy { $0.queries == 1 })
    }

    @Test("the program runs, checks its answers and exits 0")
    func program() throws {
        let directory = try TemporaryDirectory(prefix: "PerWorkerDatabaseTests")
        defer { directory.remove() }
        let path = directory.file("orders.sqlite")
        let captured = CapturedConsole()
        let status = runDatabaseExample(
            arguments: ["--threads", "2", "--orders", "5000", path],
            console: captured.console)
        #expect(status == 0, "\(captured.err)")
        #expect(captured.out.contains("Created \(path): 5,000 orders"))
        #expect(captured.out.contains("2 opened by the initializer, 2 closed by the finalizer"))
        #expect(captured.out.contains("Checked: the same answers"))
        #expect(captured.err.isEmpty)
        // A second run uses the database the first one made.
        let again = CapturedConsole()
        #expect(runDatabaseExample(arguments: ["--threads", "2", path], console: again.console) == 0)
        #expect(again.out.contains("Using the existing database \(path)."))
    }

    // MARK: Bad input: a clear message and a non-zero exit, never a crash

    @Test("a database in a missing directory: a clear error, exit 1, nothing left behind")
    func missingDirectory() throws {
        let path = "/nonexistent-\(getpid())/orders.sqlite"
        #expect(throws: DatabaseError.self) { try createDatabase(at: path, orders: 10, customers: 2) }
        let captured = CapturedConsole()
        #expect(runDatabaseExample(arguments: [path], console: captured.console) == 1)
        #expect(captured.err == "error: cannot create the database \(path): unable to open database file\n")
        #expect(!pathExists(path))
    }

    @Test("a database where it cannot be written (its directory is a file): a clear error, exit 1")
    func unwritablePath() throws {
        let directory = try TemporaryDirectory(prefix: "PerWorkerDatabaseTests")
        defer { directory.remove() }
        let notADirectory = directory.file("plain-file")
        let file = try OutputFile(path: notADirectory)
        try file.close()
        let path = notADirectory + "/orders.sqlite"
        let captured = CapturedConsole()
        #expect(runDatabaseExample(arguments: [path], console: captured.console) == 1)
        #expect(captured.err == "error: cannot create the database \(path): unable to open database file\n")
    }

    @Test("a worker that cannot open the database fails the pool's init: initializerFailed, told plainly")
    func initializerFailure() throws {
        let path = "/nonexistent-\(getpid())/orders.sqlite"
        do {
            _ = try queryWithPerWorkerConnections(path: path, threads: 2, rangeSize: 10)
            Issue.record("the pool started without a database")
        } catch ThreadPoolError.initializerFailed(let worker, let underlying) {
            #expect((0..<2).contains(worker))
            #expect(underlying is DatabaseError)
            let message = describeDatabaseError(
                ThreadPoolError.initializerFailed(worker: worker, underlying: underlying))
            #expect(
                message == "worker \(worker + 1) could not open its connection: "
                    + "cannot open the database \(path): unable to open database file")
        }
    }

    @Test("an existing file that is not a database: the workers' initializers fail, exit 1 with the reason")
    func notADatabase() throws {
        let directory = try TemporaryDirectory(prefix: "PerWorkerDatabaseTests")
        defer { directory.remove() }
        let path = directory.file("notes.txt")
        let file = try OutputFile(path: path)
        try Array(String(repeating: "not a database\n", count: 100).utf8).withUnsafeBytes { try file.write($0) }
        try file.close()
        let captured = CapturedConsole()
        #expect(runDatabaseExample(arguments: ["--threads", "2", path], console: captured.console) == 1)
        #expect(captured.err.hasPrefix("error: worker "))
        #expect(captured.err.hasSuffix(" could not open its connection: \(path): file is not a database\n"))
    }

    @Test("usage errors: exit 2 with the usage")
    func usageErrors() {
        for arguments in [
            ["--threads", "0"], ["--threads"], ["--bogus"], ["a.sqlite", "b.sqlite"], ["--orders", "x"],
        ] {
            let captured = CapturedConsole()
            #expect(runDatabaseExample(arguments: arguments, console: captured.console) == 2, "\(arguments)")
            #expect(captured.err.contains("usage: PerWorkerDatabase"))
        }
        let help = CapturedConsole()
        #expect(runDatabaseExample(arguments: ["--help"], console: help.console) == 0)
        #expect(help.out.hasPrefix("usage: PerWorkerDatabase"))
    }

    @Test(
        "the built program exits 1 with the message on a missing directory, without crashing",
        .enabled(if: builtProduct("PerWorkerDatabase") != nil, "build the executables first: swift build --build-tests")
    )
    func builtProgram() throws {
        let path = "/nonexistent-\(getpid())/orders.sqlite"
        let result = try runProgram(builtProduct("PerWorkerDatabase")!, [path])
        #expect(result.status == 1)
        #expect(result.err == "error: cannot create the database \(path): unable to open database file\n")
        #expect(result.out.isEmpty)
    }
}
