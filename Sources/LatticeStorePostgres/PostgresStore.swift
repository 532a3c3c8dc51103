import Foundation
import LatticeDomain
import LatticeStore
import Logging
import NIOSSL
import PostgresNIO
import Synchronization

/// The store on PostgreSQL, for control planes that outgrow one machine: several
/// `lattice serve` replicas share one database.
///
/// Every method is one transaction. What SQLite gets from its single writer, this store
/// gets from row locks:
/// - placement and SSH-port choice run under the row lock of `placement_version`, which
///   a write takes by raising the version before it reads any reservation, so two
///   replicas never place on the same free GPUs or hand out one port twice (the
///   `(node, gpu_index)` primary key and the unique port index stay the guard behind it);
/// - a write that changes an instance locks its row (`SELECT … FOR UPDATE`) and checks the
///   generation, and a write that moves money takes the namespace's wallet lock first (an
///   advisory lock), so the wallet check and the charges it allows are one decision;
/// - every charge carries an idempotency key with a unique index, so a period is never
///   charged twice.
///
/// Placement and port state is kept in memory only with the placement version it is exact
/// at (`PlacementMemo`): another replica may have changed it since.
public final class PostgresStore: Store {
    let client: PostgresClient
    let logger: Logger
    let schedule: MeterSchedule
    public let defaultQuota: Quota
    /// How long a call waits for the database before it answers `503`.
    let timeout: Duration
    public let fence = LeaderFence()
    /// This replica's capacity index, checked against the database's placement version.
    let memo = PlacementMemo()
    /// Every statement sent (`BEGIN` and `COMMIT` included).
    public let roundTrips = RoundTrips()
    /// Every instance's owner and generation for `GET` and list pages, trusted while the
    /// change feed listens.
    let directory = InstanceDirectory()
    /// Every webhook, read once and kept while the change feed listens (the leader's sender
    /// asks on every commit that records events).
    let memos = FeedMemos()
    /// Instance records answered from memory while the directory vouches for them.
    let records = InstanceRecords()
    /// Instance rows, with their secrets sealed when the store has a key.
    public let documents: InstanceDocuments
    private let runner: Task<Void, Never>

