/// Checks of pthread results, as SwiftNIO's `NIOLock` does them: creating a mutex, a condition
/// variable or a key fails only when the process is out of resources or an attribute is invalid, and
/// nothing sensible can go on without it, so that is a precondition; locking, unlocking, signalling and
/// destroying fail only on misuse (an uninitialized or foreign object), a bug, checked in debug builds.
@inlinable
func precondition(pthread status: Int32, _ function: StaticString) {
    precondition(status == 0, "\(function) failed with error \(status)")
}

@inlinable
func assert(pthread status: Int32, _ function: StaticString) {
    assert(status == 0, "\(function) failed with error \(status)")
}
