import Foundation
import LatticeDomain

// Users, tokens, quotas, the ledger's reads and appends, the leader lease and health,
// written once over the store's dialect.

/// The statements and reads of records more than one role writes.
enum Rows {
    static let tokenColumns = "id, namespace, name, secret_hash, created_at, expires_at, last_used_at"

    static func token(_ row: SQLRow) throws -> TokenRecord {
        TokenRecord(
            id: try row.text(0),
            namespace: try row.text(1),
            name: try row.text(2),
            secretHash: try row.text(3),
            createdAt: try row.date(4),
            expiresAt: try row.date(5),
            lastUsedAt: try row.optionalDate(6)
        )
    }

    static func insert(_ token: TokenRecord) -> StoreSQL {
        """
        INSERT INTO tokens (id, namespace, name, secret_hash, created_at, expires_at, last_used_at)
        VALUES (\(token.id), \(token.namespace), \(token.name), \(token.secretHash), \(token.createdAt),
            \(token.expiresAt), \(token.lastUsedAt))
        """
    }

    static func insert(_ user: User) -> StoreSQL {
        """
        INSERT INTO users (namespace, admin, created_at)
        VALUES (\(user.namespace), \(user.isAdmin), \(user.createdAt))
        """
    }

    /// Appends a ledger row and moves the balance kept on the user's row; the caller has
    /// read that the row's idempotency key is not in the ledger yet, under the wallet lock.
    static func append(_ entry: LedgerEntry) throws -> [StoreSQL] {
        let doc = try Documents.encode(entry)
        let delta = entry.signedUnits
        return [
            """
            INSERT INTO ledger (id, namespace, kind, amount_units, idempotency_key, created_at, doc)
            VALUES (\(entry.id), \(entry.namespace), \(entry.kind.rawValue), \(entry.amount.units),
                \(entry.idempotencyKey), \(entry.createdAt), \(doc))
            """,
            "UPDATE users SET balance_units = balance_units + \(delta) WHERE namespace = \(entry.namespace)",
        ]
    }

    static func ledgerKey(_ key: String) -> StoreSQL { "SELECT 1 FROM ledger WHERE idempotency_key = \(key)" }

    /// What the namespace's quota reads: its own limits, and whether it is an admin's.
    static func quotaReads(_ namespace: String) -> [StoreSQL] {
        [
            "SELECT doc FROM quotas WHERE namespace = \(namespace)",
            "SELECT admin FROM users WHERE namespace = \(namespace)",
        ]
    }

    static func quota(doc: [SQLRow], admin: [SQLRow], defaults: Quota) throws -> Quota {
        if let doc = try doc.first?.text(0) { return try Documents.decode(Quota.self, doc) }
        return try admin.first?.bool(0) == true ? .unlimited : defaults
    }

    static let leaseRead: StoreSQL = "SELECT holder, epoch, expires_at FROM leader_lease WHERE name = 'leader'"

    static func lease(_ rows: [SQLRow]) throws -> LeaderLease? {
        try rows.first.map {
            LeaderLease(holder: try $0.text(0), epoch: Int64(try $0.integer(1)), expiresAt: try $0.date(2))
        }
    }

    static func write(_ lease: LeaderLease) -> StoreSQL {
        """
        INSERT INTO leader_lease (name, holder, epoch, expires_at)
        VALUES ('leader', \(lease.holder), \(lease.epoch), \(lease.expiresAt))
        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch,
            expires_at = excluded.expires_at
        """
    }

    /// One claim or release at a time over all replicas (the row may not exist yet to lock).
    static let leaseLock = "leader-lease"
}

extension AccountStore where Self: SQLDialect {
    public func bootstrap(admin: User, token: TokenRecord) async throws -> Bool {
        // Two replicas starting on an empty database: one creates the admin.
        try await transact(locks: ["bootstrap"], reads: ["SELECT COUNT(*) FROM users"]) { rows in
            guard try rows[0].first?.integer(0) == 0 else { return SQLDecision(result: false) }
            return SQLDecision(writes: [Rows.insert(admin), Rows.insert(token)], result: true)
        }
    }

