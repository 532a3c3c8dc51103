import Foundation
import LatticeDomain
import LatticeStore
import PostgresNIO

/// `lattice db copy`: rows from another store (SQLite) into an empty PostgreSQL database,
/// all in one transaction, and the figures that show both sides agree.
extension PostgresStore {
    /// Inserts the tables in the order given, converting each cell to the column's type
    /// here (SQLite's 0/1 become booleans). Refused unless the database holds no user yet.
    public func importTables(_ tables: [(name: String, rows: TableRows)]) async throws {
        try await transaction { tx in
            try await tx.run("LOCK TABLE users IN EXCLUSIVE MODE")
            guard try await tx.value("SELECT COUNT(*) FROM users", as: Int.self) == 0 else {
                throw LatticeError(
                    .conflict,
                    code: "NotEmpty",
                    "the target database already holds users; copy into an empty database"
                )
            }
            for (name, table) in tables {
                guard CopiedTables.all.contains(name) else { throw LatticeError.notFound("table '\(name)'") }
                let types = Dictionary(
                    uniqueKeysWithValues: try await tx.rows(
                        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = \(name)"
                    ).map { try $0.decode((String, String).self) }
                )
                for column in table.columns where types[column] == nil {
                    throw LatticeError.notFound("column '\(column)' of table '\(name)' in the target database")
                }
                let list = table.columns.map { "\"\($0)\"" }.joined(separator: ", ")
                let perRow = max(1, table.columns.count)
                let chunk = max(1, 5000 / perRow)
                for start in stride(from: 0, to: table.rows.count, by: chunk) {
                    let rows = table.rows[start..<min(start + chunk, table.rows.count)]
                    var bindings = PostgresBindings()
                    var tuples: [String] = []
                    for row in rows {
                        var places: [String] = []
                        for (column, value) in zip(table.columns, row) {
                            try Self.bind(value, as: types[column]!, into: &bindings)
                            places.append("$\(bindings.count)")
                        }
                        tuples.append("(" + places.joined(separator: ", ") + ")")
                    }
                    try await tx.run(
                        PostgresQuery(
                            unsafeSQL: "INSERT INTO \(name) (\(list)) VALUES " + tuples.joined(separator: ", "),
                            binds: bindings
                        )
                    )
                }
            }
            // The ledger's sequence continues after the copied rows.
            try await tx.run(
                """
                SELECT setval(pg_get_serial_sequence('ledger', 'seq'),
                    COALESCE((SELECT MAX(seq) FROM ledger), 0) + 1, false)
                """
            )
        }
    }

    static func bind(_ value: TableValue, as type: String, into bindings: inout PostgresBindings) throws {
        switch (value, type) {
        case (.null, _): bindings.appendNull()
        case (.integer(let integer), "boolean"): bindings.append(integer != 0)
        case (.integer(let integer), "double precision"): bindings.append(Double(integer))
        case (.integer(let integer), _): bindings.append(integer)
        case (.real(let real), _): bindings.append(real)
        case (.text(let text), _): bindings.append(text)
        case (.blob(let data), "text"): bindings.append(String(decoding: data, as: UTF8.self))
        case (.blob(let data), _): try bindings.append(data)
        }
    }

    /// Rows per copied table.
    public func tableCounts() async throws -> [String: Int] {
        try await read { tx in
            var counts: [String: Int] = [:]
            for table in CopiedTables.all {
                counts[table] =
                    try await tx.value(
                        PostgresQuery(unsafeSQL: "SELECT COUNT(*) FROM \(table)"),
                        as: Int.self
                    ) ?? 0
            }
            return counts
        }
    }
}
