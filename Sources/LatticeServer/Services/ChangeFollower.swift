import Foundation
import LatticeDomain
import LatticeStore
import Logging
import ServiceLifecycle

/// Follows the one change feed (the store's `ChangeFeed`: every committed write, this
/// replica's and, on PostgreSQL, every other's): an instance written goes to the work queue
/// (it is acted on if this replica leads) and the SSH gateway looks at the ports held at once
/// (a port taken or given back on any replica); what the reconciler itself recorded of an
/// instance (`.observed`) wakes only the gateway, so the leader does not redo its own work;
/// a token regenerated or deleted leaves the
/// token cache; after the feed reconnects the whole cache is dropped and the leader resyncs,
/// since notifications may have been lost in between; a lease handed back is claimed at
/// once (a graceful shutdown of the leader hands over without waiting for the lease to lapse);
/// a price changed (or a reconnect) has the price changes read again; events committed wake
/// their namespace's streams and the webhook sender (`EventHub`).
final class ChangeFollower: Service, Sendable {
    let store: any Store
    let tokenCache: TokenCache
    let enqueue: @Sendable (String) -> Void
    let portsChanged: @Sendable () -> Void
    let resync: @Sendable () -> Void
    let claimLease: @Sendable () -> Void
    /// Reads the price changes again (an admin changed one on some replica).
    let pricesChanged: @Sendable () async -> Void
    /// Wakes the readers of a namespace's events (`nil`: everyone's, after a reconnect).
    let eventsCommitted: @Sendable (String?) -> Void

    init(
        store: any Store,
        tokenCache: TokenCache,
        enqueue: @escaping @Sendable (String) -> Void,
        portsChanged: @escaping @Sendable () -> Void = {},
        resync: @escaping @Sendable () -> Void,
        claimLease: @escaping @Sendable () -> Void,
        pricesChanged: @escaping @Sendable () async -> Void = {},
        eventsCommitted: @escaping @Sendable (String?) -> Void = { _ in }
    ) {
        self.eventsCommitted = eventsCommitted
        self.pricesChanged = pricesChanged
        self.claimLease = claimLease
        self.store = store
        self.tokenCache = tokenCache
        self.enqueue = enqueue
        self.portsChanged = portsChanged
        self.resync = resync
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await change in self.store.changes() {
                self.apply(change)
                if change == .prices || change == .reconnected { await self.pricesChanged() }
            }
        }
        // The feed ends only with the store; a service that returns would stop the server,
        // so this one stays until the server shuts down.
        try? await gracefulShutdown()
    }

    func apply(_ change: StoreChange) {
        switch change {
        case .instance(let name):
            enqueue(name)
            portsChanged()
        case .observed:
            // The leader's own record of what it saw: only a port may have changed.
            portsChanged()
        case .token(let id): tokenCache.evict(tokenID: id)
        case .leaseReleased: claimLease()
        case .prices: break  // read again by `run`, which may wait
        case .webhooks, .startInputs: break  // the stores' own memos
        case .events(let namespace): eventsCommitted(namespace)
        case .reconnected:
            tokenCache.evictAll()
            resync()
            eventsCommitted(nil)
        }
    }
}
