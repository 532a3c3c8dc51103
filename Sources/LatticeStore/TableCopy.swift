import Foundation

/// One cell of a table as `lattice db copy` moves it between stores, whatever the store's
/// own column type (SQLite keeps booleans as integers; PostgreSQL has `BOOLEAN`).
public enum TableValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
}

/// The rows of one table, by column name.
public struct TableRows: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[TableValue]]

    public init(columns: [String], rows: [[TableValue]]) {
        self.columns = columns
        self.rows = rows
    }
}

/// What `lattice db copy` carries from one store to another: every table that holds state,
/// in an order that satisfies the foreign keys. (Idempotency keys expire within a day,
/// console sessions end with the move (users sign in again), the leader lease belongs
/// to the running replicas, and events and webhook deliveries are kept a day: none of them
/// is copied; a webhook goes on from the first event in the new store.)
public enum CopiedTables {
    public static let all = [
        "users", "tokens", "instances", "gpu_allocations", "images", "orders", "ledger", "meter_segments",
        "coupons", "instance_counts", "namespace_commitments", "quotas", "status_counts", "ssh_keys", "node_drains",
        "ssh_port_releases", "seal_key", "audit_log", "sku_prices", "templates", "budgets",
        "webhooks", "alert_marks", "node_health", "idle_defaults",
    ]
}