    public func createUser(_ user: User, token: TokenRecord, openingCredit: LedgerEntry?) async throws {
        try await transact(
            locks: [StoreLock.wallet(user.namespace)],
            reads: [
                "SELECT 1 FROM users WHERE namespace = \(user.namespace)",
                Rows.ledgerKey(openingCredit?.idempotencyKey ?? ""),
            ]
        ) { rows in
            guard rows[0].isEmpty else {
                throw LatticeError(.conflict, code: "AlreadyExists", "namespace '\(user.namespace)' already exists")
            }
            var writes = [Rows.insert(user), Rows.insert(token)]
            if let openingCredit, rows[1].isEmpty { writes += try Rows.append(openingCredit) }
            return SQLDecision(writes: writes)
        }
    }

    public func user(namespace: String) async throws -> User? {
        try await query("SELECT namespace, admin, created_at FROM users WHERE namespace = \(namespace)").first.map {
            User(namespace: try $0.text(0), isAdmin: try $0.bool(1), createdAt: try $0.date(2))
        }
    }

    public func userSummaries(page: PageRequest) async throws -> (items: [UserSummary], total: Int) {
        let total = try await query("SELECT COUNT(*) FROM users").first?.integer(0) ?? 0
        let rows = try await query(
            """
            SELECT u.namespace, u.admin, u.created_at, u.balance_units,
                CAST(COALESCE((SELECT SUM(c.n) FROM instance_counts c WHERE c.namespace = u.namespace), 0)
                    AS BIGINT),
                CAST(COALESCE((SELECT m.gpus FROM namespace_commitments m WHERE m.namespace = u.namespace), 0)
                    AS BIGINT)
            FROM users u ORDER BY u.namespace LIMIT \(page.pageSize) OFFSET \(page.offset)
            """
        )
        let items = try rows.map {
            UserSummary(
                user: User(namespace: try $0.text(0), isAdmin: try $0.bool(1), createdAt: try $0.date(2)),
                balance: Money(units: Int64(try $0.integer(3))),
                instances: try $0.integer(4),
                gpusInUse: try $0.integer(5)
            )
        }
        return (items, total)
    }

    public func createToken(_ token: TokenRecord) async throws {
        let namespace = token.namespace
        try await transact(
            locks: [StoreLock.wallet(namespace)],
            reads: ["SELECT COUNT(*) FROM tokens WHERE namespace = \(namespace)"] + Rows.quotaReads(namespace)
        ) { [defaultQuota] rows in
            try QuotaRule.check(
                namespace: namespace,
                usage: QuotaUsage(tokens: try rows[0].first?.integer(0) ?? 0),
                adding: QuotaUsage(tokens: 1),
                quota: try Rows.quota(doc: rows[1], admin: rows[2], defaults: defaultQuota)
            )
            return SQLDecision(writes: [Rows.insert(token)])
        }
    }

    public func tokens(namespace: String) async throws -> [TokenRecord] {
        try await query(
            "SELECT \(raw: Rows.tokenColumns) FROM tokens WHERE namespace = \(namespace) ORDER BY created_at, id"
        ).map(Rows.token)
    }

    public func token(secretHash: String) async throws -> TokenRecord? {
        try await query("SELECT \(raw: Rows.tokenColumns) FROM tokens WHERE secret_hash = \(secretHash)").first.map(
            Rows.token
        )
    }

    public func replaceTokenSecret(id: String, namespace: String, secretHash: String) async throws -> TokenRecord {
        try await transact(
            locks: [],
            reads: [
                StoreSQL("SELECT \(raw: Rows.tokenColumns) FROM tokens WHERE id = \(id) AND namespace = \(namespace)")
                    .forUpdate()
            ]
        ) { rows in
            guard var token = try rows[0].first.map(Rows.token) else { throw LatticeError.notFound("token '\(id)'") }
            token.secretHash = secretHash
            token.lastUsedAt = nil
            return SQLDecision(
                writes: ["UPDATE tokens SET secret_hash = \(secretHash), last_used_at = NULL WHERE id = \(id)"],
                notices: [.token(id)],
                result: token
            )
        }
    }

    public func deleteToken(id: String, namespace: String) async throws {
        try await transact(
            locks: [],
            reads: [StoreSQL("SELECT id FROM tokens WHERE id = \(id) AND namespace = \(namespace)").forUpdate()]
        ) { rows in
            guard !rows[0].isEmpty else { throw LatticeError.notFound("token '\(id)'") }
            return SQLDecision(writes: ["DELETE FROM tokens WHERE id = \(id)"], notices: [.token(id)])
        }
    }

