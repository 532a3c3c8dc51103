import Foundation
import GRDB
import LatticeDomain
import LatticeStore

extension SQLiteStore {
    public func createSSHKey(_ key: SSHKeyRecord) async throws {
        try await transaction { db in
            let count =
                try Int.fetchOne(
                    db,
                    sql: "SELECT COUNT(*) FROM ssh_keys WHERE namespace = ?",
                    arguments: [key.namespace]
                )
                ?? 0
            try SSHKeyRules.checkRoom(count: count)
            let duplicate = try Bool.fetchOne(
                db,
                sql: "SELECT 1 FROM ssh_keys WHERE namespace = ? AND fingerprint = ?",
                arguments: [key.namespace, key.fingerprint]
            )
            if duplicate != nil { throw SSHKeyRules.duplicate(key.fingerprint) }
            try db.run(
                sql: """
                    INSERT INTO ssh_keys (id, namespace, name, public_key, fingerprint, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    key.id, key.namespace, key.name, key.publicKey, key.fingerprint,
                    key.createdAt.timeIntervalSince1970,
                ]
            )
        }
    }

    public func sshKeys(namespace: String) async throws -> [SSHKeyRecord] {
        try await writer.read { db in
            try Row.fetchAll(
                try db.cachedStatement(sql: "SELECT * FROM ssh_keys WHERE namespace = ? ORDER BY created_at, id"),
                arguments: [namespace]
            ).map { row in
                SSHKeyRecord(
                    id: row["id"],
                    namespace: row["namespace"],
                    name: row["name"],
                    publicKey: row["public_key"],
                    fingerprint: row["fingerprint"],
                    createdAt: Date(timeIntervalSince1970: row["created_at"])
                )
            }
        }
    }

    public func deleteSSHKey(id: String, namespace: String) async throws {
        try await transaction { db in
            try db.run(sql: "DELETE FROM ssh_keys WHERE id = ? AND namespace = ?", arguments: [id, namespace])
            guard db.changesCount == 1 else { throw LatticeError.notFound("ssh key '\(id)'") }
        }
    }
}

extension SQLiteStore {
    public func sshPortHolders() async throws -> [Int: String] {
        try await writer.read { db in
            var holders: [Int: String] = [:]
            let rows = try Row.fetchCursor(
                try db.cachedStatement(sql: "SELECT ssh_port, name FROM instances WHERE ssh_port IS NOT NULL")
            )
            while let row = try rows.next() { holders[row[0]] = row[1] }
            return holders
        }
    }

    public func instanceName(holdingSSHPort port: Int) async throws -> String? {
        try await writer.read { db in
            try String.fetchOne(
                try db.cachedStatement(sql: "SELECT name FROM instances WHERE ssh_port = ?"),
                arguments: [port]
            )
        }
    }
}

extension SQLiteStore {
    public func instanceName(uid: String) async throws -> String? {
        try await writer.read { db in
            try String.fetchOne(
                try db.cachedStatement(sql: "SELECT name FROM instances WHERE json_extract(doc, '$.uid') = ?"),
                arguments: [uid]
            )
        }
    }
}

extension SQLiteStore {
    public func setDrained(node: String, _ drained: Bool, at: Date) async throws {
        try await transaction { db in
            if drained {
                try db.run(
                    sql: "INSERT INTO node_drains (node, since) VALUES (?, ?) ON CONFLICT (node) DO NOTHING",
                    arguments: [node, at.timeIntervalSince1970]
                )
            } else {
                try db.run(sql: "DELETE FROM node_drains WHERE node = ?", arguments: [node])
            }
        }
    }

    public func drainedNodes() async throws -> [NodeDrain] {
        try await writer.read { db in
            try Row.fetchAll(try db.cachedStatement(sql: "SELECT node, since FROM node_drains ORDER BY node")).map {
                NodeDrain(node: $0["node"], since: Date(timeIntervalSince1970: $0["since"]))
            }
        }
    }
}
