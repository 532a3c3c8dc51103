import Foundation
import GRDB
import LatticeDomain

/// JSON documents for the columns that hold whole records (both stores write the same).
package enum Documents {
    package static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    package static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try decoder.decode(type, from: Data(text.utf8))
    }
}

extension TokenRecord {
    init(row: Row) {
        let lastUsed: Double? = row["last_used_at"]
        self.init(
            id: row["id"],
            namespace: row["namespace"],
            name: row["name"],
            secretHash: row["secret_hash"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]),
            expiresAt: Date(timeIntervalSince1970: row["expires_at"]),
            lastUsedAt: lastUsed.map(Date.init(timeIntervalSince1970:))
        )
    }
}

extension SQLiteStore {
    static func insert(_ token: TokenRecord, _ db: Database) throws {
        try db.run(
            sql:
                """
                INSERT INTO tokens (id, namespace, name, secret_hash, created_at, expires_at, last_used_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                token.id, token.namespace, token.name, token.secretHash, token.createdAt.timeIntervalSince1970,
                token.expiresAt.timeIntervalSince1970, token.lastUsedAt?.timeIntervalSince1970,
            ]
        )
    }

    static func insert(_ user: User, _ db: Database) throws {
        try db.run(
            sql: "INSERT INTO users (namespace, admin, created_at) VALUES (?, ?, ?)",
            arguments: [user.namespace, user.isAdmin, user.createdAt.timeIntervalSince1970]
        )
    }

    func fetchInstance(_ db: Database, name: String) throws -> Instance? {
        guard
            let doc = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT doc FROM instances WHERE name = ?"),
                arguments: [name]
            )
        else { return nil }
        return try documents.decode(doc)
    }

    /// Rewrites an instance row, makes its GPU rows match its placement, and opens or
    /// closes its compute meter segment when it takes or releases GPUs.
    func write(_ instance: Instance, previous: Instance, schedule: MeterSchedule, _ db: Database) throws {
        try db.run(
            sql: """
                UPDATE instances SET generation = ?, placed_node = ?, status = ?, deleted = ?, schedule_stop = ?,
                    stopped_at = ?, ssh_port = ?, doc = ? WHERE name = ?
                """,
            arguments: [
                instance.generation, instance.placement?.node, instance.status.rawValue, instance.desired.deleted,
                instance.scheduleStopAt?.timeIntervalSince1970, instance.stoppedAt?.timeIntervalSince1970,
                instance.access.sshPort > 0 ? instance.access.sshPort : nil, try documents.encode(instance),
                instance.name,
            ]
        )
        try Self.syncAllocations(instance, db)
        try Self.recommit(from: previous, to: instance, db)
        try Self.recount(from: previous, to: instance, db)
        let at = instance.updatedAt ?? instance.createdAt
        try Self.recordPortGivenBack(from: previous, to: instance, at: at, db)
        if Metering.startsComputeMeter(from: previous, to: instance) {
            try Self.openComputeSegment(instance, at: at, schedule: schedule, db)
        } else if previous.placement != nil, instance.placement == nil {
            try Self.closeSegments(instance.name, kinds: [.compute], at: at, db)
        }
    }

    /// Keeps the SSH port `previous` gave back (for `SSHPortRule.quarantine`), and forgets
    /// the ones given back longer ago than that.
    static func recordPortGivenBack(from previous: Instance, to next: Instance?, at: Date, _ db: Database) throws {
        guard let (port, release) = PortRelease.given(from: previous, to: next, at: at) else { return }
        try db.run(
            sql: "DELETE FROM ssh_port_releases WHERE released_at <= ?",
            arguments: [at.addingTimeInterval(-SSHPortRule.quarantine).timeIntervalSince1970]
        )
        try db.run(
            sql: "INSERT OR REPLACE INTO ssh_port_releases (port, namespace, released_at) VALUES (?, ?, ?)",
            arguments: [port, release.namespace, release.at.timeIntervalSince1970]
        )
    }

    // MARK: Meter segments

    static func insert(_ segment: MeterSegment, schedule: MeterSchedule, _ db: Database) throws {
        try db.run(
            sql: """
                INSERT INTO meter_segments (id, instance_name, kind, settled, open, next_due, doc)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                segment.id, segment.instanceName, segment.kind.rawValue, segment.isSettled, segment.end == nil,
                Metering.nextDue(segment, period: schedule.period, timeZone: schedule.timeZone).timeIntervalSince1970,
                try Documents.encode(segment),
            ]
        )
    }

    /// Rewrites a segment; `nextDue` nil keeps the time it is due (a closed one is due at
    /// its end).
    static func update(_ segment: MeterSegment, nextDue: Date? = nil, _ db: Database) throws {
        let due = nextDue ?? segment.end
        try db.run(
            sql:
                """
                UPDATE meter_segments SET settled = ?, open = ?, next_due = COALESCE(?, next_due), doc = ?
                WHERE id = ?
                """,
            arguments: [
                segment.isSettled, segment.end == nil, due?.timeIntervalSince1970, try Documents.encode(segment),
                segment.id,
            ]
        )
    }

    static func openComputeSegment(_ instance: Instance, at: Date, schedule: MeterSchedule, _ db: Database) throws {
        guard let segment = Metering.computeSegment(of: instance, at: at) else { return }
        try insert(segment, schedule: schedule, db)
    }

    static func openStorageSegment(_ instance: Instance, at: Date, schedule: MeterSchedule, _ db: Database) throws {
        try insert(Metering.storageSegment(of: instance, at: at), schedule: schedule, db)
    }

    static func closeSegments(_ instanceName: String, kinds: Set<MeterSegment.Kind>, at: Date, _ db: Database) throws {
        let docs = try String.fetchAll(
            try db.cachedStatement(sql: "SELECT doc FROM meter_segments WHERE instance_name = ? AND open = 1"),
            arguments: [instanceName]
        )
        for doc in docs {
            var segment = try Documents.decode(MeterSegment.self, doc)
            guard kinds.contains(segment.kind) else { continue }
            segment.end = max(at, segment.start)
            try update(segment, db)
        }
    }

    // MARK: Wallet

    /// The balance kept on the user's row, moved by every ledger row as it is appended.
    static func balance(_ namespace: String, _ db: Database) throws -> Money {
        if let units = try Int64.fetchOne(
            try db.cachedStatement(sql: "SELECT balance_units FROM users WHERE namespace = ?"),
            arguments: [namespace]
        ) {
            return Money(units: units)
        }
        return try ledgerBalance(namespace, db)
    }

    /// Credits minus charges summed over the ledger itself (the check on `balance`).
    static func ledgerBalance(_ namespace: String, _ db: Database) throws -> Money {
        let units = try Int64.fetchOne(
            try db.cachedStatement(
                sql: """
                    SELECT COALESCE(SUM(CASE WHEN kind = 'credit' THEN amount_units ELSE -amount_units END), 0)
                    FROM ledger WHERE namespace = ?
                    """
            ),
            arguments: [namespace]
        )
        return Money(units: units ?? 0)
    }

    static func ledgerKeyExists(_ key: String, _ db: Database) throws -> Bool {
        try Bool.fetchOne(
            try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM ledger WHERE idempotency_key = ?)"),
            arguments: [key]
        )
            ?? false
    }

    /// Checks the balance and appends the charges, inside the caller's transaction. A write
    /// that `starts` an instance (create, power_on) is checked by `WalletRule` against the
    /// namespace's whole hourly commitment; any other only against its own `required`.
    static func take(_ debit: WalletDebit, namespace: String, starting: Instance? = nil, _ db: Database) throws {
        if let starting {
            try WalletRule.check(
                namespace: namespace,
                balance: try balance(namespace, db),
                committed: try commitment(namespace, db),
                adding: WalletRule.hourlyRate(of: starting),
                upfront: debit.required
            )
        } else if debit.required > .zero || !debit.charges.isEmpty {
            let balance = try balance(namespace, db)
            guard balance >= debit.required else {
                throw LatticeError(
                    .paymentRequired,
                    code: "InsufficientBalance",
                    "balance \(balance) does not cover \(debit.required); "
                        + "ask an admin to credit namespace '\(namespace)'"
                )
            }
        }
        for charge in debit.charges { _ = try append(charge, db) }
    }

    static func commitment(_ namespace: String, _ db: Database) throws -> Money {
        Money(
            units: try Int64.fetchOne(
                try db.cachedStatement(sql: "SELECT hourly_units FROM namespace_commitments WHERE namespace = ?"),
                arguments: [namespace]
            ) ?? 0
        )
    }

    /// Moves a namespace's hourly commitment by what changed between two versions of an
    /// instance (nil: not there).
    static func recommit(from previous: Instance?, to next: Instance?, _ db: Database) throws {
        guard let namespace = next?.namespace ?? previous?.namespace else { return }
        let delta = WalletRule.commitment(of: next).units - WalletRule.commitment(of: previous).units
        let gpus = (next?.placement?.gpuIndices.count ?? 0) - (previous?.placement?.gpuIndices.count ?? 0)
        guard delta != 0 || gpus != 0 else { return }
        try db.run(
            sql: """
                INSERT INTO namespace_commitments (namespace, hourly_units, gpus) VALUES (?, ?, ?)
                ON CONFLICT (namespace) DO UPDATE SET hourly_units = hourly_units + excluded.hourly_units,
                    gpus = gpus + excluded.gpus
                """,
            arguments: [namespace, delta, gpus]
        )
    }

    /// Moves the per-status instance counts (`/metrics`) by one write's change.
    static func recount(from previous: Instance?, to next: Instance?, _ db: Database) throws {
        guard previous?.status != next?.status else { return }
        for (status, delta) in [(previous?.status, -1), (next?.status, 1)] {
            guard let status else { continue }
            try db.run(
                sql: """
                    INSERT INTO status_counts (status, n) VALUES (?, ?)
                    ON CONFLICT (status) DO UPDATE SET n = n + excluded.n
                    """,
                arguments: [status.rawValue, delta]
            )
        }
    }

    // MARK: Quotas

    /// The namespace's own limits, or the defaults (none for an admin namespace).
    static func quota(_ namespace: String, defaults: Quota, _ db: Database) throws -> Quota {
        if let doc = try String.fetchOne(
            try db.cachedStatement(sql: "SELECT doc FROM quotas WHERE namespace = ?"),
            arguments: [namespace]
        ) {
            return try Documents.decode(Quota.self, doc)
        }
        let admin = try Bool.fetchOne(
            try db.cachedStatement(sql: "SELECT admin FROM users WHERE namespace = ?"),
            arguments: [namespace]
        )
        return admin == true ? .unlimited : defaults
    }

    /// What `namespace` uses of each limit; with `only`, just the limits `only` touches
    /// (the others read as 0), so a create reads two kept rows and counts nothing.
    static func quotaUsage(_ namespace: String, only: QuotaUsage? = nil, _ db: Database) throws -> QuotaUsage {
        let reads: [(WritableKeyPath<QuotaUsage, Int>, String)] = [
            (\.instances, "SELECT COALESCE(SUM(n), 0) FROM instance_counts WHERE namespace = ?"),
            (\.gpus, "SELECT gpus FROM namespace_commitments WHERE namespace = ?"),
            (\.tokens, "SELECT COUNT(*) FROM tokens WHERE namespace = ?"),
            // Saved images, and those asked for and not yet saved.
            (
                \.snapshots,
                """
                SELECT (SELECT COUNT(*) FROM images WHERE namespace = ?1) + (SELECT COUNT(*) FROM instances
                    WHERE namespace = ?1 AND json_extract(doc, '$.desired.snapshot') IS NOT NULL)
                """
            ),
        ]
        var usage = QuotaUsage()
        for (field, sql) in reads where only.map({ $0[keyPath: field] > 0 }) ?? true {
            usage[keyPath: field] = try Int.fetchOne(try db.cachedStatement(sql: sql), arguments: [namespace]) ?? 0
        }
        return usage
    }

    /// Refuses a write that would take `namespace` past its quota.
    static func checkQuota(_ namespace: String, adding: QuotaUsage, defaults: Quota, _ db: Database) throws {
        try QuotaRule.check(
            namespace: namespace,
            usage: try quotaUsage(namespace, only: adding, db),
            adding: adding,
            quota: try quota(namespace, defaults: defaults, db)
        )
    }

    /// An instance that is gone closes its order.
    static func closeOrder(of instance: Instance, _ db: Database) throws {
        guard
            let doc = try String.fetchOne(
                try db.cachedStatement(sql: "SELECT doc FROM orders WHERE id = ?"),
                arguments: [instance.cost.orderID]
            )
        else { return }
        var order = try Documents.decode(Order.self, doc)
        order.status = "closed"
        try db.run(
            sql: "UPDATE orders SET doc = ? WHERE id = ?",
            arguments: [try Documents.encode(order), order.id]
        )
    }

    static func syncAllocations(_ instance: Instance, _ db: Database) throws {
        try db.run(sql: "DELETE FROM gpu_allocations WHERE instance_name = ?", arguments: [instance.name])
        guard let placement = instance.placement else { return }
        for index in placement.gpuIndices {
            // The primary key (node, gpu_index) is the last line of defence against overselling.
            try db.run(
                sql: "INSERT INTO gpu_allocations (node, gpu_index, instance_name) VALUES (?, ?, ?)",
                arguments: [placement.node, index, instance.name]
            )
        }
    }

    static func usage(_ db: Database) throws -> [String: NodeUsage] {
        var usage: [String: NodeUsage] = [:]
        for row in try Row.fetchAll(try db.cachedStatement(sql: "SELECT node, gpu_index FROM gpu_allocations")) {
            let node: String = row["node"]
            usage[node, default: NodeUsage()].gpuIndices.insert(row["gpu_index"])
        }
        for row in try Row.fetchAll(
            try db.cachedStatement(
                sql: """
                    SELECT placed_node, SUM(cpu) AS cpu, SUM(memory) AS memory FROM instances
                    WHERE placed_node IS NOT NULL GROUP BY placed_node
                    """
            )
        ) {
            let node: String = row["placed_node"]
            usage[node, default: NodeUsage()].cpuCores = row["cpu"]
            usage[node, default: NodeUsage()].memoryGiB = row["memory"]
        }
        return usage
    }
}

extension Database {
    /// Runs one statement through GRDB's per-connection statement cache, so each SQL text
    /// is compiled (and checked by GRDB's authorizer) once per connection, not per call.
    func run(sql: String, arguments: StatementArguments = StatementArguments()) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }
}
