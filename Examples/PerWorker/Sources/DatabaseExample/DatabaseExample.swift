// Per-worker database connections: each worker of the pool opens its own SQLite connection in the
// pool's initializer, keeps it (and its prepared statements) in a ThreadLocal for every task it runs,
// and closes it in the finalizer. The same queries are then run opening a connection per task.
//
// Everything that runs on a worker is written in this file's functions, which are nonisolated: a
// closure written in main.swift's top-level code would be main-actor isolated and trap on a worker.
import ExampleSupport
import Synchronization
import ThreadPoolKit

// The data, the SQL and a connection's prepared queries (DatabaseSession) are in Database.swift.

// MARK: Each worker's connection

/// One connection's life: the worker that used it and the queries it ran.
public struct ConnectionUse: Sendable, Equatable {
    public let worker: String
    public let queries: Int
}

/// The connections of one run: the calling worker's own (in a `ThreadLocal`), and a count of every
/// connection opened and closed, which the tests check.
final class Connections: Sendable {
    private let session = ThreadLocal<DatabaseSession?> { nil }
    private let openedCount = Atomic<Int>(0)
    private let closedLog = Locked<[ConnectionUse]>([])
    let path: String

    init(path: String) {
        self.path = path
    }

    var opened: Int { openedCount.load(ordering: .relaxed) }
    var closed: [ConnectionUse] { closedLog.withLock { $0 } }

    // Per worker: the pool's initializer and finalizer call these, on each worker.

    /// Opens the calling worker's connection. A failure here fails the pool's `init`.
    func openForThisWorker() throws(DatabaseError) {
        session.value = try open()
    }

    /// Closes the calling worker's connection.
    func closeForThisWorker() {
        if let current = session.value {
            close(current)
            session.value = nil
        }
    }

    /// The calling worker's connection, in a task.
    var current: DatabaseSession {
        guard let current = session.value else {
            preconditionFailure("the connection is opened by the pool's initializer, on each of its workers")
        }
        return current
    }

    // Per task: open, use, close.

    func withNewConnection<T>(_ body: (DatabaseSession) throws -> T) throws -> T {
        let temporary = try open()
        defer { close(temporary) }
        return try body(temporary)
    }

    private func open() throws(DatabaseError) -> DatabaseSession {
        let opened = try DatabaseSession(path: path)
        openedCount.add(1, ordering: .relaxed)
        return opened
    }

    private func close(_ session: DatabaseSession) {
        session.close()
        let use = ConnectionUse(worker: ThreadPool.currentWorker?.name ?? "main", queries: session.queries)
        closedLog.withLock { $0.append(use) }
    }
}

// MARK: The two ways to run the queries

/// What a run computed, how long it took (pool start to join), and the connections it used.
public struct QueryRun: Sendable {
    public let answers: DatabaseAnswers
    public let elapsed: Duration
    public let connectionsOpened: Int
    /// Every connection closed, with the worker that closed it and the queries it ran.
    public let connectionsClosed: [ConnectionUse]
}

/// The example: a pool whose initializer opens one connection per worker and whose finalizer closes
/// it; every task uses the connection of the worker it runs on. `map` sums id ranges (results in input
/// order), `imapUnordered` sums customers (results as they complete).
/// - Throws: ``ThreadPoolError/initializerFailed(worker:underlying:)`` (its `underlying` a
///   ``DatabaseError``) when a worker cannot open the database; a ``DatabaseError`` from a query.
public func queryWithPerWorkerConnections(path: String, threads: Int?, rangeSize: Int) throws -> QueryRun {
    let connections = Connections(path: path)
    let (answers, elapsed) = try timed {
        try withThreadPool(
            threads: threads, name: "db",
            initializer: { try connections.openForThisWorker() },
            finalizer: { connections.closeForThisWorker() }
        ) { pool in
            let shape = try pool.apply { try connections.current.shape() }
            let ranges = try pool.map(shape.idRanges(size: rangeSize)) { ids in
                try connections.current.summary(of: ids)
            }
            let results = try pool.imapUnordered(shape.customerIDs) { customer in
                try connections.current.summary(ofCustomer: customer)
            }
            var customers: [CustomerSummary] = []
            while let summary = try results.next() { customers.append(summary) }
            customers.sort { $0.customer < $1.customer }
            return DatabaseAnswers(shape: shape, ranges: ranges, customers: customers)
        }
    }
    return QueryRun(
        answers: answers, elapsed: elapsed, connectionsOpened: connections.opened,
        connectionsClosed: connections.closed)
}

/// The same work without worker state: every task opens a connection, prepares its query, runs it
/// and closes the connection.
public func queryWithConnectionPerTask(path: String, threads: Int?, rangeSize: Int) throws -> QueryRun {
    let connections = Connections(path: path)
    let (answers, elapsed) = try timed {
        try withThreadPool(threads: threads, name: "db") { pool in
            let shape = try pool.apply { try connections.withNewConnection { try $0.shape() } }
            let ranges = try pool.map(shape.idRanges(size: rangeSize)) { ids in
                try connections.withNewConnection { try $0.summary(of: ids) }
            }
            let results = try pool.imapUnordered(shape.customerIDs) { customer in
                try connections.withNewConnection { try $0.summary(ofCustomer: customer) }
            }
            var customers: [CustomerSummary] = []
            while let summary = try results.next() { customers.append(summary) }
            customers.sort { $0.customer < $1.customer }
            return DatabaseAnswers(shape: shape, ranges: ranges, customers: customers)
        }
    }
    return QueryRun(
        answers: answers, elapsed: elapsed, connectionsOpened: connections.opened,
        connectionsClosed: connections.closed)
}
