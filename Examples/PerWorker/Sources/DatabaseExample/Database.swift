// The example's database: the orders table, creating it, the queries, a connection with its prepared
// statements (DatabaseSession), and the reference answers computed with one connection.
import ExampleSupport

// MARK: The data

/// The example's table, `orders`: ids 1...orders, each for one of `customers` customers, with an
/// amount in cents.
public struct DatabaseShape: Sendable, Equatable {
    public let orders: Int
    public let customers: Int

    public init(orders: Int, customers: Int) {
        self.orders = orders
        self.customers = customers
    }

    /// The id ranges `1...size`, `size+1...2*size`, ..., the last one cut at `orders`.
    public func idRanges(size: Int) -> [ClosedRange<Int>] {
        stride(from: 1, through: orders, by: size).map { $0...min($0 + size - 1, orders) }
    }

    /// The customers' ids, 1...customers.
    public var customerIDs: [Int] {
        (0..<customers).map { $0 + 1 }
    }
}

/// Aggregates of the orders with ids in `ids` (amounts in cents).
public struct RangeSummary: Sendable, Equatable {
    public let ids: ClosedRange<Int>
    public let orders: Int
    public let total: Int
    public let smallest: Int
    public let largest: Int
}

/// One customer's orders (amounts in cents).
public struct CustomerSummary: Sendable, Equatable {
    public let customer: Int
    public let orders: Int
    public let total: Int
}

/// Everything the example computes: one summary per id range (in id order) and per customer (in
/// customer order).
public struct DatabaseAnswers: Sendable, Equatable {
    public let shape: DatabaseShape
    public let ranges: [RangeSummary]
    public let customers: [CustomerSummary]
}

enum SQL {
    static let schema = """
        CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER NOT NULL,
                            amount INTEGER NOT NULL, day INTEGER NOT NULL);
        """
    static let index = "CREATE INDEX orders_by_customer ON orders(customer, amount);"
    static let insert = "INSERT INTO orders(id, customer, amount, day) VALUES (?1, ?2, ?3, ?4)"
    static let shape = "SELECT COALESCE(MAX(id), 0), COALESCE(MAX(customer), 0) FROM orders"
    static let range = """
        SELECT COUNT(*), COALESCE(SUM(amount), 0), COALESCE(MIN(amount), 0), COALESCE(MAX(amount), 0)
        FROM orders WHERE id BETWEEN ?1 AND ?2
        """
    static let customer = "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM orders WHERE customer = ?1"
    // The reference answers: the same aggregates with one GROUP BY each, on one connection.
    static let rangesGrouped = """
        SELECT (id - 1) / ?1, COUNT(*), SUM(amount), MIN(amount), MAX(amount)
        FROM orders GROUP BY 1 ORDER BY 1
        """
    static let customersGrouped = "SELECT customer, COUNT(*), SUM(amount) FROM orders GROUP BY customer"
}

/// Creates a database of `orders` orders spread over `customers` customers at `path`, which must not
/// exist yet. The rows are pseudo-random but the same on every run. On failure nothing is left behind.
/// - Throws: ``DatabaseError``, e.g. "cannot create the database /no/such/dir/x.sqlite: unable to open
///   database file".
public func createDatabase(at path: String, orders: Int, customers: Int) throws(DatabaseError) {
    let connection = try Connection(path: path, readOnly: false)
    do {
        try connection.execute("BEGIN")
        try connection.execute(SQL.schema)
        let insert = try connection.prepare(SQL.insert)
        var random = SplitMix64(seed: 2024)
        for id in stride(from: 1, through: orders, by: 1) {
            let customer = 1 + Int64(random.next() % UInt64(customers))
            let amount = 100 + Int64(random.next() % 49_901) // 1.00 to 500.00
            let day = Int64(random.next() % 365)
            try insert.run([Int64(id), customer, amount, day])
        }
        insert.finalize()
        try connection.execute(SQL.index)
        try connection.execute("COMMIT")
        connection.close()
    } catch {
        connection.close()
        removeDatabaseFiles(path) // it did not exist before: do not leave half a database behind
        throw error
    }
}

