import Foundation
import LatticeDomain
import LatticeStore
import PostgresNIO

/// PostgreSQL's dialect of the code both stores share: `?` rendered as `$n`, every value a
/// bound parameter; a write is one transaction (its advisory locks, its reads, the
/// statements its decision returns, the `pg_notify` of its notices, delivered at commit).
extension PostgresStore: SQLDialect {
    public func query(_ sql: StoreSQL) async throws -> [SQLRow] {
        try await read { tx in try await tx.rows(Self.query(sql)).map(Self.row) }
    }

    public func transact<Result: Sendable>(
        locks: [String],
        fenced: Bool,
        reads: [StoreSQL],
        _ decide: @escaping @Sendable ([[SQLRow]]) throws -> SQLDecision<Result>
    ) async throws -> Result {
        try await transaction { tx in
            for lock in locks { try await Self.advisoryLock(lock, tx) }
            // FOR SHARE: a fenced write holds the lease row until it commits, so a takeover (which
            // updates the row) waits for it, and a write that starts after the takeover sees it.
            if fenced { try self.fence.check(try await Self.fetch(StoreQueries.lease.forShare(), tx)) }
            var rows: [[SQLRow]] = []
            for read in reads { rows.append(try await tx.rows(Self.query(read)).map(Self.row)) }
            let decision = try decide(rows)
            for write in decision.writes { try await tx.run(Self.query(write)) }
            for notice in decision.notices { try await Self.notify(notice, tx) }
            return decision.result
        }
    }

    public func jsonText(_ column: String, _ path: String...) -> String {
        "(\(column)::jsonb #>> '{\(path.joined(separator: ","))}')"
    }

    /// Runs one shared query (`StoreQueries`) in the transaction: one round trip.
    static func fetch<Value>(_ query: StoreQuery<Value>, _ tx: Transaction) async throws -> Value {
        try query.answer(try await tx.rows(Self.query(query.sql)).map(row))
    }

    static func query(_ sql: StoreSQL) throws -> PostgresQuery {
        var bindings = PostgresBindings(capacity: sql.binds.count)
        for value in sql.binds {
            switch value {
            case .null: bindings.appendNull()
            case .integer(let value): bindings.append(value)
            case .real(let value): bindings.append(value)
            case .text(let value): bindings.append(value)
            case .boolean(let value): bindings.append(value)
            case .blob(let value): try bindings.append(value)
            }
        }
        let text = sql.rendered { "$\($0)" } + (sql.rowLock.map { " " + $0.rawValue } ?? "")
        return PostgresQuery(unsafeSQL: text, binds: bindings)
    }

    static func row(_ row: PostgresRow) throws -> SQLRow {
        SQLRow(try row.map(value))
    }

    private static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .float4, .float8: return .real(try cell.decode(Double.self))
        case .bool: return .boolean(try cell.decode(Bool.self))
        case .numeric:
            // SUM of integers: whole unless a statement divides.
            let number = "\(try cell.decode(Decimal.self))"
            if let whole = Int64(number) { return .integer(whole) }
            return .real(Double(number) ?? .nan)
        case .bytea: return .blob(try cell.decode(Data.self))
        default: return .text(try cell.decode(String.self))
        }
    }
}
