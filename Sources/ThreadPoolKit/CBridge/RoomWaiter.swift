internal import CThreadPool

// With CPool.swift, the only Swift code that talks to the C pool: waiting for room in a bounded queue
// (`ctp_pool_reserve` and its waiters) for submits that must not block a thread.

/// One wait for `count` slots of a bounded queue: a `ctp_room_waiter` that the C pool calls back
/// (`ready`) once the slots are reserved for it, or the pool stopped; in between the waiting task is
/// suspended (``CPool/waitForRoom(_:shared:)``) or the waiting thread blocked (``CPool/waitForRoomBlocking(_:shared:)``).
///
/// Exactly one of three things ends a wait, decided under the C pool's lock: the slots are reserved
/// (`ready` with 0), the pool stops (`ready` with `CTP_ECLOSED`), or `ctp_pool_cancel_wait` takes the
/// waiter back (the task was cancelled; `ready` is then never called). The C pool holds a reference to
/// the waiter while it is queued, given back by `ready` or by a successful cancel, so the waiter (and
/// its C node) outlives every call the C pool makes on it.
final class RoomWaiter: @unchecked Sendable { // `state` is guarded by its lock; `node` by the C pool's
    private enum State {
        case idle
        case suspended(UnsafeContinuation<Int32, Never>)
        case blocked
        case cancelled // before the wait began
        case finished(Int32)
    }

    /// The status a wait ends with when its task was cancelled (no `CTP_E*` code is positive).
    static let cancelledStatus: Int32 = 1

    private let pool: OpaquePointer
    /// Counts the waits queued in the C pool (``PoolShared/roomWaits``).
    private let shared: PoolShared
    private let node: UnsafeMutablePointer<ctp_room_waiter>
    private let state = Locked<State>(.idle)

    init(pool: OpaquePointer, shared: PoolShared, count: Int) {
        self.pool = pool
        self.shared = shared
        node = .allocate(capacity: 1)
        node.initialize(to: ctp_room_waiter())
        node.pointee.ready = roomReady
        node.pointee.count = count
    }

    deinit {
        node.deallocate()
    }

    /// Reserves the slots or queues the waiter, with the C pool's reference taken first; returns what
    /// `ctp_pool_reserve` returned (1: queued, `ready` will be called unless cancelled). Called with
    /// `state`'s lock held: `ready` cannot come before `state` says who waits. (ctp_pool_reserve calls
    /// no waiter's `ready` itself, so holding this lock across it is safe.)
    private func reserveOrQueue() -> Int32 {
        let reference = Unmanaged.passRetained(self)
        node.pointee.context = reference.toOpaque()
        let status = ctp_pool_reserve(pool, node.pointee.count, node)
        if status == 1 {
            shared.roomWaits.wrappingAdd(1, ordering: .relaxed)
        } else {
            reference.release() // not queued: the C pool keeps no reference
        }
        return status
    }

    /// Suspends the calling task until the wait ends; returns 0 (reserved), `CTP_ECLOSED` or
    /// ``cancelledStatus``.
    func suspend() async -> Int32 {
        await withUnsafeContinuation { continuation in
            state.withLock { state in
                if case .cancelled = state {
                    continuation.resume(returning: Self.cancelledStatus)
                    return
                }
                let status = reserveOrQueue()
                if status == 1 {
                    state = .suspended(continuation)
                } else {
                    state = .finished(status)
                    continuation.resume(returning: status)
                }
            }
        }
    }

    /// Blocks the calling thread until the wait ends; returns 0 (reserved) or `CTP_ECLOSED`.
    func block() -> Int32 {
        var status: Int32 = 0
        _ = state.wait(
            until: nil,
            begin: { state in
                status = reserveOrQueue()
                state = status == 1 ? .blocked : .finished(status)
            },
            for: { state in
                if case .finished(let final) = state {
                    status = final
                    return true
                }
                return false
            }, end: { _ in })
        return status
    }

    /// The waiting task was cancelled: takes the waiter back if it is still queued and resumes the
    /// task with ``cancelledStatus``; if the wait has not begun, it ends at once when it does. The C
    /// call is made without `state`'s lock: it may call other waiters' `ready`, or (when the slots were
    /// just reserved for this one) find it no longer queued, and then this waiter's `ready` resumes it.
    func cancel() {
        let queued = state.withLock { state -> Bool in
            switch state {
            case .idle:
                state = .cancelled
                return false
            case .suspended:
                return true
            case .blocked, .cancelled, .finished:
                return false
            }
        }
        guard queued, ctp_pool_cancel_wait(pool, node) == 1 else { return }
        Unmanaged.passUnretained(self).release() // the C pool's reference: `ready` will not come
        finish(Self.cancelledStatus)
    }

    /// Ends the wait with `status`, resuming or waking the waiter.
    fileprivate func finish(_ status: Int32) {
        let continuation = state.withLock { state -> UnsafeContinuation<Int32, Never>? in
            switch state {
            case .suspended(let continuation):
                state = .finished(status)
                shared.roomWaits.wrappingSubtract(1, ordering: .relaxed)
                return continuation
            case .blocked:
                state = .finished(status)
                shared.roomWaits.wrappingSubtract(1, ordering: .relaxed)
                return nil
            case .idle, .cancelled, .finished:
                return nil
            }
        }
        if let continuation {
            continuation.resume(returning: status)
        } else {
            state.broadcast()
        }
    }
}

/// The C pool's call once a waiter's slots are reserved (0) or its pool stopped (`CTP_ECLOSED`):
/// takes back the reference the pool held.
private let roomReady: @convention(c) (UnsafeMutablePointer<ctp_room_waiter>?, Int32) -> Void = { node, status in
    Unmanaged<RoomWaiter>.fromOpaque(node!.pointee.context!).takeRetainedValue().finish(status)
}

extension CPool {
    /// What ``reserve(_:)`` found.
    enum Reservation {
        case reserved, full, closed
    }

    /// Reserves `count` slots of a bounded queue (1...capacity) without waiting.
    func reserve(_ count: Int) -> Reservation {
        switch ctp_pool_reserve(pointer, count, nil) {
        case 0: return .reserved
        case CTP_ECLOSED: return .closed
        default: return .full
        }
    }

    /// Gives back `count` reserved slots that will not be used.
    func releaseReserved(_ count: Int) {
        _ = ctp_pool_release_reserved(pointer, count)
    }

    /// Suspends the calling task, without blocking its thread, until `count` slots of the bounded queue
    /// are reserved for it (first come, first served).
    /// - Throws: `CancellationError` when the task is cancelled first (nothing is then reserved);
    ///   ``ThreadPoolError/notRunning`` when the pool is closed or terminated first.
    func waitForRoom(_ count: Int, shared: PoolShared) async throws {
        let waiter = RoomWaiter(pool: pointer, shared: shared, count: count)
        let status = await withTaskCancellationHandler {
            await waiter.suspend()
        } onCancel: {
            waiter.cancel()
        }
        switch status {
        case 0: return
        case RoomWaiter.cancelledStatus: throw CancellationError()
        default: throw ThreadPoolError(status: status, function: "ctp_pool_reserve")
        }
    }

    /// Blocks the calling thread until `count` slots of the bounded queue are reserved for it.
    /// - Throws: ``ThreadPoolError/notRunning`` when the pool is closed or terminated first.
    func waitForRoomBlocking(_ count: Int, shared: PoolShared) throws(ThreadPoolError) {
        let status = RoomWaiter(pool: pointer, shared: shared, count: count).block()
        if status != 0 { throw ThreadPoolError(status: status, function: "ctp_pool_reserve") }
    }
}
