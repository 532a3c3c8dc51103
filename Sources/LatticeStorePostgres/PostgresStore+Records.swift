import Foundation
import LatticeDomain
import LatticeStore
import PostgresNIO

/// The rows behind the store's methods: the same reads and writes as the SQLite store's
/// helpers, each decision left to `LatticeDomain` (`WalletRule`, `QuotaRule`, `Metering`,
/// `PlacementPolicy`, `Coupon.redeem`).
extension PostgresStore {
    static func seconds(_ date: Date) -> Double { date.timeIntervalSince1970 }
    static func seconds(_ date: Date?) -> Double? { date?.timeIntervalSince1970 }

    /// A run of SSH ports as read under the placement lock: which instances hold, and which
    /// other namespaces keep (`SSHPortRule`'s quarantine).
    struct PortWindow: Sendable {
        static let size = 4096
        let ports: ClosedRange<Int>
        var taken: Set<Int> = []
        var kept: [Int: PortRelease] = [:]
    }

    // MARK: Instances

    /// Chooses a node and GPUs under the placement lock; `PlacementPolicy`'s rule, asked of
    /// the capacity index this replica keeps (`PlacementMemo`) when the database's placement
    /// version says it is current, else of one rebuilt from the reservation rows. What the
    /// index becomes with this reservation is put in `pending`, to be kept once the
    /// transaction has committed.
    func place(
        _ request: PlacementRequest,
        on nodes: [ClusterNode],
        version raised: Int64? = nil,
        pending: PendingMemo,
        _ tx: Transaction
    ) async throws -> GPUPlacement {
        // Raising the placement version first takes its row lock: placements, and every write
        // that gives a reservation back (it raises the version too), go one at a time, and the
        // statements after this one see every reservation committed before it. If this write
        // fails, it rolls back, and the version with it. `raised`: the caller raised it already,
        // in an earlier statement of this transaction.
        let next: Int64
        if let raised { next = raised } else { next = try await Self.bumpPlacementVersion(tx) }
        let version = next - 1
        // The caller passes the cluster's nodes as its driver reports them (the same array
        // while nothing changed, so comparing it with the kept one is O(1)); the index
        // only places on the request's cluster and model.
        let clusterNodes = nodes
        var index: CapacityIndex
        if let kept = await memo.awaitIndex(cluster: request.cluster, nodes: clusterNodes, version: version) {
            index = kept
        } else {
            let usage = try await Self.fetch(StoreQueries.nodeUsage(nodes: clusterNodes.map(\.node.name)), tx)
            index = CapacityIndex(nodes: clusterNodes, usage: usage)
        }
        guard let placement = index.place(request) else {
            let free = index.freeGPUs(model: request.gpuModel, cluster: request.cluster)
            memo.keep(cluster: request.cluster, nodes: clusterNodes, index: index, version: version)
            throw LatticeError.insufficientCapacity(request.refusal(freeInCluster: free))
        }
        index.reserve(placement, cpuCores: request.cpuCores, memoryGiB: request.memoryGiB)
        pending.set(cluster: request.cluster, nodes: clusterNodes, index: index, version: next)
        memo.markCommitting(next)
        return placement
    }

    /// Raises the placement version (a write that changes reservations; it waits for any
    /// other such write to commit first) and returns it.
    @discardableResult
    static func bumpPlacementVersion(_ tx: Transaction) async throws -> Int64 {
        try await tx.value("UPDATE placement_version SET v = v + 1 WHERE id = 1 RETURNING v", as: Int64.self) ?? 0
    }

    /// The port `SSHPortRule` gives `namespace` in `range` at `now`, under the placement lock
    /// that `place` took in the same transaction. It looks from the lowest port this replica
    /// knew untaken when nothing else has changed a reservation since, else from the start of
    /// the range, reading which ports are taken or kept from this namespace a window of 4,096
    /// at a time, in one statement per window; a window read earlier under the same lock
    /// (`prefetched`, from `createReads`) that covers where it starts costs no statement.
    func freePort(
        in range: ClosedRange<Int>,
        for namespace: String,
        now: Date,
        pending: PendingMemo,
        prefetched: PortWindow? = nil,
        _ tx: Transaction
    ) async throws -> Int {
        var start = range.lowerBound
        if let from = pending.exactFrom, let hint = memo.lowestFreePort(at: from), range.contains(hint) {
            start = hint
        }
        let cutoff = now.addingTimeInterval(-SSHPortRule.quarantine)
        var choice = SSHPortRule.Choice(namespace: namespace, now: now)
        while start <= range.upperBound, choice.free == nil {
            let window: PortWindow
            if let prefetched, prefetched.ports.contains(start) {
                window = prefetched
            } else {
                let ports = start...min(start + PortWindow.size - 1, range.upperBound)
                window = try await Self.portWindow(ports, keptFrom: namespace, after: cutoff, tx)
            }
            for port in start...window.ports.upperBound {
                if choice.consider(port, taken: window.taken.contains(port), release: window.kept[port]) { break }
            }
            start = window.ports.upperBound + 1
        }
        guard let port = choice.port else { throw SSHPortRule.noneFree(in: range) }
        pending.took(port: port, lowestUntaken: choice.lowestUntaken ?? port)
        return port
    }

