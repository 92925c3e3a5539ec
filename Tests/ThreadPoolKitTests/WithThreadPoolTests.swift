import Foundation
import Testing

@testable import ThreadPoolKit

@Suite("withThreadPool")
struct WithThreadPoolTests {
    @Test("normal exit closes and joins: every submitted task finishes, no thread is left")
    func normalExit() throws {
        let name = uniqueName("with")
        let ran = Counter()
        let value = try withThreadPool(threads: 3, name: name) { pool -> Int in
            for _ in 0..<10_000 { _ = try pool.applyAsync { ran.increment() } }
            return 7
        }
        #expect(value == 7)
        #expect(ran.value == 10_000)
        #expect(eventually { threadsNamed(name) == 0 })
    }

    @Test("a thrown error terminates (queued tasks dropped) and joins, then is rethrown")
    func thrownError() throws {
        let name = uniqueName("wthr")
        let ran = Counter()
        let gate = Gate()
        var results: [AsyncResult<Void>] = []
        #expect(throws: TestError(code: 1)) {
            try withThreadPool(threads: 1, name: name) { pool in
                _ = try pool.applyAsync { gate.pass() }
                #expect(eventually { gate.arrived == 1 })
                for _ in 0..<100 { results.append(try pool.applyAsync { ran.increment() }) }
                gate.open() // the running task finishes; the queued ones are dropped by terminate
                throw TestError(code: 1)
            }
        }
        #expect(results.count == 100)
        #expect(results.allSatisfy { $0.isReady })
        let cancelled = results.filter { (try? $0.successful()) == false }.count
        #expect(ran.value + cancelled == 100) // each either ran or was cancelled, exactly
        #expect(eventually { threadsNamed(name) == 0 })
    }

    @Test("the tutorial's pattern (close and join inside the scope) works unchanged")
    func tutorialPattern() throws {
        let initialized = Counter()
        let ran = Counter()
        try withThreadPool(threads: 2, initializer: { initialized.increment() }) { pool in
            for _ in 0..<4 { _ = try pool.applyAsync { ran.increment() } }
            pool.close()
            try pool.join()
        }
        #expect(initialized.value == 2 && ran.value == 4)
    }

    @Test("a failing initializer throws from withThreadPool before the body runs")
    func failingInitializer() {
        let bodyRan = Counter()
        #expect(throws: ThreadPoolError.self) {
            try withThreadPool(threads: 2, initializer: { throw TestError(code: 2) }) { _ in bodyRan.increment() }
        }
        #expect(bodyRan.value == 0)
    }
}
