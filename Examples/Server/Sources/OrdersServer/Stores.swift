// The three ways the server runs its queries, with the same answers: ThreadPoolKit with a connection
// per worker, opened by the pool's initializer; NIOThreadPool with a connection opened per request
// (what NIO users write today); NIOThreadPool with a connection per thread kept by hand in a
// thread-specific variable.
import NIOPosix
import OrdersDatabase
import ServiceLifecycle
import ThreadPoolKit

/// Which pool runs the queries (`--pool`).
public enum PoolVariant: String, CaseIterable, Sendable, CustomStringConvertible {
    /// ThreadPoolKit; each worker opens its connection in the pool's initializer and closes it in the
    /// finalizer. A query is `pool.run { ... }`: the request's task moves onto a worker for the query
    /// (and stays there until its next suspension).
    case threadPoolKit = "threadpoolkit"
    /// The same pool and connections; a query is `pool.applyAsync { ... }.value`: the task stays where
    /// it is and awaits the result, as with NIOThreadPool.
    case threadPoolKitApplyAsync = "threadpoolkit-applyasync"
    /// NIOThreadPool; each request opens a connection, prepares its query and closes it.
    case nioPerRequest = "nio-per-request"
    /// NIOThreadPool; each thread opens a connection on its first request and keeps it.
    case nioThreadLocal = "nio-thread-local"

    public var description: String { rawValue }
}

/// Runs a query on a pool's thread with an `OrdersSession`, and hands the application the service
/// that starts and stops that pool.
public protocol OrdersStore: Sendable {
    /// Runs `body` on one of the pool's threads with a session of that thread (or of that request) and
    /// returns its value without blocking the caller's thread.
    func withSession<T: Sendable>(_ body: @escaping @Sendable (OrdersSession) throws -> T) async throws -> T

    /// The pool as a service of the application's `ServiceGroup`: its `run()` returns once the pool is
    /// shut down (after graceful shutdown, when every request has been answered).
    var service: any Service { get }
}

/// Makes the store of `variant`: `threads` threads on the database at `path`.
/// - Throws: for ThreadPoolKit, ``ThreadPoolError/initializerFailed(worker:underlying:)`` when a
///   worker cannot open the database (the server does not start).
public func makeStore(_ variant: PoolVariant, path: String, threads: Int) throws -> any OrdersStore {
    switch variant {
    case .threadPoolKit: try PerWorkerStore(path: path, threads: threads, movesTask: true)
    case .threadPoolKitApplyAsync: try PerWorkerStore(path: path, threads: threads, movesTask: false)
    case .nioPerRequest: NIOPerRequestStore(path: path, threads: threads)
    case .nioThreadLocal: NIOThreadLocalStore(path: path, threads: threads)
    }
}

// MARK: ThreadPoolKit, a connection per worker

/// Each worker's session, opened by the pool's initializer on that worker and closed by its finalizer.
final class WorkerSessions: Sendable {
    private let session = ThreadLocal<OrdersSession?> { nil }
    let path: String

    init(path: String) {
        self.path = path
    }

    func openForThisWorker() throws(DatabaseError) {
        session.value = try OrdersSession(path: path)
    }

    func closeForThisWorker() {
        session.value?.close()
        session.value = nil
    }

    /// The calling worker's session.
    var current: OrdersSession {
        guard let current = session.value else {
            preconditionFailure("the session is opened by the pool's initializer, on each of its workers")
        }
        return current
    }
}

/// ThreadPoolKit: the pool's initializer opens every worker's connection before the server starts, so
/// a database that cannot be opened stops the server at start rather than failing each request.
final class PerWorkerStore: OrdersStore {
    let pool: ThreadPool
    private let sessions: WorkerSessions
    /// `run` (the task moves onto the worker) or `applyAsync` and `value` (it awaits from where it is).
    let movesTask: Bool

    init(path: String, threads: Int, movesTask: Bool) throws {
        self.movesTask = movesTask
        let sessions = WorkerSessions(path: path)
        self.sessions = sessions
        pool = try ThreadPool(
            threads: threads, name: "db",
            initializer: { try sessions.openForThisWorker() },
            finalizer: { sessions.closeForThisWorker() })
    }

    func withSession<T: Sendable>(_ body: @escaping @Sendable (OrdersSession) throws -> T) async throws -> T {
        if movesTask { return try await pool.run { [sessions] in try body(sessions.current) } }
        return try await pool.applyAsync { [sessions] in try body(sessions.current) }.value
    }

    // ThreadPool is a Service (ThreadPoolKit's package trait ServiceLifecycle): graceful shutdown
    // closes and joins it, so queued queries still run; cancellation terminates and joins it.
    var service: any Service { pool }
}

// MARK: NIOThreadPool, a connection per request

/// NIOThreadPool as NIO's users write it: `runIfActive` opens a connection, prepares the statement,
/// runs it and closes the connection.
final class NIOPerRequestStore: OrdersStore {
    let pool: NIOThreadPool
    let path: String

    init(path: String, threads: Int) {
        self.path = path
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    func withSession<T: Sendable>(_ body: @escaping @Sendable (OrdersSession) throws -> T) async throws -> T {
        try await pool.runIfActive { [path] in
            let session = try OrdersSession(path: path)
            defer { session.close() }
            return try body(session)
        }
    }

    var service: any Service { NIOThreadPoolService(pool: pool) }
}

// MARK: NIOThreadPool, a connection per thread by hand

/// A thread's session in a `ThreadSpecificVariable`, which needs a Sendable value to be Sendable
/// itself. Unchecked: the session is reached only through the variable, so only by the thread that
/// made it.
final class ThreadSession: @unchecked Sendable {
    let session: OrdersSession

    init(_ session: OrdersSession) {
        self.session = session
    }
}

/// NIOThreadPool with the per-thread connection written by hand: NIOThreadPool has no initializer, so
/// a thread opens its connection on its first request (a request pays for it, and a database that
/// cannot be opened fails requests, not the start). NIO releases each thread's value when the thread
/// exits, and the session's deinit closes the connection.
final class NIOThreadLocalStore: OrdersStore {
    let pool: NIOThreadPool
    let path: String
    private let sessions = ThreadSpecificVariable<ThreadSession>()

    init(path: String, threads: Int) {
        self.path = path
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    func withSession<T: Sendable>(_ body: @escaping @Sendable (OrdersSession) throws -> T) async throws -> T {
        try await pool.runIfActive { [path, sessions] in
            if let mine = sessions.currentValue { return try body(mine.session) }
            let mine = ThreadSession(try OrdersSession(path: path))
            sessions.currentValue = mine
            return try body(mine.session)
        }
    }

    var service: any Service { NIOThreadPoolService(pool: pool) }
}
