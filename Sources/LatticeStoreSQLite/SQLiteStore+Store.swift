import Foundation
import GRDB
import LatticeDomain
import LatticeStore

extension SQLiteStore {
    // MARK: Users and tokens

    // MARK: Idempotency keys

    /// A write transaction that also records the outcome of the keyed request it serves
    /// (`IdempotencyScope`), in the same transaction.
    func transaction<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let pending = IdempotencyScope.pending
        return try await writer.write { db in
            let result = try updates(db)
            if let record = StoreQueries.record(pending) { try Self.run(record, db) }
            return result
        }
    }

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
        try await indexedWrite { db, changes in
            let reads = try self.createReads(draft, couponID: couponID, db)
            let (checked, writes) = try CreateDecision.check(draft, reads: reads, couponID: couponID, debit: debit)
            let placement = try self.placement.place(
                PlacementRequest(cluster: checked.cluster, resources: checked.resources),
                on: nodes,
                db
            )
            guard
                let port = try self.placement.freePort(in: sshPorts, for: checked.namespace, now: checked.createdAt, db)
            else {
                throw SSHPortRule.noneFree(in: sshPorts)
            }
            let (instance, set) = CreateDecision.created(
                checked,
                placement: placement,
                sshPort: port,
                order: order,
                writes: writes,
                schedule: self.schedule
            )
            try self.apply(set, db, &changes)
            return instance
        }
    }

    /// What a create checks (`CreateReads`), inside its write.
    func createReads(_ draft: Instance, couponID: String?, _ db: Database) throws -> CreateReads {
        let namespace = draft.namespace
        let taken = try Bool.fetchOne(
            try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM instances WHERE name = ?)"),
            arguments: [draft.name]
        )
        var coupon: Coupon?
        if let couponID, !couponID.isEmpty,
            let doc = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT doc FROM coupons WHERE id = ?"),
                arguments: [couponID]
            )
        {
            coupon = try Documents.decode(Coupon.self, doc)
        }
        return CreateReads(
            nameTaken: taken ?? false,
            usage: try Self.fetch(quotaUsageQuery(namespace, only: QuotaUsage(instances: 1, gpus: 1)), db),
            quota: try Self.fetch(quotaQuery(namespace), db),
            balance: try Self.fetch(StoreQueries.balance(namespace), db),
            committed: try Self.fetch(StoreQueries.commitment(namespace), db),
            coupon: coupon
        )
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
        try await indexedWrite { db, changes in
            guard let current = try Self.fetch(self.instanceQuery(name), db), current.namespace == namespace,
                !current.desired.deleted
            else {
                throw LatticeError.notFound("instance '\(name)'")
            }
            try InstanceLifecycle.checkPowerOn(current)
            try Self.fetch(self.quotaCheck(namespace, adding: QuotaUsage(gpus: current.resources.gpuCount)), db)
            let placement = try self.placement.place(
                PlacementRequest(powerOn: current),
                on: nodes,
                db
            )
            var port = current.access.sshPort
            if port == 0 {
                guard let free = try self.placement.freePort(in: sshPorts, for: namespace, now: now, db) else {
                    throw SSHPortRule.noneFree(in: sshPorts)
                }
                port = free
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
                balance: try Self.fetch(StoreQueries.balance(namespace), db),
                committed: try Self.fetch(StoreQueries.commitment(namespace), db),
                starting: next
            )
            var set = WriteSet.instance(from: current, to: next, at: now, schedule: self.schedule)
            set.ledger = debit.charges
            try self.apply(set, db, &changes)
            return next
        }
    }

    public func updateInstance(
        namespace: String,
        name: String,
        paying change: @escaping @Sendable (Instance) throws -> (Instance, WalletDebit)
    ) async throws -> Instance {
        try await indexedWrite { db, changes in
            guard let current = try Self.fetch(self.instanceQuery(name), db), current.namespace == namespace else {
                throw LatticeError.notFound("instance '\(name)'")
            }
            let (next, debit) = try change(current)
            for charge in debit.charges where try Self.fetch(StoreQueries.ledgerKeyExists(charge.idempotencyKey), db) {
                return current
            }
            if let reference = QuotaRule.snapshotRequested(from: current, to: next),
                try Row.fetchOne(
                    db,
                    sql: "SELECT 1 FROM images WHERE namespace = ? AND reference = ?",
                    arguments: [namespace, reference]
                ) == nil
            {
                try Self.fetch(self.quotaCheck(namespace, adding: QuotaUsage(snapshots: 1)), db)
            }
            if DebitRule.needsBalance(debit, starting: nil) {
                try DebitRule.check(
                    debit,
                    namespace: namespace,
                    balance: try Self.fetch(StoreQueries.balance(namespace), db),
                    committed: .zero,
                    starting: nil
                )
            }
            var set =
                next != current
                ? WriteSet.instance(
                    from: current,
                    to: next,
                    at: next.updatedAt ?? next.createdAt,
                    schedule: self.schedule
                )
                : WriteSet()
            set.ledger = debit.charges
            try self.apply(set, db, &changes)
            return next
        }
    }

    public func recordObservation(_ instance: Instance, expectedGeneration: Int) async throws -> Bool {
        try await indexedWrite { db, changes in
            try self.fence.check(try Self.fetch(StoreQueries.lease, db))
            guard let current = try Self.fetch(self.instanceQuery(instance.name), db),
                current.generation == expectedGeneration
            else { return false }
            let set = WriteSet.instance(
                from: current,
                to: instance,
                at: instance.updatedAt ?? instance.createdAt,
                schedule: self.schedule,
                observed: true
            )
            try self.apply(set, db, &changes)
            return true
        }
    }

    public func purgeInstance(name: String, expectedGeneration: Int, at: Date) async throws -> Bool {
        try await indexedWrite { db, changes in
            try self.fence.check(try Self.fetch(StoreQueries.lease, db))
            guard let current = try Self.fetch(self.instanceQuery(name), db), current.generation == expectedGeneration
            else {
                return false
            }
            try self.apply(
                WriteSet.instance(from: current, to: nil, at: at, schedule: self.schedule, observed: true),
                db,
                &changes
            )
            return true
        }
    }

    public func instanceVersion(name: String) async throws -> InstanceVersion? {
        if let known = placement.version(name) { return known }
        try await loadVersions()
        return placement.version(name) ?? nil
    }

    /// Loads the owner-and-generation map the GET hot path answers from (one read of three
    /// columns of every instance). The server calls it once it is listening, so no client's
    /// first GET pays for it; a GET that comes first loads it itself.
    public func warmUp() async throws {
        try await loadVersions()
    }

    private func loadVersions() async throws {
        guard !placement.versionsLoaded else { return }
        try await writer.writeWithoutTransaction { db in
            // Many first requests may queue here; the first one loads, the rest find it done.
            guard !self.placement.versionsLoaded else { return }
            let all = try Row.fetchAll(
                try db.cachedStatement(sql: "SELECT name, namespace, cluster, generation FROM instances")
            )
            self.placement.installVersions(all.map(Self.version(_:)))
        }
    }

    public func instanceVersions(
        namespace: String,
        cluster: String,
        page: PageRequest
    ) async throws -> (items: [InstanceVersion], total: Int) {
        try await writer.read { db in
            let total =
                try Int.fetchOne(
                    try db.cachedStatement(sql: "SELECT n FROM instance_counts WHERE namespace = ? AND cluster = ?"),
                    arguments: [namespace, cluster]
                ) ?? 0
            let rows = try Row.fetchAll(
                try db.cachedStatement(
                    sql: """
                        SELECT name, namespace, cluster, generation FROM instances WHERE namespace = ? AND cluster = ?
                        ORDER BY created_at DESC, name LIMIT ? OFFSET ?
                        """
                ),
                arguments: [namespace, cluster, page.pageSize, page.offset]
            )
            return (rows.map(Self.version(_:)), total)
        }
    }

    static func version(_ row: Row) -> InstanceVersion {
        InstanceVersion(
            name: row["name"],
            namespace: row["namespace"],
            cluster: row["cluster"],
            generation: row["generation"]
        )
    }

    public func payAsYouGoHolders() async throws -> [String: [String]] {
        try await writer.read { db in
            var holders: [String: [String]] = [:]
            // Only wallets that are empty or were: the rest have nothing to enforce.
            let rows = try Row.fetchAll(
                try db.cachedStatement(
                    sql: """
                        SELECT namespace, name FROM instances INDEXED BY instances_payg_holders
                        WHERE payg = 1 AND status IN ('Creating', 'Starting', 'Running', 'Stopping', 'Saving')
                            AND namespace IN (
                                SELECT namespace FROM users WHERE balance_units <= 0 OR depleted_since IS NOT NULL)
                        """
                )
            )
            for row in rows { holders[row["namespace"], default: []].append(row["name"]) }
            return holders
        }
    }

    public func freeGPUs(model: String, clusters: Set<String>, nodes: [ClusterNode]) async throws -> Int {
        if let free = placement.freeGPUs(model: model, clusters: clusters, nodes: nodes) { return free }
        let usage = try await nodeUsage()
        let capacities = nodes.filter { clusters.contains($0.cluster) }.map {
            NodeCapacity($0, usage: usage[$0.node.name])
        }
        return PlacementPolicy.freeGPUs(model: model, on: capacities)
    }

    // MARK: Images

    // MARK: Money

    static func append(_ entry: LedgerEntry, _ db: Database) throws -> Bool {
        try db.run(
            sql:
                """
                INSERT INTO ledger (id, namespace, kind, amount_units, idempotency_key, created_at, doc)
                VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING
                """,
            arguments: [
                entry.id, entry.namespace, entry.kind.rawValue, entry.amount.units, entry.idempotencyKey,
                entry.createdAt.timeIntervalSince1970, try Documents.encode(entry),
            ]
        )
        guard db.changesCount == 1 else { return false }
        try db.run(
            sql: "UPDATE users SET balance_units = balance_units + ? WHERE namespace = ?",
            arguments: [entry.signedUnits, entry.namespace]
        )
        return true
    }

    // MARK: Metering

    // MARK: Console sessions

    // MARK: Copying to another store

    /// Every row of `CopiedTables.all`, read in one transaction (one consistent moment),
    /// as `lattice db copy` carries them.
    public func exportTables() async throws -> [(name: String, rows: TableRows)] {
        try await writer.read { db in
            try CopiedTables.all.map { table in
                let columns = try db.columns(in: table).map(\.name)
                let list = columns.map { "\"\($0)\"" }.joined(separator: ", ")
                let rows = try Row.fetchAll(db, sql: "SELECT \(list) FROM \(table)").map { row in
                    columns.indices.map { index -> TableValue in
                        let value: DatabaseValue = row[index]
                        switch value.storage {
                        case .null: return .null
                        case .int64(let integer): return .integer(integer)
                        case .double(let real): return .real(real)
                        case .string(let text): return .text(text)
                        case .blob(let data): return .blob(data)
                        }
                    }
                }
                return (table, TableRows(columns: columns, rows: rows))
            }
        }
    }

    // MARK: Leader lease

    /// One process owns the file: the feed is its own committed writes.
    public func changes() -> AsyncStream<StoreChange> { feed.stream() }

}