func removeDatabaseFiles(_ path: String) {
    for suffix in ["", "-journal", "-wal", "-shm"] { removeFile(path + suffix) }
}

// MARK: A connection and its prepared queries

/// What one connection holds: the connection, its prepared statements, and how many queries it ran.
final class DatabaseSession {
    private let connection: Connection
    private let shapeQuery: Statement
    private let rangeQuery: Statement
    private let customerQuery: Statement
    private(set) var queries = 0

    /// Opens `path` read-only and prepares the queries (which fails if it is not this example's
    /// database: "no such table: orders", "file is not a database").
    init(path: String) throws(DatabaseError) {
        connection = try Connection(path: path, readOnly: true)
        shapeQuery = try connection.prepare(SQL.shape)
        rangeQuery = try connection.prepare(SQL.range)
        customerQuery = try connection.prepare(SQL.customer)
    }

    func close() {
        shapeQuery.finalize()
        rangeQuery.finalize()
        customerQuery.finalize()
        connection.close()
    }

    func shape() throws(DatabaseError) -> DatabaseShape {
        queries += 1
        let row = try shapeQuery.single([], columns: 2)
        return DatabaseShape(orders: Int(row[0]), customers: Int(row[1]))
    }

    func summary(of ids: ClosedRange<Int>) throws(DatabaseError) -> RangeSummary {
        queries += 1
        let row = try rangeQuery.single([Int64(ids.lowerBound), Int64(ids.upperBound)], columns: 4)
        return RangeSummary(
            ids: ids, orders: Int(row[0]), total: Int(row[1]), smallest: Int(row[2]), largest: Int(row[3]))
    }

    func summary(ofCustomer customer: Int) throws(DatabaseError) -> CustomerSummary {
        queries += 1
        let row = try customerQuery.single([Int64(customer)], columns: 2)
        return CustomerSummary(customer: customer, orders: Int(row[0]), total: Int(row[1]))
    }
}

// MARK: The reference answers

/// The reference answers, computed differently: two GROUP BY queries on one connection, on the
/// calling thread.
public func queryWithOneConnection(path: String, rangeSize: Int) throws(DatabaseError) -> DatabaseAnswers {
    let connection = try Connection(path: path, readOnly: true)
    defer { connection.close() }
    let shapeQuery = try connection.prepare(SQL.shape)
    defer { shapeQuery.finalize() }
    let row = try shapeQuery.single([], columns: 2)
    let shape = DatabaseShape(orders: Int(row[0]), customers: Int(row[1]))

    var ranges = shape.idRanges(size: rangeSize).map {
        RangeSummary(ids: $0, orders: 0, total: 0, smallest: 0, largest: 0)
    }
    let byRange = try connection.prepare(SQL.rangesGrouped)
    defer { byRange.finalize() }
    try byRange.run([Int64(rangeSize)]) { row in
        let index = Int(row[0])
        guard ranges.indices.contains(index) else { return }
        ranges[index] = RangeSummary(
            ids: ranges[index].ids, orders: Int(row[1]), total: Int(row[2]),
            smallest: Int(row[3]), largest: Int(row[4]))
    }

    var customers = shape.customerIDs.map { CustomerSummary(customer: $0, orders: 0, total: 0) }
    let byCustomer = try connection.prepare(SQL.customersGrouped)
    defer { byCustomer.finalize() }
    try byCustomer.run { row in
        let index = Int(row[0]) - 1
        guard customers.indices.contains(index) else { return }
        customers[index] = CustomerSummary(customer: Int(row[0]), orders: Int(row[1]), total: Int(row[2]))
    }
    return DatabaseAnswers(shape: shape, ranges: ranges, customers: customers)
}
