import Foundation
import LatticeDomain
import LatticeStore
import PostgresNIO

extension PostgresStore {
    // MARK: Users and tokens

    // MARK: Idempotency keys

    // MARK: Quotas

    // MARK: Instances

    public func createInstance(
        _ draft: Instance,
        on nodes: [ClusterNode],
        sshPorts: ClosedRange<Int>,
        order: Order,
        couponID: String?,
        debit: WalletDebit
    ) async throws -> Instance {
        let pending = PendingMemo()
        defer { pending.abandon(self.memo) }
        let created = try await transaction { tx in
            // One round trip: the wallet lock, every check's read, the placement version's row
            // lock and the SSH ports from where this replica last knew one free.
            let from = self.memo.latestFreePort.flatMap { sshPorts.contains($0) ? $0 : nil } ?? sshPorts.lowerBound
            let (reads, version, ports) = try await Self.createReads(
                draft,
                couponID: couponID,
                defaults: self.defaultQuota,
                ports: from...min(from + PortWindow.size - 1, sshPorts.upperBound),
                tx
            )
            let (checked, writes) = try CreateDecision.check(draft, reads: reads, couponID: couponID, debit: debit)
            let placement = try await self.place(
                PlacementRequest(cluster: checked.cluster, resources: checked.resources),
                on: nodes,
                version: version,
                pending: pending,
                tx
            )
            let port = try await self.freePort(
                in: sshPorts,
                for: checked.namespace,
                now: checked.createdAt,
                pending: pending,
                prefetched: ports,
                tx
            )
            let (instance, set) = CreateDecision.created(
                checked,
                placement: placement,
                sshPort: port,
                order: order,
                writes: writes,
                schedule: self.schedule
            )
            try await self.apply(set, tx)
            return instance
        }
        pending.apply(to: memo)
        return created
    }

    public func powerOn(
        namespace: String,
        name: String,
        on nodes: [ClusterNode],
        sshPorts: ClosedRange<Int>,
        podName: String,
        now: Date,
        debit: WalletDebit,
        unitPrice: Money?
    ) async throws -> Instance {
        let pending = PendingMemo()
        defer { pending.abandon(self.memo) }
        let started = try await transaction { tx in
            try await Self.lockWallet(namespace, tx)
            guard let current = try await Self.fetch(self.instanceQuery(name).forUpdate(), tx),
                current.namespace == namespace, !current.desired.deleted
            else {
                throw LatticeError.notFound("instance '\(name)'")
            }
            try InstanceLifecycle.checkPowerOn(current)
            try await Self.fetch(self.quotaCheck(namespace, adding: QuotaUsage(gpus: current.resources.gpuCount)), tx)
            let placement = try await self.place(
                PlacementRequest(powerOn: current),
                on: nodes,
                pending: pending,
                tx
            )
            var port = current.access.sshPort
            if port == 0 {
                port = try await self.freePort(in: sshPorts, for: namespace, now: now, pending: pending, tx)
            }
            let next = try InstanceLifecycle.powerOn(
                current,
                placement: placement,
                sshPort: port,
                podName: podName,
                now: now,
                unitPrice: unitPrice
            )
            try DebitRule.check(
                debit,
                namespace: namespace,
                balance: try await Self.fetch(StoreQueries.balance(namespace), tx),
                committed: try await Self.fetch(StoreQueries.commitment(namespace), tx),
                starting: next
            )
            var set = WriteSet.instance(from: current, to: next, at: now, schedule: self.schedule)
            set.ledger = debit.charges
            try await self.apply(set, tx)
            return next
        }
        pending.apply(to: memo)
        return started
    }

