import Foundation
import LatticeDomain

// Events (the outbox every write records its events in) and webhooks with their
// deliveries, written once over the dialect.

/// The statements that record events inside a write, shared by every write that makes them
/// (SQLite's `apply`, and the writes below; PostgreSQL's `apply` says the same in one statement).
public enum EventSQL {
    /// Numbers each namespace's events from its counter row, which the write holds until it
    /// commits, so a namespace's events commit in the order of their numbers (a reader that
    /// has seen number n never later finds a smaller one appear).
    public static func append(_ events: [LatticeEvent]) throws -> [StoreSQL] {
        var statements: [StoreSQL] = []
        for (namespace, group) in grouped(events) {
            let count = group.count
            statements.append(
                """
                INSERT INTO event_sequences (namespace, last) VALUES (\(namespace), \(count))
                ON CONFLICT (namespace) DO UPDATE SET last = event_sequences.last + excluded.last
                """
            )
            for (index, event) in group.enumerated() {
                let back = count - 1 - index
                statements.append(
                    """
                    INSERT INTO events (namespace, seq, time, type, instance, data)
                    VALUES (\(namespace), (SELECT last FROM event_sequences WHERE namespace = \(namespace)) - \(back),
                        \(event.time), \(event.type.rawValue), \(event.instance), \(try data(event)))
                    """
                )
            }
        }
        return statements
    }

    /// The events by namespace, each namespace's in the order given, namespaces in the order first seen.
    public static func grouped(_ events: [LatticeEvent]) -> [(String, [LatticeEvent])] {
        var order: [String] = []
        var groups: [String: [LatticeEvent]] = [:]
        for event in events {
            if groups[event.namespace] == nil { order.append(event.namespace) }
            groups[event.namespace, default: []].append(event)
        }
        return order.map { ($0, groups[$0]!) }
    }

    /// The notices a write with these events sends: one per namespace, which wakes its streams.
    public static func notices(_ events: [LatticeEvent]) -> [StoreChange] {
        grouped(events).map { .events($0.0) }
    }

    public static func data(_ event: LatticeEvent) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(event.data), as: UTF8.self)
    }

    static let columns = "namespace, seq, time, type, instance, data"

    static func event(_ row: SQLRow, from index: Int = 0) throws -> LatticeEvent {
        let type = try row.text(index + 3)
        return LatticeEvent(
            id: Int64(try row.integer(index + 1)),
            namespace: try row.text(index),
            time: try row.date(index + 2),
            type: LatticeEvent.Kind(rawValue: type) ?? .instanceStatus,
            instance: try row.optionalText(index + 4),
            data: try JSONDecoder().decode([String: JSONValue].self, from: Data(try row.text(index + 5).utf8))
        )
    }
}

extension EventStore where Self: SQLDialect {
    public func events(namespace: String, after: Int64, limit: Int) async throws -> [LatticeEvent] {
        try await query(
            """
            SELECT \(raw: EventSQL.columns) FROM events WHERE namespace = \(namespace) AND seq > \(after)
            ORDER BY seq LIMIT \(limit)
            """
        ).map { try EventSQL.event($0) }
    }

    public func lastEventID(namespace: String) async throws -> Int64 {
        let rows = try await query("SELECT last FROM event_sequences WHERE namespace = \(namespace)")
        return Int64(try rows.first?.integer(0) ?? 0)
    }

    @discardableResult public func pruneEvents(before: Date) async throws -> Int {
        let old = try await query("SELECT COUNT(*) FROM events WHERE time < \(before)").first?.integer(0) ?? 0
        if old > 0 { try await execute(["DELETE FROM events WHERE time < \(before)"]) }
        return old
    }
}

extension WebhookStore where Self: SQLDialect {
    public func createWebhook(_ webhook: Webhook) async throws {
        var sealed = webhook
        sealed.secret = try documents.sealSecret(webhook.secret)
        let doc = try Documents.encode(sealed)
        try await transact(
            locks: ["webhooks/" + webhook.namespace],
            reads: [
                "SELECT COUNT(*) FROM webhooks WHERE namespace = \(webhook.namespace)",
                "SELECT last FROM event_sequences WHERE namespace = \(webhook.namespace)",
            ]
        ) { rows in
            let count = try rows[0].first?.integer(0) ?? 0
            guard count < WebhookRule.perNamespace else {
                throw LatticeError.unprocessable(
                    "WebhookLimitExceeded",
                    "namespace \(webhook.namespace) has \(count) webhooks, the most it may have; delete one first"
                )
            }
            // Deliveries start with the namespace's next event.
            let cursor = try rows[1].first?.integer(0) ?? 0
            return SQLDecision(
                writes: [
                    """
                    INSERT INTO webhooks (id, namespace, created_at, cursor, doc)
                    VALUES (\(webhook.id), \(webhook.namespace), \(webhook.createdAt), \(cursor), \(doc))
                    """
                ],
                notices: [.webhooks]
            )
        }
    }

