import Foundation
import LatticeDomain

/// One value a statement binds or a row holds, in the few types both stores speak.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    /// SQLite keeps it as the integer 0 or 1, PostgreSQL as `BOOLEAN`.
    case boolean(Bool)
    case blob(Data)
}

/// A statement in the SQL both stores understand, its values bound at `?` (written with
/// string interpolation, so no value is ever spliced into the text):
///
///     StoreSQL("SELECT doc FROM images WHERE namespace = \(namespace)")
///
/// Each dialect renders the placeholders its own way (PostgreSQL's `$1`, `$2`, ...).
public struct StoreSQL: Sendable, Equatable, ExpressibleByStringInterpolation {
    /// The statement with a `?` for each value.
    public private(set) var text: String
    /// The values, in the order of their placeholders.
    public private(set) var binds: [SQLValue]
    /// A read inside a write that locks the rows it reads (PostgreSQL's `FOR UPDATE` or
    /// `FOR SHARE`; SQLite's one writer needs no row lock).
    public private(set) var rowLock: RowLock?

    /// The lock a read takes on what it returns, as PostgreSQL writes it.
    public enum RowLock: String, Sendable {
        /// Nobody else writes or locks the rows until this write commits.
        case update = "FOR UPDATE"
        /// Nobody else changes the rows until this write commits; others may read and share.
        case share = "FOR SHARE"
        /// Keeps the row from being deleted or locked `FOR UPDATE`, but not from an update of
        /// its other columns: the fenced writes' lock on the lease row, which the holder's own
        /// renewal does not wait for and a takeover (`FOR UPDATE` first) does.
        case keyShare = "FOR KEY SHARE"
    }

    /// A statement with no values.
    public init(stringLiteral value: String) {
        text = value
        binds = []
    }

    /// A statement whose interpolations are values (bound, never spliced in), or `raw:` and
    /// `list:` parts of the store's own making.
    public init(stringInterpolation: Interpolation) {
        text = stringInterpolation.text
        binds = stringInterpolation.binds
    }

    /// The same read, locking the rows it returns until the write commits.
    public func forUpdate() -> StoreSQL { locking(.update) }

    /// The same read, keeping the rows it returns from changing until the write commits.
    public func forShare() -> StoreSQL { locking(.share) }

    /// The same read, keeping the rows it returns from being deleted or locked for update.
    public func forKeyShare() -> StoreSQL { locking(.keyShare) }

    func locking(_ lock: RowLock) -> StoreSQL {
        var locked = self
        locked.rowLock = lock
        return locked
    }

