// The application: two routes answered from SQLite on a pool's threads, a count of the requests the
// router received (printed at exit, which the shutdown test checks), and the command line.
import Hummingbird
import Logging
import NIOCore
import OrdersDatabase
import ServiceLifecycle
import Synchronization
import ThreadPoolKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: Routes

/// How many requests reached the router (whatever their answer).
public final class RequestCounter: Sendable {
    private let count = Atomic<Int>(0)

    public init() {}

    public var received: Int { count.load(ordering: .relaxed) }

    func add() {
        count.add(1, ordering: .relaxed)
    }
}

/// Counts every request the router receives, before it is routed.
struct CountingMiddleware<Context: RequestContext>: RouterMiddleware {
    let counter: RequestCounter

    func handle(
        _ request: Request, context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        counter.add()
        return try await next(request, context)
    }
}

/// The routes:
/// - `GET /orders/:id`: one order, `{"id":17,"customer":64,"amount":12345,"day":200}` (a point query
///   on the primary key); 404 if there is no such order.
/// - `GET /customers/:id/total`: `{"customer":64,"orders":98,"total":2480511}` (an aggregate over
///   the customer's orders, read from an index); 404 for a customer without orders.
/// A non-integer id is a 400. `queryDelay` (the tests' stand-in for a slower query) is slept on the
/// pool's thread before each query.
public func makeRouter(
    store: any OrdersStore, counter: RequestCounter,
    queryDelay: Duration = .zero
) -> Router<BasicRequestContext> {
    let delayMicroseconds = UInt32(
        queryDelay.components.seconds * 1_000_000
            + queryDelay.components.attoseconds / 1_000_000_000_000)
    @Sendable func query<T: Sendable>(_ body: @escaping @Sendable (OrdersSession) throws -> T) async throws -> T {
        if delayMicroseconds == 0 { return try await store.withSession(body) }
        return try await store.withSession { session in
            usleep(delayMicroseconds)
            return try body(session)
        }
    }

    let router = Router()
    router.add(middleware: CountingMiddleware(counter: counter))
    router.get("orders/:id") { _, context -> Response in
        let id = try context.parameters.require("id", as: Int.self)
        guard let order = try await query({ try $0.order(id: id) }) else {
            throw HTTPError(.notFound, message: "no order \(id)")
        }
        return jsonResponse(order.json)
    }
    router.get("customers/:id/total") { _, context -> Response in
        let id = try context.parameters.require("id", as: Int.self)
        guard let total = try await query({ try $0.customerTotal(id: id) }) else {
            throw HTTPError(.notFound, message: "no orders for customer \(id)")
        }
        return jsonResponse(total.json)
    }
    return router
}

