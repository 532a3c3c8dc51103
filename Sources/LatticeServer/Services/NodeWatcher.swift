import Foundation
import LatticeDomain
import LatticeStore
import Logging
import ServiceLifecycle
import Synchronization

/// Tells admins when a node's health changes (`node.unhealthy`, `node.drained`,
/// `node.healthy` on `GET /admin/events`): on the leader, every meter interval, the fleet's
/// nodes and the drains are compared with each node's health as last told (kept in the
/// store, so a restart or a new leader tells nothing twice), and the changes are recorded
/// with their events in one fenced write. Work is in proportion to the nodes, in memory; the
/// store is written only when something changed.
final class NodeWatcher: Service, Sendable {
    let store: any Store
    let fleet: ComputeFleet
    let clock: any WallClock
    let leadership: Leadership?
    let interval: Duration
    let logger: Logger
    /// The health last told, loaded from the store once this replica leads (nil: not loaded).
    private let told = Mutex<[String: NodeHealth]?>(nil)

    init(
        store: any Store,
        fleet: ComputeFleet,
        clock: any WallClock,
        leadership: Leadership?,
        interval: Duration,
        logger: Logger
    ) {
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self.leadership = leadership
        self.interval = interval
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                if self.leadership?.isLeader ?? true {
                    do {
                        try await self.pass()
                    } catch {
                        // Fenced out, or the store failed: read what was told afresh next time.
                        self.told.withLock { $0 = nil }
                        self.logger.warning("node watch failed; will retry", metadata: ["error": "\(error)"])
                    }
                } else {
                    self.told.withLock { $0 = nil }
                }
                do { try await Task.sleep(for: self.interval) } catch { break }
            }
        }
    }

    func pass() async throws {
        let known: [String: NodeHealth]
        if let loaded = told.withLock({ $0 }) {
            known = loaded
        } else {
            known = try await store.nodeHealth()
        }
        let drained = Dictionary(try await store.drainedNodes().map { ($0.node, $0.since) }) { first, _ in first }
        let now = clock.now()
        var changes: [(node: String, health: NodeHealth)] = []
        var events: [LatticeEvent] = []
        for node in await fleet.nodes().sorted(by: { ($0.cluster, $0.node.name) < ($1.cluster, $1.node.name) }) {
            let name = node.node.name
            let (health, reason) = NodeHealth.of(node, drainedSince: drained[name].map { TimeFormatter().format($0) })
            guard known[name] != health else { continue }
            changes.append((name, health))
            if let event = EventRule.node(
                name,
                cluster: node.cluster,
                from: known[name],
                to: health,
                reason: reason,
                at: now
            ) {
                events.append(event)
                logger.notice(
                    "node health",
                    metadata: ["node": "\(name)", "health": "\(health.rawValue)", "reason": "\(reason)"]
                )
            }
        }
        if !changes.isEmpty { try await store.recordNodeHealth(changes, events: events, at: now) }
        var next = known
        for (node, health) in changes { next[node] = health }
        told.withLock { $0 = next }
    }
}
