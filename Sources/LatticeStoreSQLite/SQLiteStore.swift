import Foundation
import GRDB
import LatticeDomain
import LatticeStore

/// The embedded store: SQLite through GRDB, in WAL mode. GRDB serialises writes, so a
/// write transaction sees every committed reservation and no two can oversell a node.
public final class SQLiteStore: Store {
    let writer: any DatabaseWriter
    /// Free capacity and SSH ports in memory, guarded by the rows (see `PlacementCache`).
    let placement = PlacementCache()
    /// Each committed write's changes, to whoever follows them (`changes()`).
    let feed = ChangeBroadcast()
    /// The meter's schedule, so a new segment is written with the time it first falls due.
    let schedule: MeterSchedule
    /// The limits of a namespace an admin has not given its own (the admin namespace has none).
    public let defaultQuota: Quota
    public let fence = LeaderFence()
    /// Instance rows, with their secrets sealed when the store has a key.
    public let documents: InstanceDocuments

    /// Opens (creating if needed) the database file and migrates it.
    /// - Parameters:
    ///   - schedule: when new meter segments first fall due.
    ///   - seal: the key instance secrets are sealed with (nil: kept as they are).
    public init(
        path: String,
        schedule: MeterSchedule = MeterSchedule(),
        defaultQuota: Quota = .unlimited,
        seal: SecretSeal? = nil
    ) throws {
        self.schedule = schedule
        self.defaultQuota = defaultQuota
        documents = InstanceDocuments(seal: seal)
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // NORMAL is durable against process crashes (kill -9) in WAL mode; only a
            // power loss can drop the last transactions.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        configuration.busyMode = .timeout(10)
        writer = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(writer)
        // One process serves a SQLite file: a key claimed and neither answered nor recorded
        // belonged to a process that is gone (killed mid-request), and its work never committed.
        try writer.write { db in
            try db.execute(sql: "DELETE FROM idempotency_keys WHERE status IS NULL AND outcome IS NULL")
        }
        if let seal { try sealClearSecrets(seal) }
    }

    /// An in-memory database, for tests.
    public init(
        schedule: MeterSchedule = MeterSchedule(),
        defaultQuota: Quota = .unlimited,
        seal: SecretSeal? = nil
    ) throws {
        self.schedule = schedule
        self.defaultQuota = defaultQuota
        documents = InstanceDocuments(seal: seal)
        writer = try DatabaseQueue()
        try Self.migrator.migrate(writer)
        if let seal { try sealClearSecrets(seal) }
    }

