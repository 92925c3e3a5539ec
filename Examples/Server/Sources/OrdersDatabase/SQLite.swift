// Just enough of SQLite's C API for the server: a connection, prepared statements, integer columns.
// The wrapper of Examples/PerWorker (DatabaseExample/SQLite.swift), copied: the two example packages
// stay independent, and it is small.
import CSQLite

/// What went wrong with the database, as SQLite said it, and where.
public struct DatabaseError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// One SQLite connection. Not shared between threads: each one is used by one thread at a time
/// (SQLITE_OPEN_NOMUTEX: no locking inside SQLite is needed for that).
public final class Connection {
    private var handle: OpaquePointer?
    public let path: String

    /// Opens `path`: read-only, or read-write and created if missing.
    public init(path: String, readOnly: Bool) throws(DatabaseError) {
        self.path = path
        let access = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        var db: OpaquePointer?
        let status = sqlite3_open_v2(path, &db, access | SQLITE_OPEN_NOMUTEX, nil)
        guard status == SQLITE_OK, let db else {
            // sqlite3_open_v2 hands back a handle (holding the message) even when it fails.
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
            sqlite3_close(db)
            throw DatabaseError("cannot \(readOnly ? "open" : "create") the database \(path): \(message)")
        }
        handle = db
        sqlite3_busy_timeout(db, 5000)
    }

    deinit {
        close()
    }

    /// Closes the connection. sqlite3_close_v2: if a statement is still unfinalized, the connection
    /// goes when that statement does. Calling it again does nothing.
    public func close() {
        if let handle {
            sqlite3_close_v2(handle)
            self.handle = nil
        }
    }

    /// Runs SQL that returns no rows (several statements allowed).
    public func execute(_ sql: String) throws(DatabaseError) {
        var message: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(handle, sql, nil, nil, &message) != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? lastError
            sqlite3_free(message)
            throw DatabaseError("\(path): \(text)")
        }
    }

    public func prepare(_ sql: String) throws(DatabaseError) -> Statement {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw DatabaseError("\(path): \(lastError)")
        }
        return Statement(statement, path: path)
    }

    var lastError: String {
        handle.map { String(cString: sqlite3_errmsg($0)) } ?? "the connection is closed"
    }
}

/// A prepared statement with integer parameters and integer columns (NULL reads as 0), reused with
/// sqlite3_reset: preparing it once per connection is part of what a held connection saves.
public final class Statement {
    private var handle: OpaquePointer?
    private let path: String

    fileprivate init(_ handle: OpaquePointer, path: String) {
        self.handle = handle
        self.path = path
    }

    /// The connection's last error message.
    private var lastError: String {
        String(cString: sqlite3_errmsg(sqlite3_db_handle(handle)))
    }

    deinit {
        finalize()
    }

    public func finalize() {
        sqlite3_finalize(handle)
        handle = nil
    }

    /// Runs the statement with `parameters` bound to ?1, ?2, ... and calls `row` for each result row.
    public func run(
        _ parameters: [Int64] = [],
        row: (Row) throws(DatabaseError) -> Void = { _ in }
    ) throws(DatabaseError) {
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        for (index, value) in parameters.enumerated() {
            sqlite3_bind_int64(handle, Int32(index + 1), value)
        }
        while true {
            switch sqlite3_step(handle) {
            case SQLITE_ROW: try row(Row(handle: handle))
            case SQLITE_DONE: return
            default: throw DatabaseError("\(path): \(lastError)")
            }
        }
    }

    /// The first row's columns, or nil when the query returns no row.
    public func first(_ parameters: [Int64], columns: Int) throws(DatabaseError) -> [Int64]? {
        var values: [Int64]?
        try run(parameters) { row in
            if values == nil { values = (0..<columns).map { row[$0] } }
        }
        return values
    }
}

/// The current row of a statement.
public struct Row {
    let handle: OpaquePointer?

    public subscript(column: Int) -> Int64 {
        sqlite3_column_int64(handle, Int32(column))
    }
}