    /// Connects (the pool runs until `close()`), then applies the migrations under an
    /// advisory lock, so replicas starting together migrate once.
    public init(
        url: String,
        schedule: MeterSchedule = MeterSchedule(),
        defaultQuota: Quota = .unlimited,
        timeout: Duration = .seconds(5),
        seal: SecretSeal? = nil,
        logger: Logger = Logger(label: "lattice.postgres")
    ) async throws {
        let configuration = try DatabaseURL.parse(url).clientConfiguration()
        // The pool logs each failed connection attempt (every few seconds while the server
        // is away); the store's own 503s say it once per call instead.
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .error)
        let background = quiet
        let client = PostgresClient(configuration: configuration, backgroundLogger: background)
        self.client = client
        self.logger = background
        self.schedule = schedule
        self.defaultQuota = defaultQuota
        self.timeout = timeout
        documents = InstanceDocuments(seal: seal)
        runner = Task { await client.run() }
        do {
            try await withDeadline { try await PostgresSchema.migrate(client, logger: background) }
            if let seal { try await sealClearSecrets(seal) }
        } catch {
            runner.cancel()
            throw error
        }
    }

    /// Checks that the database's sealed secrets are sealed with `seal` (the first replica
    /// records its key), then seals every secret a row still holds in the clear. Each row
    /// is rewritten only if it is still the one read, so a replica already serving loses
    /// no write.
    private func sealClearSecrets(_ seal: SecretSeal) async throws {
        try await transaction { tx in
            try await tx.run("INSERT INTO seal_key (id, key_id) VALUES (1, \(seal.keyID)) ON CONFLICT (id) DO NOTHING")
            let recorded = try await tx.value("SELECT key_id FROM seal_key WHERE id = 1", as: String.self)
            if let recorded, recorded != seal.keyID {
                throw SealError.wrongKey(sealedWith: recorded, have: seal.keyID)
            }
        }
        let rows = try await read { tx in
            try await tx.rows(
                "SELECT name, doc FROM instances WHERE doc NOT LIKE \(SecretSeal.sealedRowPattern)"
            ).map { try $0.decode((String, String).self) }
        }
        for (name, doc) in rows {
            let instance = try Documents.decode(Instance.self, doc)
            guard SecretSeal.holdsClearSecrets(instance) else { continue }
            let sealed = try Documents.encode(try seal.sealing(instance))
            try await transaction { tx in
                try await tx.run("UPDATE instances SET doc = \(sealed) WHERE name = \(name) AND doc = \(doc)")
            }
        }
    }

    /// Closes the pool's connections.
    public func close() {
        runner.cancel()
    }

    deinit { runner.cancel() }

    // MARK: Transactions

    /// Runs `body` in one transaction on one pooled connection: committed when it returns,
    /// rolled back when it throws (the body's own error is what the caller sees).
    ///
    /// Serving a keyed request (`IdempotencyScope`), the transaction also records the
    /// request's outcome under its key, so the two commit together.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (Transaction) async throws -> T) async throws -> T {
        let pending = IdempotencyScope.pending
        return try await withDeadline {
            try await self.client.withConnection { connection in
                let written = WrittenInstances()
                let transaction = Transaction(
                    connection: connection,
                    logger: self.logger,
                    trips: self.roundTrips,
                    written: written
                )
                try await transaction.run("BEGIN")
                do {
                    let result = try await body(transaction)
                    if let record = StoreQueries.record(pending) { _ = try await transaction.shared(record) }
                    try await transaction.run("COMMIT")
                    for change in written.changes { self.directory.apply(change) }
                    self.records.apply(written.rows)
                    return result
                } catch {
                    try? await transaction.run("ROLLBACK")
                    throw error
                }
            }
        }
    }

    /// A read (or a single-statement write) on one pooled connection.
    func read<T: Sendable>(_ body: @escaping @Sendable (Transaction) async throws -> T) async throws -> T {
        try await withDeadline {
            try await self.client.withConnection { connection in
                try await body(Transaction(connection: connection, logger: self.logger, trips: self.roundTrips))
            }
        }
    }

    /// Gives up on a call the database has not answered within `timeout` (a lost server
    /// leaves the pool waiting for a connection): the call ends with a `503` and, because it
    /// never committed, changed nothing.
    private func withDeadline<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        // The call and a timer race; the first to finish answers, and the caller does not
        // wait for the loser (a connection the network swallowed may never answer a cancel).
        let race = Race<T>()
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    race.start(continuation)
                    let work = Task {
                        do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
                    }
                    let timer = Task { [timeout] in
                        try? await Task.sleep(for: timeout)
                        if race.finish(.failure(Self.unavailable)) { work.cancel() }
                    }
                    race.onFinish { timer.cancel() }
                }
            } onCancel: {
                race.finish(.failure(CancellationError()))
            }
        } catch {
            throw Self.translate(error)
        }
    }

    /// Lattice's own errors pass; a lost or refused connection becomes a `503` that says
    /// so; a unique violation is a conflict; anything else from the server is a `500`
    /// without the SQL in it.
    static func translate(_ error: any Error) -> any Error {
        if error is LatticeError || error is StoreError { return error }
        guard let error = error as? PSQLError else { return error }
        if error.code == .server {
            let state = error.serverInfo?[.sqlState] ?? ""
            if state == "23505" {
                return LatticeError(.conflict, code: "Conflict", "a concurrent write changed the same record; retry")
            }
            // 57P01..57P03: the server is shutting down or not yet accepting connections;
            // 53300: too many connections.
            if state.hasPrefix("57P") || state == "53300" || state.hasPrefix("08") {
                return unavailable
            }
            return LatticeError(
                .internalError,
                code: "DatabaseError",
                "the database refused the statement (SQLSTATE \(state))"
            )
        }
        return unavailable
    }

    static let unavailable = LatticeError(
        .unavailable,
        code: "DatabaseUnavailable",
        "the database does not answer; the call changed nothing, try again shortly"
    )
}

/// One connection inside a transaction (or a read), with the few calls the store makes.
/// Every call is one statement and one round trip to the server, counted in `trips`.
struct Transaction {
    let connection: PostgresConnection
    let logger: Logger
    let trips: RoundTrips
    /// What this transaction's instance writes change in the directory (nil outside a
    /// transaction): applied once it has committed, before the write answers.
    var written: WrittenInstances? = nil

    func run(_ query: PostgresQuery) async throws {
        trips.count()
        _ = try await connection.query(query, logger: logger).collect()
    }

    /// Every row of the answer.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        trips.count()
        return try await connection.query(query, logger: logger).collect()
    }

    /// The first column of the first row, if there is a row.
    func value<T: PostgresDecodable>(_ query: PostgresQuery, as type: T.Type = T.self) async throws -> T? {
        guard let row = try await rows(query).first else { return nil }
        return try row.decode(T.self)
    }

    /// The first column of every row.
    func values<T: PostgresDecodable>(_ query: PostgresQuery, as type: T.Type = T.self) async throws -> [T] {
        try await rows(query).map { try $0.decode(T.self) }
    }
}

/// What one transaction's instance writes change in the directory.
final class WrittenInstances: Sendable {
    private let state = Mutex<(changes: [DirectoryChange], rows: [WriteSet.InstanceRow])>(([], []))

    func add(_ change: DirectoryChange, _ row: WriteSet.InstanceRow) {
        state.withLock {
            $0.changes.append(change)
            $0.rows.append(row)
        }
    }

    var changes: [DirectoryChange] { state.withLock { $0.changes } }
    var rows: [WriteSet.InstanceRow] { state.withLock { $0.rows } }
}