    /// Checks that the database's sealed secrets are sealed with `seal` (recording its key
    /// on first use), then seals every secret a row still holds in the clear (rows from
    /// before sealing, or from `lattice db copy`).
    private func sealClearSecrets(_ seal: SecretSeal) throws {
        try writer.write { db in
            if let recorded = try String.fetchOne(db, sql: "SELECT key_id FROM seal_key WHERE id = 1") {
                guard recorded == seal.keyID else { throw SealError.wrongKey(sealedWith: recorded, have: seal.keyID) }
            } else {
                try db.execute(sql: "INSERT INTO seal_key (id, key_id) VALUES (1, ?)", arguments: [seal.keyID])
            }
            // Only rows from before sealing are decoded: a start reads no sealed record.
            for row in try Row.fetchAll(
                db,
                sql: "SELECT name, doc FROM instances WHERE doc NOT LIKE ?",
                arguments: [SecretSeal.sealedRowPattern]
            ) {
                let doc: String = row["doc"]
                let instance = try Documents.decode(Instance.self, doc)
                guard SecretSeal.holdsClearSecrets(instance) else { continue }
                try db.execute(
                    sql: "UPDATE instances SET doc = ? WHERE name = ?",
                    arguments: [try Documents.encode(try seal.sealing(instance)), row["name"] as String]
                )
            }
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE users (
                        namespace TEXT PRIMARY KEY,
                        admin INTEGER NOT NULL,
                        created_at REAL NOT NULL
                    );
                    CREATE TABLE tokens (
                        id TEXT PRIMARY KEY,
                        namespace TEXT NOT NULL REFERENCES users(namespace),
                        name TEXT NOT NULL,
                        secret_hash TEXT NOT NULL UNIQUE,
                        created_at REAL NOT NULL,
                        expires_at REAL NOT NULL,
                        last_used_at REAL
                    );
                    CREATE INDEX tokens_namespace ON tokens(namespace);
                    CREATE TABLE instances (
                        name TEXT PRIMARY KEY,
                        namespace TEXT NOT NULL,
                        cluster TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        generation INTEGER NOT NULL,
                        ssh_port INTEGER NOT NULL UNIQUE,
                        placed_node TEXT,
                        cpu INTEGER NOT NULL,
                        memory INTEGER NOT NULL,
                        doc TEXT NOT NULL
                    );
                    CREATE INDEX instances_namespace ON instances(namespace, created_at);
                    CREATE TABLE gpu_allocations (
                        node TEXT NOT NULL,
                        gpu_index INTEGER NOT NULL,
                        instance_name TEXT NOT NULL REFERENCES instances(name),
                        PRIMARY KEY (node, gpu_index)
                    );
                    CREATE INDEX gpu_allocations_instance ON gpu_allocations(instance_name);
                    CREATE TABLE images (
                        namespace TEXT NOT NULL,
                        reference TEXT NOT NULL,
                        doc TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        PRIMARY KEY (namespace, reference)
                    );
                    CREATE TABLE orders (
                        id TEXT PRIMARY KEY,
                        namespace TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        doc TEXT NOT NULL
                    );
                    CREATE INDEX orders_namespace ON orders(namespace, created_at);
                    CREATE TABLE ledger (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        namespace TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        amount_units INTEGER NOT NULL,
                        idempotency_key TEXT NOT NULL UNIQUE,
                        created_at REAL NOT NULL,
                        doc TEXT NOT NULL
                    );
                    CREATE INDEX ledger_namespace ON ledger(namespace, seq);
                    """
            )
        }
        migrator.registerMigration("v2-metering") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meter_segments (
                        id TEXT PRIMARY KEY,
                        instance_name TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        settled INTEGER NOT NULL DEFAULT 0,
                        open INTEGER NOT NULL,
                        doc TEXT NOT NULL
                    );
                    CREATE INDEX meter_segments_unsettled ON meter_segments(settled, instance_name);
                    CREATE TABLE coupons (
                        id TEXT PRIMARY KEY,
                        doc TEXT NOT NULL
                    );
                    """
            )
        }
        migrator.registerMigration("v3-wallet-depletion") { db in
            // When the meter first saw the wallet empty while pay-as-you-go instances ran:
            // the grace period counts from here, across restarts.
            try db.execute(sql: "ALTER TABLE users ADD COLUMN depleted_since REAL")
        }
        migrator.registerMigration("v4-instance-columns") { db in
            // What lists filter and sort on and what the resync reads, as columns, so
            // neither decodes a record it does not return.
            try db.execute(
                sql: """
                    ALTER TABLE instances ADD COLUMN status TEXT NOT NULL DEFAULT '';
                    ALTER TABLE instances ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
                    UPDATE instances SET status = json_extract(doc, '$.status'),
                        deleted = COALESCE(json_extract(doc, '$.desired.deleted'), 0);
                    CREATE INDEX instances_namespace_cluster ON instances(namespace, cluster, created_at, name);
                    CREATE INDEX ledger_namespace_kind ON ledger(namespace, kind, seq);
                    """
            )
        }
        migrator.registerMigration("v5-due-work") { db in
            // The meter reads what is due, not everything: segments by the time they are
            // next due, instances by term end and stop time, and each wallet's balance kept
            // with the ledger rows that change it.
            try db.execute(
                sql: """
                    ALTER TABLE meter_segments ADD COLUMN next_due REAL NOT NULL DEFAULT 0;
                    CREATE INDEX meter_segments_due ON meter_segments(settled, next_due);
                    ALTER TABLE instances ADD COLUMN schedule_stop REAL;
                    ALTER TABLE instances ADD COLUMN stopped_at REAL;
                    ALTER TABLE instances ADD COLUMN payg INTEGER NOT NULL DEFAULT 0;
                    UPDATE instances SET schedule_stop = json_extract(doc, '$.scheduleStopAt'),
                        stopped_at = json_extract(doc, '$.stoppedAt'),
                        payg = (json_extract(doc, '$.cost.costType') = 1);
                    CREATE INDEX instances_schedule_stop ON instances(schedule_stop) WHERE schedule_stop IS NOT NULL;
                    CREATE INDEX instances_stopped_at ON instances(stopped_at) WHERE stopped_at IS NOT NULL;
                    CREATE INDEX instances_payg_holders ON instances(namespace)
                        WHERE payg = 1 AND status IN ('Creating', 'Starting', 'Running', 'Stopping', 'Saving');
                    ALTER TABLE users ADD COLUMN balance_units INTEGER NOT NULL DEFAULT 0;
                    UPDATE users SET balance_units = COALESCE((
                        SELECT SUM(CASE WHEN kind = 'credit' THEN amount_units ELSE -amount_units END)
                        FROM ledger WHERE ledger.namespace = users.namespace), 0);
                    """
            )
        }
        migrator.registerMigration("v6-instance-counts") { db in
            // A list's totalCount, kept with the creates and purges that change it.
            try db.execute(
                sql: """
                    CREATE TABLE instance_counts (
                        namespace TEXT NOT NULL,
                        cluster TEXT NOT NULL,
                        n INTEGER NOT NULL,
                        PRIMARY KEY (namespace, cluster)
                    );
                    INSERT INTO instance_counts (namespace, cluster, n)
                        SELECT namespace, cluster, COUNT(*) FROM instances GROUP BY namespace, cluster;
                    """
            )
        }
        migrator.registerMigration("v7-commitments") { db in
            // Each namespace's hourly pay-as-you-go commitment, kept with the writes that
            // change it, so the wallet check at create and power_on reads one row.
            try db.execute(
                sql: """
                    CREATE TABLE namespace_commitments (
                        namespace TEXT PRIMARY KEY,
                        hourly_units INTEGER NOT NULL
                    )
                    """
            )
            var totals: [String: Int64] = [:]
            for doc in try String.fetchAll(db, sql: "SELECT doc FROM instances WHERE placed_node IS NOT NULL") {
                let instance = try Documents.decode(Instance.self, doc)
                totals[instance.namespace, default: 0] += WalletRule.commitment(of: instance).units
            }
            for (namespace, units) in totals {
                try db.execute(
                    sql: "INSERT INTO namespace_commitments (namespace, hourly_units) VALUES (?, ?)",
                    arguments: [namespace, units]
                )
            }
        }
        migrator.registerMigration("v8-ports-released-while-stopped") { db in
            // A Stopped or Failed instance gives its SSH port back (NULL), so the column's
            // uniqueness becomes a partial index. SQLite cannot drop a column constraint, so
            // the table is rebuilt with its own definition and indexes.
            let table = try String.fetchOne(
                db,
                sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'instances'"
            )!
            let indexes = try String.fetchAll(
                db,
                sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'instances' AND sql IS NOT NULL"
            )
            let rebuilt = table.replacingOccurrences(of: "ssh_port INTEGER NOT NULL UNIQUE", with: "ssh_port INTEGER")
                .replacingOccurrences(of: "CREATE TABLE instances", with: "CREATE TABLE instances_v8")
            try db.execute(sql: rebuilt)
            try db.execute(sql: "INSERT INTO instances_v8 SELECT * FROM instances")
            try db.execute(sql: "DROP TABLE instances")
            try db.execute(sql: "ALTER TABLE instances_v8 RENAME TO instances")
            for index in indexes { try db.execute(sql: index) }
            try db.execute(
                sql: "CREATE UNIQUE INDEX instances_ssh_port ON instances(ssh_port) WHERE ssh_port IS NOT NULL"
            )
            try db.execute(
                sql: """
                    UPDATE instances SET ssh_port = NULL
                    WHERE json_extract(doc, '$.status') IN ('Stopped', 'Failed') AND placed_node IS NULL
                    """
            )
            try db.execute(
                sql: """
                    UPDATE instances SET doc = json_set(doc, '$.access.sshPort', 0) WHERE ssh_port IS NULL
                    """
            )
        }
        migrator.registerMigration("v9-quotas") { db in
            // Limits an admin set per namespace, and the GPUs each namespace holds, kept
            // with the writes that change them like its hourly commitment.
            try db.execute(
                sql: """
                    CREATE TABLE quotas (namespace TEXT PRIMARY KEY, doc TEXT NOT NULL);
                    ALTER TABLE namespace_commitments ADD COLUMN gpus INTEGER NOT NULL DEFAULT 0;
                    """
            )
            var held: [String: Int] = [:]
            for doc in try String.fetchAll(db, sql: "SELECT doc FROM instances WHERE placed_node IS NOT NULL") {
                let instance = try Documents.decode(Instance.self, doc)
                held[instance.namespace, default: 0] += instance.placement?.gpuIndices.count ?? 0
            }
            for (namespace, gpus) in held {
                try db.execute(
                    sql: """
                        INSERT INTO namespace_commitments (namespace, hourly_units, gpus) VALUES (?, 0, ?)
                        ON CONFLICT (namespace) DO UPDATE SET gpus = excluded.gpus
                        """,
                    arguments: [namespace, gpus]
                )
            }
        }
        migrator.registerMigration("v10-idempotency-keys") { db in
            try db.execute(
                sql: """
                    CREATE TABLE idempotency_keys (
                        namespace TEXT NOT NULL,
                        key TEXT NOT NULL,
                        request_hash TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        status INTEGER,
                        body BLOB,
                        PRIMARY KEY (namespace, key)
                    );
                    CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
                    """
            )
        }
        migrator.registerMigration("v11-status-counts") { db in
            // `/metrics`' gauge of instances by status, kept with the writes that change it.
            try db.execute(
                sql: """
                    CREATE TABLE status_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL);
                    INSERT INTO status_counts (status, n) SELECT status, COUNT(*) FROM instances GROUP BY status;
                    """
            )
        }
        migrator.registerMigration("v12-leader-lease") { db in
            // Who runs the reconciler and the meter (one row; see `LeaseRule`).
            try db.execute(
                sql: """
                    CREATE TABLE leader_lease (
                        name TEXT PRIMARY KEY,
                        holder TEXT NOT NULL,
                        epoch INTEGER NOT NULL,
                        expires_at REAL NOT NULL
                    )
                    """
            )
        }
        migrator.registerMigration("v13-console-sessions") { db in
            // Console sessions in the store, so a restart signs nobody out.
            try db.execute(
                sql: """
                    CREATE TABLE console_sessions (
                        id_hash TEXT PRIMARY KEY,
                        namespace TEXT NOT NULL,
                        token_id TEXT NOT NULL,
                        token_hash TEXT NOT NULL,
                        admin INTEGER NOT NULL,
                        expires_at REAL NOT NULL,
                        csrf TEXT NOT NULL,
                        revealed BLOB
                    );
                    CREATE INDEX console_sessions_expiry ON console_sessions(expires_at);
                    CREATE INDEX console_sessions_namespace ON console_sessions(namespace, expires_at);
                    """
            )
        }
        migrator.registerMigration("v14-ssh-keys") { db in
            // Public keys the SSH gateway lets into a namespace's instances.
            try db.execute(
                sql: """
                    CREATE TABLE ssh_keys (
                        id TEXT PRIMARY KEY,
                        namespace TEXT NOT NULL,
                        name TEXT NOT NULL,
                        public_key TEXT NOT NULL,
                        fingerprint TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        UNIQUE (namespace, fingerprint)
                    )
                    """
            )
        }
        migrator.registerMigration("v15-instance-uid") { db in
            // The HTTP gateway finds an instance by the uid in its host name.
            try db.execute(sql: "CREATE INDEX instances_uid ON instances(json_extract(doc, '$.uid'))")
        }
        migrator.registerMigration("v16-node-drains") { db in
            // Nodes an operator drained: no new placements there.
            try db.execute(sql: "CREATE TABLE node_drains (node TEXT PRIMARY KEY, since REAL NOT NULL)")
        }
        migrator.registerMigration("v17-idempotency-outcomes") { db in
            // What a keyed request's work answers, written with the work (`IdempotencyScope`),
            // and the index that keeps a namespace's newest keys.
            try db.execute(
                sql: """
                    ALTER TABLE idempotency_keys ADD COLUMN outcome TEXT;
                    CREATE INDEX idempotency_keys_namespace ON idempotency_keys(namespace, created_at);
                    """
            )
        }
        migrator.registerMigration("v18-ssh-port-releases") { db in
            // SSH ports given back in the last day, kept from other namespaces (`SSHPortRule`).
            try db.execute(
                sql: """
                    CREATE TABLE ssh_port_releases (
                        port INTEGER PRIMARY KEY, namespace TEXT NOT NULL, released_at REAL NOT NULL);
                    CREATE INDEX ssh_port_releases_at ON ssh_port_releases(released_at);
                    """
            )
        }
        migrator.registerMigration("v19-seal-key") { db in
            // Which key instance secrets are sealed with (`SecretSeal`): a server with another
            // key refuses to start rather than fail on every row.
            try db.execute(sql: "CREATE TABLE seal_key (id INTEGER PRIMARY KEY CHECK (id = 1), key_id TEXT NOT NULL)")
        }
        migrator.registerMigration("v20-audit-log") { db in
            // Every state-changing call (`AuditEntry`), read newest first (by time, then by the
            // order written), per namespace or all.
            try db.execute(
                sql: """
                    CREATE TABLE audit_log (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, time REAL NOT NULL,
                        namespace TEXT NOT NULL, actor TEXT NOT NULL,
                        action TEXT NOT NULL, target TEXT NOT NULL, status INTEGER NOT NULL,
                        request_id TEXT NOT NULL, remote_address TEXT NOT NULL);
                    CREATE INDEX audit_log_time ON audit_log(time);
                    CREATE INDEX audit_log_namespace ON audit_log(namespace, time);
                    """
            )
        }
        migrator.registerMigration("v21-sku-prices") { db in
            // Admins' price changes (`PriceChange`), applied in order over the catalog file's.
            try db.execute(
                sql: """
                    CREATE TABLE sku_prices (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT, sku_id TEXT NOT NULL, at REAL NOT NULL,
                        doc TEXT NOT NULL);
                    CREATE INDEX sku_prices_sku ON sku_prices(sku_id, seq);
                    """
            )
        }
        migrator.registerMigration("v22-templates") { db in
            // Instance templates (`InstanceTemplate`) of namespaces and admins' public ones.
            try db.execute(
                sql: """
                    CREATE TABLE templates (
                        id TEXT PRIMARY KEY, namespace TEXT NOT NULL, public INTEGER NOT NULL,
                        created_at REAL NOT NULL, doc TEXT NOT NULL);
                    CREATE INDEX templates_namespace ON templates(namespace);
                    """
            )
        }
        migrator.registerMigration("v23-budgets") { db in
            // Namespaces' monthly budgets (`Budget`).
            try db.execute(
                sql: "CREATE TABLE budgets (namespace TEXT PRIMARY KEY, action TEXT NOT NULL, doc TEXT NOT NULL)"
            )
        }
        migrator.registerMigration("v24-events") { db in
            // The outbox (`LatticeEvent`, numbered per namespace by `event_sequences`), webhooks
            // with the number of the last event queued for them, and their deliveries.
            try db.execute(
                sql: """
                    CREATE TABLE event_sequences (namespace TEXT PRIMARY KEY, last INTEGER NOT NULL);
                    CREATE TABLE events (
                        namespace TEXT NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL, type TEXT NOT NULL,
                        instance TEXT, data TEXT NOT NULL, PRIMARY KEY (namespace, seq));
                    CREATE INDEX events_time ON events(time);
                    CREATE TABLE webhooks (
                        id TEXT PRIMARY KEY, namespace TEXT NOT NULL, created_at REAL NOT NULL,
                        cursor INTEGER NOT NULL, doc TEXT NOT NULL);
                    CREATE INDEX webhooks_namespace ON webhooks(namespace);
                    CREATE TABLE webhook_deliveries (
                        id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL, namespace TEXT NOT NULL,
                        event_seq INTEGER NOT NULL, event_time REAL NOT NULL, ordering_key TEXT NOT NULL,
                        status TEXT NOT NULL, next_attempt REAL, doc TEXT NOT NULL);
                    CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt);
                    CREATE INDEX webhook_deliveries_line
                        ON webhook_deliveries(webhook_id, ordering_key, status, event_seq);
                    """
            )
        }
        migrator.registerMigration("v25-alert-marks") { db in
            // Alerts of money raised and not cleared (`AlertRule`), so each is told once.
            try db.execute(
                sql: """
                    CREATE TABLE alert_marks (
                        namespace TEXT NOT NULL, key TEXT NOT NULL, since REAL NOT NULL,
                        PRIMARY KEY (namespace, key))
                    """
            )
        }
        migrator.registerMigration("v26-node-health") { db in
            // Each node's health as last told (node events, `EventRule.node`).
            try db.execute(
                sql: "CREATE TABLE node_health (node TEXT PRIMARY KEY, health TEXT NOT NULL, since REAL NOT NULL)"
            )
        }
        migrator.registerMigration("v27-idle-defaults") { db in
            // Namespaces' default idle stop (`IdleDefault`).
            try db.execute(sql: "CREATE TABLE idle_defaults (namespace TEXT PRIMARY KEY, doc TEXT NOT NULL)")
        }
        return migrator
    }
}