    /// The text with each `?` replaced by what `placeholder` makes of its position (from 1).
    public func rendered(_ placeholder: (Int) -> String) -> String {
        var out = ""
        out.reserveCapacity(text.count + binds.count * 2)
        var position = 0
        for character in text {
            if character == "?" {
                position += 1
                out += placeholder(position)
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// Builds a statement: literal text as written, each value as a placeholder.
    public struct Interpolation: StringInterpolationProtocol {
        var text = ""
        var binds: [SQLValue] = []

        /// Room for the text and the values.
        public init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + interpolationCount)
            binds.reserveCapacity(interpolationCount)
        }

        /// SQL text, as written.
        public mutating func appendLiteral(_ literal: String) { text += literal }

        /// One value, as a placeholder (the `appendInterpolation`s after it are this one for
        /// each Swift type a store writes).
        public mutating func appendInterpolation(_ value: SQLValue) {
            text += "?"
            binds.append(value)
        }

        public mutating func appendInterpolation(_ value: String) { appendInterpolation(SQLValue.text(value)) }
        public mutating func appendInterpolation(_ value: Int) { appendInterpolation(SQLValue.integer(Int64(value))) }
        public mutating func appendInterpolation(_ value: Int64) { appendInterpolation(SQLValue.integer(value)) }
        public mutating func appendInterpolation(_ value: Double) { appendInterpolation(SQLValue.real(value)) }
        public mutating func appendInterpolation(_ value: Bool) { appendInterpolation(SQLValue.boolean(value)) }
        public mutating func appendInterpolation(_ value: Data) { appendInterpolation(SQLValue.blob(value)) }
        /// A time, as the seconds since 1970 both stores keep.
        public mutating func appendInterpolation(_ value: Date) {
            appendInterpolation(SQLValue.real(value.timeIntervalSince1970))
        }
        /// A time or NULL.
        public mutating func appendInterpolation(_ value: Date?) {
            appendInterpolation(value.map { SQLValue.real($0.timeIntervalSince1970) } ?? .null)
        }
        /// Text or NULL.
        public mutating func appendInterpolation(_ value: String?) {
            appendInterpolation(value.map(SQLValue.text) ?? .null)
        }
        /// Bytes or NULL.
        public mutating func appendInterpolation(_ value: Data?) {
            appendInterpolation(value.map(SQLValue.blob) ?? .null)
        }
        /// A fragment with its own binds (a filter shared by a count and a page).
        public mutating func appendInterpolation(_ fragment: StoreSQL) {
            text += fragment.text
            binds += fragment.binds
        }
        /// Text of the store's own making (a column list), never a value from outside.
        public mutating func appendInterpolation(raw text: String) { self.text += text }
        /// A list for `IN (...)`: one placeholder per value (an empty list matches nothing).
        public mutating func appendInterpolation(list values: [String]) {
            guard !values.isEmpty else {
                text += "NULL"
                return
            }
            text += Array(repeating: "?", count: values.count).joined(separator: ", ")
            binds += values.map(SQLValue.text)
        }
    }
}

/// A row as a read returns it, its columns in the order the statement names them.
///
/// Each accessor reads column `index` as one type and throws `SQLRowError` when the column
/// holds another (a column past the end reads as NULL); the `optional` ones answer nil for
/// NULL, the others throw.
public struct SQLRow: Sendable, Equatable {
    /// The columns.
    public var values: [SQLValue]

    /// A row of these columns.
    public init(_ values: [SQLValue]) { self.values = values }

    private func value(_ index: Int) -> SQLValue { index < values.count ? values[index] : .null }

    private func mismatch(_ index: Int, _ wanted: String) -> any Error {
        SQLRowError(description: "column \(index) holds \(value(index)), not \(wanted)")
    }

    /// Text.
    public func text(_ index: Int) throws -> String {
        guard let text = try optionalText(index) else { throw mismatch(index, "text") }
        return text
    }

    /// Text or NULL.
    public func optionalText(_ index: Int) throws -> String? {
        switch value(index) {
        case .null: return nil
        case .text(let text): return text
        default: throw mismatch(index, "text")
        }
    }

    /// An integer (a boolean reads as 0 or 1).
    public func integer(_ index: Int) throws -> Int {
        guard let value = try optionalInteger(index) else { throw mismatch(index, "an integer") }
        return value
    }

    /// An integer or NULL.
    public func optionalInteger(_ index: Int) throws -> Int? {
        switch value(index) {
        case .null: return nil
        case .integer(let value): return Int(value)
        case .boolean(let value): return value ? 1 : 0
        default: throw mismatch(index, "an integer")
        }
    }

    /// A number (an integer reads as a double).
    public func real(_ index: Int) throws -> Double {
        guard let value = try optionalReal(index) else { throw mismatch(index, "a number") }
        return value
    }

    /// A number or NULL.
    public func optionalReal(_ index: Int) throws -> Double? {
        switch value(index) {
        case .null: return nil
        case .real(let value): return value
        case .integer(let value): return Double(value)
        default: throw mismatch(index, "a number")
        }
    }

    /// A time kept as seconds since 1970.
    public func date(_ index: Int) throws -> Date { Date(timeIntervalSince1970: try real(index)) }

    /// A time or NULL.
    public func optionalDate(_ index: Int) throws -> Date? {
        try optionalReal(index).map(Date.init(timeIntervalSince1970:))
    }

