import Foundation
import Synchronization

/// The change feed of a store that belongs to one process (SQLite): each committed write's
/// changes, handed to every subscriber once the write has committed.
public final class ChangeBroadcast: Sendable {
    private let subscribers = Mutex<[UUID: AsyncStream<StoreChange>.Continuation]>([:])

    public init() {}

    /// A new subscription; it ends when the subscriber stops consuming it.
    public func stream() -> AsyncStream<StoreChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: StoreChange.self, bufferingPolicy: .unbounded)
        let id = UUID()
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in _ = self?.subscribers.withLock { $0.removeValue(forKey: id) } }
        return stream
    }

    /// Called after a commit, never inside a transaction that may still roll back.
    public func publish(_ changes: [StoreChange]) {
        guard !changes.isEmpty else { return }
        let all = subscribers.withLock { Array($0.values) }
        for subscriber in all {
            for change in changes { subscriber.yield(change) }
        }
    }
}
