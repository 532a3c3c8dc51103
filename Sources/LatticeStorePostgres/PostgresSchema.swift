import Foundation
import Logging
import PostgresNIO

/// The tables, as numbered migrations. `migrate` takes a session-scoped advisory lock
/// first, so when several replicas start together one applies what is missing and the
/// others find it done.
///
/// The tables mirror the SQLite store's (see `SQLiteStore.migrator`): records as JSON
/// documents in `doc`, and as columns whatever a query filters, sorts or counts on.
/// Times are seconds since 1970 (`DOUBLE PRECISION`), money is integer units.
enum PostgresSchema {
    /// The advisory lock key the migrations run under (any constant shared by all replicas).
    static let migrationLock: Int64 = 0x4c61_7474_6963_6501

    static let migrations: [(version: Int, sql: [String])] = [
        (
            1,
            [
                """
                CREATE TABLE users (
                    namespace TEXT PRIMARY KEY,
                    admin BOOLEAN NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    depleted_since DOUBLE PRECISION,
                    balance_units BIGINT NOT NULL DEFAULT 0
                )
                """,
                """
                CREATE TABLE tokens (
                    id TEXT PRIMARY KEY,
                    namespace TEXT NOT NULL REFERENCES users(namespace),
                    name TEXT NOT NULL,
                    secret_hash TEXT NOT NULL UNIQUE,
                    created_at DOUBLE PRECISION NOT NULL,
                    expires_at DOUBLE PRECISION NOT NULL,
                    last_used_at DOUBLE PRECISION
                )
                """,
                "CREATE INDEX tokens_namespace ON tokens(namespace)",
                """
                CREATE TABLE instances (
                    name TEXT PRIMARY KEY,
                    namespace TEXT NOT NULL,
                    cluster TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    generation BIGINT NOT NULL,
                    ssh_port BIGINT,
                    placed_node TEXT,
                    cpu BIGINT NOT NULL,
                    memory BIGINT NOT NULL,
                    status TEXT NOT NULL,
                    deleted BOOLEAN NOT NULL,
                    schedule_stop DOUBLE PRECISION,
                    stopped_at DOUBLE PRECISION,
                    payg BOOLEAN NOT NULL,
                    doc TEXT NOT NULL
                )
                """,
                "CREATE UNIQUE INDEX instances_ssh_port ON instances(ssh_port) WHERE ssh_port IS NOT NULL",
                "CREATE INDEX instances_namespace_cluster ON instances(namespace, cluster, created_at, name)",
                "CREATE INDEX instances_namespace ON instances(namespace, created_at)",
                "CREATE INDEX instances_schedule_stop ON instances(schedule_stop) WHERE schedule_stop IS NOT NULL",
                "CREATE INDEX instances_stopped_at ON instances(stopped_at) WHERE stopped_at IS NOT NULL",
                """
                CREATE INDEX instances_payg_holders ON instances(namespace)
                    WHERE payg AND status IN ('Creating', 'Starting', 'Running', 'Stopping', 'Saving')
                """,
                "CREATE INDEX instances_placed_node ON instances(placed_node) WHERE placed_node IS NOT NULL",
                """
                CREATE TABLE gpu_allocations (
                    node TEXT NOT NULL,
                    gpu_index BIGINT NOT NULL,
                    instance_name TEXT NOT NULL REFERENCES instances(name),
                    PRIMARY KEY (node, gpu_index)
                )
                """,
                "CREATE INDEX gpu_allocations_instance ON gpu_allocations(instance_name)",
                """
                CREATE TABLE images (
                    namespace TEXT NOT NULL,
                    reference TEXT NOT NULL,
                    doc TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (namespace, reference)
                )
                """,
                """
                CREATE TABLE orders (
                    id TEXT PRIMARY KEY,
                    namespace TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    doc TEXT NOT NULL
                )
                """,
                "CREATE INDEX orders_namespace ON orders(namespace, created_at)",
                """
                CREATE TABLE ledger (
                    seq BIGSERIAL PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    namespace TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    amount_units BIGINT NOT NULL,
                    idempotency_key TEXT NOT NULL UNIQUE,
                    created_at DOUBLE PRECISION NOT NULL,
                    doc TEXT NOT NULL
                )
                """,
                "CREATE INDEX ledger_namespace ON ledger(namespace, seq)",
                "CREATE INDEX ledger_namespace_kind ON ledger(namespace, kind, seq)",
                """
                CREATE TABLE meter_segments (
                    id TEXT PRIMARY KEY,
                    instance_name TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    settled BOOLEAN NOT NULL,
                    open BOOLEAN NOT NULL,
                    next_due DOUBLE PRECISION NOT NULL,
                    doc TEXT NOT NULL
                )
                """,
                "CREATE INDEX meter_segments_open ON meter_segments(instance_name) WHERE open",
                "CREATE INDEX meter_segments_due ON meter_segments(next_due, id) WHERE NOT settled",
                "CREATE TABLE coupons (id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
                """
                CREATE TABLE instance_counts (
                    namespace TEXT NOT NULL,
                    cluster TEXT NOT NULL,
                    n BIGINT NOT NULL,
                    PRIMARY KEY (namespace, cluster)
                )
                """,
                """
                CREATE TABLE namespace_commitments (
                    namespace TEXT PRIMARY KEY,
                    hourly_units BIGINT NOT NULL,
                    gpus BIGINT NOT NULL DEFAULT 0
                )
                """,
                "CREATE TABLE quotas (namespace TEXT PRIMARY KEY, doc TEXT NOT NULL)",
                """
                CREATE TABLE idempotency_keys (
                    namespace TEXT NOT NULL,
                    key TEXT NOT NULL,
                    request_hash TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    status BIGINT,
                    body BYTEA,
                    PRIMARY KEY (namespace, key)
                )
                """,
                "CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at)",
                "CREATE TABLE status_counts (status TEXT PRIMARY KEY, n BIGINT NOT NULL)",
                """
                CREATE TABLE leader_lease (
                    name TEXT PRIMARY KEY,
                    holder TEXT NOT NULL,
                    epoch BIGINT NOT NULL,
                    expires_at DOUBLE PRECISION NOT NULL
                )
                """,
            ]
        ),
        (
            2,
            [
                """
                CREATE TABLE console_sessions (
                    id_hash TEXT PRIMARY KEY,
                    namespace TEXT NOT NULL,
                    token_id TEXT NOT NULL,
                    token_hash TEXT NOT NULL,
                    admin BOOLEAN NOT NULL,
                    expires_at DOUBLE PRECISION NOT NULL,
                    csrf TEXT NOT NULL,
                    revealed BYTEA
                )
                """,
                "CREATE INDEX console_sessions_expiry ON console_sessions(expires_at)",
                "CREATE INDEX console_sessions_namespace ON console_sessions(namespace, expires_at)",
            ]
        ),
        (
            3,
            [
                // Raised by every write that changes a GPU reservation: a replica's
                // in-memory capacity index is current while the number is the one it was
                // built at (see `PlacementMemo`).
                "CREATE TABLE placement_version (id INTEGER PRIMARY KEY, v BIGINT NOT NULL)",
                "INSERT INTO placement_version (id, v) VALUES (1, 0)",
            ]
        ),
        (
            4,
            [
                // Public keys the SSH gateway lets into a namespace's instances.
                """
                CREATE TABLE ssh_keys (
                    id TEXT PRIMARY KEY,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    public_key TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL,
                    UNIQUE (namespace, fingerprint)
                )
                """
            ]
        ),
        (
            5,
            [
                // The HTTP gateway finds an instance by the uid in its host name.
                "CREATE INDEX instances_uid ON instances ((doc::jsonb ->> 'uid'))"
            ]
        ),
        (
            6,
            [
                // Nodes an operator drained: no new placements there.
                "CREATE TABLE node_drains (node TEXT PRIMARY KEY, since DOUBLE PRECISION NOT NULL)"
            ]
        ),
        (
            7,
            [
                // What a keyed request's work answers, written with the work (`IdempotencyScope`),
                // and the index that keeps a namespace's newest keys.
                "ALTER TABLE idempotency_keys ADD COLUMN outcome TEXT",
                "CREATE INDEX idempotency_keys_namespace ON idempotency_keys(namespace, created_at)",
            ]
        ),
        (
            8,
            [
                // SSH ports given back in the last day, kept from other namespaces (`SSHPortRule`).
                """
                CREATE TABLE ssh_port_releases (
                    port BIGINT PRIMARY KEY, namespace TEXT NOT NULL, released_at DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX ssh_port_releases_at ON ssh_port_releases(released_at)",
            ]
        ),
        (
            9,
            [
                // Which key instance secrets are sealed with (`SecretSeal`): a replica with
                // another key refuses to start rather than fail on every row.
                "CREATE TABLE seal_key (id INTEGER PRIMARY KEY CHECK (id = 1), key_id TEXT NOT NULL)"
            ]
        ),
        (
            10,
            [
                // Every state-changing call (`AuditEntry`), read newest first (by time, then by
                // the order written), per namespace or all.
                """
                CREATE TABLE audit_log (
                    seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, time DOUBLE PRECISION NOT NULL,
                    namespace TEXT NOT NULL,
                    actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, status BIGINT NOT NULL,
                    request_id TEXT NOT NULL, remote_address TEXT NOT NULL)
                """,
                "CREATE INDEX audit_log_time ON audit_log(time)",
                "CREATE INDEX audit_log_namespace ON audit_log(namespace, time)",
            ]
        ),
        (
            11,
            [
                // Admins' price changes (`PriceChange`), applied in order over the catalog file's.
                """
                CREATE TABLE sku_prices (
                    seq BIGSERIAL PRIMARY KEY, sku_id TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, doc TEXT NOT NULL)
                """,
                "CREATE INDEX sku_prices_sku ON sku_prices(sku_id, seq)",
            ]
        ),
        (
            12,
            [
                // Instance templates (`InstanceTemplate`) of namespaces and admins' public ones.
                """
                CREATE TABLE templates (
                    id TEXT PRIMARY KEY, namespace TEXT NOT NULL, public BIGINT NOT NULL,
                    created_at DOUBLE PRECISION NOT NULL, doc TEXT NOT NULL)
                """,
                "CREATE INDEX templates_namespace ON templates(namespace)",
            ]
        ),
        (
            13,
            [
                // Namespaces' monthly budgets (`Budget`).
                "CREATE TABLE budgets (namespace TEXT PRIMARY KEY, action TEXT NOT NULL, doc TEXT NOT NULL)"
            ]
        ),
        (
            14,
            [
                // The outbox (`LatticeEvent`, numbered per namespace by `event_sequences`, whose
                // row a write holds until it commits), webhooks with the number of the last
                // event queued for them, and their deliveries.
                "CREATE TABLE event_sequences (namespace TEXT PRIMARY KEY, last BIGINT NOT NULL)",
                """
                CREATE TABLE events (
                    namespace TEXT NOT NULL, seq BIGINT NOT NULL, time DOUBLE PRECISION NOT NULL,
                    type TEXT NOT NULL, instance TEXT, data TEXT NOT NULL, PRIMARY KEY (namespace, seq))
                """,
                "CREATE INDEX events_time ON events(time)",
                """
                CREATE TABLE webhooks (
                    id TEXT PRIMARY KEY, namespace TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                    cursor BIGINT NOT NULL, doc TEXT NOT NULL)
                """,
                "CREATE INDEX webhooks_namespace ON webhooks(namespace)",
                """
                CREATE TABLE webhook_deliveries (
                    id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL, namespace TEXT NOT NULL,
                    event_seq BIGINT NOT NULL, event_time DOUBLE PRECISION NOT NULL, ordering_key TEXT NOT NULL,
                    status TEXT NOT NULL, next_attempt DOUBLE PRECISION, doc TEXT NOT NULL)
                """,
                "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt)",
                """
                CREATE INDEX webhook_deliveries_line
                    ON webhook_deliveries(webhook_id, ordering_key, status, event_seq)
                """,
            ]
        ),
        (
            15,
            [
                // Alerts of money raised and not cleared (`AlertRule`), so each is told once.
                """
                CREATE TABLE alert_marks (
                    namespace TEXT NOT NULL, key TEXT NOT NULL, since DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (namespace, key))
                """
            ]
        ),
        (
            16,
            [
                // Each node's health as last told (node events, `EventRule.node`).
                """
                CREATE TABLE node_health (
                    node TEXT PRIMARY KEY, health TEXT NOT NULL, since DOUBLE PRECISION NOT NULL)
                """
            ]
        ),
        (
            17,
            [
                // Namespaces' default idle stop (`IdleDefault`).
                "CREATE TABLE idle_defaults (namespace TEXT PRIMARY KEY, doc TEXT NOT NULL)"
            ]
        ),
        (
            18,
            [
                // What a create reads (`PostgresStore.createReads`), in one round trip: plumbing
                // only, every decision stays in Swift. Each statement of a VOLATILE function takes
                // a snapshot of its own (READ COMMITTED), so the reads after each lock see every
                // write that held it: the wallet's advisory lock, then the placement version's row
                // lock (the order every write takes them in), then the checks' reads and one window
                // of the SSH ports taken or kept.
                """
                CREATE OR REPLACE FUNCTION lattice_create_reads(
                    p_wallet TEXT, p_name TEXT, p_namespace TEXT, p_coupon TEXT,
                    p_port_from BIGINT, p_port_to BIGINT, p_cutoff DOUBLE PRECISION,
                    OUT o_taken BOOLEAN, OUT o_instances BIGINT, OUT o_gpus BIGINT, OUT o_committed BIGINT,
                    OUT o_quota TEXT, OUT o_admin BOOLEAN, OUT o_balance BIGINT, OUT o_coupon TEXT,
                    OUT o_version BIGINT, OUT o_ports BIGINT[], OUT o_kept BIGINT[], OUT o_kept_by TEXT[],
                    OUT o_kept_at DOUBLE PRECISION[])
                LANGUAGE plpgsql VOLATILE AS $$
                BEGIN
                    PERFORM pg_advisory_xact_lock(hashtext(p_wallet));
                    UPDATE placement_version SET v = v + 1 WHERE id = 1 RETURNING v INTO o_version;
                    SELECT EXISTS (SELECT 1 FROM instances i WHERE i.name = p_name),
                        (SELECT COALESCE(SUM(c.n), 0)::BIGINT FROM instance_counts c WHERE c.namespace = p_namespace),
                        COALESCE(m.gpus, 0), COALESCE(m.hourly_units, 0),
                        (SELECT q.doc FROM quotas q WHERE q.namespace = p_namespace),
                        u.admin, u.balance_units,
                        (SELECT k.doc FROM coupons k WHERE k.id = p_coupon AND p_coupon <> '' FOR UPDATE)
                    INTO o_taken, o_instances, o_gpus, o_committed, o_quota, o_admin, o_balance, o_coupon
                    FROM (SELECT 1) AS one LEFT JOIN users u ON u.namespace = p_namespace
                        LEFT JOIN namespace_commitments m ON m.namespace = p_namespace;
                    SELECT COALESCE(array_agg(i.ssh_port::BIGINT), '{}') INTO o_ports
                    FROM instances i WHERE i.ssh_port BETWEEN p_port_from AND p_port_to;
                    SELECT COALESCE(array_agg(r.port::BIGINT), '{}'), COALESCE(array_agg(r.namespace), '{}'),
                        COALESCE(array_agg(r.released_at), '{}')
                    INTO o_kept, o_kept_by, o_kept_at
                    FROM ssh_port_releases r
                    WHERE r.port BETWEEN p_port_from AND p_port_to AND r.released_at > p_cutoff
                        AND r.namespace <> p_namespace;
                END
                $$
                """
            ]
        ),
    ]

    /// Applies every migration the database lacks, each in its own transaction, while
    /// holding the migration lock.
    static func migrate(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withConnection { connection in
            let session = Transaction(connection: connection, logger: logger, trips: RoundTrips())
            try await session.run("SELECT pg_advisory_lock(\(migrationLock))")
            do {
                try await session.run(
                    """
                    CREATE TABLE IF NOT EXISTS schema_migrations (
                        version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                    """
                )
                let applied = Set(try await session.values("SELECT version FROM schema_migrations", as: Int.self))
                for migration in migrations where !applied.contains(migration.version) {
                    try await session.run("BEGIN")
                    do {
                        for statement in migration.sql { try await session.run(PostgresQuery(unsafeSQL: statement)) }
                        try await session.run("INSERT INTO schema_migrations (version) VALUES (\(migration.version))")
                        try await session.run("COMMIT")
                    } catch {
                        try? await session.run("ROLLBACK")
                        throw error
                    }
                }
            } catch {
                try? await session.run("SELECT pg_advisory_unlock(\(migrationLock))")
                throw error
            }
            try await session.run("SELECT pg_advisory_unlock(\(migrationLock))")
        }
    }
}