    /// A boolean (SQLite keeps it as an integer).
    public func bool(_ index: Int) throws -> Bool {
        switch value(index) {
        case .boolean(let value): return value
        case .integer(let value): return value != 0
        default: throw mismatch(index, "a boolean")
        }
    }

    /// Bytes or NULL.
    public func optionalBlob(_ index: Int) throws -> Data? {
        switch value(index) {
        case .null: return nil
        case .blob(let data): return data
        default: throw mismatch(index, "bytes")
        }
    }
}

/// A row that does not hold what the store's own schema says it holds (a bug, never bad input).
public struct SQLRowError: Error, CustomStringConvertible {
    /// Which column held what.
    public var description: String
}

/// Names of the locks a write takes (`SQLDialect.transact`), shared by every write that
/// must go one at a time with the others of its kind, whichever store code makes it.
public enum StoreLock {
    /// Every write that checks or moves a namespace's money.
    public static func wallet(_ namespace: String) -> String { "wallet/" + namespace }
}

/// What a write decided from what it read: the statements to run, the changes to tell the
/// change feed once they commit, and the answer.
public struct SQLDecision<Result: Sendable>: Sendable {
    /// Statements run in order in the write's transaction.
    public var writes: [StoreSQL]
    /// Told to the change feed once the writes commit.
    public var notices: [StoreChange]
    /// What the write answers.
    public var result: Result

    /// A decision that writes `writes` and answers `result`.
    public init(writes: [StoreSQL] = [], notices: [StoreChange] = [], result: Result) {
        self.writes = writes
        self.notices = notices
        self.result = result
    }
}

extension SQLDecision where Result == Void {
    /// A decision with nothing to answer.
    public init(writes: [StoreSQL] = [], notices: [StoreChange] = []) {
        self.init(writes: writes, notices: notices, result: ())
    }
}

/// What a store's SQL dialect gives the code both stores share (`SQLDialect+*.swift`): one
/// read, and one write transaction shaped as read, decide, apply. The decision between the
/// read and the apply is synchronous and pure, so SQLite runs the whole write inside GRDB's
/// synchronous write and PostgreSQL in one transaction of a few round trips.
public protocol SQLDialect: Sendable {
    /// The limits of a namespace that has none of its own and is not an admin's.
    var defaultQuota: Quota { get }
    /// How instance records are kept (their secrets sealed at rest, if a key is set).
    var documents: InstanceDocuments { get }

    /// The text (or null) at `path` inside the JSON document in `column`, as an expression.
    func jsonText(_ column: String, _ path: String...) -> String

    /// One read, outside any write.
    func query(_ sql: StoreSQL) async throws -> [SQLRow]

    /// One write transaction: takes the named `locks` (PostgreSQL: transaction-scoped
    /// advisory locks, so two replicas' writes on one thing go one at a time; SQLite's one
    /// writer needs none), checks the leader fence if the write is `fenced` (`LeaseStore`:
    /// refused with `503 NotLeader` unless this replica still holds the lease at its epoch),
    /// runs `reads`, lets `decide` judge their rows, runs the statements it returns, and once
    /// they have committed tells the change feed its notices. A decision that throws writes
    /// nothing.
    func transact<Result: Sendable>(
        locks: [String],
        fenced: Bool,
        reads: [StoreSQL],
        _ decide: @escaping @Sendable ([[SQLRow]]) throws -> SQLDecision<Result>
    ) async throws -> Result
}

extension SQLDialect {
    /// A write that the fence does not guard (any replica may make it).
    public func transact<Result: Sendable>(
        locks: [String],
        reads: [StoreSQL],
        _ decide: @escaping @Sendable ([[SQLRow]]) throws -> SQLDecision<Result>
    ) async throws -> Result {
        try await transact(locks: locks, fenced: false, reads: reads, decide)
    }

    /// A write that reads nothing first.
    public func execute(_ writes: [StoreSQL], notices: [StoreChange] = [], fenced: Bool = false) async throws {
        try await transact(locks: [], fenced: fenced, reads: []) { _ in SQLDecision(writes: writes, notices: notices) }
    }
}
