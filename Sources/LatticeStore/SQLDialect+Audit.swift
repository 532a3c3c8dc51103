import Foundation
import LatticeDomain

// The audit log, written once over the dialect: an append, a paged read and a prune.

extension AuditStore where Self: SQLDialect {
    public func appendAudit(_ entries: [AuditEntry]) async throws {
        guard !entries.isEmpty else { return }
        try await execute(
            entries.map { entry in
                """
                INSERT INTO audit_log (id, time, namespace, actor, action, target, status, request_id, remote_address)
                VALUES (\(entry.id), \(entry.time), \(entry.namespace), \(entry.actor), \(entry.action),
                    \(entry.target), \(entry.status), \(entry.requestId), \(entry.remoteAddress))
                """
            }
        )
    }

    public func auditEntries(
        namespace: String?,
        action: String?,
        page: PageRequest
    ) async throws -> (
        items: [AuditEntry], total: Int
    ) {
        // Empty strings stand for "any": one statement for every filter.
        let namespace = namespace ?? ""
        let action = action ?? ""
        let filter: StoreSQL =
            "(\(namespace) = '' OR namespace = \(namespace)) AND (\(action) = '' OR action = \(action))"
        let total = try await query("SELECT COUNT(*) FROM audit_log WHERE \(filter)").first?.integer(0) ?? 0
        let rows = try await query(
            """
            SELECT id, time, namespace, actor, action, target, status, request_id, remote_address FROM audit_log
            WHERE \(filter) ORDER BY time DESC, seq DESC LIMIT \(page.pageSize) OFFSET \(page.offset)
            """
        )
        let items = try rows.map { row in
            AuditEntry(
                id: try row.text(0),
                time: try row.date(1),
                namespace: try row.text(2),
                actor: try row.text(3),
                action: try row.text(4),
                target: try row.text(5),
                status: try row.integer(6),
                requestId: try row.text(7),
                remoteAddress: try row.text(8)
            )
        }
        return (items, total)
    }

    @discardableResult public func pruneAudit(before: Date) async throws -> Int {
        let old = try await query("SELECT COUNT(*) FROM audit_log WHERE time < \(before)").first?.integer(0) ?? 0
        if old > 0 { try await execute(["DELETE FROM audit_log WHERE time < \(before)"]) }
        return old
    }
}

extension PriceStore where Self: SQLDialect {
    public func appendPriceChange(_ change: PriceChange) async throws {
        let doc = try Documents.encode(change)
        try await execute(
            ["INSERT INTO sku_prices (sku_id, at, doc) VALUES (\(change.skuID), \(change.at), \(doc))"],
            notices: [.prices]
        )
    }

    public func priceChanges(skuID: String?) async throws -> [PriceChange] {
        let sku = skuID ?? ""
        return try await query("SELECT doc FROM sku_prices WHERE (\(sku) = '' OR sku_id = \(sku)) ORDER BY seq").map {
            try Documents.decode(PriceChange.self, try $0.text(0))
        }
    }
}
