import DatabaseExample
import ExampleSupport
import Testing
import ThreadPoolKit

@Suite("An actor per worker, owning that worker's SQLite connection")
struct PerWorkerActorTests {
    @Test(
        "1,000 concurrent tasks query the actors: the answers of a direct query, each actor on its worker",
        arguments: [1, 2, 3])
    func actorsAnswerLikeOneConnection(threads: Int) async throws {
        let (directory, path) = try PerWorkerDatabaseTests.makeDatabase()
        defer { directory.remove() }
        let reference = try queryWithOneConnection(path: path, rangeSize: PerWorkerDatabaseTests.rangeSize)
        let queries = databaseQueries(1_000, shape: reference.shape, rangeSize: PerWorkerDatabaseTests.rangeSize)
        #expect(queries.count == 1_000)

        let run = try await queryWithWorkerActors(path: path, threads: threads, queries: queries)

        #expect(run.answers.count == queries.count)
        for (query, answer) in zip(queries, run.answers) {
            #expect(answer == reference.answer(to: query), "\(query)")
        }
        // Every range once, then every customer (several times over).
        #expect(Set(run.answers.compactMap { if case .range(let r) = $0 { r.ids } else { nil } }).count == 25)
        #expect(
            Set(run.answers.compactMap { if case .customer(let c) = $0 { c.customer } else { nil } }).count
                == PerWorkerDatabaseTests.customers)
        // One connection per worker, opened by the initializer and closed by the finalizer, and every
        // query ran on one of them; each worker's actor ran only on that worker.
        #expect(run.connectionsOpened == threads)
        #expect(run.connectionsClosed.count == threads)
        #expect(run.connectionsClosed.reduce(0) { $0 + $1.queries } == queries.count)
        #expect(run.workersSeen == (1...threads).map { ["dbactor-\($0)"] })
        // Task i asked the actor of worker i % threads, so each connection ran its share.
        let shares = (0..<threads).map { worker in (0..<queries.count).filter { $0 % threads == worker }.count }
        #expect(run.connectionsClosed.sorted { $0.worker < $1.worker }.map(\.queries) == shares)
    }
}
