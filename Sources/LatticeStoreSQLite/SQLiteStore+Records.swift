import Foundation
import GRDB
import LatticeDomain
import LatticeStore

extension SQLiteStore {
    /// Applies a write set inside the caller's transaction, one statement per row it
    /// changes, and notes in `changes` what the in-memory indexes take in once it commits.
    func apply(_ set: WriteSet, _ db: Database, _ changes: inout IndexChanges) throws {
        changes.notices += set.notices
        switch set.instance {
        case .insert(let instance):
            try db.run(
                sql: """
                    INSERT INTO instances (name, namespace, cluster, created_at, generation, ssh_port, placed_node, cpu,
                        memory, status, deleted, schedule_stop, stopped_at, payg, doc)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    instance.name, instance.namespace, instance.cluster, instance.createdAt.timeIntervalSince1970,
                    instance.generation, instance.access.sshPort > 0 ? instance.access.sshPort : nil,
                    instance.placement?.node, instance.resources.cpuCores, instance.resources.memoryGiB,
                    instance.status.rawValue, instance.desired.deleted, instance.dueAt?.timeIntervalSince1970,
                    instance.stoppedAt?.timeIntervalSince1970,
                    instance.cost.costType == SellingType.payAsYouGo.rawValue, try documents.encode(instance),
                ]
            )
            changes.wrote(instance)
        case .update(let instance):
            try db.run(
                sql: """
                    UPDATE instances SET generation = ?, placed_node = ?, status = ?, deleted = ?, schedule_stop = ?,
                        stopped_at = ?, ssh_port = ?, doc = ? WHERE name = ?
                    """,
                arguments: [
                    instance.generation, instance.placement?.node, instance.status.rawValue, instance.desired.deleted,
                    instance.dueAt?.timeIntervalSince1970, instance.stoppedAt?.timeIntervalSince1970,
                    instance.access.sshPort > 0 ? instance.access.sshPort : nil, try documents.encode(instance),
                    instance.name,
                ]
            )
            changes.wrote(instance)
        case .delete, nil:
            break  // last, once nothing refers to the row
        }
        if let released = set.released {
            changes.released.append((released.placement, released.cpuCores, released.memoryGiB))
        }
        if let reserved = set.reserved {
            changes.reserved.append((reserved.placement, reserved.cpuCores, reserved.memoryGiB))
        }
        if let port = set.portFreed { changes.portsFreed.append(port) }
        if let port = set.portTaken { changes.portsTaken.append(port) }
        for gpu in set.freedGPUs {
            try db.run(
                sql: "DELETE FROM gpu_allocations WHERE node = ? AND gpu_index = ?",
                arguments: [gpu.node, gpu.index]
            )
        }
        if let name = set.reserved?.instanceName ?? set.released?.instanceName {
            for gpu in set.takenGPUs {
                // The primary key (node, gpu_index) is the last line of defence against overselling.
                try db.run(
                    sql: "INSERT INTO gpu_allocations (node, gpu_index, instance_name) VALUES (?, ?, ?)",
                    arguments: [gpu.node, gpu.index, name]
                )
            }
        }
        if let given = set.portGivenBack {
            try db.run(
                sql: "DELETE FROM ssh_port_releases WHERE released_at <= ?",
                arguments: [given.pruneBefore.timeIntervalSince1970]
            )
            try db.run(
                sql: "INSERT OR REPLACE INTO ssh_port_releases (port, namespace, released_at) VALUES (?, ?, ?)",
                arguments: [given.port, given.release.namespace, given.release.at.timeIntervalSince1970]
            )
            changes.portsGivenBack.append((given.port, given.release))
        }
        if let commitment = set.commitment {
            try db.run(
                sql: """
                    INSERT INTO namespace_commitments (namespace, hourly_units, gpus) VALUES (?, ?, ?)
                    ON CONFLICT (namespace) DO UPDATE SET hourly_units = hourly_units + excluded.hourly_units,
                        gpus = gpus + excluded.gpus
                    """,
                arguments: [commitment.namespace, commitment.hourlyUnits, commitment.gpus]
            )
        }
        for (status, delta) in set.statusCounts.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where delta != 0 {
            try db.run(
                sql: """
                    INSERT INTO status_counts (status, n) VALUES (?, ?)
                    ON CONFLICT (status) DO UPDATE SET n = n + excluded.n
                    """,
                arguments: [status.rawValue, delta]
            )
        }
        if let count = set.instanceCount {
            try db.run(
                sql: """
                    INSERT INTO instance_counts (namespace, cluster, n) VALUES (?, ?, ?)
                    ON CONFLICT (namespace, cluster) DO UPDATE SET n = n + excluded.n
                    """,
                arguments: [count.namespace, count.cluster, count.delta]
            )
        }
        if let closing = set.closing {
            let docs = try String.fetchAll(
                try db.cachedStatement(sql: "SELECT doc FROM meter_segments WHERE instance_name = ? AND open = 1"),
                arguments: [closing.instanceName]
            )
            for doc in docs {
                let segment = try Documents.decode(MeterSegment.self, doc)
                guard closing.kinds.contains(segment.kind) else { continue }
                try Self.update(segment.closed(at: closing.at), db)
            }
        }
        for opened in set.openedSegments { try Self.insert(opened.segment, due: opened.due, db) }
        for id in set.closedOrders {
            guard
                let doc = try String.fetchOne(
                    try db.cachedStatement(sql: "SELECT doc FROM orders WHERE id = ?"),
                    arguments: [id]
                )
            else { continue }
            var order = try Documents.decode(Order.self, doc)
            order.status = "closed"
            try db.run(sql: "UPDATE orders SET doc = ? WHERE id = ?", arguments: [try Documents.encode(order), id])
        }
        for order in set.orders {
            try db.run(
                sql: "INSERT INTO orders (id, namespace, created_at, doc) VALUES (?, ?, ?, ?)",
                arguments: [
                    order.id, order.namespace, order.createdAt.timeIntervalSince1970, try Documents.encode(order),
                ]
            )
        }
        for coupon in set.coupons {
            try db.run(
                sql: "UPDATE coupons SET doc = ? WHERE id = ?",
                arguments: [try Documents.encode(coupon), coupon.id]
            )
        }
        for entry in set.ledger { _ = try Self.append(entry, db) }
        for statement in try EventSQL.append(set.events) { try Self.run(statement, db) }
        if case .delete(let name, _) = set.instance {
            try db.run(sql: "DELETE FROM instances WHERE name = ?", arguments: [name])
            changes.versions.append((name, nil))
        }
    }

    // MARK: Meter segments

    static func insert(_ segment: MeterSegment, due: Date, _ db: Database) throws {
        try db.run(
            sql: """
                INSERT INTO meter_segments (id, instance_name, kind, settled, open, next_due, doc)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                segment.id, segment.instanceName, segment.kind.rawValue, segment.isSettled, segment.end == nil,
                due.timeIntervalSince1970, try Documents.encode(segment),
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
}

extension Database {
    /// Runs one statement through GRDB's per-connection statement cache, so each SQL text
    /// is compiled (and checked by GRDB's authorizer) once per connection, not per call.
    func run(sql: String, arguments: StatementArguments = StatementArguments()) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }
}
