#if Metrics
import Metrics
import MetricsTestKit
import Testing
import ThreadPoolKit

/// MetricsThreadPoolObserver with swift-metrics' TestMetrics as its factory (the metrics system is
/// never bootstrapped): exact counter values, gauges back to 0 after join, one timer value per task.
@Suite("Metrics trait: MetricsThreadPoolObserver")
struct MetricsObserverTests {
    @Test("counters, gauges and timers of 1,000 tasks, 100 throwing, then 50 dropped by terminate")
    func exactValues() async throws {
        let metrics = TestMetrics()
        let name = uniqueName("met")
        var configuration = ThreadPool.Configuration()
        configuration.threads = 2
        configuration.name = name
        configuration.observer = MetricsThreadPoolObserver(factory: metrics)
        let pool = try ThreadPool(configuration)
        let dimensions = [("pool", name)]
        #expect(try metrics.expectGauge("threadpool.threads", dimensions).lastValue == 2)

        let results = try (0..<1_000).map { i in
            try pool.applyAsync { () throws -> Int in
                if i % 10 == 0 { throw TestError(code: i) }
                return i
            }
        }
        for result in results { _ = try? await result.value }
        // Then 2 tasks hold both workers while 50 wait, and terminate drops those.
        let gate = Gate()
        for _ in 0..<2 { try pool.execute { gate.pass() } }
        #expect(await eventuallyAsync { gate.arrived == 2 })
        let dropped = try (0..<50).map { _ in try pool.applyAsync { 1 } }
        #expect(
            await eventuallyAsync { (try? metrics.expectGauge("threadpool.tasks.queued", dimensions).lastValue) == 50 })
        #expect(try metrics.expectGauge("threadpool.tasks.running", dimensions).lastValue == 2)
        pool.terminate()
        gate.open()
        try await pool.join()
        #expect(dropped.allSatisfy { $0.isReady })

        #expect(try metrics.expectCounter("threadpool.tasks.completed", dimensions).totalValue == 902)
        #expect(try metrics.expectCounter("threadpool.tasks.failed", dimensions).totalValue == 100)
        #expect(try metrics.expectCounter("threadpool.tasks.cancelled", dimensions).totalValue == 50)
        #expect(try metrics.expectGauge("threadpool.threads", dimensions).lastValue == 0)
        #expect(try metrics.expectGauge("threadpool.tasks.queued", dimensions).lastValue == 0)
        #expect(try metrics.expectGauge("threadpool.tasks.running", dimensions).lastValue == 0)
        // A wait for each task that started, a run for each that completed or failed.
        #expect(try metrics.expectTimer("threadpool.task.wait", dimensions).values.count == 1_002)
        #expect(try metrics.expectTimer("threadpool.task.run", dimensions).values.count == 1_002)
        let stats = pool.stats
        #expect(stats.completed == 1_002 && stats.failed == 100 && stats.cancelled == 50)
    }

    @Test("one observer, two pools: each pool's metrics under its own name")
    func twoPools() async throws {
        let metrics = TestMetrics()
        let observer = MetricsThreadPoolObserver(factory: metrics)
        let names = [uniqueName("mta"), uniqueName("mtb")]
        for (n, name) in names.enumerated() {
            var configuration = ThreadPool.Configuration()
            configuration.threads = 1 + n
            configuration.name = name
            configuration.observer = observer
            let pool = try ThreadPool(configuration)
            for _ in 0..<(100 * (n + 1)) { try pool.execute {} }
            #expect(try metrics.expectGauge("threadpool.threads", [("pool", name)]).lastValue == Double(1 + n))
            pool.close()
            try await pool.join()
        }
        #expect(try metrics.expectCounter("threadpool.tasks.completed", [("pool", names[0])]).totalValue == 100)
        #expect(try metrics.expectCounter("threadpool.tasks.completed", [("pool", names[1])]).totalValue == 200)
    }
}
#endif
