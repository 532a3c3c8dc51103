import Foundation
import LatticeDomain
import LatticeStore
import Logging
import ServiceLifecycle
import Synchronization

/// Takes and keeps the leader lease (`LeaseRule`), so that of all the replicas on one
/// database exactly one runs the reconciler and the meter. Claims every `ttl / 3`; a
/// replica that stops renewing (killed, paused, cut off from the database) loses the lease
/// once `ttl` has passed and another takes it over with the next epoch. On a graceful
/// shutdown the lease is handed back at once.
///
/// The lease's epoch goes into the store's fence, so the leader's writes are refused the
/// moment another replica has taken over, even if this one has not noticed yet.
public final class Leadership: Service, Sendable {
    let store: any Store
    let holder: String
    let clock: any WallClock
    let ttl: TimeInterval
    let logger: Logger

    private struct State {
        var leadsUntil: Date?
        var lastKnown: LeaderLease?
        /// Set when the lease is handed back: this replica claims no more.
        var stopped = false
    }

    private let state = Mutex(State())
    private let gainedStream: AsyncStream<Void>
    private let gainedContinuation: AsyncStream<Void>.Continuation
    /// `claimSoon`'s requests, which `run` answers between its regular claims.
    private let claimRequests = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))

    init(store: any Store, holder: String, clock: any WallClock, ttl: TimeInterval = 10, logger: Logger) {
        self.store = store
        self.holder = holder
        self.clock = clock
        self.ttl = ttl
        self.logger = logger
        (gainedStream, gainedContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        store.fence.enable(holder: holder)
    }

    /// A name for this process among the replicas: host, process id and a random suffix.
    static func replicaName() -> String {
        var rng = SystemRandomNumberGenerator()
        let suffix = String(UInt16.random(in: 0...UInt16.max, using: &rng), radix: 16)
        return "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(suffix)"
    }

    /// Whether this replica leads now: it holds the lease and it has not lapsed by its own clock.
    public var isLeader: Bool {
        let now = clock.now()
        return state.withLock { $0.leadsUntil.map { now < $0 } ?? false }
    }

    /// The lease as this replica last read it (for `/readyz`).
    public var lease: LeaderLease? { state.withLock { $0.lastKnown } }

    /// Yields each time this replica becomes the leader (the reconciler resyncs then).
    var gained: AsyncStream<Void> { gainedStream }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while !Task.isCancelled {
                        await self.claim()
                        do { try await Task.sleep(for: .seconds(self.ttl / 3)) } catch { break }
                    }
                }
                group.addTask {
                    for await _ in self.claimRequests.stream { await self.claim() }
                }
            }
        }
        claimRequests.continuation.finish()
        await handBack()
    }

    /// One claim: take or renew the lease, or learn who holds it.
    func claim() async {
        guard !state.withLock({ $0.stopped }) else { return }
        let now = clock.now()
        do {
            let lease = try await store.claimLease(holder: holder, now: now, ttl: ttl)
            let leads = lease?.holder == holder
            let (gained, lost) = state.withLock { state -> (Bool, Bool) in
                let before = state.leadsUntil.map { now < $0 } ?? false
                let held = state.leadsUntil != nil
                state.leadsUntil = leads ? lease?.expiresAt : nil
                state.lastKnown = lease
                return (leads && !before, !leads && held)
            }
            if leads, let epoch = lease?.epoch {
                store.fence.hold(epoch: epoch)
            } else {
                store.fence.drop()
            }
            if gained {
                logger.notice(
                    "this replica leads",
                    metadata: ["epoch": "\(lease?.epoch ?? 0)", "replica": "\(holder)"]
                )
                gainedContinuation.yield()
            }
            if lost {
                // Paused or cut off past its lease: another replica leads with a later epoch,
                // and the fence has refused this one's writes since the lease lapsed.
                logger.notice(
                    "this replica no longer leads",
                    metadata: [
                        "leader": "\(lease?.holder ?? "none")", "epoch": "\(lease?.epoch ?? 0)", "replica": "\(holder)",
                    ]
                )
            }
        } catch {
            // Keep leading until the lease would lapse; the fence guards the writes anyway.
            logger.warning("cannot renew the leader lease", metadata: ["error": "\(error)"])
        }
    }

    /// Claims now rather than at the next renewal (the leader handed its lease back).
    func claimSoon() {
        guard !state.withLock({ $0.stopped }) else { return }
        claimRequests.continuation.yield()
    }

    /// Gives the lease back so another replica leads at once.
    func handBack() async {
        let leading = state.withLock { state -> Bool in
            state.stopped = true
            defer { state.leadsUntil = nil }
            return state.leadsUntil != nil
        }
        store.fence.drop()
        gainedContinuation.finish()
        guard leading else { return }
        do {
            try await store.releaseLease(holder: holder, now: clock.now())
            logger.notice("leader lease handed back", metadata: ["replica": "\(holder)"])
        } catch {
            logger.warning("cannot hand the leader lease back", metadata: ["error": "\(error)"])
        }
    }
}
