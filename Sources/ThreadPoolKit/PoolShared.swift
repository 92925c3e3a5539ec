internal import CThreadPool
import Synchronization

/// What a pool's workers share with it: the initializer and finalizer, the first initializer error,
/// and the counters the C pool does not keep. The C pool holds one reference to it as its context
/// and releases it when the pool is freed, after every finalizer has run.
final class PoolShared: Sendable {
    let initializer: (@Sendable () throws -> Void)?
    let finalizer: (@Sendable () -> Void)?
    /// The first initializer failure: (worker index, error).
    let initializerFailure = Locked<(worker: Int, error: any Error)?>(nil)
    /// Tasks that threw.
    let failed = Atomic<Int>(0)
    /// Tasks cancelled with `AsyncResult.cancel()` that a worker then took off the queue.
    let cancelledSkips = Atomic<Int>(0)

    init(initializer: (@Sendable () throws -> Void)?, finalizer: (@Sendable () -> Void)?) {
        self.initializer = initializer
        self.finalizer = finalizer
    }

    /// The shared state of the pool whose worker is calling, or nil off every pool's threads.
    static var current: PoolShared? {
        guard let context = ctp_current_context() else { return nil }
        return Unmanaged<PoolShared>.fromOpaque(context).takeUnretainedValue()
    }

    func recordFailure() {
        failed.wrappingAdd(1, ordering: .relaxed)
    }

    func recordCancelledSkip() {
        cancelledSkips.wrappingAdd(1, ordering: .relaxed)
    }

    /// Runs the initializer on worker `index`; a throw is recorded (the first one wins) and fails the start.
    func initialize(worker index: Int) -> Int32 {
        do {
            try initializer?()
            return 0
        } catch {
            initializerFailure.withLock { failure in
                if failure == nil { failure = (index, error) }
            }
            return 1
        }
    }

    // The C callbacks; `context` is always an unretained PoolShared.
    static let initializeWorker: ctp_init_fn = { context, index in
        Unmanaged<PoolShared>.fromOpaque(context!).takeUnretainedValue().initialize(worker: Int(index))
    }
    static let finalizeWorker: ctp_fini_fn = { context, _ in
        Unmanaged<PoolShared>.fromOpaque(context!).takeUnretainedValue().finalizer?()
    }
    static let release: @convention(c) (UnsafeMutableRawPointer?) -> Void = { context in
        Unmanaged<PoolShared>.fromOpaque(context!).release()
    }
}
