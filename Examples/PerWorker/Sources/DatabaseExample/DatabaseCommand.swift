// The PerWorkerDatabase program: arguments, the runs, what it prints, and its exit status.
import ExampleSupport
import ThreadPoolKit

public let databaseUsage = """
    usage: PerWorkerDatabase [--threads N] [--orders N] [DATABASE]

    Queries an SQLite database from a thread pool whose workers each open their own connection in
    the pool's initializer, reuse it (and its prepared statements) for every task, and close it in
    the finalizer; then does the same work opening a connection for every task, and compares.

      DATABASE      the database file; created (with --orders orders) if it does not exist.
                    Default: a new one in a temporary directory, removed at the end.
      --threads N   workers (default: the number of CPUs)
      --orders N    orders to create in a new database (default: 100000)
    """

/// Orders per id range in the `map`; customers of a new database.
let rangeSize = 500
let customerCount = 1000
/// Each way of running is timed this many times; the best time is shown.
let timedRuns = 3

/// Runs the program with `arguments` (without the program's name) and returns its exit status:
/// 0, 1 for an error (a message on `console.err`, never a crash), 2 for a usage error.
public func runDatabaseExample(arguments: [String], console: Console = .standard) -> Int32 {
    var temporary: TemporaryDirectory?
    defer { temporary?.remove() }
    do {
        let parsed = try Arguments(arguments, valued: ["threads", "orders"], flags: ["help"])
        if parsed.flags.contains("help") {
            console.out(databaseUsage)
            return 0
        }
        let threads: Int? =
            parsed.options["threads"] == nil
            ? nil : try parsed.integer("threads", default: 1, in: 1...ThreadPool.maximumThreadCount)
        let orders = try parsed.integer("orders", default: 100_000, in: 0...100_000_000)
        guard parsed.positional.count <= 1 else { throw UsageError("give at most one database file") }

        let path: String
        if let given = parsed.positional.first {
            path = given
        } else {
            temporary = try TemporaryDirectory(prefix: "PerWorkerDatabase")
            path = temporary!.file("orders.sqlite")
        }
        if pathExists(path) {
            console.out("Using the existing database \(path).")
        } else {
            let created = try timed { try createDatabase(at: path, orders: orders, customers: customerCount) }
            console.out(
                "Created \(path): \(grouped(orders)) orders of \(grouped(customerCount)) customers "
                    + "in \(created.elapsed.formatted).")
        }

        // The example: one connection per worker. Timed a few times; the answers are the same each time.
        var perWorker = try queryWithPerWorkerConnections(path: path, threads: threads, rangeSize: rangeSize)
        for _ in 1..<timedRuns {
            let again = try queryWithPerWorkerConnections(path: path, threads: threads, rangeSize: rangeSize)
            if again.elapsed < perWorker.elapsed { perWorker = again }
        }
        report(perWorker, console: console)

        let reference = try queryWithOneConnection(path: path, rangeSize: rangeSize)
        guard perWorker.answers == reference else {
            console.err("error: the pool's answers differ from one connection's GROUP BY queries")
            return 1
        }
        console.out("Checked: the same answers as two GROUP BY queries on a single connection.")

        // The same work with a connection per task.
        var perTask = try queryWithConnectionPerTask(path: path, threads: threads, rangeSize: rangeSize)
        for _ in 1..<timedRuns {
            let again = try queryWithConnectionPerTask(path: path, threads: threads, rangeSize: rangeSize)
            if again.elapsed < perTask.elapsed { perTask = again }
        }
        guard perTask.answers == reference else {
            console.err("error: the answers with a connection per task differ")
            return 1
        }
        let workers = perWorker.connectionsClosed.count
        console.out(
            """

            Time for pool start, map and imapUnordered (\(counted(workers, "worker")), best of \(timedRuns) runs):
              a connection per worker, opened by the initializer: \(perWorker.elapsed.formatted) \
            (\(counted(perWorker.connectionsOpened, "connection")))
              a new connection for every task:                    \(perTask.elapsed.formatted) \
            (\(counted(perTask.connectionsOpened, "connection")), \(ratio(perTask.elapsed, against: perWorker.elapsed)))
            """)
        return 0
    } catch let error as UsageError {
        console.err("error: \(error)\n\n\(databaseUsage)")
        return 2
    } catch {
        console.err("error: \(describeDatabaseError(error))")
        return 1
    }
}

/// A sentence for the user. A worker whose initializer could not open the database makes the pool's
/// `init` throw `ThreadPoolError.initializerFailed`: say which worker and what SQLite said.
public func describeDatabaseError(_ error: any Error) -> String {
    if let poolError = error as? ThreadPoolError, case .initializerFailed(let worker, let underlying) = poolError {
        return "worker \(worker + 1) could not open its connection: \(underlying)"
    }
    return "\(error)"
}

func report(_ run: QueryRun, console: Console) {
    let answers = run.answers
    let total = answers.ranges.reduce(0) { $0 + $1.total }
    let orders = answers.ranges.reduce(0) { $0 + $1.orders }
    console.out(
        """

        map over \(counted(answers.ranges.count, "id range")) of \(rangeSize) orders: \
        \(counted(orders, "order")), \(money(total)) in total
        """)
    if let busiest = answers.ranges.max(by: { $0.total < $1.total }) {
        console.out(
            "  largest range total: ids \(grouped(busiest.ids.lowerBound))-\(grouped(busiest.ids.upperBound)), "
                + "\(money(busiest.total)) (orders from \(money(busiest.smallest)) to \(money(busiest.largest)))")
    }
    let top = answers.customers.sorted { ($0.total, $1.customer) > ($1.total, $0.customer) }.prefix(3)
    console.out(
        "imapUnordered over \(counted(answers.customers.count, "customer"))"
            + (top.isEmpty ? "" : ": the biggest spenders are"))
    for customer in top {
        console.out("  customer \(customer.customer): \(counted(customer.orders, "order")), \(money(customer.total))")
    }
    let uses = run.connectionsClosed.sorted { $0.worker < $1.worker }
        .map { "\($0.worker) ran \(counted($0.queries, "query", "queries"))" }
    console.out(
        "Connections: \(run.connectionsOpened) opened by the initializer, \(run.connectionsClosed.count) "
            + "closed by the finalizer (\(uses.joined(separator: ", ")))")
}

/// Cents as "1,234.56".
func money(_ cents: Int) -> String {
    let fraction = cents % 100
    return "\(grouped(cents / 100)).\(fraction < 10 ? "0" : "")\(fraction)"
}
