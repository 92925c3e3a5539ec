import Benchmark
import CBenchSupport
import CThreadPool
import Dispatch
import NIOCore
import NIOPosix
import ThreadPoolKit

/// Workload 2: f(x) = x * x + 1 over 100,000 items with one task per item (chunk size 1), results
/// collected in input order into an array (what `pool.map(items, chunkSize: 1)` returns), and over
/// 10,000,000 items with the default chunk size (Python's: ceil(n / (4 * workers))) against the inline
/// loop and concurrentPerform.
///
/// Besides `map` and `imap`, ThreadPoolKit is also measured the way one wrote it before `map` existed:
/// one `applyAsync` per item and `get()` on each result in order.
let itemCount = 100_000
let bigItemCount = 10_000_000

func registerOneTaskPerItem() {
    let n = itemCount
    let expectedSum = (0..<n).reduce(0) { $0 &+ f($1) }

    func checkSum(_ values: some Sequence<Int>, _ count: Int) {
        var sum = 0
        var seen = 0
        for value in values {
            sum &+= value
            seen += 1
        }
        check(seen == count && sum == expectedSum, "wrong results: \(seen) items, sum \(sum)")
    }

    for workers in [2, 4] {
        Benchmark(
            "W2 items ThreadPoolKit.map chunk1 w\(workers)",
            configuration: throughputConfig(mallocTolerance: .absolute(16))
        ) { benchmark in
            let pool = try ThreadPool(threads: workers)
            let items = Array(0..<n)
            var output: [Int] = []
            try measure(benchmark, tasks: n) {
                output = try pool.map(items, chunkSize: 1) { f($0) }
            }
            checkSum(output, n)
            pool.close()
            try pool.join()
        }

        // imap with chunk size 1 (its default), consumed to the end with next(). Its malloc count
        // depends on timing, so bench-check does not gate it (see Imap.swift).
        Benchmark("W2 items ThreadPoolKit.imap chunk1 w\(workers)", configuration: throughputConfig()) { benchmark in
            let pool = try ThreadPool(threads: workers)
            let items = Array(0..<n)
            var output: [Int] = []
            try measure(benchmark, tasks: n) {
                let results = try pool.imap(items, chunkSize: 1) { f($0) }
                var out: [Int] = []
                out.reserveCapacity(n)
                while let value = try results.next() { out.append(value) }
                output = out
            }
            checkSum(output, n)
            pool.close()
            try pool.join()
        }

        Benchmark("W2 items ThreadPoolKit.applyAsync per item w\(workers)", configuration: throughputConfig()) {
            benchmark in
            let pool = try ThreadPool(threads: workers)
            let items = Array(0..<n)
            var output: [Int] = []
            try measure(benchmark, tasks: n) {
                var results: [AsyncResult<Int>] = []
                results.reserveCapacity(n)
                for x in items {
                    results.append(try pool.applyAsync { f(x) })
                }
                output = try results.map { try $0.get() }
            }
            checkSum(output, n)
            pool.close()
            try pool.join()
        }

        Benchmark(
            "W2 items CThreadPool.ctp_pool_submit per item w\(workers)",
            configuration: throughputConfig(mallocTolerance: .absolute(24))
        ) { benchmark in
            guard let pool = cbench_pool_create(UInt32(workers)) else { fatalError("ctp_pool_create failed") }
            let input = (0..<Int64(n)).map { $0 }
            var output: [Int] = []
            measure(benchmark, tasks: n) {
                let out = [Int64](unsafeUninitializedCapacity: n) { buffer, count in
                    input.withUnsafeBufferPointer { inBuffer in
                        checkC(cbench_map1_ctp(pool, inBuffer.baseAddress, buffer.baseAddress, n), "cbench_map1_ctp")
                    }
                    count = n
                }
                output = out.map { Int($0) }
            }
            checkSum(output, n)
            cbench_pool_destroy(pool)
        }

        Benchmark("W2 items NIOThreadPool.runIfActive per item w\(workers)", configuration: throughputConfig()) {
            benchmark in
            let pool = NIOThreadPool(numberOfThreads: workers)
            pool.start()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let loop = group.next()
            let items = Array(0..<n)
            var output: [Int] = []
            try measure(benchmark, tasks: n) {
                var futures: [EventLoopFuture<Int>] = []
                futures.reserveCapacity(n)
                for x in items {
                    futures.append(pool.runIfActive(eventLoop: loop) { f(x) })
                }
                output = try EventLoopFuture.whenAllSucceed(futures, on: loop).wait()
            }
            checkSum(output, n)
            try pool.syncShutdownGracefully()
            try group.syncShutdownGracefully()
        }

        Benchmark("W2 items NIOThreadPool.submit per item w\(workers)", configuration: throughputConfig()) {
            benchmark in
            let pool = NIOThreadPool(numberOfThreads: workers)
            pool.start()
            let items = Array(0..<n)
            var output: [Int] = []
            measure(benchmark, tasks: n) {
                let buffer = SharedBuffer(count: n, repeating: 0)
                let counter = Countdown(n)
                for (i, x) in items.enumerated() {
                    pool.submit { _ in
                        buffer[i] = f(x)
                        counter.hit()
                    }
                }
                counter.wait()
                output = Array(UnsafeBufferPointer(start: buffer.base, count: n))
                buffer.deallocate()
            }
            checkSum(output, n)
            try pool.syncShutdownGracefully()
        }
    }

    Benchmark("W2 items Dispatch.concurrentQueue+group per item", configuration: throughputConfig()) { benchmark in
        let queue = DispatchQueue(label: "bench.concurrent", attributes: .concurrent)
        let items = Array(0..<n)
        var output: [Int] = []
        measure(benchmark, tasks: n) {
            let buffer = SharedBuffer(count: n, repeating: 0)
            let group = DispatchGroup()
            for (i, x) in items.enumerated() {
                queue.async(group: group) { buffer[i] = f(x) }
            }
            group.wait()
            output = Array(UnsafeBufferPointer(start: buffer.base, count: n))
            buffer.deallocate()
        }
        checkSum(output, n)
    }

    Benchmark("W2 items Dispatch.concurrentPerform", configuration: throughputConfig()) { benchmark in
        let items = Array(0..<n)
        var output: [Int] = []
        measure(benchmark, tasks: n) {
            output = [Int](unsafeUninitializedCapacity: n) { buffer, count in
                let shared = SharedBuffer(base: buffer.baseAddress!, count: n)
                items.withUnsafeBufferPointer { input in
                    let input = SharedBuffer(base: UnsafeMutablePointer(mutating: input.baseAddress!), count: n)
                    DispatchQueue.concurrentPerform(iterations: n) { i in shared[i] = f(input[i]) }
                }
                count = n
            }
        }
        checkSum(output, n)
    }

    Benchmark("W2 items withTaskGroup per item", configuration: throughputConfig()) { benchmark async in
        let items = Array(0..<n)
        var output: [Int] = []
        await measureAsync(benchmark, tasks: n) {
            output = await withTaskGroup(of: (Int, Int).self) { group in
                for (i, x) in items.enumerated() {
                    group.addTask { (i, f(x)) }
                }
                var out = [Int](repeating: 0, count: n)
                for await (i, value) in group { out[i] = value }
                return out
            }
        }
        checkSum(output, n)
    }

    Benchmark("W2 items inline loop", configuration: throughputConfig()) { benchmark in
        let items = Array(0..<n)
        var output: [Int] = []
        measure(benchmark, tasks: n) {
            output = items.map(f)
        }
        checkSum(output, n)
    }

    // 10,000,000 items, large chunks.
    let big = bigItemCount
    let bigExpectedSum = (0..<big).reduce(0) { $0 &+ f($1) }
    func checkBig(_ output: [Int]) {
        check(output.count == big && output.reduce(0, &+) == bigExpectedSum, "wrong results for 10M items")
    }

    Benchmark("W2 10M inline loop", configuration: throughputConfig()) { benchmark in
        let items = Array(0..<big)
        var output: [Int] = []
        measure(benchmark, tasks: big) {
            output = items.map(f)
        }
        checkBig(output)
    }

    Benchmark("W2 10M Dispatch.concurrentPerform per item", configuration: throughputConfig()) { benchmark in
        let items = Array(0..<big)
        var output: [Int] = []
        measure(benchmark, tasks: big) {
            output = [Int](unsafeUninitializedCapacity: big) { buffer, count in
                let shared = SharedBuffer(base: buffer.baseAddress!, count: big)
                items.withUnsafeBufferPointer { input in
                    let input = SharedBuffer(base: UnsafeMutablePointer(mutating: input.baseAddress!), count: big)
                    DispatchQueue.concurrentPerform(iterations: big) { i in shared[i] = f(input[i]) }
                }
                count = big
            }
        }
        checkBig(output)
    }

    // Python's default chunksize (ceil(n / (4 * cpus)), 2 CPUs here: 8 chunks).
    Benchmark("W2 10M Dispatch.concurrentPerform chunked", configuration: throughputConfig()) { benchmark in
        let items = Array(0..<big)
        let chunk = pythonDefaultChunkSize(items: big, workers: 2)
        let chunks = (big + chunk - 1) / chunk
        var output: [Int] = []
        measure(benchmark, tasks: big) {
            output = [Int](unsafeUninitializedCapacity: big) { buffer, count in
                let shared = SharedBuffer(base: buffer.baseAddress!, count: big)
                items.withUnsafeBufferPointer { input in
                    let input = SharedBuffer(base: UnsafeMutablePointer(mutating: input.baseAddress!), count: big)
                    DispatchQueue.concurrentPerform(iterations: chunks) { c in
                        for i in (c * chunk)..<min(big, (c + 1) * chunk) { shared[i] = f(input[i]) }
                    }
                }
                count = big
            }
        }
        checkBig(output)
    }

    for workers in [2, 4] {
        Benchmark(
            "W2 10M ThreadPoolKit.map default chunk w\(workers)",
            configuration: throughputConfig(mallocTolerance: .absolute(16))
        ) { benchmark in
            let pool = try ThreadPool(threads: workers)
            let items = Array(0..<big)
            var output: [Int] = []
            try measure(benchmark, tasks: big) {
                output = try pool.map(items) { f($0) }
            }
            checkBig(output)
            pool.close()
            try pool.join()
        }
    }
}

extension SharedBuffer {
    /// A view of memory someone else owns (do not deallocate).
    init(base: UnsafeMutablePointer<Element>, count: Int) {
        self.base = base
        self.count = count
    }
}
