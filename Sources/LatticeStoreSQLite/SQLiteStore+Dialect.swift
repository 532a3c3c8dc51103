import Foundation
import GRDB
import LatticeDomain
import LatticeStore

/// SQLite's dialect of the code both stores share: statements cached by their text, a
/// write as one GRDB write (its reads, decision and statements on the one writer), its
/// notices published once it has committed.
extension SQLiteStore: SQLDialect {
    public func query(_ sql: StoreSQL) async throws -> [SQLRow] {
        try await writer.read { db in try Self.rows(sql, db) }
    }

    public func transact<Result: Sendable>(
        locks: [String],
        fenced: Bool,
        reads: [StoreSQL],
        _ decide: @escaping @Sendable ([[SQLRow]]) throws -> SQLDecision<Result>
    ) async throws -> Result {
        let (result, notices) = try await transaction { db in
            if fenced { try self.fence.check(try Self.fetch(StoreQueries.lease, db)) }
            let decision = try decide(try reads.map { try Self.rows($0, db) })
            for write in decision.writes { try Self.run(write, db) }
            return (decision.result, decision.notices)
        }
        feed.publish(notices)
        return result
    }

    public func jsonText(_ column: String, _ path: String...) -> String {
        "json_extract(\(column), '$.\(path.joined(separator: "."))')"
    }

    /// Runs one shared query (`StoreQueries`) on the writer's or a reader's connection.
    static func fetch<Value>(_ query: StoreQuery<Value>, _ db: Database) throws -> Value {
        try query.answer(try rows(query.sql, db))
    }

    /// Runs one shared statement that answers nothing.
    static func run(_ sql: StoreSQL, _ db: Database) throws {
        try db.run(sql: sql.text, arguments: arguments(sql))
    }

    static func rows(_ sql: StoreSQL, _ db: Database) throws -> [SQLRow] {
        try Row.fetchAll(try db.cachedStatement(sql: sql.text), arguments: arguments(sql)).map { row in
            SQLRow(
                (0..<row.count).map { index in
                    switch (row[index] as DatabaseValue).storage {
                    case .null: .null
                    case .int64(let value): .integer(value)
                    case .double(let value): .real(value)
                    case .string(let value): .text(value)
                    case .blob(let value): .blob(value)
                    }
                }
            )
        }
    }

    static func arguments(_ sql: StoreSQL) -> StatementArguments {
        StatementArguments(
            sql.binds.map { value -> (any DatabaseValueConvertible)? in
                switch value {
                case .null: nil
                case .integer(let value): value
                case .real(let value): value
                case .text(let value): value
                case .boolean(let value): value
                case .blob(let value): value
                }
            }
        )
    }
}
