import Foundation
import GRDB
import LatticeDomain

/// JSON documents for the columns that hold whole records.
enum Documents {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try decoder.decode(type, from: Data(text.utf8))
    }
}

extension TokenRecord {
    init(row: Row) {
        let lastUsed: Double? = row["last_used_at"]
        self.init(
            id: row["id"], namespace: row["namespace"], name: row["name"], secretHash: row["secret_hash"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]), expiresAt: Date(timeIntervalSince1970: row["expires_at"]),
            lastUsedAt: lastUsed.map(Date.init(timeIntervalSince1970:))
        )
    }
}

extension SQLiteStore {
    static func insert(_ token: TokenRecord, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO tokens (id, namespace, name, secret_hash, created_at, expires_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            arguments: [token.id, token.namespace, token.name, token.secretHash, token.createdAt.timeIntervalSince1970,
                        token.expiresAt.timeIntervalSince1970, token.lastUsedAt?.timeIntervalSince1970]
        )
    }

    static func insert(_ user: User, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO users (namespace, admin, created_at) VALUES (?, ?, ?)",
                       arguments: [user.namespace, user.isAdmin, user.createdAt.timeIntervalSince1970])
    }

    static func fetchInstance(_ db: Database, name: String) throws -> Instance? {
        guard let doc = try String.fetchOne(db, sql: "SELECT doc FROM instances WHERE name = ?", arguments: [name]) else { return nil }
        return try Documents.decode(Instance.self, doc)
    }

    /// Rewrites an instance row and makes its GPU rows match its placement.
    static func write(_ instance: Instance, _ db: Database) throws {
        try db.execute(
            sql: "UPDATE instances SET generation = ?, placed_node = ?, doc = ? WHERE name = ?",
            arguments: [instance.generation, instance.placement?.node, try Documents.encode(instance), instance.name]
        )
        try syncAllocations(instance, db)
    }

    static func syncAllocations(_ instance: Instance, _ db: Database) throws {
        try db.execute(sql: "DELETE FROM gpu_allocations WHERE instance_name = ?", arguments: [instance.name])
        guard let placement = instance.placement else { return }
        for index in placement.gpuIndices {
            // The primary key (node, gpu_index) is the last line of defence against overselling.
            try db.execute(sql: "INSERT INTO gpu_allocations (node, gpu_index, instance_name) VALUES (?, ?, ?)",
                           arguments: [placement.node, index, instance.name])
        }
    }

    static func usage(_ db: Database) throws -> [String: NodeUsage] {
        var usage: [String: NodeUsage] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT node, gpu_index FROM gpu_allocations") {
            let node: String = row["node"]
            usage[node, default: NodeUsage()].gpuIndices.insert(row["gpu_index"])
        }
        for row in try Row.fetchAll(db, sql: "SELECT placed_node, SUM(cpu) AS cpu, SUM(memory) AS memory FROM instances WHERE placed_node IS NOT NULL GROUP BY placed_node") {
            let node: String = row["placed_node"]
            usage[node, default: NodeUsage()].cpuCores = row["cpu"]
            usage[node, default: NodeUsage()].memoryGiB = row["memory"]
        }
        return usage
    }

    static func place(_ instance: Instance, on nodes: [ClusterNode], _ db: Database) throws -> GPUPlacement {
        let usage = try usage(db)
        let capacities = nodes.map { NodeCapacity($0, usage: usage[$0.node.name]) }
        let request = PlacementRequest(cluster: instance.cluster, resources: instance.resources)
        guard let placement = PlacementPolicy.place(request, on: capacities) else {
            let free = PlacementPolicy.freeGPUs(model: request.gpuModel, on: capacities.filter { $0.cluster == request.cluster })
            throw LatticeError.insufficientCapacity(
                "no node in cluster \(request.cluster) has \(request.gpuCount) free \(request.gpuModel) GPU(s) with \(request.cpuCores) CPU cores and \(request.memoryGiB)Gi memory (\(free) \(request.gpuModel) GPU(s) free in all)")
        }
        return placement
    }
}
