#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value per thread, on `pthread_key_t`: each thread sees its own value, made by `makeValue` on the
/// thread's first use. A thread's value is released when that thread exits (for a pool's worker: after
/// its finalizer), so a value set up in a pool's initializer lives exactly as long as its worker.
///
/// Sendable: the object may be shared by any threads because each value is reachable only from the
/// thread that made it, and `makeValue` is `@Sendable`. `Value` itself need not be Sendable.
///
/// Keep a `ThreadLocal` alive as long as threads use it (a `static let`, or a property of something
/// that outlives the pool): when it is deinitialized its key is deleted and, as with
/// `pthread_key_delete`, values still held by threads that are alive then are not released.
public final class ThreadLocal<Value> {
    private let key: pthread_key_t
    private let makeValue: @Sendable () -> Value

    /// The box a thread's value lives in; the key holds one strong reference to it.
    private final class Box {
        var value: Value
        init(_ value: Value) { self.value = value }
    }

    /// - Parameter makeValue: makes a thread's value on its first use, on that thread.
    public init(_ makeValue: @escaping @Sendable () -> Value) {
        var key = pthread_key_t()
        // pthread_key_create fails only when the process has used up its keys (at least 128).
        let status = pthread_key_create(&key) { box in
            guard let box else { return }
            Unmanaged<AnyObject>.fromOpaque(box).release()
        }
        precondition(status == 0, "pthread_key_create failed (\(status)): too many ThreadLocal instances alive")
        self.key = key
        self.makeValue = makeValue
    }

    deinit {
        pthread_key_delete(key)
    }

    /// The calling thread's value. Not available from async code, which may resume on another thread.
    @available(*, noasync, message: "async code may resume on another thread; read it in a synchronous function")
    public var value: Value {
        get { box().value }
        set { box().value = newValue }
    }

    private func box() -> Box {
        if let existing = pthread_getspecific(key) {
            return Unmanaged<Box>.fromOpaque(existing).takeUnretainedValue()
        }
        let box = Box(makeValue())
        // Fails only out of memory for the thread's key table: nothing can hold the value then.
        precondition(pthread: pthread_setspecific(key, Unmanaged.passRetained(box).toOpaque()), "pthread_setspecific")
        return box
    }
}

// Each value is reachable only from the thread that made it (see the type's documentation).
extension ThreadLocal: @unchecked Sendable {}
