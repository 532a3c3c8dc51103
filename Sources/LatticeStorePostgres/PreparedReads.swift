import LatticeDomain
import PostgresNIO

/// The reads of the hot paths (an instance's owner and generation, a list page), prepared
/// once per connection: PostgreSQL parses and plans them once instead of on every call.
enum PreparedReads {
    /// `GET .../instances/{name}` when the version cache does not have it.
    struct InstanceVersionByName: PostgresPreparedStatement {
        static let sql = "SELECT name, namespace, cluster, generation FROM instances WHERE name = $1"
        typealias Row = InstanceVersion

        let name: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(name)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> InstanceVersion {
            let (name, namespace, cluster, generation) = try row.decode((String, String, String, Int).self)
            return InstanceVersion(name: name, namespace: namespace, cluster: cluster, generation: generation)
        }
    }

    /// A list page and the namespace's count in the cluster, in one statement (one snapshot):
    /// every row carries the count; no instance on the page gives one row without one.
    struct InstancePage: PostgresPreparedStatement {
        static let sql = """
            SELECT c.n, i.name, i.namespace, i.cluster, i.generation
            FROM (
                SELECT COALESCE((SELECT n FROM instance_counts WHERE namespace = $1 AND cluster = $2), 0)::BIGINT AS n
            ) AS c
            LEFT JOIN LATERAL (
                SELECT name, namespace, cluster, generation, created_at FROM instances
                WHERE namespace = $1 AND cluster = $2
                ORDER BY created_at DESC, name LIMIT $3 OFFSET $4
            ) AS i ON TRUE
            ORDER BY i.created_at DESC, i.name
            """
        typealias Row = (total: Int, version: InstanceVersion?)

        let namespace: String
        let cluster: String
        let limit: Int
        let offset: Int

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(namespace)
            bindings.append(cluster)
            bindings.append(limit)
            bindings.append(offset)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            let (total, name, namespace, cluster, generation) = try row.decode(
                (Int, String?, String?, String?, Int?).self
            )
            guard let name, let namespace, let cluster, let generation else { return (total, nil) }
            return (total, InstanceVersion(name: name, namespace: namespace, cluster: cluster, generation: generation))
        }
    }
}

extension Transaction {
    /// Runs a prepared statement (prepared on this connection the first time): one round trip.
    func execute<Statement: PostgresPreparedStatement>(_ statement: Statement) async throws -> [Statement.Row] {
        trips.count()
        var rows: [Statement.Row] = []
        for try await row in try await connection.execute(statement, logger: logger) { rows.append(row) }
        return rows
    }
}
