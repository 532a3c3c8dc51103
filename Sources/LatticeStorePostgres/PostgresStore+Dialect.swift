import Foundation
import LatticeDomain
import LatticeStore
import PostgresNIO

/// PostgreSQL's dialect of the code both stores share: `?` rendered as `$n`, every value a
/// bound parameter; a write is one transaction (its advisory locks, its reads, the
/// statements its decision returns, the `pg_notify` of its notices, delivered at commit).
extension PostgresStore: SQLDialect {
    public func query(_ sql: StoreSQL) async throws -> [SQLRow] {
        try await read { tx in try await tx.shared(sql).map(Self.row) }
    }

    public func transact<Result: Sendable>(
        locks: [String],
        fenced: Bool,
        reads: [StoreSQL],
        _ decide: @escaping @Sendable ([[SQLRow]]) throws -> SQLDecision<Result>
    ) async throws -> Result {
        let (result, notices) = try await transaction { tx in
            for lock in locks { try await Self.advisoryLock(lock, tx) }
            // FOR KEY SHARE: a fenced write holds the lease row until it commits, so a takeover
            // (which locks the row FOR UPDATE before it writes) waits for it, and a write that
            // starts after the takeover sees it; the holder's renewal waits for nobody.
            if fenced { try self.fence.check(try await Self.fetch(StoreQueries.lease.forKeyShare(), tx)) }
            var rows: [[SQLRow]] = []
            for read in reads { rows.append(try await tx.shared(read).map(Self.row)) }
            let decision = try decide(rows)
            for write in decision.writes { _ = try await tx.shared(write) }
            for notice in decision.notices { try await Self.notify(notice, tx) }
            return (decision.result, decision.notices)
        }
        // This replica's own reads see its write at once, before the notice comes back.
        memos.forget(notices)
        return result
    }

    public func jsonText(_ column: String, _ path: String...) -> String {
        "(\(column)::jsonb #>> '{\(path.joined(separator: ","))}')"
    }

    /// Runs one shared query (`StoreQueries`) in the transaction: one round trip.
    static func fetch<Value>(_ query: StoreQuery<Value>, _ tx: Transaction) async throws -> Value {
        try query.answer(try await tx.shared(query.sql).map(row))
    }

    /// A shared statement's text, values and their types (a null's is left to PostgreSQL).
    static func shaped(_ sql: StoreSQL) throws -> (String, PostgresBindings, [PostgresDataType]) {
        var bindings = PostgresBindings(capacity: sql.binds.count)
        var types: [PostgresDataType] = []
        types.reserveCapacity(sql.binds.count)
        for value in sql.binds {
            switch value {
            case .null: bindings.appendNull()
            case .integer(let value): bindings.append(value)
            case .real(let value): bindings.append(value)
            case .text(let value): bindings.append(value)
            case .boolean(let value): bindings.append(value)
            case .blob(let value): try bindings.append(value)
            }
            types.append(Self.type(of: value))
        }
        let text = sql.rendered { "$\($0)" } + (sql.rowLock.map { " " + $0.rawValue } ?? "")
        return (text, bindings, types)
    }

    private static func type(of value: SQLValue) -> PostgresDataType {
        switch value {
        case .null: .null
        case .integer: Int64.psqlType
        case .real: Double.psqlType
        case .text: String.psqlType
        case .boolean: Bool.psqlType
        case .blob: Data.psqlType
        }
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

extension Transaction {
    /// Every row of a shared statement's answer, the statement prepared on this connection
    /// (`PreparedShapes`): the shared statements are a fixed set of texts.
    func shared(_ sql: StoreSQL) async throws -> [PostgresRow] {
        let (text, bindings, types) = try PostgresStore.shaped(sql)
        return try await PreparedShapes.shared.rows(text, bindings, types: types, self)
    }
}
