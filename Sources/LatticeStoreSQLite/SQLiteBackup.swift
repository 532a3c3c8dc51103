import Foundation
import GRDB
import LatticeDomain

/// `lattice db backup` and `lattice db restore`: SQLite's online backup, page by page in
/// one read transaction, so the copy is one consistent moment even while `lattice serve`
/// keeps writing (WAL lets the read and the writes run side by side).
public enum SQLiteBackup {
    /// Copies the database at `source` into a new file at `destination` (refused if one is
    /// there); returns the copy's size in bytes.
    @discardableResult
    public static func backup(databaseAt source: String, to destination: String) throws -> Int {
        guard FileManager.default.fileExists(atPath: source) else {
            throw LatticeError.notFound("database \(source)")
        }
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw LatticeError(.conflict, code: "Conflict", "\(destination) exists; a backup never overwrites a file")
        }
        let from = try DatabaseQueue(path: source)
        try checkIsLattice(from, source)
        try copy(from, toNewFile: destination)
        return (try FileManager.default.attributesOfItem(atPath: destination)[.size] as? Int) ?? 0
    }

    /// Restores a backup as the database at `destination`, which must not exist yet (an
    /// empty data directory): refused over an existing installation.
    public static func restore(backupAt source: String, to destination: String) throws {
        guard FileManager.default.fileExists(atPath: source) else { throw LatticeError.notFound("backup \(source)") }
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw LatticeError(
                .conflict,
                code: "Conflict",
                "\(destination) exists: restore into an empty data directory, never over a live one"
            )
        }
        var readOnly = Configuration()
        readOnly.readonly = true
        let from = try DatabaseQueue(path: source, configuration: readOnly)
        try checkIsLattice(from, source)
        try copy(from, toNewFile: destination)
    }

    static func copy(_ from: DatabaseQueue, toNewFile destination: String) throws {
        do {
            let to = try DatabaseQueue(path: destination)
            try from.backup(to: to)
            try to.close()
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: destination)
        } catch {
            try? FileManager.default.removeItem(atPath: destination)
            throw error
        }
    }

    /// A file that is not a Lattice database (no migrations table) is refused with a clear
    /// message rather than copied.
    static func checkIsLattice(_ database: DatabaseQueue, _ path: String) throws {
        let isLattice = try database.read { db in try db.tableExists("grdb_migrations") && db.tableExists("instances") }
        guard isLattice else {
            throw LatticeError(.badRequest, code: "BadRequest", "\(path) is not a Lattice database")
        }
    }
}
