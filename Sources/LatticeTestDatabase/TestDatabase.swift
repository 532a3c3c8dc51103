import Foundation
import LatticeDomain
import LatticeStore
import LatticeStorePostgres
import Logging
import PostgresNIO

/// The throwaway PostgreSQL server `scripts/test.sh` starts (`LATTICE_TEST_DATABASE_URL`).
/// Each store made here gets a database of its own, so tests never see each other's rows.
public enum TestDatabase {
    public static let url = ProcessInfo.processInfo.environment["LATTICE_TEST_DATABASE_URL"].flatMap {
        $0.isEmpty ? nil : $0
    }
    /// Under CI (`CI` set) the PostgreSQL cases run whether or not a server was given, so
    /// a CI without one fails them instead of passing without PostgreSQL.
    public static let required = ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty } ?? false
    /// Whether the suites include their PostgreSQL cases.
    public static let runs = url != nil || required

    /// How long a test's store waits for the server before it answers `503`. The suites run
    /// in parallel on a shared 2-core machine, where the first seconds (every suite creating
    /// its databases at once) can keep a statement waiting longer than the 5 s a server
    /// waits; the tests check what a call does, not how fast, so they wait longer.
    public static let timeout: Duration = .seconds(60)

    /// A new, empty database on the test server, and a store on it.
    public static func store(
        schedule: MeterSchedule = MeterSchedule(),
        defaultQuota: Quota = .unlimited
    ) async throws -> PostgresStore {
        try await open(try await freshDatabase(), schedule: schedule, defaultQuota: defaultQuota)
    }

    /// A store on the database at `url`, with the tests' `timeout`.
    public static func open(
        _ url: String,
        schedule: MeterSchedule = MeterSchedule(),
        defaultQuota: Quota = .unlimited,
        seal: SecretSeal? = nil
    ) async throws -> PostgresStore {
        try await PostgresStore(
            url: url,
            schedule: schedule,
            defaultQuota: defaultQuota,
            timeout: timeout,
            seal: seal
        )
    }

    /// The URL of a new, empty database on the test server.
    public static func freshDatabase() async throws -> String {
        guard let url, var components = URLComponents(string: url) else {
            throw LatticeError.notFound("LATTICE_TEST_DATABASE_URL")
        }
        let name = "lattice_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await createDatabase(name, on: components)
        components.path = "/" + name
        return components.string!
    }

    /// The first column of every row `sql` gives, as text, read over a connection of its own
    /// (what a dump of the database would hold).
    public static func texts(_ sql: String, in url: String) async throws -> [String] {
        guard let components = URLComponents(string: url) else { throw LatticeError.notFound(url) }
        let logger = Logger(label: "lattice.test.postgres")
        let connection = try await connect(components, logger: logger)
        do {
            var texts: [String] = []
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) {
                texts.append(try row.decode(String.self))
            }
            try? await connection.close()
            return texts
        } catch {
            try? await connection.close()
            throw error
        }
    }

    private static func connect(_ server: URLComponents, logger: Logger) async throws -> PostgresConnection {
        try await PostgresConnection.connect(
            configuration: PostgresConnection.Configuration(
                host: server.host ?? "127.0.0.1",
                port: server.port ?? 5432,
                username: server.user ?? "lattice",
                password: server.password,
                database: String(server.path.dropFirst()),
                tls: .disable
            ),
            id: 1,
            logger: logger
        )
    }

    /// `CREATE DATABASE` on the test server, over a connection of its own.
    private static func createDatabase(_ name: String, on server: URLComponents) async throws {
        let logger = Logger(label: "lattice.test.postgres")
        let connection = try await connect(server, logger: logger)
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
                .collect()
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}
