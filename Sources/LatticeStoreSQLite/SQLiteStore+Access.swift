import Foundation
import GRDB
import LatticeDomain
import LatticeStore

extension SQLiteStore {

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

}
