import Synchronization
import Testing

@testable import ThreadPoolKit

/// A result type for each test (`Tag`), so that the recycler's jobs of that kind come from that test
/// only while the suites run in parallel.
private struct Probe<Tag>: Sendable, Equatable {
    let value: Int
}

private func kind<Tag>(_: Tag.Type) -> ObjectIdentifier { ObjectIdentifier(AsyncResult<Probe<Tag>>.self) }
private enum Dropped {}
private enum Referenced {}
private enum Fresh {}
private enum Awaited {}
private enum Concurrent {}
private enum Bounded {}
private enum Counted {}

/// Takes the jobs of `kind` that the calling thread keeps (its magazine, then the depot's), at most
/// `limit`, each with one reference (a kept job comes with `keptReferences` of them).
private func takeKept(_ kind: ObjectIdentifier, limit: Int = .max) -> [_ThreadPoolJob] {
    var jobs: [_ThreadPoolJob] = []
    while jobs.count < limit, let kept = JobRecycler.take(kind) {
        let job = kept.takeRetainedValue()
        for _ in 1..<job.keptReferences { kept.release() }
        jobs.append(job)
    }
    return jobs
}

/// The strong reference counts of up to `limit` kept jobs of `kind` as they are taken (0: none left).
private func keptReferenceCounts(_ kind: ObjectIdentifier, _ limit: Int) -> [Int] {
    (0..<limit).map { _ in
        guard let kept = JobRecycler.take(kind) else { return 0 }
        let references = kept._withUnsafeGuaranteedRef { $0.keptReferences }
        let count = Int(_getRetainCount(kept.takeUnretainedValue())) - 1 // less the one for this call
        for _ in 0..<references { kept.release() }
        return count
    }
}

/// Holds an unowned reference for as long as the holder lives.
private final class UnownedHolder: @unchecked Sendable {
    unowned let result: AsyncResult<Probe<Referenced>>
    init(_ result: AsyncResult<Probe<Referenced>>) { self.result = result }
}

@Suite("Reusing finished jobs (JobRecycler)")
struct RecyclingTests {
    @Test("results dropped before they finish are kept by the worker, reset")
    func droppedResultsAreKept() throws {
        typealias P = Probe<Dropped>
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        try pool.execute { gate.pass() } // holds the only worker until every result below is dropped
        let ran = Counter()
        var dropped: Set<ObjectIdentifier> = []
        for i in 0..<10 {
            // The queue still references each result, so the ten identifiers are ten live objects.
            dropped.insert(
                ObjectIdentifier(
                    try pool.applyAsync {
                        ran.increment(); return P(value: i)
                    }))
        }
        gate.open()
        // One worker runs tasks in order: when this runs, the ten before it have run and been kept.
        let kept = try pool.apply { () -> [ObjectIdentifier] in
            takeKept(kind(Dropped.self)).map { job in
                let result = job as? AsyncResult<P>
                #expect(result != nil && result!.isReady == false && result!.outcome == nil)
                #expect(result?.body == nil && result?.callbacks == nil)
                return ObjectIdentifier(job)
            }
        }
        #expect(ran.value == 10)
        #expect(Set(kept) == dropped)
        #expect(kept.count == 10)
        pool.close()
        try pool.join()
    }

