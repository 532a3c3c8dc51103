import Foundation
import LatticeStore
import ServiceLifecycle
import Synchronization

/// Wakes whoever reads events when a namespace's events commit (the change feed's
/// `.events`, on any replica): each open stream rings its namespace's doorbells, the
/// webhook sender rings on every namespace. A ring carries no events: the woken reader
/// reads what is new from the store, so a ring heard twice or late loses nothing.
final class EventHub: Sendable {
    /// The doorbell key that every namespace's events ring.
    static let everyNamespace = "*"

    private struct State {
        var bells: [String: [ObjectIdentifier: Doorbell]] = [:]
    }

    private let state = Mutex(State())

    init() {}

    /// A doorbell rung when `namespace`'s events commit (`everyNamespace`: anyone's).
    func subscribe(_ namespace: String) -> Doorbell {
        let bell = Doorbell()
        state.withLock { $0.bells[namespace, default: [:]][ObjectIdentifier(bell)] = bell }
        return bell
    }

    func unsubscribe(_ namespace: String, _ bell: Doorbell) {
        state.withLock { state in
            state.bells[namespace]?[ObjectIdentifier(bell)] = nil
            if state.bells[namespace]?.isEmpty == true { state.bells[namespace] = nil }
        }
    }

    /// `namespace`'s events committed.
    func committed(_ namespace: String) {
        let bells = state.withLock { state in
            Array((state.bells[namespace] ?? [:]).values) + Array((state.bells[Self.everyNamespace] ?? [:]).values)
        }
        for bell in bells { bell.ring() }
    }

    /// The feed reconnected (notifications may have been lost): every reader looks again.
    func ringAll() {
        for bell in state.withLock({ $0.bells.values.flatMap(\.values) }) { bell.ring() }
    }

    /// Every open stream's heartbeat, from one timer (`EventHeartbeat`) rather than one per
    /// stream: each stream waiting now wakes as if its wait timed out. A stream busy sending
    /// misses the beat, which it needs no more than it needs a heartbeat.
    func beat() {
        let bells = state.withLock { state in
            state.bells.filter { $0.key != Self.everyNamespace }.flatMap(\.value.values)
        }
        for bell in bells { bell.beat() }
    }

    /// Streams open now (the webhook sender's doorbell not counted).
    var openStreams: Int {
        state.withLock { state in
            state.bells.filter { $0.key != Self.everyNamespace }.reduce(0) { $0 + $1.value.count }
        }
    }
}

/// One reader's wake-up: `ring` from anywhere, `wait` in the reader. A ring while nobody
/// waits is kept for the next wait, so a ring between a read and the wait is not lost.
final class Doorbell: Sendable {
    enum Wake: Sendable, Equatable { case rung, timedOut, closed }

    private struct State {
        var rung = false
        var closed = false
        var waiter: CheckedContinuation<Wake, Never>?
        var generation = 0
    }

    private let state = Mutex(State())

    func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Wake, Never>? in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: .rung)
    }

    /// Ends a wait in progress as timed out (the hub's shared heartbeat); kept by nobody.
    func beat() {
        let waiter = state.withLock { state -> CheckedContinuation<Wake, Never>? in
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: .timedOut)
    }

    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Wake, Never>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: .closed)
    }

    /// Until rung, closed, cancelled (as closed), beaten (as timed out) or `timeout` has
    /// passed (nil: no timer of its own; the hub's heartbeat ends it).
    func wait(timeout: Duration? = nil) async -> Wake {
        let generation = state.withLock { state -> Int in
            state.generation += 1
            return state.generation
        }
        guard let timeout else { return await wake(generation) }
        // The timer is a child of this wait: it ends with it.
        return await withTaskGroup(of: Wake?.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { self.end(generation, .timedOut) }
                return nil
            }
            group.addTask { await self.wake(generation) }
            while let next = await group.next() {
                if let wake = next {
                    group.cancelAll()
                    return wake
                }
            }
            return .closed
        }
    }

    /// The wait itself, once `generation` is this wait's.
    private func wake(_ generation: Int) async -> Wake {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                let now = state.withLock { state -> Wake? in
                    if state.closed { return .closed }
                    if state.rung {
                        state.rung = false
                        return .rung
                    }
                    if state.generation != generation { return .timedOut }  // the timer fired first
                    state.waiter = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            end(generation, .closed)
        }
    }

    private func end(_ generation: Int, _ wake: Wake) {
        let waiter = state.withLock { state -> CheckedContinuation<Wake, Never>? in
            guard state.generation == generation, let waiter = state.waiter else {
                // Not waiting yet: a timeout or cancellation that comes first ends the wait to come.
                if state.generation == generation, state.waiter == nil { state.generation += 1 }
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: wake)
    }
}

/// The open streams' heartbeat: every `interval`, each waiting stream sends one (SPEC §13).
struct EventHeartbeat: Service {
    let hub: EventHub
    let interval: Duration

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { break }
                hub.beat()
            }
        }
    }
}