    public func webhooks(namespace: String) async throws -> [Webhook] {
        try await query("SELECT doc FROM webhooks WHERE namespace = \(namespace) ORDER BY created_at, id").map {
            try openWebhook(try $0.text(0))
        }
    }

    public func allWebhooks() async throws -> [Webhook] { try await loadAllWebhooks() }

    /// Every webhook, read from the table (`allWebhooks` of a store that keeps no memo).
    public func loadAllWebhooks() async throws -> [Webhook] {
        try await query("SELECT doc FROM webhooks ORDER BY created_at, id").map { try openWebhook(try $0.text(0)) }
    }

    private func openWebhook(_ doc: String) throws -> Webhook {
        var webhook = try Documents.decode(Webhook.self, doc)
        webhook.secret = try documents.openSecret(webhook.secret)
        return webhook
    }

    public func deleteWebhook(namespace: String, id: String) async throws -> Bool {
        try await transact(
            locks: ["webhooks/" + namespace],
            reads: [StoreSQL("SELECT id FROM webhooks WHERE namespace = \(namespace) AND id = \(id)").forUpdate()]
        ) { rows in
            guard !rows[0].isEmpty else { return SQLDecision(result: false) }
            return SQLDecision(
                writes: [
                    "DELETE FROM webhook_deliveries WHERE webhook_id = \(id)",
                    "DELETE FROM webhooks WHERE id = \(id)",
                ],
                notices: [.webhooks],
                result: true
            )
        }
    }

    public func deliveries(
        webhookID: String,
        page: PageRequest
    ) async throws -> (
        items: [WebhookDelivery], total: Int
    ) {
        let total =
            try await query("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = \(webhookID)").first?
            .integer(0) ?? 0
        let items = try await query(
            """
            SELECT doc FROM webhook_deliveries WHERE webhook_id = \(webhookID)
            ORDER BY event_seq DESC LIMIT \(page.pageSize) OFFSET \(page.offset)
            """
        ).map { try Documents.decode(WebhookDelivery.self, try $0.text(0)) }
        return (items, total)
    }

    public func queueDeliveries(
        webhookID: String,
        limit: Int,
        newID: @escaping @Sendable () -> String
    ) async throws -> Int {
        try await transact(
            locks: [],
            fenced: true,
            reads: [
                StoreSQL("SELECT doc, cursor FROM webhooks WHERE id = \(webhookID)").forUpdate(),
                """
                SELECT \(raw: EventSQL.columns) FROM events
                WHERE namespace = (SELECT namespace FROM webhooks WHERE id = \(webhookID))
                    AND seq > (SELECT cursor FROM webhooks WHERE id = \(webhookID))
                ORDER BY seq LIMIT \(limit)
                """,
            ]
        ) { rows in
            guard let row = rows[0].first else { return SQLDecision(result: 0) }
            // How many events were read: the caller reads again while a whole batch came.
            let webhook = try Documents.decode(Webhook.self, try row.text(0))
            let events = try rows[1].map { try EventSQL.event($0) }
            guard let last = events.last else { return SQLDecision(result: 0) }
            var writes: [StoreSQL] = []
            for event in events where webhook.wants(event) {
                let delivery = WebhookDelivery(webhook: webhook, event: event, id: newID())
                writes.append(
                    """
                    INSERT INTO webhook_deliveries (id, webhook_id, namespace, event_seq, event_time, ordering_key,
                        status, next_attempt, doc)
                    VALUES (\(delivery.id), \(webhook.id), \(webhook.namespace), \(event.id), \(event.time),
                        \(delivery.orderingKey), \(delivery.status.rawValue), \(delivery.nextAttemptAt),
                        \(try Documents.encode(delivery)))
                    """
                )
            }
            writes.append("UPDATE webhooks SET cursor = \(last.id) WHERE id = \(webhookID)")
            return SQLDecision(writes: writes, result: events.count)
        }
    }

