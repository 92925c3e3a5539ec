// The built server, run as a subprocess with each pool: its answers against direct queries, and a
// SIGTERM in the middle of a load.
import Foundation
import OrdersDatabase
import OrdersServer
import Synchronization
import Testing
import ThreadPoolKit

@Suite(.serialized) // each test starts a server and loads the machine's cores
struct ServerTests {
    /// The server's answers for orders and customers at the ends and in the middle of the data, and its
    /// errors (no such order or customer, an id that is not a number), equal the direct queries'.
    @Test(arguments: PoolVariant.allCases)
    func answersEqualDirectQueries(pool: PoolVariant) async throws {
        let database = try TestDatabase(orders: 5_000, customers: 50)
        let reference = try Reference(path: database.path)
        let server = try await ServerProcess(
            ["--pool", pool.rawValue, "--threads", "2", "--database", database.path],
            outputDirectory: database.directory)
        let port = server.port
        let orderIDs = [1, 2, 17, 999, 2_500, 4_999, 5_000]
        let customerIDs = [1, 2, 25, 49, 50]
        let missing = ["/orders/0", "/orders/5001", "/customers/0/total", "/customers/51/total"]
        let paths =
            orderIDs.map { "/orders/\($0)" } + customerIDs.map { "/customers/\($0)/total" } + missing
            + ["/orders/abc"]
        // Every request at once, from threads of a client pool: the server's pool serves them concurrently.
        let results = try await withThreadPool(threads: 8, name: "client") { clients in
            try await withThrowingTaskGroup(of: (String, ClientResult).self) { group in
                for path in paths {
                    group.addTask { try await clients.run { (path, httpGet(port: port, path: path)) } }
                }
                return try await group.reduce(into: [String: ClientResult]()) { $0[$1.0] = $1.1 }
            }
        }

        let decoder = JSONDecoder()
        for id in orderIDs {
            guard case .answer(200, let body)? = results["/orders/\(id)"] else {
                Issue.record("/orders/\(id): \(String(describing: results["/orders/\(id)"]))")
                continue
            }
            #expect(try decoder.decode(Order.self, from: Data(body.utf8)) == reference.orders[id])
            #expect(body == reference.orders[id]?.json)
        }
        for id in customerIDs {
            guard case .answer(200, let body)? = results["/customers/\(id)/total"] else {
                Issue.record("/customers/\(id)/total: \(String(describing: results["/customers/\(id)/total"]))")
                continue
            }
            #expect(try decoder.decode(CustomerTotal.self, from: Data(body.utf8)) == reference.totals[id])
        }
        for path in missing {
            guard case .answer(404, _)? = results[path] else {
                Issue.record("\(path): \(String(describing: results[path])), not 404")
                continue
            }
        }
        guard case .answer(400, _)? = results["/orders/abc"] else {
            Issue.record("/orders/abc: \(String(describing: results["/orders/abc"])), not 400")
            return
        }

        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0, "\(server.output)")
        #expect(server.requestsReceived == paths.count, "\(server.output)")
    }

    /// SIGTERM while requests are queued on the pool: every request the server read is answered in
    /// full (200, the right order or total), the ones it had not read are refused or closed unanswered,
    /// and the process exits 0. Each query sleeps 20 ms on one of the server's 2 threads, so when the
    /// signal comes (after 16 answers) about as many requests as there are clients wait in the pool.
    @Test(arguments: PoolVariant.allCases)
    func sigtermLosesNoAcceptedRequest(pool: PoolVariant) async throws {
        let database = try TestDatabase(orders: 5_000, customers: 50)
        let reference = try Reference(path: database.path)
        let server = try await ServerProcess(
            ["--pool", pool.rawValue, "--threads", "2", "--query-delay-ms", "20", "--database", database.path],
            outputDirectory: database.directory)
        let port = server.port
        let requests = 240
        let clientThreads = 32
        let progress = LoadProgress()
        let pid = server.process.processIdentifier
        @Sendable func path(_ index: Int) -> String {
            index.isMultiple(of: 3) ? "/customers/\(1 + index % 50)/total" : "/orders/\(1 + index * 17 % 5_000)"
        }

        // (request, result, whether the signal had been sent when the result came)
        let results = try await withThreadPool(threads: clientThreads, name: "client") { clients in
            try await withThrowingTaskGroup(of: (Int, ClientResult, Bool)?.self) { group in
                for index in 0..<requests {
                    group.addTask {
                        try await clients.run {
                            let result = httpGet(port: port, path: path(index))
                            if case .answer = result { progress.answered.add(1, ordering: .relaxed) }
                            return (index, result, progress.signalled.load(ordering: .relaxed))
                        }
                    }
                }
                group.addTask {
                    while progress.answered.load(ordering: .relaxed) < 16 {
                        try await Task.sleep(for: .milliseconds(1))
                    }
                    progress.signalled.store(true, ordering: .relaxed)
                    kill(pid, SIGTERM)
                    return nil
                }
                return try await group.reduce(into: [(Int, ClientResult, Bool)]()) {
                    if let result = $1 { $0.append(result) }
                }
            }
        }

        let status = try await server.waitForExit()
        #expect(status == 0, "\(server.output)")
        #expect(results.count == requests)
        var answers = 0
        var answersAfterSignal = 0
        var refused = 0
        var unanswered = 0
        for (index, result, afterSignal) in results {
            switch result {
            case .answer(200, let body):
                answers += 1
                if afterSignal { answersAfterSignal += 1 }
                let expected =
                    index.isMultiple(of: 3)
                    ? reference.totals[1 + index % 50]?.json
                    : reference.orders[1 + index * 17 % 5_000]?.json
                #expect(body == expected, "\(path(index))")
            case .refused: refused += 1
            case .unanswered: unanswered += 1
            case .answer, .truncated: Issue.record("\(path(index)): \(result)")
            }
        }
        // Every request the server received was answered: none was read and then dropped.
        #expect(server.requestsReceived == answers, "\(server.output)")
        // The signal came mid-load: requests already in the server were answered after it.
        #expect(answersAfterSignal > 0)
        print(
            "\(pool): \(answers) answered (\(answersAfterSignal) after SIGTERM), \(refused) refused, \(unanswered) unanswered of \(requests)"
        )
    }
}

/// The load's progress, shared by the client threads and the task that sends the signal.
final class LoadProgress: Sendable {
    let answered = Atomic<Int>(0)
    let signalled = Atomic<Bool>(false)
}
