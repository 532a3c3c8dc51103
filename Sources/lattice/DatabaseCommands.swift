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
        abstract: "Tools for the store itself: backup (while serving), restore and copy (with the server stopped).",
        subcommands: [Backup.self, Restore.self, Copy.self]
    )

    /// A consistent copy of a SQLite installation's database, taken while it serves.
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy the SQLite database into FILE, consistently, while lattice serve runs.",
            discussion: """
                Uses SQLite's online backup: the copy is one moment of the database, whatever the server \
                writes meanwhile. Back up <data-dir>/seal.key and ssh_host_ed25519_key apart from it: \
                without the seal key no server starts on the copy. PostgreSQL: use pg_dump \
                (docs/operations.md).
                """
        )
        @Option(help: "The data directory of the installation.") var dataDir = ".lattice"
        @Argument(help: "The backup file to write (refused if it exists).") var file: String

        func run() async throws {
            let source = URL(fileURLWithPath: dataDir).appendingPathComponent("lattice.sqlite").path
            guard FileManager.default.fileExists(atPath: source) else {
                throw UsageError("--data-dir: no lattice.sqlite in \(dataDir)")
            }
            let bytes = try SQLiteBackup.backup(databaseAt: source, to: file)
            print("backed up \(source) to \(file) (\(bytes) bytes)")
        }
    }

    /// A backup into a new data directory, ready to serve (older schemas upgrade at start).
    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore a backup FILE into an empty data directory.",
            discussion: """
                Refuses a data directory that already holds a database. Put the installation's \
                seal.key (and ssh_host_ed25519_key) back beside it before lattice serve starts there.
                """
        )
        @Option(help: "The data directory to restore into (made if missing; must hold no database).")
        var dataDir = ".lattice"
        @Argument(help: "The backup file.") var file: String

        func run() async throws {
            let directory = URL(fileURLWithPath: dataDir)
            try FileManager.default.createDirectory(
                at: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
            let target = directory.appendingPathComponent("lattice.sqlite").path
            try SQLiteBackup.restore(backupAt: file, to: target)
            // Opening it applies any migration the backup predates.
            _ = try SQLiteStore(path: target)
            print("restored \(file) into \(target)")
            if !FileManager.default.fileExists(atPath: directory.appendingPathComponent("seal.key").path) {
                print("note: no seal.key in \(dataDir): copy the installation's key there before serving")
            }
        }
    }

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
