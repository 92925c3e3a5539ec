// The server's data: the `orders` table of Examples/PerWorker (same schema, same generated rows for
// the same sizes), its two queries, and a connection with those queries prepared (OrdersSession).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: The answers

/// One order (amount in cents, day 0...364 of the year).
public struct Order: Sendable, Equatable, Codable {
    public let id: Int
    public let customer: Int
    public let amount: Int
    public let day: Int

    public init(id: Int, customer: Int, amount: Int, day: Int) {
        self.id = id
        self.customer = customer
        self.amount = amount
        self.day = day
    }

    /// The JSON the server answers with, fields in this order (formatted by hand: the answer is four
    /// integers, and the load script compares its digits with the sqlite3 shell's output).
    public var json: String {
        #"{"id":\#(id),"customer":\#(customer),"amount":\#(amount),"day":\#(day)}"#
    }
}

/// One customer's orders: how many, and their total amount in cents.
public struct CustomerTotal: Sendable, Equatable, Codable {
    public let customer: Int
    public let orders: Int
    public let total: Int

    public init(customer: Int, orders: Int, total: Int) {
        self.customer = customer
        self.orders = orders
        self.total = total
    }

    public var json: String {
        #"{"customer":\#(customer),"orders":\#(orders),"total":\#(total)}"#
    }
}

// MARK: The SQL

/// The statements, public so that the tests and the load script's check name the same table.
public enum OrdersSQL {
    public static let schema = """
        CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER NOT NULL,
                            amount INTEGER NOT NULL, day INTEGER NOT NULL);
        """
    /// The customer total reads this index only (it covers customer and amount).
    public static let index = "CREATE INDEX orders_by_customer ON orders(customer, amount);"
    static let insert = "INSERT INTO orders(id, customer, amount, day) VALUES (?1, ?2, ?3, ?4)"
    /// A point query on the primary key.
    public static let order = "SELECT id, customer, amount, day FROM orders WHERE id = ?1"
    /// An aggregate over one customer's orders (about orders/customers rows).
    public static let customerTotal = "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM orders WHERE customer = ?1"
    static let size = "SELECT COALESCE(MAX(id), 0), COALESCE(MAX(customer), 0) FROM orders"
}

/// Creates a database of `orders` orders spread over `customers` customers at `path`, which must not
/// exist yet. The rows are pseudo-random but the same on every run (Examples/PerWorker's generator,
/// seed 2024). On failure nothing is left behind.
public func createDatabase(at path: String, orders: Int, customers: Int) throws(DatabaseError) {
    let connection = try Connection(path: path, readOnly: false)
    do {
        try connection.execute("BEGIN")
        try connection.execute(OrdersSQL.schema)
        let insert = try connection.prepare(OrdersSQL.insert)
        var random = SplitMix64(seed: 2024)
        for id in stride(from: 1, through: orders, by: 1) {
            let customer = 1 + Int64(random.next() % UInt64(customers))
            let amount = 100 + Int64(random.next() % 49_901) // 1.00 to 500.00
            let day = Int64(random.next() % 365)
            try insert.run([Int64(id), customer, amount, day])
        }
        insert.finalize()
        try connection.execute(OrdersSQL.index)
        try connection.execute("COMMIT")
        connection.close()
    } catch {
        connection.close()
        for suffix in ["", "-journal", "-wal", "-shm"] { _ = unlink(path + suffix) }
        throw error
    }
}

/// The largest order id and customer id in the database at `path`.
public func databaseSize(at path: String) throws(DatabaseError) -> (orders: Int, customers: Int) {
    let connection = try Connection(path: path, readOnly: true)
    defer { connection.close() }
    let statement = try connection.prepare(OrdersSQL.size)
    defer { statement.finalize() }
    let row = try statement.first([], columns: 2) ?? [0, 0]
    return (Int(row[0]), Int(row[1]))
}

// MARK: A connection and its prepared queries

/// A read-only connection with the server's two queries prepared: what a worker keeps, or what a
/// request opens and closes. Used by one thread at a time.
public final class OrdersSession {
    private let connection: Connection
    private let orderQuery: Statement
    private let customerQuery: Statement

    /// Opens `path` read-only and prepares the queries (which fails if it is not this server's
    /// database: "no such table: orders", "file is not a database").
    public init(path: String) throws(DatabaseError) {
        connection = try Connection(path: path, readOnly: true)
        orderQuery = try connection.prepare(OrdersSQL.order)
        customerQuery = try connection.prepare(OrdersSQL.customerTotal)
    }

    deinit {
        close()
    }

    /// Finalizes the statements and closes the connection; calling it again does nothing.
    public func close() {
        orderQuery.finalize()
        customerQuery.finalize()
        connection.close()
    }

    /// The order `id`, or nil if there is none.
    public func order(id: Int) throws(DatabaseError) -> Order? {
        guard let row = try orderQuery.first([Int64(id)], columns: 4) else { return nil }
        return Order(id: Int(row[0]), customer: Int(row[1]), amount: Int(row[2]), day: Int(row[3]))
    }

    /// The customer's total, or nil if the customer has no order.
    public func customerTotal(id: Int) throws(DatabaseError) -> CustomerTotal? {
        guard let row = try customerQuery.first([Int64(id)], columns: 2), row[0] > 0 else { return nil }
        return CustomerTotal(customer: id, orders: Int(row[0]), total: Int(row[1]))
    }
}

// MARK: The generator

/// SplitMix64 (Steele, Lea and Flood): Examples/PerWorker's generator, so that the same sizes give
/// the same rows in both examples.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