    public func updateInstance(
        namespace: String,
        name: String,
        paying change: @escaping @Sendable (Instance) throws -> (Instance, WalletDebit)
    ) async throws -> Instance {
        try await transaction { tx in
            try await Self.lockWallet(namespace, tx)
            guard let current = try await Self.fetch(self.instanceQuery(name).forUpdate(), tx),
                current.namespace == namespace
            else {
                throw LatticeError.notFound("instance '\(name)'")
            }
            let (next, debit) = try change(current)
            for charge in debit.charges
            where try await Self.fetch(StoreQueries.ledgerKeyExists(charge.idempotencyKey), tx) {
                return current
            }
            // The wallet lock above serializes the namespace's writes, so the count holds.
            if let reference = QuotaRule.snapshotRequested(from: current, to: next),
                try await tx.value(
                    "SELECT COUNT(*) FROM images WHERE namespace = \(namespace) AND reference = \(reference)",
                    as: Int.self
                ) == 0
            {
                try await Self.fetch(self.quotaCheck(namespace, adding: QuotaUsage(snapshots: 1)), tx)
            }
            if DebitRule.needsBalance(debit, starting: nil) {
                try DebitRule.check(
                    debit,
                    namespace: namespace,
                    balance: try await Self.fetch(StoreQueries.balance(namespace), tx),
                    committed: .zero,
                    starting: nil
                )
            }
            var set = WriteSet()
            if next != current {
                set = WriteSet.instance(
                    from: current,
                    to: next,
                    at: next.updatedAt ?? next.createdAt,
                    schedule: self.schedule
                )
            }
            set.ledger = debit.charges
            try await self.apply(set, tx)
            return next
        }
    }

    /// One statement when this replica keeps the record at `expectedGeneration`
    /// (`applyAtOnce`), else a transaction that reads it under the lease's lock.
    public func recordObservation(_ instance: Instance, expectedGeneration: Int) async throws -> Bool {
        let at = instance.updatedAt ?? instance.createdAt
        let written = try await applyAtOnce(name: instance.name, expectedGeneration: expectedGeneration) { current in
            WriteSet.instance(from: current, to: instance, at: at, schedule: self.schedule, observed: true)
        }
        if written { return true }
        return try await transaction { tx in
            guard let current = try await self.fencedInstance(tx, name: instance.name),
                current.generation == expectedGeneration
            else { return false }
            let set = WriteSet.instance(
                from: current,
                to: instance,
                at: instance.updatedAt ?? instance.createdAt,
                schedule: self.schedule,
                observed: true
            )
            try await self.apply(set, tx)
            return true
        }
    }

    /// Like `recordObservation`: one statement when the record is kept, else a transaction.
    public func purgeInstance(name: String, expectedGeneration: Int, at: Date) async throws -> Bool {
        let written = try await applyAtOnce(name: name, expectedGeneration: expectedGeneration) { current in
            WriteSet.instance(from: current, to: nil, at: at, schedule: self.schedule, observed: true)
        }
        if written { return true }
        return try await transaction { tx in
            guard let current = try await self.fencedInstance(tx, name: name),
                current.generation == expectedGeneration
            else { return false }
            try await self.apply(
                WriteSet.instance(from: current, to: nil, at: at, schedule: self.schedule, observed: true),
                tx
            )
            return true
        }
    }

    /// From memory (`InstanceRecords`) when the directory says the record kept is the
    /// newest, else by primary key: one round trip (and kept). Like the directory, a replica
    /// knows another's write once it hears its notice (which comes before the `.instance`
    /// change that wakes its reconciler).
    public func instance(name: String) async throws -> Instance? {
        if case .known(let version?) = directory.version(name),
            let record = records.record(name, generation: version.generation)
        {
            return record
        }
        let instance = try await query("SELECT doc FROM instances WHERE name = \(name)").first.map {
            try documents.decode(try $0.text(0)) as Instance
        }
        if let instance { records.keep(instance) }
        return instance
    }

    /// From the directory while the change feed listens (`InstanceDirectory`), else by
    /// primary key: one round trip.
    public func instanceVersion(name: String) async throws -> InstanceVersion? {
        if case .known(let version) = directory.version(name) { return version }
        return try await read { tx in
            try await tx.execute(PreparedReads.InstanceVersionByName(name: name)).first
        }
    }

    /// Whether `GET` and list pages are answered from memory now (the change feed listens and
    /// the directory is loaded).
    public var answersInstancesFromMemory: Bool { directory.isComplete }

    /// Nothing to load here: the change feed loads the directory once it listens.
    public func warmUp() async throws {}

    /// From the directory while the change feed listens, else the count and the page in one
    /// statement (one snapshot, one round trip).
    public func instanceVersions(
        namespace: String,
        cluster: String,
        page: PageRequest
    ) async throws -> (items: [InstanceVersion], total: Int) {
        if case .known(let answer) = directory.page(namespace: namespace, cluster: cluster, page: page) {
            return answer
        }
        let rows = try await read { tx in
            try await tx.execute(
                PreparedReads.InstancePage(
                    namespace: namespace,
                    cluster: cluster,
                    limit: page.pageSize,
                    offset: page.offset
                )
            )
        }
        return (rows.compactMap(\.version), rows.first?.total ?? 0)
    }

