import Foundation
import LatticeDomain
import LatticeStore
import PostgresNIO

extension PostgresStore {

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

}
