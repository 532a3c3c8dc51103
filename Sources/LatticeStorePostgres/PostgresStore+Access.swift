import Foundation
import LatticeDomain
import LatticeStore
import PostgresNIO

extension PostgresStore {
    public func createSSHKey(_ key: SSHKeyRecord) async throws {
        try await transaction { tx in
            // One namespace's keys are counted and checked under its own lock, so two
            // concurrent adds cannot both pass the limit or both add one fingerprint.
            try await tx.run("SELECT pg_advisory_xact_lock(hashtext(\("ssh-keys/" + key.namespace)))")
            let count =
                try await tx.value("SELECT COUNT(*) FROM ssh_keys WHERE namespace = \(key.namespace)", as: Int.self)
                ?? 0
            try SSHKeyRules.checkRoom(count: count)
            let duplicate = try await tx.rows(
                "SELECT 1 FROM ssh_keys WHERE namespace = \(key.namespace) AND fingerprint = \(key.fingerprint)"
            )
            if !duplicate.isEmpty { throw SSHKeyRules.duplicate(key.fingerprint) }
            try await tx.run(
                """
                INSERT INTO ssh_keys (id, namespace, name, public_key, fingerprint, created_at)
                VALUES (\(key.id), \(key.namespace), \(key.name), \(key.publicKey), \(key.fingerprint),
                    \(Self.seconds(key.createdAt)))
                """
            )
        }
    }

    public func sshKeys(namespace: String) async throws -> [SSHKeyRecord] {
        try await read { tx in
            try await tx.rows(
                """
                SELECT id, namespace, name, public_key, fingerprint, created_at FROM ssh_keys
                WHERE namespace = \(namespace) ORDER BY created_at, id
                """
            ).map { row in
                let (id, namespace, name, publicKey, fingerprint, created) = try row.decode(
                    (String, String, String, String, String, Double).self
                )
                return SSHKeyRecord(
                    id: id,
                    namespace: namespace,
                    name: name,
                    publicKey: publicKey,
                    fingerprint: fingerprint,
                    createdAt: Date(timeIntervalSince1970: created)
                )
            }
        }
    }

    public func deleteSSHKey(id: String, namespace: String) async throws {
        try await read { tx in
            let deleted = try await tx.rows(
                "DELETE FROM ssh_keys WHERE id = \(id) AND namespace = \(namespace) RETURNING id"
            )
            guard !deleted.isEmpty else { throw LatticeError.notFound("ssh key '\(id)'") }
        }
    }
}

extension PostgresStore {
    public func sshPortHolders() async throws -> [Int: String] {
        try await read { tx in
            var holders: [Int: String] = [:]
            for row in try await tx.rows("SELECT ssh_port, name FROM instances WHERE ssh_port IS NOT NULL") {
                let (port, name) = try row.decode((Int, String).self)
                holders[port] = name
            }
            return holders
        }
    }

    public func instanceName(holdingSSHPort port: Int) async throws -> String? {
        try await read { tx in
            try await tx.value("SELECT name FROM instances WHERE ssh_port = \(port)", as: String.self)
        }
    }
}

extension PostgresStore {
    public func instanceName(uid: String) async throws -> String? {
        try await read { tx in
            try await tx.value("SELECT name FROM instances WHERE doc::jsonb ->> 'uid' = \(uid)", as: String.self)
        }
    }
}

extension PostgresStore {
    public func setDrained(node: String, _ drained: Bool, at: Date) async throws {
        try await read { tx in
            if drained {
                try await tx.run(
                    """
                    INSERT INTO node_drains (node, since) VALUES (\(node), \(Self.seconds(at)))
                    ON CONFLICT (node) DO NOTHING
                    """
                )
            } else {
                try await tx.run("DELETE FROM node_drains WHERE node = \(node)")
            }
        }
    }

    public func drainedNodes() async throws -> [NodeDrain] {
        try await read { tx in
            try await tx.rows("SELECT node, since FROM node_drains ORDER BY node").map { row in
                let (node, since) = try row.decode((String, Double).self)
                return NodeDrain(node: node, since: Date(timeIntervalSince1970: since))
            }
        }
    }
}
