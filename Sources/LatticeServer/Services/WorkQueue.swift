import DequeModule
import Foundation

/// The bookkeeping of a keyed work queue, as Kubernetes' client-go keeps it: a key waits
/// at most once however often it is added; a key being worked on is never handed out a
/// second time, and one added meanwhile waits until the work is done. A value, so tests
/// drive it without tasks.
struct WorkQueueState<Key: Hashable & Sendable>: Sendable {
    private var order: Deque<Key> = []
    /// Keys that need work: waiting in `order`, or added again while being worked on.
    private var dirty: Set<Key> = []
    private var processing: Set<Key> = []

    /// Keys waiting to be handed out.
    var waiting: Int { order.count }
    /// Keys handed out and not yet done.
    var inProgress: Int { processing.count }
    /// Whether the key will be handed out (again).
    func isPending(_ key: Key) -> Bool { dirty.contains(key) }

    mutating func add(_ key: Key) {
        guard dirty.insert(key).inserted else { return }
        if !processing.contains(key) { order.append(key) }
    }

    /// The next key to work on, which is then in progress until `done`.
    mutating func next() -> Key? {
        guard let key = order.popFirst() else { return nil }
        dirty.remove(key)
        processing.insert(key)
        return key
    }

    mutating func done(_ key: Key) {
        processing.remove(key)
        if dirty.contains(key) { order.append(key) }
    }
}

/// A keyed work queue for the reconciler's workers: API writes, driver events and the
/// resync add instance names; each worker takes one, syncs it and marks it done. Shutting
/// down wakes every waiting worker with nil.
final class WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var state = WorkQueueState<String>()
    private var waiters: Deque<CheckedContinuation<String?, Never>> = []
    private var isShutDown = false

    func add(_ key: String) {
        let handOff = lock.withLock { () -> HandOff? in
            guard !isShutDown else { return nil }
            state.add(key)
            return takeWaiter()
        }
        handOff?.waiter.resume(returning: handOff?.key)
    }

    func add<S: Sequence>(contentsOf keys: S) where S.Element == String {
        for key in keys { add(key) }
    }

    /// The next key, waiting until there is one; nil once the queue is shut down.
    func next() async -> String? {
        await withCheckedContinuation { continuation in
            let key: String?? = lock.withLock {
                if let key = state.next() { return .some(key) }
                if isShutDown { return .some(nil) }
                waiters.append(continuation)
                return .none
            }
            if let key { continuation.resume(returning: key) }
        }
    }

    /// Keys waiting to be worked on (`lattice_reconcile_queue_depth`).
    var depth: Int { lock.withLock { state.waiting } }

    /// The next key if one waits, without waiting (tests work the queue off by hand).
    func tryNext() -> String? { lock.withLock { state.next() } }

    func done(_ key: String) {
        let handOff = lock.withLock { () -> HandOff? in
            state.done(key)
            return takeWaiter()
        }
        handOff?.waiter.resume(returning: handOff?.key)
    }

    /// Wakes every waiting worker with nil; later adds are ignored.
    func shutDown() {
        let all: Deque<CheckedContinuation<String?, Never>> = lock.withLock {
            isShutDown = true
            defer { waiters.removeAll() }
            return waiters
        }
        for waiter in all { waiter.resume(returning: nil) }
    }

    var waiting: Int { lock.withLock { state.waiting } }
    var inProgress: Int { lock.withLock { state.inProgress } }
    func isPending(_ key: String) -> Bool { lock.withLock { state.isPending(key) } }

    /// A waiting worker and the key taken for it under the lock, resumed after it.
    private struct HandOff {
        var waiter: CheckedContinuation<String?, Never>
        var key: String
    }

    private func takeWaiter() -> HandOff? {
        guard !waiters.isEmpty, let key = state.next() else { return nil }
        return HandOff(waiter: waiters.removeFirst(), key: key)
    }
}
