// An actor per worker, each the only user of its worker's SQLite connection: the pool's initializer
// opens the connection on each worker (in a ThreadLocal, as in DatabaseExample.swift), and the actor
// of worker k runs on worker k (its executor is `pool.serialExecutor(worker: k)`), so its methods
// always find that worker's connection, and never use it two at a time. Async code anywhere queries
// the database by calling the actors; the connections never leave their threads.
import ExampleSupport
import ThreadPoolKit

// MARK: Queries and answers

/// One query a task asks an actor.
public enum DatabaseQuery: Sendable, Equatable {
    case range(ClosedRange<Int>)
    case customer(Int)
}

/// The answer to a ``DatabaseQuery``.
public enum DatabaseAnswer: Sendable, Equatable {
    case range(RangeSummary)
    case customer(CustomerSummary)
}

/// `count` queries for `count` tasks: every id range once, then the customers round and round.
public func databaseQueries(_ count: Int, shape: DatabaseShape, rangeSize: Int) -> [DatabaseQuery] {
    let ranges = shape.idRanges(size: rangeSize).map(DatabaseQuery.range)
    let customers = shape.customerIDs.map(DatabaseQuery.customer)
    return (0..<count).map { task in
        task < ranges.count ? ranges[task] : customers[(task - ranges.count) % max(customers.count, 1)]
    }
}

extension DatabaseAnswers {
    /// The answer to `query` among these (the reference answers), or nil if it asks for something
    /// the database does not have.
    public func answer(to query: DatabaseQuery) -> DatabaseAnswer? {
        switch query {
        case .range(let ids):
            return ranges.first { $0.ids == ids }.map(DatabaseAnswer.range)
        case .customer(let customer):
            return customers.indices.contains(customer - 1) ? .customer(customers[customer - 1]) : nil
        }
    }
}

// MARK: The actor of one worker

/// The database as seen from one worker: runs on that worker, and is the only user of the
/// connection the pool's initializer opened there.
actor WorkerDatabase {
    /// Worker `worker`'s serial executor. The actor keeps it alive (the runtime holds it unowned), and
    /// it keeps the pool alive.
    let executor: ThreadPool.WorkerExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private let connections: Connections
    /// The workers this actor's queries ran on (its own, if the executor does its job).
    private(set) var workersSeen: Set<String> = []

    init(pool: ThreadPool, worker: Int, connections: Connections) {
        executor = pool.serialExecutor(worker: worker)
        self.connections = connections
    }

    /// Runs `query` on this worker's connection. Synchronous inside the actor: the connection (in a
    /// ThreadLocal) is read on the thread the actor runs on, which is always its worker.
    func answer(_ query: DatabaseQuery) throws(DatabaseError) -> DatabaseAnswer {
        workersSeen.insert(ThreadPool.currentWorker?.name ?? "not a worker")
        let session = connections.current
        switch query {
        case .range(let ids): return .range(try session.summary(of: ids))
        case .customer(let customer): return .customer(try session.summary(ofCustomer: customer))
        }
    }
}

// MARK: The run

/// What ``queryWithWorkerActors(path:threads:queries:)`` computed and the connections it used.
public struct ActorQueryRun: Sendable {
    /// The answer to each query, in the order of the queries.
    public let answers: [DatabaseAnswer]
    public let connectionsOpened: Int
    /// Every connection closed, with the worker that closed it and the queries it ran.
    public let connectionsClosed: [ConnectionUse]
    /// For each worker's actor, by worker index: the names of the workers its queries ran on.
    public let workersSeen: [Set<String>]
}

/// Opens a connection per worker in the pool's initializer, makes an actor per worker on that worker's
/// executor, then answers every query in a task of its own (all at once, concurrently): task i asks
/// the actor of worker i % threads. The pool is closed and joined before this returns.
/// - Throws: ``ThreadPoolError/initializerFailed(worker:underlying:)`` when a worker cannot open the
///   database; a ``DatabaseError`` from a query.
public func queryWithWorkerActors(path: String, threads: Int?, queries: [DatabaseQuery]) async throws
    -> ActorQueryRun
{
    let connections = Connections(path: path)
    let pool = try ThreadPool(
        threads: threads, name: "dbactor",
        initializer: { try connections.openForThisWorker() },
        finalizer: { connections.closeForThisWorker() })
    let actors = (0..<pool.threadCount).map { WorkerDatabase(pool: pool, worker: $0, connections: connections) }
    let answers: [DatabaseAnswer]
    do {
        answers = try await withThrowingTaskGroup(of: (Int, DatabaseAnswer).self) { group in
            for (task, query) in queries.enumerated() {
                let actor = actors[task % actors.count]
                group.addTask { (task, try await actor.answer(query)) }
            }
            var answers = [DatabaseAnswer?](repeating: nil, count: queries.count)
            for try await (task, answer) in group { answers[task] = answer }
            return answers.map { $0! }
        }
    } catch {
        pool.terminate()
        try await pool.join()
        throw error
    }
    var workersSeen: [Set<String>] = []
    for actor in actors { workersSeen.append(await actor.workersSeen) }
    pool.close()
    try await pool.join() // the finalizers have closed the connections
    return ActorQueryRun(
        answers: answers, connectionsOpened: connections.opened,
        connectionsClosed: connections.closed, workersSeen: workersSeen)
}