    public func touchToken(id: String, at: Date) async throws {
        try await execute(["UPDATE tokens SET last_used_at = \(at) WHERE id = \(id)"])
    }
}

extension QuotaStore where Self: SQLDialect {
    public func quota(namespace: String) async throws -> Quota {
        try await fetch(quotaQuery(namespace))
    }

    public func setQuota(namespace: String, _ quota: Quota) async throws {
        let doc = try Documents.encode(quota)
        try await execute([
            """
            INSERT INTO quotas (namespace, doc) VALUES (\(namespace), \(doc))
            ON CONFLICT (namespace) DO UPDATE SET doc = excluded.doc
            """
        ])
    }
}

extension LedgerStore where Self: SQLDialect {
    public func orders(namespace: String, page: PageRequest) async throws -> (items: [Order], total: Int) {
        let total = try await query("SELECT COUNT(*) FROM orders WHERE namespace = \(namespace)").first?.integer(0)
        let docs = try await query(
            """
            SELECT doc FROM orders WHERE namespace = \(namespace)
            ORDER BY created_at DESC, id LIMIT \(page.pageSize) OFFSET \(page.offset)
            """
        )
        return (try docs.map { try Documents.decode(Order.self, try $0.text(0)) }, total ?? 0)
    }

    public func appendLedger(_ entry: LedgerEntry) async throws -> Bool {
        try await transact(locks: [StoreLock.wallet(entry.namespace)], reads: [Rows.ledgerKey(entry.idempotencyKey)]) {
            guard $0[0].isEmpty else { return SQLDecision(result: false) }
            return SQLDecision(writes: try Rows.append(entry), result: true)
        }
    }

    public func debit(_ entry: LedgerEntry) async throws {
        try await transact(
            locks: [StoreLock.wallet(entry.namespace)],
            reads: [
                Rows.ledgerKey(entry.idempotencyKey),
                "SELECT balance_units FROM users WHERE namespace = \(entry.namespace)",
            ]
        ) { rows in
            guard rows[0].isEmpty else { return SQLDecision() }
            let balance = Money(units: Int64(try rows[1].first?.integer(0) ?? 0))
            guard entry.amount <= balance else {
                throw LatticeError(
                    .unprocessable,
                    code: "InsufficientBalance",
                    "amount: \(entry.amount) is more than the wallet holds (\(balance)); nothing was taken"
                )
            }
            return SQLDecision(writes: try Rows.append(entry))
        }
    }

    public func ledger(namespace: String, from: Date, to: Date) async throws -> (entries: [LedgerEntry], opening: Money)
    {
        let opening = try await query(
            """
            SELECT CAST(COALESCE(SUM(
                CASE WHEN kind IN ('credit', 'refund') THEN amount_units ELSE -amount_units END), 0) AS BIGINT)
            FROM ledger WHERE namespace = \(namespace) AND created_at < \(from)
            """
        )
        let docs = try await query(
            """
            SELECT doc FROM ledger WHERE namespace = \(namespace) AND created_at >= \(from) AND created_at < \(to)
            ORDER BY seq
            """
        )
        return (
            try docs.map { try Documents.decode(LedgerEntry.self, try $0.text(0)) },
            Money(units: Int64(try opening.first?.integer(0) ?? 0))
        )
    }

    public func ledger(
        namespace: String,
        kinds: Set<LedgerEntry.Kind>,
        page: PageRequest
    ) async throws -> (items: [LedgerEntry], total: Int) {
        let kinds = kinds.map(\.rawValue).sorted()
        let total = try await query(
            "SELECT COUNT(*) FROM ledger WHERE namespace = \(namespace) AND kind IN (\(list: kinds))"
        ).first?.integer(0)
        let docs = try await query(
            """
            SELECT doc FROM ledger WHERE namespace = \(namespace) AND kind IN (\(list: kinds))
            ORDER BY seq DESC LIMIT \(page.pageSize) OFFSET \(page.offset)
            """
        )
        return (try docs.map { try Documents.decode(LedgerEntry.self, try $0.text(0)) }, total ?? 0)
    }

    /// The balance kept on the user's row (moved by every ledger row as it is appended);
    /// for a namespace without a user row, credits minus charges summed over its ledger.
    public func balance(namespace: String) async throws -> Money {
        try await fetch(StoreQueries.balance(namespace))
    }

    public func depletedSince(namespace: String) async throws -> Date? {
        try await query("SELECT depleted_since FROM users WHERE namespace = \(namespace)").first?.optionalDate(0)
    }
}

