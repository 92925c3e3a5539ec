import Foundation
import Testing

@testable import ThreadPoolKit

// Not a port of its own: the functions and exceptions that CPython's pool tests share
// (Lib/test/_test_multiprocessing.py, Lib/test/test_concurrent_futures/executor.py), under their Python
// names, so that each port in this folder reads like its original. They live in `Py` to stay apart
// from the other suites' helpers; shared mutable state still goes through Support.swift's helpers.

enum Py {
    // MARK: Exceptions (each its own type, as `assertRaises(ValueError, ...)` checks the class)

    struct ValueError: Error, Equatable {
        var message = ""
    }

    struct KeyError: Error, Equatable {
        var key = ""
    }

    struct RuntimeError: Error, Equatable {
        var message = ""
    }

    /// `class SayWhenError(ValueError)`: what `exception_throwing_generator` raises.
    struct SayWhenError: Error, Equatable {}

    struct ZeroDivisionError: Error, Equatable {}

    /// `TimeoutError` raised by a task itself (not by a bounded wait).
    struct TimeoutError: Error, Equatable {}

    // MARK: Functions

    /// `sqr(x, wait=0.0)`: sleeps `wait` seconds to simulate work, as CPython's does, then returns x*x.
    static func sqr(_ x: Int, wait seconds: Double = 0) -> Int {
        if seconds > 0 { usleep(useconds_t(seconds * 1_000_000)) }
        return x * x
    }

    static func mul(_ x: Int, _ y: Int) -> Int { x * y }

    /// `pow(x, y)` for small non-negative integers.
    static func pow(_ x: Int, _ y: Int) -> Int {
        (0..<y).reduce(1) { result, _ in result * x }
    }

    /// `divmod(x, y)`, raising ZeroDivisionError for y == 0 (Python's floor division and modulo; the
    /// tests only use non-negative operands).
    static func divmod(_ x: Int, _ y: Int) throws -> DivMod {
        guard y != 0 else { throw ZeroDivisionError() }
        return DivMod(quotient: x / y, remainder: x % y)
    }

    /// The tuple that `divmod` returns.
    struct DivMod: Equatable, Sendable, CustomStringConvertible {
        let quotient: Int
        let remainder: Int
        init(quotient: Int, remainder: Int) {
            self.quotient = quotient
            self.remainder = remainder
        }
        init(_ quotient: Int, _ remainder: Int) {
            self.init(quotient: quotient, remainder: remainder)
        }
        var description: String { "(\(quotient), \(remainder))" }
    }

    /// `int(s)`: the integer `s` spells, or ValueError.
    static func int(_ string: String) throws -> Int {
        guard let value = Int(string) else { throw ValueError(message: "invalid literal for int(): '\(string)'") }
        return value
    }

    /// `exception_throwing_generator(total, when)`: yields 0, 1, … and raises SayWhenError instead of
    /// yielding `when` (at once for `when == -1`). Made for `imap(from:)`, which takes such a producer.
    static func exceptionThrowingGenerator(total: Int, when: Int) -> sending () throws -> Int? {
        var next = 0
        return {
            if when == -1 { throw SayWhenError() }
            guard next < total else { return nil }
            if next == when { throw SayWhenError() }
            defer { next += 1 }
            return next
        }
    }

    /// `list(it)`: every remaining result of an iterator. Bounded, so that a bug fails the test
    /// instead of hanging it.
    static func list<T>(_ iterator: ResultIterator<T>) throws -> [T] {
        var values: [T] = []
        while let value = try iterator.next(timeout: .seconds(30)) { values.append(value) }
        return values
    }

    /// `pool.join()` with a bound, as CPython guards its "must not hang" tests with `signal.alarm`:
    /// true if join returned (without throwing) within `seconds`. On false the joining thread is left
    /// blocked; the test fails instead of hanging.
    static func join(_ pool: ThreadPool, within seconds: Double = 10) -> Bool {
        let done = DispatchSemaphore(value: 0)
        let succeeded = Counter()
        Thread {
            if (try? pool.join()) != nil { succeeded.increment() }
            done.signal()
        }.start()
        return done.wait(timeout: .now() + seconds) == .success && succeeded.value == 1
    }

    /// Whether the pool is idle: nothing queued, nothing running. Once an imap has filled its window
    /// and the pool is idle, nothing more is pulled from its input until the consumer reads.
    static func isIdle(_ pool: ThreadPool) -> Bool {
        let stats = pool.stats
        return stats.queued == 0 && stats.running == 0
    }

    /// CPython's `TIMEOUT1`/`TIMEOUT2`: the short time a test's task sleeps or a bounded wait lasts.
    static let timeout: Duration = .milliseconds(100)
}

extension Py {
    /// Whether `error` is the ThreadPoolError case `expected` (the counts of invalidThreadCount and
    /// invalidChunkSize compared, other associated values ignored), for `expectPoolError`.
    static func isPoolError(_ error: ThreadPoolError, _ expected: ThreadPoolError) -> Bool {
        switch (error, expected) {
        case (.notRunning, .notRunning), (.stillRunning, .stillRunning), (.notReady, .notReady),
            (.timeout, .timeout), (.cancelled, .cancelled), (.wouldDeadlock, .wouldDeadlock),
            (.initializerFailed, .initializerFailed), (.systemError, .systemError):
            return true
        case (.invalidThreadCount(let a), .invalidThreadCount(let b)),
            (.invalidChunkSize(let a), .invalidChunkSize(let b)),
            (.invalidBufferSize(let a), .invalidBufferSize(let b)):
            return a == b
        default:
            return false
        }
    }
}