    public func dueDeliveries(now: Date, limit: Int) async throws -> [(WebhookDelivery, LatticeEvent?)] {
        try await query(
            """
            SELECT d.doc, e.namespace, e.seq, e.time, e.type, e.instance, e.data FROM webhook_deliveries d
            LEFT JOIN events e ON e.namespace = d.namespace AND e.seq = d.event_seq
            WHERE d.status = 'pending' AND d.next_attempt <= \(now)
                AND NOT EXISTS (
                    SELECT 1 FROM webhook_deliveries p
                    WHERE p.webhook_id = d.webhook_id AND p.ordering_key = d.ordering_key AND p.status = 'pending'
                        AND p.event_seq < d.event_seq)
            ORDER BY d.next_attempt, d.event_seq LIMIT \(limit)
            """
        ).map { row in
            let delivery = try Documents.decode(WebhookDelivery.self, try row.text(0))
            let event = try row.optionalText(1) == nil ? nil : try EventSQL.event(row, from: 1)
            return (delivery, event)
        }
    }

    public func recordDelivery(_ delivery: WebhookDelivery) async throws {
        try await execute(
            [
                """
                UPDATE webhook_deliveries SET status = \(delivery.status.rawValue),
                    next_attempt = \(delivery.nextAttemptAt), doc = \(try Documents.encode(delivery))
                WHERE id = \(delivery.id)
                """
            ],
            fenced: true
        )
    }

    @discardableResult public func pruneDeliveries(before: Date) async throws -> Int {
        let old =
            try await query(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE status <> 'pending' AND event_time < \(before)"
            ).first?.integer(0) ?? 0
        if old > 0 {
            try await execute(["DELETE FROM webhook_deliveries WHERE status <> 'pending' AND event_time < \(before)"])
        }
        return old
    }
}

extension AlertStore where Self: SQLDialect {
    public func recordAlerts(
        namespace: String,
        _ decide: @escaping @Sendable (AlertReads) -> AlertDecision
    ) async throws -> [LatticeEvent] {
        try await transact(
            locks: [StoreLock.wallet(namespace)],
            fenced: true,
            reads: [
                StoreQueries.balance(namespace).sql,
                StoreQueries.commitment(namespace).sql,
                "SELECT key FROM alert_marks WHERE namespace = \(namespace)",
            ]
        ) { rows in
            let reads = AlertReads(
                balance: try StoreQueries.balance(namespace).answer(rows[0]),
                hourly: try StoreQueries.commitment(namespace).answer(rows[1]),
                raised: Set(try rows[2].map { try $0.text(0) })
            )
            let decision = decide(reads)
            // Told in a steady order: the wallet first, then the budget's percentages upwards.
            let raised = decision.raise.sorted { a, b in
                let left = (a.value.type.rawValue, Int(a.value.data["percent"].flatMap(Self.number) ?? 0))
                let right = (b.value.type.rawValue, Int(b.value.data["percent"].flatMap(Self.number) ?? 0))
                return left < right
            }
            var writes: [StoreSQL] = raised.map { key, event in
                """
                INSERT INTO alert_marks (namespace, key, since) VALUES (\(namespace), \(key), \(event.time))
                ON CONFLICT (namespace, key) DO NOTHING
                """
            }
            writes += decision.clear.sorted().map {
                "DELETE FROM alert_marks WHERE namespace = \(namespace) AND key = \($0)"
            }
            let events = raised.map(\.value)
            writes += try EventSQL.append(events)
            return SQLDecision(writes: writes, notices: EventSQL.notices(events), result: events)
        }
    }

    static func number(_ value: JSONValue) -> Double? {
        if case .number(let number) = value { return number }
        return nil
    }
}

extension NodeHealthStore where Self: SQLDialect {
    public func nodeHealth() async throws -> [String: NodeHealth] {
        var health: [String: NodeHealth] = [:]
        for row in try await query("SELECT node, health FROM node_health") {
            health[try row.text(0)] = NodeHealth(rawValue: try row.text(1)) ?? .healthy
        }
        return health
    }

    public func recordNodeHealth(
        _ health: [(node: String, health: NodeHealth)],
        events: [LatticeEvent],
        at: Date
    ) async throws {
        guard !health.isEmpty else { return }
        var writes: [StoreSQL] = health.map { node, health in
            """
            INSERT INTO node_health (node, health, since) VALUES (\(node), \(health.rawValue), \(at))
            ON CONFLICT (node) DO UPDATE SET health = excluded.health, since = excluded.since
            """
        }
        writes += try EventSQL.append(events)
        try await execute(writes, notices: EventSQL.notices(events), fenced: true)
    }
}