extension LeaseStore where Self: SQLDialect {
    public func claimLease(holder: String, now: Date, ttl: TimeInterval) async throws -> LeaderLease? {
        try await transact(locks: [Rows.leaseLock], reads: [Rows.leaseRead]) { rows in
            let current = try Rows.lease(rows[0])
            guard let next = LeaseRule.claim(current, by: holder, at: now, ttl: ttl) else {
                return SQLDecision(result: current)
            }
            // A takeover waits for the fenced writes in flight (each holds the row FOR KEY
            // SHARE until it commits); a renewal, which keeps the epoch, waits for none of them.
            let takesOver = current.map { $0.epoch != next.epoch } ?? false
            return SQLDecision(
                writes: (takesOver ? [Rows.leaseRead.forUpdate()] : []) + [Rows.write(next)],
                result: next
            )
        }
    }

    public func releaseLease(holder: String, now: Date) async throws {
        try await transact(locks: [Rows.leaseLock], reads: [Rows.leaseRead]) { rows in
            guard let current = try Rows.lease(rows[0]), let next = LeaseRule.release(current, by: holder, at: now)
            else { return SQLDecision() }
            return SQLDecision(writes: [Rows.write(next)], notices: [.leaseReleased])
        }
    }

    public func leaderLease() async throws -> LeaderLease? {
        try Rows.lease(try await query(Rows.leaseRead))
    }
}

extension StoreHealth where Self: SQLDialect {
    public func ping() async throws { _ = try await query("SELECT 1") }
}

extension IdempotencyStore where Self: SQLDialect {
    public func claimIdempotencyKey(
        namespace: String,
        key: String,
        requestHash: String,
        now: Date
    ) async throws -> Idempotency.Decision {
        // One call per key at a time on every replica (a new key has no row to lock yet),
        // so two concurrent calls with one key cannot both claim it.
        try await transact(
            locks: ["idempotency/\(namespace)/\(key)"],
            reads: [
                """
                SELECT request_hash, created_at, status, body, outcome FROM idempotency_keys
                WHERE namespace = \(namespace) AND key = \(key)
                """
            ]
        ) { rows in
            let existing = try rows[0].first.map {
                Idempotency.Record(
                    requestHash: try $0.text(0),
                    createdAt: try $0.date(1),
                    status: try $0.optionalInteger(2),
                    body: try $0.optionalBlob(3),
                    outcome: try $0.optionalText(4)
                )
            }
            let decision = Idempotency.decide(existing: existing, requestHash: requestHash, now: now)
            guard decision == .claim else { return SQLDecision(result: decision) }
            let expired = now.addingTimeInterval(-Idempotency.window)
            return SQLDecision(
                writes: [
                    // Keys older than the window go, a few at a time, with the writes that add keys.
                    """
                    DELETE FROM idempotency_keys WHERE (namespace, key) IN
                        (SELECT namespace, key FROM idempotency_keys WHERE created_at < \(expired) LIMIT 100)
                    """,
                    """
                    INSERT INTO idempotency_keys (namespace, key, request_hash, created_at)
                    VALUES (\(namespace), \(key), \(requestHash), \(now))
                    ON CONFLICT (namespace, key) DO UPDATE SET request_hash = excluded.request_hash,
                        created_at = excluded.created_at, status = NULL, body = NULL, outcome = NULL
                    """,
                    // A namespace keeps its newest keys only (`Idempotency.keysPerNamespace`).
                    """
                    DELETE FROM idempotency_keys WHERE (namespace, key) IN
                        (SELECT namespace, key FROM idempotency_keys WHERE namespace = \(namespace)
                        ORDER BY created_at DESC LIMIT 1000000000 OFFSET \(Idempotency.keysPerNamespace))
                    """,
                ],
                result: decision
            )
        }
    }

    public func completeIdempotencyKey(namespace: String, key: String, status: Int, body: Data) async throws {
        try await execute([
            """
            UPDATE idempotency_keys SET status = \(status), body = \(body)
            WHERE namespace = \(namespace) AND key = \(key)
            """
        ])
    }

    public func releaseIdempotencyKey(namespace: String, key: String) async throws {
        try await execute([
            """
            DELETE FROM idempotency_keys
            WHERE namespace = \(namespace) AND key = \(key) AND status IS NULL AND outcome IS NULL
            """
        ])
    }
}
