import Foundation
import LatticeDomain

/// One read that both stores make the same way, inside a write or outside one: a single
/// statement in the shared SQL (`StoreSQL`) and what its rows answer. Each dialect has one
/// way to run it (SQLite on GRDB's synchronous connection, PostgreSQL in its transaction,
/// one round trip either way), so the statement and its meaning are written once.
public struct StoreQuery<Value: Sendable>: Sendable {
    public var sql: StoreSQL
    public var answer: @Sendable ([SQLRow]) throws -> Value

    public init(_ sql: StoreSQL, answer: @escaping @Sendable ([SQLRow]) throws -> Value) {
        self.sql = sql
        self.answer = answer
    }

    /// The same read, its rows locked until the write commits (PostgreSQL's `FOR UPDATE`).
    public func forUpdate() -> StoreQuery<Value> { StoreQuery(sql.forUpdate(), answer: answer) }

    /// The same read, its rows kept from changing until the write commits (`FOR SHARE`).
    public func forShare() -> StoreQuery<Value> { StoreQuery(sql.forShare(), answer: answer) }
    public func forKeyShare() -> StoreQuery<Value> { StoreQuery(sql.forKeyShare(), answer: answer) }
}

/// The reads of money, quotas, reservations and the lease that every write path makes.
public enum StoreQueries {
    /// The balance kept on the user's row (moved by every ledger row as it is appended); for
    /// a namespace without a user row, credits minus charges summed over its ledger (a sum
    /// `COALESCE` reaches only when there is no kept balance).
    public static func balance(_ namespace: String) -> StoreQuery<Money> {
        StoreQuery(
            """
            SELECT COALESCE((SELECT balance_units FROM users WHERE namespace = \(namespace)),
                (SELECT CAST(COALESCE(SUM(
                    CASE WHEN kind IN ('credit', 'refund') THEN amount_units ELSE -amount_units END), 0) AS BIGINT)
                FROM ledger WHERE namespace = \(namespace)))
            """
        ) { rows in Money(units: Int64(try rows.first?.optionalInteger(0) ?? 0)) }
    }

    /// Credits minus charges summed over the ledger itself (the check on `balance`).
    public static func ledgerBalance(_ namespace: String) -> StoreQuery<Money> {
        StoreQuery(
            """
            SELECT CAST(COALESCE(SUM(
                CASE WHEN kind IN ('credit', 'refund') THEN amount_units ELSE -amount_units END), 0) AS BIGINT)
            FROM ledger WHERE namespace = \(namespace)
            """
        ) { rows in Money(units: Int64(try rows.first?.optionalInteger(0) ?? 0)) }
    }

    /// Whether a ledger row with this idempotency key exists (the charge was made before).
    public static func ledgerKeyExists(_ key: String) -> StoreQuery<Bool> {
        StoreQuery(Rows.ledgerKey(key)) { rows in !rows.isEmpty }
    }

    /// What the namespace's running pay-as-you-go instances cost an hour, kept as it changes.
    public static func commitment(_ namespace: String) -> StoreQuery<Money> {
        StoreQuery("SELECT hourly_units FROM namespace_commitments WHERE namespace = \(namespace)") { rows in
            Money(units: Int64(try rows.first?.optionalInteger(0) ?? 0))
        }
    }

    /// The namespace's own limits, or the defaults (none for an admin namespace).
    public static func quota(_ namespace: String, defaults: Quota) -> StoreQuery<Quota> {
        StoreQuery("SELECT \(quotaColumns(namespace))") { rows in try quota(rows.first, column: 0, defaults: defaults) }
    }

    /// The quota's two columns: the namespace's own limits, and whether it is an admin's.
    static func quotaColumns(_ namespace: String) -> StoreSQL {
        """
        (SELECT doc FROM quotas WHERE namespace = \(namespace)),
            (SELECT admin FROM users WHERE namespace = \(namespace))
        """
    }

    static func quota(_ row: SQLRow?, column: Int, defaults: Quota) throws -> Quota {
        if let doc = try row?.optionalText(column) { return try Documents.decode(Quota.self, doc) }
        let admin = try row?.optionalInteger(column + 1)
        return admin == 1 ? .unlimited : defaults
    }

    /// What `namespace` uses of each limit, in one statement; with `only`, just the limits
    /// `only` touches (the others read as 0), so a create reads two kept rows and counts
    /// nothing. `json` is the dialect's JSON path expression (`SQLDialect.jsonText`).
    public static func quotaUsage(
        _ namespace: String,
        only: QuotaUsage? = nil,
        json: (String, String, String) -> String
    ) -> StoreQuery<QuotaUsage> {
        StoreQuery("SELECT \(usageColumns(namespace, only: only, json: json))") { rows in try usage(rows.first) }
    }

    /// The four columns of `quotaUsage`: instances, GPUs, tokens and snapshots.
    static func usageColumns(
        _ namespace: String,
        only: QuotaUsage?,
        json: (String, String, String) -> String
    ) -> StoreSQL {
        let wants = { (field: KeyPath<QuotaUsage, Int>) in only.map { $0[keyPath: field] > 0 } ?? true }
        let zero: StoreSQL = "0"
        let instances: StoreSQL =
            wants(\.instances)
            ? "(SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM instance_counts WHERE namespace = \(namespace))" : zero
        let gpus: StoreSQL =
            wants(\.gpus)
            ? "COALESCE((SELECT gpus FROM namespace_commitments WHERE namespace = \(namespace)), 0)" : zero
        let tokens: StoreSQL =
            wants(\.tokens) ? "(SELECT COUNT(*) FROM tokens WHERE namespace = \(namespace))" : zero
        // Saved images, and those asked for and not yet saved.
        let snapshots: StoreSQL =
            wants(\.snapshots)
            ? """
            ((SELECT COUNT(*) FROM images WHERE namespace = \(namespace)) + (SELECT COUNT(*) FROM instances
                WHERE namespace = \(namespace) AND \(raw: json("doc", "desired", "snapshot")) IS NOT NULL))
            """ : zero
        return "\(instances), \(gpus), \(tokens), \(snapshots)"
    }