    /// Which ports of `ports` instances hold, and which other namespaces keep (released after `cutoff`).
    static func portWindow(
        _ ports: ClosedRange<Int>,
        keptFrom namespace: String,
        after cutoff: Date,
        _ tx: Transaction
    ) async throws -> PortWindow {
        var window = PortWindow(ports: ports)
        for row in try await tx.rows(
            """
            SELECT ssh_port, NULL::TEXT, NULL::DOUBLE PRECISION FROM instances
            WHERE ssh_port BETWEEN \(ports.lowerBound) AND \(ports.upperBound)
            UNION ALL
            SELECT port, namespace, released_at FROM ssh_port_releases
            WHERE port BETWEEN \(ports.lowerBound) AND \(ports.upperBound)
                AND released_at > \(seconds(cutoff)) AND namespace <> \(namespace)
            """
        ) {
            let (port, owner, at) = try row.decode((Int, String?, Double?).self)
            if let owner, let at {
                window.kept[port] = PortRelease(namespace: owner, at: Date(timeIntervalSince1970: at))
            } else {
                window.taken.insert(port)
            }
        }
        return window
    }

    // MARK: Meter segments

    /// Rewrites a segment; `nextDue` nil keeps the time it is due (a closed one is due at its end).
    static func update(_ segment: MeterSegment, nextDue: Date? = nil, _ tx: Transaction) async throws {
        let due = nextDue ?? segment.end
        try await tx.run(
            """
            UPDATE meter_segments SET settled = \(segment.isSettled), open = \(segment.end == nil),
                next_due = COALESCE(\(seconds(due))::DOUBLE PRECISION, next_due),
                doc = \(try Documents.encode(segment))
            WHERE id = \(segment.id)
            """
        )
    }

    // MARK: Create

    /// What a create checks (`CreateReads`), in one round trip (`lattice_create_reads`, in
    /// the schema): under the namespace's wallet lock, so every row it reads is as the last
    /// write that held the lock left it; with the coupon it names locked (redemptions from other
    /// namespaces wait for it); the placement version raised (its row lock: see `place`), and
    /// then the window of SSH ports from the lowest this replica last knew untaken, for
    /// `freePort`. Returns the raised version and that window.
    static func createReads(
        _ draft: Instance,
        couponID: String?,
        defaults: Quota,
        ports: ClosedRange<Int>,
        _ tx: Transaction
    ) async throws -> (CreateReads, version: Int64, ports: PortWindow) {
        let namespace = draft.namespace
        let cutoff = draft.createdAt.addingTimeInterval(-SSHPortRule.quarantine)
        guard
            let row = try await tx.prepared(
                """
                SELECT * FROM lattice_create_reads(\(StoreLock.wallet(namespace)), \(draft.name), \(namespace),
                    \(couponID ?? ""), \(ports.lowerBound), \(ports.upperBound), \(seconds(cutoff)))
                """
            ).first
        else { throw LatticeError.notFound("namespace '\(namespace)'") }
        let (taken, instances, gpus, committed, quotaDoc, admin, balance, couponDoc, version) = try row.decode(
            (Bool, Int, Int, Int64, String?, Bool?, Int64?, String?, Int64?).self
        )
        let cells = PostgresRandomAccessRow(row)
        let held = try cells[9].decode([Int].self)
        let (kept, keptBy, keptAt) = try (
            cells[10].decode([Int].self), cells[11].decode([String].self), cells[12].decode([Double].self)
        )
        var window = PortWindow(ports: ports, taken: Set(held))
        for (port, (owner, at)) in zip(kept, zip(keptBy, keptAt)) {
            window.kept[port] = PortRelease(namespace: owner, at: Date(timeIntervalSince1970: at))
        }
        let quota = try quotaDoc.map { try Documents.decode(Quota.self, $0) } ?? (admin == true ? .unlimited : defaults)
        var money = balance.map(Money.init(units:))
        if money == nil { money = try await Self.fetch(StoreQueries.ledgerBalance(namespace), tx) }
        let reads = CreateReads(
            nameTaken: taken,
            usage: QuotaUsage(instances: instances, gpus: gpus),
            quota: quota,
            balance: money ?? .zero,
            committed: Money(units: committed),
            coupon: try couponDoc.map { try Documents.decode(Coupon.self, $0) }
        )
        return (reads, version ?? 0, window)
    }

    // MARK: Wallet

    /// Locks the namespace's wallet for the rest of the transaction: every write that
    /// checks or moves its money goes one at a time, on every replica. An advisory lock on
    /// the namespace rather than its user row, so a wallet whose namespace has no user row
    /// (money credited before sign-up) is locked all the same.
    /// Takes the transaction-scoped advisory lock `name` (held until commit or rollback).
    static func advisoryLock(_ name: String, _ tx: Transaction) async throws {
        try await tx.run("SELECT pg_advisory_xact_lock(hashtext(\(name)))")
    }

    static func lockWallet(_ namespace: String, _ tx: Transaction) async throws {
        try await advisoryLock(StoreLock.wallet(namespace), tx)
    }

    static func version(_ row: PostgresRow) throws -> InstanceVersion {
        let (name, namespace, cluster, generation) = try row.decode((String, String, String, Int).self)
        return InstanceVersion(name: name, namespace: namespace, cluster: cluster, generation: generation)
    }
}
