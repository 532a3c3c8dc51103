import DequeModule
import Foundation
import LatticeDomain
import Synchronization

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
final class WorkQueue: Sendable {
    private struct Guarded {
        var state = WorkQueueState<String>()
        var waiters: Deque<CheckedContinuation<String?, Never>> = []
        var isShutDown = false
        /// Failures in a row, and when the key may be tried again, per key whose last step failed.
        var backoff: [String: (failures: Int, retryAt: Date)] = [:]
        /// Keys to add again at their time (`runRetries`).
        var retries: [String: Date] = [:]

        mutating func takeWaiter() -> HandOff? {
            guard !waiters.isEmpty, let key = state.next() else { return nil }
            return HandOff(waiter: waiters.removeFirst(), key: key)
        }
    }

    private let guarded = Mutex(Guarded())
    /// Rung when a retry is scheduled, so `runRetries` looks at the earliest again.
    private let retryBell = Doorbell()

    func add(_ key: String) {
        let handOff = guarded.withLock { guarded -> HandOff? in
            guard !guarded.isShutDown else { return nil }
            guarded.state.add(key)
            return guarded.takeWaiter()
        }
        handOff?.waiter.resume(returning: handOff?.key)
    }

    func add<S: Sequence>(contentsOf keys: S) where S.Element == String {
        for key in keys { add(key) }
    }

    /// The next key, waiting until there is one; nil once the queue is shut down.
    func next() async -> String? {
        await withCheckedContinuation { continuation in
            let key: String?? = guarded.withLock { guarded in
                if let key = guarded.state.next() { return .some(key) }
                if guarded.isShutDown { return .some(nil) }
                guarded.waiters.append(continuation)
                return .none
            }
            if let key { continuation.resume(returning: key) }
        }
    }

    /// Keys waiting to be worked on (`lattice_reconcile_queue_depth`).
    var depth: Int { guarded.withLock { $0.state.waiting } }

    /// The next key if one waits, without waiting (tests work the queue off by hand).
    func tryNext() -> String? { guarded.withLock { $0.state.next() } }

    func done(_ key: String) {
        let handOff = guarded.withLock { guarded -> HandOff? in
            guarded.state.done(key)
            return guarded.takeWaiter()
        }
        handOff?.waiter.resume(returning: handOff?.key)
    }

    /// Wakes every waiting worker with nil; later adds are ignored.
    func shutDown() {
        let all = guarded.withLock { guarded -> Deque<CheckedContinuation<String?, Never>> in
            guarded.isShutDown = true
            defer { guarded.waiters.removeAll() }
            return guarded.waiters
        }
        for waiter in all { waiter.resume(returning: nil) }
    }

    var waiting: Int { guarded.withLock { $0.state.waiting } }
    var inProgress: Int { guarded.withLock { $0.state.inProgress } }
    func isPending(_ key: String) -> Bool { guarded.withLock { $0.state.isPending(key) } }

    /// A step of `key` failed at `now`: the key waits 0.5 s, doubling with each failure in
    /// a row up to 30 s, and is then added again by `runRetries` (no task of its own).
    func failed(_ key: String, at now: Date) -> (failures: Int, retryAt: Date) {
        let answer = guarded.withLock { guarded -> (failures: Int, retryAt: Date) in
            let failures = (guarded.backoff[key]?.failures ?? 0) + 1
            let retryAt = now.addingTimeInterval(min(30, 0.5 * pow(2, Double(failures - 1))))
            guarded.backoff[key] = (failures, retryAt)
            guarded.retries[key] = retryAt
            return (failures, retryAt)
        }
        retryBell.ring()
        return answer
    }

    /// A step of `key` succeeded: its failures are forgotten.
    func succeeded(_ key: String) {
        guarded.withLock { _ = $0.backoff.removeValue(forKey: key) }
    }

    /// When `key` may be tried again, if its last step failed.
    func retryAt(_ key: String) -> Date? {
        guarded.withLock { $0.backoff[key]?.retryAt }
    }

    /// Adds each failed key again once its wait is over, sleeping on `clock` until the
    /// earliest; runs in the reconciler's task group until it is cancelled.
    func runRetries(clock: any WallClock) async {
        while !Task.isCancelled {
            let now = clock.now()
            let (due, next) = guarded.withLock { guarded -> ([String], Date?) in
                let due = guarded.retries.filter { $0.value <= now }.map(\.key)
                for key in due { guarded.retries[key] = nil }
                return (due, guarded.retries.values.min())
            }
            for key in due { add(key) }
            await withTaskGroup(of: Void.self) { group in
                if let next { group.addTask { try? await clock.sleep(until: next) } }
                group.addTask { _ = await self.retryBell.wait() }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// A waiting worker and the key taken for it under the lock, resumed after it.
    private struct HandOff {
        var waiter: CheckedContinuation<String?, Never>
        var key: String
    }
}
