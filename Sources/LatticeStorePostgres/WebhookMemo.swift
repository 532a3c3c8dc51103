import LatticeDomain
import LatticeStore
import Synchronization

/// The webhook list as last read, kept only while this replica hears the change feed: every
/// create and delete of a webhook, on any replica, sends `.webhooks`, which forgets it (and
/// this replica's own write forgets it as it commits). A read that began before a forget is
/// not kept, so the memo never holds a list older than a committed write it was told of.
final class WebhookMemo: Sendable {
    private struct State {
        var listening = false
        var generation = 0
        var list: [Webhook]?
    }

    private let state = Mutex(State())

    /// The list, if kept; else the generation a read now would be kept under.
    func lookup() -> (list: [Webhook]?, generation: Int) {
        state.withLock { ($0.listening ? $0.list : nil, $0.generation) }
    }

    /// Keeps `list`, read under `generation`, unless something was forgotten since.
    func keep(_ list: [Webhook], generation: Int) {
        state.withLock { state in
            if state.listening, state.generation == generation { state.list = list }
        }
    }

    func forget() {
        state.withLock { state in
            state.generation += 1
            state.list = nil
        }
    }

    /// The feed connected or was lost: whatever was sent meanwhile is unknown.
    func listening(_ listening: Bool) {
        state.withLock { state in
            state.listening = listening
            state.generation += 1
            state.list = nil
        }
    }
}

extension PostgresStore {
    /// Every webhook: from the memo while the feed listens, else read.
    public func allWebhooks() async throws -> [Webhook] {
        let (kept, generation) = webhookMemo.lookup()
        if let kept { return kept }
        let list = try await loadAllWebhooks()
        webhookMemo.keep(list, generation: generation)
        return list
    }
}
