import Foundation
import LatticeDomain
import LatticeStore
import PostgresNIO

/// Applies a `WriteSet` in one statement: each row change is a data-modifying CTE, and the
/// statement's result sends the change notices (delivered when the transaction commits).
/// The CTEs of one statement see the same snapshot and never touch a row twice: a write set
/// frees and takes disjoint GPU rows, and prunes port releases other than the one it keeps.
extension PostgresStore {
    func apply(_ set: WriteSet, _ tx: Transaction) async throws {
        guard !set.isEmpty else { return }
        var statement = ApplyStatement()
        try statement.add(set, documents: documents)
        if let row = set.instance, let change = DirectoryChange(row) { tx.written?.add(change, row) }
        _ = try await PreparedShapes.shared.rows(
            statement.sql,
            statement.bindings.binds,
            types: statement.bindings.types,
            tx
        )
    }

    /// A leader's write of one instance (an observation or a purge) in one statement that
    /// commits on its own, instead of a transaction's four round trips (`BEGIN`, the fenced
    /// read, the write set, `COMMIT`). `make` decides the write set from the record this
    /// replica keeps at `expectedGeneration` (every write of a record raises its generation,
    /// so it is the row's content); the statement writes only while the row is still at that
    /// generation and the lease still names this replica at its epoch, else it rolls back as
    /// a whole (`ApplyStatement.Condition`).
    ///
    /// False when it was not written so (no record kept at that generation, a keyed request
    /// pending, this replica leads at no epoch, or the condition failed): the caller then takes
    /// the transaction, which reads the row and says why.
    func applyAtOnce(
        name: String,
        expectedGeneration: Int,
        _ make: (Instance) -> WriteSet
    ) async throws -> Bool {
        guard IdempotencyScope.pending == nil, let current = records.record(name, generation: expectedGeneration)
        else { return false }
        var lease: (holder: String, epoch: Int64)?
        if let (holder, epoch) = fence.current {
            guard let epoch else { return false }
            lease = (holder, epoch)
        }
        let set = make(current)
        guard let row = set.instance, let change = DirectoryChange(row) else { return false }
        if case .insert = row { return false }
        var statement = ApplyStatement(condition: .init(generation: expectedGeneration, lease: lease))
        try statement.add(set, documents: documents)
        let (sql, bindings) = (statement.sql, statement.bindings)
        let written = try await read { tx in
            do {
                _ = try await PreparedShapes.shared.rows(sql, bindings.binds, types: bindings.types, tx)
                return true
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == ApplyStatement.Condition.failed {
                return false
            }
        }
        guard written else { return false }
        directory.apply(change)
        records.apply([row])
        return true
    }
}

/// One statement built from a write set: `WITH w0 AS (...), w1 AS (...) SELECT ...`, every
/// value a bound parameter, so its text depends only on which parts the set has (and the
/// number of rows of a few), and `PreparedShapes` prepares it once per connection.
struct ApplyStatement {
    /// What a statement that commits on its own checks as it writes: the instance row is
    /// still at `generation` and, when fenced, the lease row names `lease` (locked `FOR KEY
    /// SHARE`, as a fenced read does). When either matches no row, the statement divides by
    /// zero (SQLSTATE `22012`, `failed`) and nothing of it is written.
    struct Condition {
        static let failed = "22012"
        let generation: Int
        let lease: (holder: String, epoch: Int64)?
    }

    private let condition: Condition?
    /// The parts whose rows the condition counts: the instance's write, the lease's read.
    private var counted: [String] = []

    init(condition: Condition? = nil) { self.condition = condition }

    private var parts: [String] = []
    /// The values and their types (`ShapedBindings`).
    private(set) var bindings = ShapedBindings()

    var sql: String {
        let with = parts.isEmpty ? "" : "WITH " + parts.joined(separator: ",\n") + "\n"
        return with + (final ?? "SELECT 1")
    }

    private var final: String?

    /// `$n` for a new parameter.
    mutating func bind<T: PostgresNonThrowingEncodable>(_ value: T) -> String { bindings.bind(value) }