    static func usage(_ row: SQLRow?) throws -> QuotaUsage {
        guard let row else { return QuotaUsage() }
        return QuotaUsage(
            instances: try row.integer(0),
            gpus: try row.integer(1),
            tokens: try row.integer(2),
            snapshots: try row.integer(3)
        )
    }

    /// Refuses a write that would take `namespace` past its quota (`QuotaRule.check`), its
    /// use and its limits read in one statement.
    public static func quotaCheck(
        _ namespace: String,
        adding: QuotaUsage,
        defaults: Quota,
        json: (String, String, String) -> String
    ) -> StoreQuery<Void> {
        let columns = usageColumns(namespace, only: adding, json: json)
        return StoreQuery("SELECT \(columns), \(quotaColumns(namespace))") { rows in
            try QuotaRule.check(
                namespace: namespace,
                usage: try usage(rows.first),
                adding: adding,
                quota: try quota(rows.first, column: 4, defaults: defaults)
            )
        }
    }

    /// GPU, CPU and memory reservations per node (of `nodes`, or of all), in one statement:
    /// one row per reserved GPU, then one per node with its CPU and memory totals.
    public static func nodeUsage(nodes: [String]? = nil) -> StoreQuery<[String: NodeUsage]> {
        let allocated: StoreSQL = nodes.map { "WHERE node IN (\(list: $0))" } ?? ""
        let placed: StoreSQL = nodes.map { "WHERE placed_node IN (\(list: $0))" } ?? "WHERE placed_node IS NOT NULL"
        return StoreQuery(
            """
            SELECT node, gpu_index, NULL, NULL FROM gpu_allocations \(allocated)
            UNION ALL
            SELECT placed_node, NULL, CAST(SUM(cpu) AS BIGINT), CAST(SUM(memory) AS BIGINT) FROM instances \(placed)
            GROUP BY placed_node
            """
        ) { rows in
            var usage: [String: NodeUsage] = [:]
            for row in rows {
                let node = try row.text(0)
                if let index = try row.optionalInteger(1) {
                    usage[node, default: NodeUsage()].gpuIndices.insert(index)
                } else {
                    usage[node, default: NodeUsage()].cpuCores = try row.optionalInteger(2) ?? 0
                    usage[node, default: NodeUsage()].memoryGiB = try row.optionalInteger(3) ?? 0
                }
            }
            return usage
        }
    }

    /// The leader lease (`LeaseStore`), if any replica ever held it.
    public static let lease = StoreQuery(Rows.leaseRead) { rows in try Rows.lease(rows) }

    /// An instance's record by name (`forUpdate()` inside a write that changes it).
    public static func instance(_ name: String, _ documents: InstanceDocuments) -> StoreQuery<Instance?> {
        StoreQuery("SELECT doc FROM instances WHERE name = \(name)") { rows in
            try rows.first.map { try documents.decode(try $0.text(0)) }
        }
    }

    /// The statement that keeps a keyed request's outcome under its key (`IdempotencyScope`),
    /// run in the transaction of the write it answers.
    public static func record(_ pending: (scope: IdempotencyScope, outcome: Idempotency.Outcome)?) -> StoreSQL? {
        guard let (scope, outcome) = pending else { return nil }
        if case .answer(let status, let body) = outcome {
            return """
                UPDATE idempotency_keys SET status = \(status), body = \(body)
                WHERE namespace = \(scope.namespace) AND key = \(scope.key)
                """
        }
        return """
            UPDATE idempotency_keys SET outcome = \(outcome.reference)
            WHERE namespace = \(scope.namespace) AND key = \(scope.key)
            """
    }
}

extension SQLDialect {
    /// Runs one shared query outside any write.
    public func fetch<Value>(_ query: StoreQuery<Value>) async throws -> Value {
        try query.answer(try await self.query(query.sql))
    }

    /// An instance's record by name, decoded as this store keeps it.
    public func instanceQuery(_ name: String) -> StoreQuery<Instance?> { StoreQueries.instance(name, documents) }

    /// What `namespace` uses of each limit (of those `only` touches, if given).
    public func quotaUsageQuery(_ namespace: String, only: QuotaUsage? = nil) -> StoreQuery<QuotaUsage> {
        StoreQueries.quotaUsage(namespace, only: only) { jsonText($0, $1, $2) }
    }

    /// Refuses a write that would take `namespace` past its quota or the defaults.
    public func quotaCheck(_ namespace: String, adding: QuotaUsage) -> StoreQuery<Void> {
        StoreQueries.quotaCheck(namespace, adding: adding, defaults: defaultQuota) { jsonText($0, $1, $2) }
    }

    /// The namespace's own limits, or the defaults.
    public func quotaQuery(_ namespace: String) -> StoreQuery<Quota> {
        StoreQueries.quota(namespace, defaults: defaultQuota)
    }
}

extension QuotaStore where Self: SQLDialect {
    public func quotaUsage(namespace: String) async throws -> QuotaUsage {
        try await fetch(quotaUsageQuery(namespace))
    }
}

extension InstanceStore where Self: SQLDialect {
    public func nodeUsage() async throws -> [String: NodeUsage] {
        try await fetch(StoreQueries.nodeUsage())
    }
}