    @Test("execute's jobs are kept once run")
    func executeJobsAreKept() throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        let ran = Counter()
        try pool.execute { gate.pass() }
        for _ in 0..<5 { try pool.execute { ran.increment() } }
        gate.open()
        // The worker's own magazine holds the six it ran (the depot may hold other tests' too).
        let kept = try pool.apply { takeKept(ObjectIdentifier(ExecuteJob.self), limit: 6).count }
        #expect(ran.value == 5)
        #expect(kept == 6)
        pool.close()
        try pool.join()
    }

    @Test("kept jobs carry the references their next submit needs: a result two, execute's job one")
    func keptJobsCarryTheirReferences() throws {
        typealias P = Probe<Counted>
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        try pool.execute { gate.pass() }
        for i in 0..<3 { _ = try pool.applyAsync { P(value: i) } }
        gate.open()
        // A thread's magazine holds one kind at a time: one kind per round.
        let resultCounts = try pool.apply { keptReferenceCounts(kind(Counted.self), 3) }
        for _ in 0..<3 { try pool.execute {} }
        let jobCounts = try pool.apply { keptReferenceCounts(ObjectIdentifier(ExecuteJob.self), 3) }
        let counts = resultCounts + jobCounts
        #expect(counts == [2, 2, 2, 1, 1, 1])
        pool.close()
        try pool.join()
    }

    @Test(
        "results dropped before they run: each body runs once, errors and cancellations are counted, callbacks called")
    func droppedResultsRunUnobserved() throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        let ran = Counter()
        let called = Counter()
        try pool.execute { gate.pass() } // holds the only worker until every result below is dropped
        for i in 0..<30 {
            _ = try pool.applyAsync { () throws -> Int in
                ran.increment()
                if i % 3 == 0 { throw TestError(code: i) }
                return i
            }
        }
        for _ in 0..<5 {
            _ = try pool.applyAsync({ ran.increment() }, callback: { _ in called.increment() })
            _ = try pool.applyAsync(
                { () throws -> Void in
                    ran.increment(); throw TestError(code: -1)
                },
                errorCallback: { _ in called.increment() })
        }
        for _ in 0..<4 {
            let result = try pool.applyAsync { ran.increment() }
            #expect(result.cancel())
        }
        gate.open()
        try pool.apply {} // the tasks before it have run
        #expect(eventually { called.value == 10 })
        #expect(ran.value == 40)
        let stats = pool.stats
        #expect(stats.failed == 15) // 10 of the 30, and the 5 with an error callback
        #expect(stats.cancelled == 4)
        #expect(stats.queued == 0)
        pool.close()
        try pool.join()
        #expect(pool.stats.completed == 1 + 40 + 1) // the gate, the tasks that ran, the apply
    }

    @Test("a result still referenced, weakly or unowned, is not kept")
    func referencedResultsAreNotKept() throws {
        typealias P = Probe<Referenced>
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        try pool.execute { gate.pass() }
        var strong: AsyncResult<P>? = try pool.applyAsync { P(value: 1) }
        weak let weakResult = strong
        let weakID = ObjectIdentifier(strong!)
        var another: AsyncResult<P>? = try pool.applyAsync { P(value: 2) }
        let holder = UnownedHolder(another!)
        let unownedID = ObjectIdentifier(another!)
        let held: AsyncResult<P> = try pool.applyAsync { P(value: 3) } // the caller keeps this one
        strong = nil
        another = nil
        gate.open()
        let keptIDs = try pool.apply { takeKept(kind(Referenced.self)).map(ObjectIdentifier.init) }
        #expect(keptIDs.isEmpty)
        #expect(!keptIDs.contains(weakID) && !keptIDs.contains(unownedID) && !keptIDs.contains(ObjectIdentifier(held)))
        #expect(weakResult == nil) // freed as usual, not kept
        #expect(try held.get() == P(value: 3))
        withExtendedLifetime(holder) {}
        pool.close()
        try pool.join()
    }

    @Test("reused results give each task's own value, error, callback and cancellation", arguments: [1, 3])
    func reusedResultsStartFresh(workers: Int) throws {
        typealias P = Probe<Fresh>
        let pool = try ThreadPool(threads: workers)
        let ran = Counter()
        let callbacks = Recorder<Int>()
        let errorCallbacks = Recorder<Int>()
        var reused = 0
        for round in 0..<20 {
            // Results nobody keeps, so that the next ones can be reused ones.
            var dropped: Set<ObjectIdentifier> = []
            for i in 0..<100 {
                dropped.insert(
                    ObjectIdentifier(
                        try pool.applyAsync {
                            ran.increment(); return P(value: -i)
                        }))
            }
            let gate = Gate()
            for _ in 0..<workers { try pool.execute { gate.pass() } }
            #expect(eventually { gate.arrived == workers }) // every worker is held: nothing below starts
            var results: [AsyncResult<P>] = []
            for i in 0..<100 {
                let n = round * 100 + i
                let body: @Sendable () throws -> P = {
                    ran.increment()
                    if n % 3 == 0 { throw TestError(code: n) }
                    return P(value: n)
                }
                if n % 4 == 0 {
                    results.append(
                        try pool.applyAsync(
                            body, callback: { value in callbacks.append(value.value) },
                            errorCallback: { _ in errorCallbacks.append(n) }))
                } else {
                    results.append(try pool.applyAsync(body))
                }
            }
            reused += results.filter { dropped.contains(ObjectIdentifier($0)) }.count
            for (i, result) in results.enumerated() where i % 5 == 0 {
                #expect(result.cancel()) // never runs
            }
            gate.open()
            for (i, result) in results.enumerated() {
                let n = round * 100 + i
                if i % 5 == 0 {
                    #expect(throws: ThreadPoolError.self) { try result.get() }
                } else if n % 3 == 0 {
                    #expect(throws: TestError(code: n)) { try result.get() }
                    #expect(try result.successful() == false)
                } else {
                    #expect(try result.get() == P(value: n))
                    #expect(try result.successful())
                }
            }
            #expect(ran.value == (round + 1) * (100 + 80))
        }
        pool.close()
        try pool.join()
        // One callback per result that has callbacks (n % 4 == 0): on success, or on an error (thrown
        // or cancelled).
        let withCallbacks = (0..<2_000).filter { $0 % 4 == 0 }
        let succeeded = withCallbacks.filter { $0 % 3 != 0 && ($0 % 100) % 5 != 0 }
        #expect(callbacks.elements.sorted() == succeeded)
        #expect(errorCallbacks.elements.sorted() == withCallbacks.filter { !succeeded.contains($0) })
        if workers == 1 { #expect(reused > 0) } // the results dropped in one round came back in the next
    }

    @Test("awaiting a reused result's value")
    func awaitReused() async throws {
        typealias P = Probe<Awaited>
        let pool = try ThreadPool(threads: 2)
        for round in 0..<50 {
            for _ in 0..<40 { _ = try pool.applyAsync { P(value: -1) } }
            let result = try pool.applyAsync { P(value: round) }
            #expect(try await result.value == P(value: round))
        }
        pool.close()
        try await pool.join()
    }

    @Test("4 threads submitting 40,000 tasks each, most results dropped: each task runs once")
    func concurrentDroppedAndKept() throws {
        typealias P = Probe<Concurrent>
        let pool = try ThreadPool(threads: 3)
        let ran = Counter()
        let executed = Counter()
        let wrong = Counter()
        let submitters = 4
        let perSubmitter = 40_000
        try withThreadPool(threads: submitters) { submitPool in
            _ = try submitPool.broadcast { worker in
                for i in 0..<perSubmitter {
                    let n = worker.index * perSubmitter + i
                    switch i % 10 {
                    case 0:
                        let result = try pool.applyAsync {
                            ran.increment(); return P(value: n)
                        }
                        if try result.get() != P(value: n) { wrong.increment() }
                    case 1:
                        try pool.execute { executed.increment() }
                    default:
                        _ = try pool.applyAsync {
                            ran.increment(); return P(value: n)
                        }
                    }
                }
            }
        }
        pool.close()
        try pool.join()
        #expect(wrong.value == 0)
        #expect(ran.value == submitters * perSubmitter * 9 / 10)
        #expect(executed.value == submitters * perSubmitter / 10)
        #expect(pool.stats.completed == submitters * perSubmitter)
    }

    @Test("the depot keeps a bounded number of jobs")
    func depotIsBounded() throws {
        let pool = try ThreadPool(threads: 1)
        let gate = Gate()
        try pool.execute { gate.pass() }
        let count = (JobRecycler.depotLimit + 4) * JobRecycler.magazineSize
        for i in 0..<count { _ = try pool.applyAsync { Probe<Bounded>(value: i) } }
        gate.open()
        pool.close()
        try pool.join()
        // The worker kept them all in turn and gave the depot full magazines until it was full (or, if
        // the other suites' kinds evicted this one meanwhile, fewer).
        let stored = JobRecycler.depotCount(kind(Bounded.self))
        #expect(stored <= JobRecycler.depotLimit * JobRecycler.magazineSize)
        #expect(stored % JobRecycler.magazineSize == 0)
        _ = takeKept(kind(Bounded.self)) // freed
    }
}