/// Instance records as this replica last wrote or read them, each answered again only
/// while the directory (kept current by every replica's notices) says its generation is
/// still the newest, so a read never returns a record older than a committed write: every
/// write of an instance's record raises its generation (the same rule the API's rendered
/// JSON relies on). Bounded: emptied when full, the hot set refills it.
final class InstanceRecords: Sendable {
    private let records = Mutex<[String: Instance]>([:])
    private let capacity: Int

    init(capacity: Int = 20_000) { self.capacity = capacity }

    /// The record of `name` at `generation`, if kept.
    func record(_ name: String, generation: Int) -> Instance? {
        records.withLock { records in records[name].flatMap { $0.generation == generation ? $0 : nil } }
    }

    /// Keeps `instance` unless a newer generation is kept.
    func keep(_ instance: Instance) {
        records.withLock { records in
            if let kept = records[instance.name], kept.generation > instance.generation { return }
            if records.count >= capacity, records[instance.name] == nil { records.removeAll(keepingCapacity: true) }
            records[instance.name] = instance
        }
    }

    func forget(_ name: String) { _ = records.withLock { $0.removeValue(forKey: name) } }

    /// After a commit: what this replica's own write made of each record.
    func apply(_ rows: [WriteSet.InstanceRow]) {
        for row in rows {
            switch row {
            case .insert(let instance), .update(let instance): keep(instance)
            case .delete(let name, _): forget(name)
            }
        }
    }
}

/// Statements this store has sent (each one a round trip), for tests and benchmarks that
/// hold a call to a number of trips.
public final class RoundTrips: Sendable {
    private let sent = Mutex<Int>(0)

    func count() { sent.withLock { $0 += 1 } }

    public var total: Int { sent.withLock { $0 } }
}

/// `postgres://user:password@host:port/database?sslmode=disable|prefer|require`, as libpq
/// reads it; `?host=/run/postgresql` connects over that directory's unix socket.
struct DatabaseURL: Equatable {
    enum TLSMode: String { case disable, prefer, require }

    var username: String
    var password: String?
    var host: String
    var port: Int
    var database: String
    var socketDirectory: String?
    var tls: TLSMode

    static func parse(_ text: String) throws -> DatabaseURL {
        func invalid(_ why: String) -> LatticeError {
            LatticeError(
                .badRequest,
                code: "InvalidDatabaseURL",
                "--database-url: \(why); expected postgres://user:password@host:5432/database?sslmode=prefer"
            )
        }
        guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme)
        else { throw invalid("not a postgres:// URL") }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") },
            uniquingKeysWith: { _, last in last }
        )
        guard let tls = TLSMode(rawValue: query["sslmode"] ?? "prefer") else {
            throw invalid("sslmode must be disable, prefer or require")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        let username = components.user ?? ""
        guard !username.isEmpty else { throw invalid("no user name") }
        let socket = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        let host = components.host ?? ""
        guard !host.isEmpty || socket != nil else { throw invalid("no host") }
        return DatabaseURL(
            username: username.removingPercentEncoding ?? username,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            host: host,
            port: components.port ?? 5432,
            database: database.isEmpty ? username : database,
            socketDirectory: socket,
            tls: tls
        )
    }

    func clientConfiguration() -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socketDirectory {
            configuration = PostgresClient.Configuration(
                unixSocketPath: socketDirectory + "/.s.PGSQL.\(port)",
                username: username,
                password: password,
                database: database
            )
        } else {
            let tls: PostgresClient.Configuration.TLS =
                switch self.tls {
                case .disable: .disable
                case .prefer: .prefer(.makeClientConfiguration())
                case .require: .require(.makeClientConfiguration())
                }
            configuration = PostgresClient.Configuration(
                host: host,
                port: port,
                username: username,
                password: password,
                database: database,
                tls: tls
            )
        }
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = 16
        return configuration
    }
}

/// One answer out of several that race for it (`PostgresStore.withDeadline`).
final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var result: Result<T, any Error>?
        var finished: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let result = state.result { return result }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    /// Runs `action` once the race is decided (at once if it is).
    func onFinish(_ action: @escaping @Sendable () -> Void) {
        let decided = state.withLock { state -> Bool in
            if state.result != nil { return true }
            state.finished.append(action)
            return false
        }
        if decided { action() }
    }

    /// The first call decides and resumes the caller; later ones are ignored (false).
    @discardableResult
    func finish(_ outcome: Result<T, any Error>) -> Bool {
        let (won, continuation, actions) = state.withLock {
            state -> (Bool, CheckedContinuation<T, any Error>?, [@Sendable () -> Void]) in
            guard state.result == nil else { return (false, nil, []) }
            state.result = outcome
            defer {
                state.continuation = nil
                state.finished = []
            }
            return (true, state.continuation, state.finished)
        }
        guard won else { return false }
        continuation?.resume(with: outcome)
        for action in actions { action() }
        return true
    }
}