    mutating func bind<T: PostgresNonThrowingEncodable>(_ value: T?) -> String { bindings.bind(value) }

    private mutating func with(_ sql: String) { parts.append("w\(parts.count) AS (\(sql))") }

    /// Under a condition, what the instance row's update or delete adds: the generation it
    /// must still have, and a row back to count (the part is the next one `with` adds).
    private mutating func unchanged() -> String {
        guard let condition else { return "" }
        counted.append("w\(parts.count)")
        return " AND generation = \(bind(condition.generation)) RETURNING 1"
    }

    private static func seconds(_ date: Date) -> Double { date.timeIntervalSince1970 }

    mutating func add(_ set: WriteSet, documents: InstanceDocuments) throws {
        // The instance row's write first, then the lease: the final select counts them in that
        // order, so the row is locked before anything else, as in a transaction's fenced read.
        switch set.instance {
        case .insert(let instance):
            let port: Int? = instance.access.sshPort > 0 ? instance.access.sshPort : nil
            with(
                """
                INSERT INTO instances (name, namespace, cluster, created_at, generation, ssh_port, placed_node, cpu,
                    memory, status, deleted, schedule_stop, stopped_at, payg, doc)
                VALUES (\(bind(instance.name)), \(bind(instance.namespace)), \(bind(instance.cluster)),
                    \(bind(Self.seconds(instance.createdAt))), \(bind(instance.generation)), \(bind(port))::BIGINT,
                    \(bind(instance.placement?.node))::TEXT, \(bind(instance.resources.cpuCores)),
                    \(bind(instance.resources.memoryGiB)), \(bind(instance.status.rawValue)),
                    \(bind(instance.desired.deleted)), \(bind(instance.dueAt.map(Self.seconds)))::FLOAT8,
                    \(bind(instance.stoppedAt.map(Self.seconds)))::FLOAT8,
                    \(bind(instance.cost.costType == SellingType.payAsYouGo.rawValue)),
                    \(bind(try documents.encode(instance))))
                """
            )
        case .update(let instance):
            let port: Int? = instance.access.sshPort > 0 ? instance.access.sshPort : nil
            with(
                """
                UPDATE instances SET generation = \(bind(instance.generation)),
                    placed_node = \(bind(instance.placement?.node))::TEXT, status = \(bind(instance.status.rawValue)),
                    deleted = \(bind(instance.desired.deleted)),
                    schedule_stop = \(bind(instance.dueAt.map(Self.seconds)))::FLOAT8,
                    stopped_at = \(bind(instance.stoppedAt.map(Self.seconds)))::FLOAT8,
                    ssh_port = \(bind(port))::BIGINT, doc = \(bind(try documents.encode(instance)))
                WHERE name = \(bind(instance.name))\(unchanged())
                """
            )
        case .delete(let name, _):
            // Checked at the end of the statement, when its GPU rows are gone too.
            with("DELETE FROM instances WHERE name = \(bind(name))\(unchanged())")
        case nil:
            break
        }
        if let lease = condition?.lease {
            counted.append("w\(parts.count)")
            with(
                """
                SELECT 1 FROM leader_lease
                WHERE name = 'leader' AND holder = \(bind(lease.holder)) AND epoch = \(bind(lease.epoch)) FOR KEY SHARE
                """
            )
        }
        let freed = set.freedGPUs
        if !freed.isEmpty {
            with(
                """
                DELETE FROM gpu_allocations WHERE (node, gpu_index) IN
                    (SELECT * FROM unnest(\(bind(freed.map(\.node)))::TEXT[], \(bind(freed.map(\.index)))::BIGINT[]))
                """
            )
        }
        let taken = set.takenGPUs
        if let name = set.reserved?.instanceName, !taken.isEmpty {
            // The primary key (node, gpu_index) is the last line of defence against overselling.
            with(
                """
                INSERT INTO gpu_allocations (node, gpu_index, instance_name)
                SELECT node, i, \(bind(name))
                FROM unnest(\(bind(taken.map(\.node)))::TEXT[], \(bind(taken.map(\.index)))::BIGINT[]) AS g (node, i)
                """
            )
        }
        if set.givesBackReservation {
            // Another replica's capacity index is stale from here on (`PlacementMemo`).
            with("UPDATE placement_version SET v = v + 1 WHERE id = 1")
        }
        if let given = set.portGivenBack {
            let port = bind(given.port)
            with(
                """
                DELETE FROM ssh_port_releases
                WHERE released_at <= \(bind(Self.seconds(given.pruneBefore))) AND port <> \(port)
                """
            )
            with(
                """
                INSERT INTO ssh_port_releases (port, namespace, released_at)
                VALUES (\(port), \(bind(given.release.namespace)), \(bind(Self.seconds(given.release.at))))
                ON CONFLICT (port) DO UPDATE SET namespace = EXCLUDED.namespace, released_at = EXCLUDED.released_at
                """
            )
        }
        if let commitment = set.commitment {
            with(
                """
                INSERT INTO namespace_commitments AS c (namespace, hourly_units, gpus)
                VALUES (\(bind(commitment.namespace)), \(bind(commitment.hourlyUnits)), \(bind(commitment.gpus)))
                ON CONFLICT (namespace) DO UPDATE SET hourly_units = c.hourly_units + excluded.hourly_units,
                    gpus = c.gpus + excluded.gpus
                """
            )
        }
        let counts = set.statusCounts.filter { $0.value != 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
        if !counts.isEmpty {
            with(
                """
                INSERT INTO status_counts AS s (status, n)
                SELECT * FROM unnest(
                    \(bind(counts.map(\.key.rawValue)))::TEXT[], \(bind(counts.map(\.value)))::BIGINT[]
                )
                ON CONFLICT (status) DO UPDATE SET n = s.n + excluded.n
                """
            )
        }
        if let count = set.instanceCount {
            with(
                """
                INSERT INTO instance_counts AS c (namespace, cluster, n)
                VALUES (\(bind(count.namespace)), \(bind(count.cluster)), \(bind(count.delta)))
                ON CONFLICT (namespace, cluster) DO UPDATE SET n = c.n + excluded.n
                """
            )
        }
        if let closing = set.closing {
            // `MeterSegment.closed(at:)` and `isSettled`, in SQL: the segment ends at `at` or at
            // its start, if later, and is settled if it was billed through that end.
            let end = "GREATEST(\(bind(Self.seconds(closing.at)))::FLOAT8, (doc::jsonb ->> 'start')::FLOAT8)"
            with(
                """
                UPDATE meter_segments SET open = FALSE, next_due = \(end),
                    settled = (doc::jsonb ->> 'billedThrough')::FLOAT8 >= \(end),
                    doc = jsonb_set(doc::jsonb, '{end}', to_jsonb(\(end)))::TEXT
                WHERE instance_name = \(bind(closing.instanceName)) AND open
                    AND kind = ANY(\(bind(closing.kinds.map(\.rawValue)))::TEXT[])
                """
            )
        }
        if !set.openedSegments.isEmpty {
            var rows: [String] = []
            for opened in set.openedSegments {
                let segment = opened.segment
                rows.append(
                    """
                    (\(bind(segment.id)), \(bind(segment.instanceName)), \(bind(segment.kind.rawValue)),
                        \(bind(segment.isSettled)), \(bind(segment.end == nil)), \(bind(Self.seconds(opened.due))),
                        \(bind(try Documents.encode(segment))))
                    """
                )
            }
            with(
                """
                INSERT INTO meter_segments (id, instance_name, kind, settled, open, next_due, doc)
                VALUES \(rows.joined(separator: ", "))
                """
            )
        }
        if !set.closedOrders.isEmpty {
            with(
                """
                UPDATE orders SET doc = jsonb_set(doc::jsonb, '{status}', '"closed"')::TEXT
                WHERE id = ANY(\(bind(set.closedOrders))::TEXT[])
                """
            )
        }
        if !set.orders.isEmpty {
            var rows: [String] = []
            for order in set.orders {
                rows.append(
                    """
                    (\(bind(order.id)), \(bind(order.namespace)), \(bind(Self.seconds(order.createdAt))),
                        \(bind(try Documents.encode(order))))
                    """
                )
            }
            with("INSERT INTO orders (id, namespace, created_at, doc) VALUES \(rows.joined(separator: ", "))")
        }
        for coupon in set.coupons {
            with("UPDATE coupons SET doc = \(bind(try Documents.encode(coupon))) WHERE id = \(bind(coupon.id))")
        }
        if !set.ledger.isEmpty {
            // A row whose idempotency key is already in the ledger is skipped, and the balance
            // moves by the rows appended (those the insert returns).
            var rows: [String] = []
            for entry in set.ledger {
                rows.append(
                    """
                    (\(bind(entry.id)), \(bind(entry.namespace)), \(bind(entry.kind.rawValue)),
                        \(bind(entry.amount.units)), \(bind(entry.idempotencyKey)),
                        \(bind(Self.seconds(entry.createdAt))), \(bind(try Documents.encode(entry))))
                    """
                )
            }
            let appended = "w\(parts.count)"
            with(
                """
                INSERT INTO ledger (id, namespace, kind, amount_units, idempotency_key, created_at, doc)
                VALUES \(rows.joined(separator: ", "))
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING namespace,
                    CASE WHEN kind IN ('credit', 'refund') THEN amount_units ELSE -amount_units END AS delta
                """
            )
            with(
                """
                UPDATE users u SET balance_units = u.balance_units + d.delta
                FROM (SELECT namespace, SUM(delta)::BIGINT AS delta FROM \(appended) GROUP BY namespace) AS d
                WHERE u.namespace = d.namespace
                """
            )
        }
        for (namespace, events) in EventSQL.grouped(set.events) {
            // `EventSQL.append` in one statement: the namespace's counter row, held until the
            // write commits, numbers its events.
            let counter = "w\(parts.count)"
            let count = bind(events.count)
            with(
                """
                INSERT INTO event_sequences AS s (namespace, last) VALUES (\(bind(namespace)), \(count)::BIGINT)
                ON CONFLICT (namespace) DO UPDATE SET last = s.last + excluded.last RETURNING last
                """
            )
            with(
                """
                INSERT INTO events (namespace, seq, time, type, instance, data)
                SELECT \(bind(namespace)), \(counter).last - \(count)::BIGINT + e.n, e.t, e.ty, NULLIF(e.i, ''), e.d
                FROM \(counter), unnest(
                    \(bind(events.map { Self.seconds($0.time) }))::FLOAT8[],
                    \(bind(events.map(\.type.rawValue)))::TEXT[],
                    \(bind(events.map { $0.instance ?? "" }))::TEXT[], \(bind(try events.map(EventSQL.data)))::TEXT[]
                ) WITH ORDINALITY AS e (t, ty, i, d, n)
                """
            )
        }
        // The directory's notice first: a replica that hears `.instance` next already knows
        // the new generation, so what it reads of the instance is never an older record.
        let notices =
            [DirectoryChange(set.instance)?.payload].compactMap { $0 } + set.notices.compactMap(PostgresStore.payload)
        var notify: String? = nil
        if !notices.isEmpty {
            notify = "SELECT pg_notify(\(bind(PostgresStore.channel)), p) FROM unnest(\(bind(notices))::TEXT[]) AS p"
        }
        guard condition != nil else {
            final = notify
            return
        }
        // Each count is a scalar subquery of the final select, run before the parts nothing
        // refers to; the notices are a part of their own that the select counts, so they are sent.
        var columns = counted.map { "1 / (SELECT count(*) FROM \($0))" }
        if let notify {
            columns.append("(SELECT count(*) FROM w\(parts.count))")
            with(notify)
        }
        final = "SELECT " + (columns.isEmpty ? ["1"] : columns).joined(separator: ", ")
    }
}
