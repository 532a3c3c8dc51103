import Foundation
import Synchronization

/// The source of "now" for everything that depends on time, injected so tests move time
/// instead of sleeping.
public protocol WallClock: Sendable {
    func now() -> Date
    /// Returns once `now()` has reached `deadline` (at once if it has); throws when the
    /// task is cancelled.
    func sleep(until deadline: Date) async throws
}

/// The real clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }

    public func sleep(until deadline: Date) async throws {
        let seconds = deadline.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .milliseconds(Int64((seconds * 1000).rounded(.up)))) }
    }
}

/// A clock that only moves when told to; for tests. Sleepers wake when `advance` or `set`
/// moves it past their deadline.
public final class ManualWallClock: WallClock, Sendable {
    private struct State {
        var current: Date
        var sleepers: [(id: UInt64, deadline: Date, continuation: CheckedContinuation<Void, Never>)] = []
        var nextSleeper: UInt64 = 0
    }

    private let state: Mutex<State>

    public init(_ start: Date = Date(timeIntervalSince1970: 1_767_225_600)) { state = Mutex(State(current: start)) }

    public func now() -> Date { state.withLock { state in state.current } }

    public func advance(by seconds: TimeInterval) {
        set(now().addingTimeInterval(seconds))
    }

    public func set(_ date: Date) {
        let due = state.withLock { state in
            state.current = date
            let due = state.sleepers.filter { $0.deadline <= date }
            state.sleepers.removeAll { $0.deadline <= date }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    public func sleep(until deadline: Date) async throws {
        let id = state.withLock { state in
            state.nextSleeper += 1
            return state.nextSleeper
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Bool in
                    guard state.current < deadline, !Task.isCancelled else { return true }
                    state.sleepers.append((id, deadline, continuation))
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let cancelled = state.withLock {
                state -> [(id: UInt64, deadline: Date, continuation: CheckedContinuation<Void, Never>)] in
                let found = state.sleepers.filter { $0.id == id }
                state.sleepers.removeAll { $0.id == id }
                return found
            }
            for sleeper in cancelled { sleeper.continuation.resume() }
        }
        try Task.checkCancellation()
    }
}