    public func payAsYouGoHolders() async throws -> [String: [String]] {
        try await read { tx in
            var holders: [String: [String]] = [:]
            let rows = try await tx.rows(
                """
                SELECT namespace, name FROM instances
                WHERE payg AND status IN ('Creating', 'Starting', 'Running', 'Stopping', 'Saving')
                    AND namespace IN (
                        SELECT namespace FROM users WHERE balance_units <= 0 OR depleted_since IS NOT NULL)
                """
            )
            for row in rows {
                let (namespace, name) = try row.decode((String, String).self)
                holders[namespace, default: []].append(name)
            }
            return holders
        }
    }

    public func freeGPUs(model: String, clusters: Set<String>, nodes: [ClusterNode]) async throws -> Int {
        try await read { tx in
            let version = try await tx.value("SELECT v FROM placement_version WHERE id = 1", as: Int64.self) ?? 0
            var free = 0
            for cluster in clusters {
                let clusterNodes = nodes.filter { $0.cluster == cluster }
                if let index = self.memo.index(cluster: cluster, nodes: clusterNodes, version: version) {
                    free += index.freeGPUs(model: model, cluster: cluster)
                } else {
                    let wanted = clusterNodes.filter { $0.node.gpuModel == model }
                    let usage = try await Self.fetch(StoreQueries.nodeUsage(nodes: wanted.map(\.node.name)), tx)
                    free += PlacementPolicy.freeGPUs(
                        model: model,
                        on: wanted.map { NodeCapacity($0, usage: usage[$0.node.name]) }
                    )
                }
            }
            return free
        }
    }

    // MARK: Images

    // MARK: Money

    // MARK: Metering

    // MARK: Console sessions

    // MARK: Leader lease

    /// The fence check and the instance under its row lock, in one statement: the lease row
    /// is held FOR SHARE (as in `lease(_:lock:)`) and the instance FOR UPDATE, and both locked
    /// reads see the newest committed version of their row.
    func fencedInstance(_ tx: Transaction, name: String) async throws -> Instance? {
        let rows = try await tx.prepared(
            """
            SELECT l.holder, l.epoch, l.expires_at, i.doc FROM (SELECT 1) AS one
            LEFT JOIN (
                SELECT holder, epoch, expires_at FROM leader_lease WHERE name = 'leader' FOR KEY SHARE
            ) AS l ON TRUE
            LEFT JOIN (SELECT doc FROM instances WHERE name = \(name) FOR UPDATE) AS i ON TRUE
            """
        )
        guard let row = rows.first else { return nil }
        let (holder, epoch, expires, doc) = try row.decode((String?, Int64?, Double?, String?).self)
        var lease: LeaderLease?
        if let holder, let epoch, let expires {
            lease = LeaderLease(holder: holder, epoch: epoch, expiresAt: Date(timeIntervalSince1970: expires))
        }
        try fence.check(lease)
        return try doc.map { try documents.decode($0) }
    }
}

extension PostgresStore {
    /// A batch of audit entries in one statement, which commits on its own: one round trip
    /// (the shared path's transaction would be three).
    public func appendAudit(_ entries: [AuditEntry]) async throws {
        guard !entries.isEmpty else { return }
        let ids = entries.map(\.id), times = entries.map { Self.seconds($0.time) }
        let namespaces = entries.map(\.namespace), actors = entries.map(\.actor), actions = entries.map(\.action)
        let targets = entries.map(\.target), statuses = entries.map(\.status), requests = entries.map(\.requestId)
        let addresses = entries.map(\.remoteAddress)
        try await read { tx in
            _ = try await tx.prepared(
                """
                INSERT INTO audit_log (id, time, namespace, actor, action, target, status, request_id, remote_address)
                SELECT * FROM unnest(\(ids)::TEXT[], \(times)::FLOAT8[], \(namespaces)::TEXT[], \(actors)::TEXT[],
                    \(actions)::TEXT[], \(targets)::TEXT[], \(statuses)::BIGINT[], \(requests)::TEXT[],
                    \(addresses)::TEXT[])
                """
            )
        }
    }
}
