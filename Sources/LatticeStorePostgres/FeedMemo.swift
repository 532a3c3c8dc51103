import LatticeDomain
import LatticeStore
import Synchronization

/// Values as last read, kept only while this replica hears the change feed: a write of what
/// they were read from, on any replica, sends a notice that forgets them all (and this
/// replica's own write forgets them as it commits). A read that began before a forget is not
/// kept, so the memo never holds a value older than a committed write it was told of.
/// Bounded: emptied when full, the hot keys fill it again.
final class FeedMemo<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var listening = false
        var generation = 0
        var values: [Key: Value] = [:]
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int = 10_000) { self.capacity = capacity }

    /// The value of `key`, if kept; else the generation a read now would be kept under.
    func lookup(_ key: Key) -> (value: Value?, generation: Int) {
        state.withLock { ($0.listening ? $0.values[key] : nil, $0.generation) }
    }

    /// Keeps `value`, read under `generation`, unless something was forgotten since.
    func keep(_ value: Value, for key: Key, generation: Int) {
        state.withLock { state in
            guard state.listening, state.generation == generation else { return }
            if state.values.count >= capacity, state.values[key] == nil {
                state.values.removeAll(keepingCapacity: true)
            }
            state.values[key] = value
        }
    }

    func forget() {
        state.withLock { state in
            state.generation += 1
            state.values.removeAll()
        }
    }

    /// The feed connected or was lost: whatever was sent meanwhile is unknown.
    func listening(_ listening: Bool) {
        state.withLock { state in
            state.listening = listening
            state.generation += 1
            state.values.removeAll()
        }
    }

    /// The kept value of `key`, else `load`'s, kept unless a forget came while it read.
    func value(_ key: Key, load: () async throws -> Value) async throws -> Value {
        let (kept, generation) = lookup(key)
        if let kept { return kept }
        let value = try await load()
        keep(value, for: key, generation: generation)
        return value
    }
}

/// The memos of a PostgreSQL store, each forgotten by its own notice.
struct FeedMemos: Sendable {
    /// Every webhook (one key), asked for on each commit that records events by the leader's
    /// sender; forgotten by `.webhooks`.
    let webhooks = FeedMemo<String, [Webhook]>(capacity: 1)
    /// What a create or a start reads of its namespace (budget, default idle stop) and of the
    /// drained nodes; forgotten by `.startInputs`.
    let startInputs = FeedMemo<String, StartInputs>()

    func listening(_ listening: Bool) {
        webhooks.listening(listening)
        startInputs.listening(listening)
    }

    /// Forgets what `notices` (of a committed write, this replica's or another's) changed.
    func forget(_ notices: [StoreChange]) {
        for notice in notices {
            switch notice {
            case .webhooks: webhooks.forget()
            case .startInputs: startInputs.forget()
            default: break
            }
        }
    }
}

extension PostgresStore {
    /// Every webhook: from the memo while the feed listens, else read.
    public func allWebhooks() async throws -> [Webhook] {
        try await memos.webhooks.value("all") { try await loadAllWebhooks() }
    }

    /// The namespace's budget and default idle stop, and the drained nodes: from the memo
    /// while the feed listens, else one read.
    public func startInputs(namespace: String) async throws -> StartInputs {
        try await memos.startInputs.value(namespace) { try await loadStartInputs(namespace: namespace) }
    }
}
