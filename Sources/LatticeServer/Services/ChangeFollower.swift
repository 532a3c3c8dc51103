import Foundation
import LatticeDomain
import LatticeStore
import Logging
import ServiceLifecycle

/// Applies what other replicas commit (the store's `ChangeFeed`): an instance another
/// replica wrote goes to this replica's work queue (it is acted on if this replica leads),
/// a token regenerated or deleted elsewhere leaves the token cache at once, and after the
/// feed reconnects the whole cache is dropped and the leader resyncs, since notifications
/// may have been lost in between; a lease handed back is claimed at once (a graceful
/// shutdown of the leader hands over without waiting for the lease to lapse). With SQLite
/// the feed is empty and this ends at once.
final class ChangeFollower: Service, @unchecked Sendable {
    let store: any Store
    let tokenCache: TokenCache
    let enqueue: @Sendable (String) -> Void
    let resync: @Sendable () -> Void
    let claimLease: @Sendable () -> Void

    init(
        store: any Store,
        tokenCache: TokenCache,
        enqueue: @escaping @Sendable (String) -> Void,
        resync: @escaping @Sendable () -> Void,
        claimLease: @escaping @Sendable () -> Void
    ) {
        self.claimLease = claimLease
        self.store = store
        self.tokenCache = tokenCache
        self.enqueue = enqueue
        self.resync = resync
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await change in self.store.changes() {
                self.apply(change)
            }
        }
        // An embedded store's feed ends at once; a service that returns would stop the
        // server, so this one stays until the server shuts down.
        try? await gracefulShutdown()
    }

    func apply(_ change: StoreChange) {
        switch change {
        case .instance(let name): enqueue(name)
        case .token(let id): tokenCache.evict(tokenID: id)
        case .leaseReleased: claimLease()
        case .reconnected:
            tokenCache.evictAll()
            resync()
        }
    }
}
