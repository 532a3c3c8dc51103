import ArgumentParser
import Foundation
import LatticeDomain
import LatticeStore
import LatticeStorePostgres
import LatticeStoreSQLite

/// `lattice db …`: the operator's tools for the store itself (no server involved).
struct DB: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Tools for the store itself (run them with the server stopped).",
        subcommands: [Copy.self]
    )

    /// Grows an embedded installation into PostgreSQL: every table of the SQLite data
    /// directory into an empty database, in one transaction, then both sides compared.
    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a SQLite data directory into an empty PostgreSQL database and check both sides agree.",
            discussion: """
                Stop `lattice serve` first. The target must be empty (no users): the copy is one
                transaction and refuses to merge. Afterwards the row counts of every table and each
                namespace's balance (kept, and summed over its ledger) are compared on both sides;
                any difference fails the command (exit 1).
                """
        )

        @Option(help: "The data directory of the SQLite installation.") var from = ".lattice"
        @Option(help: "The PostgreSQL URL (postgres://user:password@host:5432/database?sslmode=prefer).") var to: String

        func run() async throws {
            let file = URL(fileURLWithPath: from).appendingPathComponent("lattice.sqlite")
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw UsageError("--from: no lattice.sqlite in \(from)")
            }
            let source = try SQLiteStore(path: file.path)
            let target = try await PostgresStore(url: to)
            defer { target.close() }
            let tables = try await source.exportTables()
            try await target.importTables(tables)

            let targetCounts = try await target.tableCounts()
            var rows: [[String]] = []
            var differences: [String] = []
            for (name, table) in tables {
                let copied = targetCounts[name] ?? 0
                rows.append([name, String(table.rows.count), String(copied)])
                if copied != table.rows.count { differences.append("\(name): \(table.rows.count) → \(copied) rows") }
            }
            let namespaces =
                tables.first { $0.name == "users" }?.rows.rows.compactMap { row -> String? in
                    if case .text(let namespace) = row.first { return namespace }
                    return nil
                } ?? []
            for namespace in namespaces.sorted() {
                let before = try await source.balance(namespace: namespace)
                let after = try await target.balance(namespace: namespace)
                rows.append(["balance \(namespace)", before.description, after.description])
                if before != after { differences.append("balance of \(namespace): \(before) → \(after)") }
            }
            Terminal.printTable(["WHAT", "SQLITE", "POSTGRESQL"], rows)
            guard differences.isEmpty else {
                throw LatticeError(
                    .internalError,
                    code: "CopyMismatch",
                    "the copy differs: " + differences.joined(separator: "; ")
                )
            }
            print("copied \(tables.reduce(0) { $0 + $1.rows.rows.count }) rows; both sides agree")
        }
    }
}
