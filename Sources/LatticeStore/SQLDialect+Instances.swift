import Foundation
import LatticeDomain

// The instance and meter reads every store makes alike, written once over its dialect.
// (The writes, the capacity index and the hot GET and list paths are each store's own.)

extension InstanceStore where Self: SQLDialect {
    public func instance(namespace: String, name: String) async throws -> Instance? {
        guard let instance = try await instance(name: name), instance.namespace == namespace else { return nil }
        return instance
    }

    public func instance(name: String) async throws -> Instance? {
        try await query("SELECT doc FROM instances WHERE name = \(name)").first.map {
            try documents.decode(try $0.text(0))
        }
    }

    public func instances(
        namespace: String,
        cluster: String?,
        page: PageRequest
    ) async throws -> (items: [Instance], total: Int) {
        // The counts are kept per namespace and cluster as instances come and go.
        let total: Int?
        let docs: [SQLRow]
        if let cluster {
            total = try await query(
                "SELECT n FROM instance_counts WHERE namespace = \(namespace) AND cluster = \(cluster)"
            ).first?.integer(0)
            docs = try await query(
                """
                SELECT doc FROM instances WHERE namespace = \(namespace) AND cluster = \(cluster)
                ORDER BY created_at DESC, name LIMIT \(page.pageSize) OFFSET \(page.offset)
                """
            )
        } else {
            total = try await query(
                "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM instance_counts WHERE namespace = \(namespace)"
            ).first?.integer(0)
            docs = try await query(
                """
                SELECT doc FROM instances WHERE namespace = \(namespace)
                ORDER BY created_at DESC, name LIMIT \(page.pageSize) OFFSET \(page.offset)
                """
            )
        }
        return (try docs.map { try documents.decode(try $0.text(0)) }, total ?? 0)
    }

    public func instances(filter: InstanceFilter, page: PageRequest) async throws -> (items: [Instance], total: Int) {
        let matching: StoreSQL = """
            FROM instances WHERE (\(filter.namespace) = '' OR namespace = \(filter.namespace))
                AND (\(filter.status) = '' OR status = \(filter.status))
                AND (\(filter.node) = '' OR placed_node = \(filter.node))
            """
        let total = try await query("SELECT COUNT(*) \(matching)").first?.integer(0) ?? 0
        let docs = try await query(
            "SELECT doc \(matching) ORDER BY created_at DESC, name LIMIT \(page.pageSize) OFFSET \(page.offset)"
        )
        return (try docs.map { try documents.decode(try $0.text(0)) }, total)
    }

    public func allInstances() async throws -> [Instance] {
        try await query("SELECT doc FROM instances ORDER BY created_at, name").map {
            try documents.decode(try $0.text(0))
        }
    }

    public func instanceSummaries() async throws -> [InstanceSummary] {
        try await query("SELECT name, cluster, status, deleted FROM instances").map {
            InstanceSummary(
                name: try $0.text(0),
                cluster: try $0.text(1),
                status: InstanceStatus(rawValue: try $0.text(2)) ?? .creating,
                deleted: try $0.bool(3)
            )
        }
    }

    public func instancesToEnforce(at now: Date, stoppedBefore: Date) async throws -> [Instance] {
        try await query(
            """
            SELECT doc FROM instances WHERE NOT deleted AND schedule_stop IS NOT NULL AND schedule_stop <= \(now)
                AND status IN ('Creating', 'Starting', 'Running')
            UNION ALL
            SELECT doc FROM instances WHERE NOT deleted AND stopped_at IS NOT NULL AND stopped_at <= \(stoppedBefore)
                AND status = 'Stopped'
            """
        ).map { try documents.decode(try $0.text(0)) }
    }

    public func instanceCounts() async throws -> [InstanceStatus: Int] {
        var counts: [InstanceStatus: Int] = [:]
        for row in try await query("SELECT status, n FROM status_counts") {
            if let status = InstanceStatus(rawValue: try row.text(0)) { counts[status] = try row.integer(1) }
        }
        return counts
    }
}

extension MeterStore where Self: SQLDialect {
    public func unsettledSegments() async throws -> [MeterSegment] {
        try await query("SELECT doc FROM meter_segments WHERE NOT settled ORDER BY id").map {
            try Documents.decode(MeterSegment.self, try $0.text(0))
        }
    }

    public func dueSegments(at now: Date) async throws -> [MeterSegment] {
        try await query(
            "SELECT doc FROM meter_segments WHERE NOT settled AND next_due <= \(now) ORDER BY next_due, id"
        ).map { try Documents.decode(MeterSegment.self, try $0.text(0)) }
    }
}

extension InstanceStore where Self: SQLDialect {
    public func sshPortHolders() async throws -> [Int: String] {
        var holders: [Int: String] = [:]
        for row in try await query("SELECT ssh_port, name FROM instances WHERE ssh_port IS NOT NULL") {
            holders[try row.integer(0)] = try row.text(1)
        }
        return holders
    }

    public func instanceName(holdingSSHPort port: Int) async throws -> String? {
        try await query("SELECT name FROM instances WHERE ssh_port = \(port)").first?.text(0)
    }

    public func instanceName(uid: String) async throws -> String? {
        try await query("SELECT name FROM instances WHERE \(raw: jsonText("doc", "uid")) = \(uid)").first?.text(0)
    }
}

extension MeterStore where Self: SQLDialect {
    public func applyCharges(
        segmentID: String,
        billedThrough: Date,
        charges: [LedgerEntry],
        nextDue: Date?
    ) async throws -> Int {
        try await transact(
            locks: [],
            fenced: true,
            reads: [StoreSQL("SELECT doc FROM meter_segments WHERE id = \(segmentID)").forUpdate()]
                + charges.map { Rows.ledgerKey($0.idempotencyKey) }
        ) { rows in
            guard let doc = try rows[0].first?.text(0) else { return SQLDecision(result: 0) }
            var segment = try Documents.decode(MeterSegment.self, doc)
            // A charge whose idempotency key is in the ledger was made before: skipped.
            let new = zip(charges, rows.dropFirst()).filter { $0.1.isEmpty }.map(\.0)
            var writes = try new.flatMap(Rows.append)
            if billedThrough > segment.billedThrough {
                segment.billedThrough = billedThrough
                let due = nextDue ?? segment.end
                writes.append(
                    """
                    UPDATE meter_segments SET settled = \(segment.isSettled), open = \(segment.end == nil),
                        next_due = COALESCE(\(due), next_due), doc = \(try Documents.encode(segment))
                    WHERE id = \(segmentID)
                    """
                )
            } else if let nextDue {
                writes.append("UPDATE meter_segments SET next_due = \(nextDue) WHERE id = \(segmentID)")
            }
            return SQLDecision(writes: writes, result: new.count)
        }
    }
}

extension LedgerStore where Self: SQLDialect {
    public func setDepletedSince(namespace: String, _ since: Date?) async throws {
        try await execute(["UPDATE users SET depleted_since = \(since) WHERE namespace = \(namespace)"], fenced: true)
    }
}