func jsonResponse(_ text: String) -> Response {
    Response(
        status: .ok, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
}

// MARK: The command line

/// The server's options (`orders-server --help`).
public struct ServerOptions: Sendable {
    public var pool: PoolVariant = .threadPoolKit
    public var database = "/tmp/orders-server.sqlite"
    public var orders = 100_000
    public var customers = 1_000
    public var host = "127.0.0.1"
    public var port = 8080
    public var threads: Int? = nil
    public var queryDelay: Duration = .zero
    public var logLevel: Logger.Level = .notice

    public init() {}

    static let usage = """
        usage: orders-server [--pool VARIANT] [--threads N]
                             [--database PATH] [--orders N] [--customers N]
                             [--host HOST] [--port PORT] [--query-delay-ms N] [--log-level LEVEL]

          --pool        the pool the queries run on (default threadpoolkit):
                          threadpoolkit     ThreadPoolKit, a connection per worker opened by its initializer;
                                            a query is pool.run { ... } (the request's task moves to the worker)
                          threadpoolkit-applyasync  the same, a query is pool.applyAsync { ... }.value
                          nio-per-request   NIOThreadPool, a connection opened and closed per request
                          nio-thread-local  NIOThreadPool, a connection per thread kept in a thread-local
          --threads     the pool's threads (default: ThreadPoolKit's default, the CPUs this process may use)
          --database    the SQLite file (default /tmp/orders-server.sqlite); created with --orders orders of
                        --customers customers (defaults 100000 and 1000) if it does not exist
          --port        0 picks a free port; the line "listening on HOST:PORT" says which
          --query-delay-ms  sleep this long on the pool's thread before each query (a slower query)
        Routes: GET /orders/ID, GET /customers/ID/total. SIGTERM or SIGINT: graceful shutdown.
        """

    /// Parses the arguments after the program's name; nil for `--help`.
    public static func parse(_ arguments: [String]) throws(UsageError) -> ServerOptions? {
        var options = ServerOptions()
        var rest = arguments[...]
        func integer(_ name: String, _ text: String, _ range: ClosedRange<Int>) throws(UsageError) -> Int {
            guard let value = Int(text), range.contains(value) else {
                throw UsageError(
                    "\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound), not \"\(text)\"")
            }
            return value
        }
        while let argument = rest.popFirst() {
            if argument == "--help" || argument == "-h" { return nil }
            var name = argument
            var value: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            }
            guard name.hasPrefix("--") else { throw UsageError("unexpected argument \(argument)") }
            guard let text = value ?? rest.popFirst() else { throw UsageError("\(name) needs a value") }
            switch name {
            case "--pool":
                guard let pool = PoolVariant(rawValue: text) else {
                    throw UsageError(
                        "--pool is one of \(PoolVariant.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(text)\""
                    )
                }
                options.pool = pool
            case "--database": options.database = text
            case "--orders": options.orders = try integer(name, text, 1...100_000_000)
            case "--customers": options.customers = try integer(name, text, 1...10_000_000)
            case "--host": options.host = text
            case "--port": options.port = try integer(name, text, 0...65535)
            case "--threads": options.threads = try integer(name, text, 1...1024)
            case "--query-delay-ms": options.queryDelay = .milliseconds(try integer(name, text, 0...60_000))
            case "--log-level":
                guard let level = Logger.Level(rawValue: text) else { throw UsageError("unknown --log-level \(text)") }
                options.logLevel = level
            default: throw UsageError("unknown option \(name)")
            }
        }
        return options
    }
}

/// A mistake on the command line: printed with the usage, exit status 2.
public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

// MARK: Running

/// Runs the server until SIGTERM or SIGINT; returns the process's exit status.
public func runServer(arguments: [String]) async -> Int32 {
    let options: ServerOptions
    do {
        guard let parsed = try ServerOptions.parse(arguments) else {
            print(ServerOptions.usage)
            return 0
        }
        options = parsed
    } catch {
        printError("orders-server: \(error)\n\(ServerOptions.usage)")
        return 2
    }
    do {
        try await run(options)
        return 0
    } catch {
        printError("orders-server: \(error)")
        return 1
    }
}

/// Creates the database if it is missing, starts the pool, and runs the application (with the pool
/// among its services) until a signal shuts it down gracefully.
public func run(_ options: ServerOptions) async throws {
    if access(options.database, F_OK) != 0 {
        try createDatabase(at: options.database, orders: options.orders, customers: options.customers)
        say("created \(options.database): \(options.orders) orders, \(options.customers) customers")
    }
    let size = try databaseSize(at: options.database)
    let threads = options.threads ?? ThreadPool.defaultThreadCount
    let store = try makeStore(options.pool, path: options.database, threads: threads)
    say(
        "pool \(options.pool), \(threads) threads; database \(options.database): \(size.orders) orders, \(size.customers) customers"
    )

    let counter = RequestCounter()
    var logger = Logger(label: "orders-server")
    logger.logLevel = options.logLevel
    let app = Application(
        router: makeRouter(store: store, counter: counter, queryDelay: options.queryDelay),
        configuration: .init(address: .hostname(options.host, port: options.port), serverName: "orders-server"),
        // The application's ServiceGroup runs these before its HTTP server and shuts them down after it.
        services: [store.service],
        onServerRunning: { channel in
            say("listening on \(options.host):\(channel.localAddress?.port ?? options.port)")
        },
        logger: logger)
    try await app.runService()
    say("stopped: \(counter.received) requests received")
}

/// A line on standard output, written at once (the tests and load.sh wait for these lines; write(2)
/// rather than print and fflush: the C `stdout` global is shared mutable state that Swift 6 does not
/// let nonisolated code touch).
func say(_ line: String) {
    writeLine(line, to: 1)
}

func printError(_ line: String) {
    writeLine(line, to: 2)
}

private func writeLine(_ line: String, to descriptor: Int32) {
    let text = line + "\n"
    _ = text.withCString { write(descriptor, $0, strlen($0)) }
}
