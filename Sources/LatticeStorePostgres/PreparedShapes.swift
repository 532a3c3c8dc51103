import PostgresNIO
import Synchronization

/// Statements whose text is built at run time but takes only a few shapes (a write set's
/// statement: the parts present, every value a parameter; the shared dialect's statements),
/// prepared once per connection.
///
/// An unnamed statement is parsed, analysed and planned on every call, and for the write
/// statements of a create or an observation that was about two fifths of what PostgreSQL spent
/// on them. PostgresNIO prepares only statements whose text is a type's static property, so
/// each shape seen is given one of 128 numbered slot types (`Slot<...>`), whose `sql` reads the
/// shape's text from here. A slot's text never changes once given, so every connection and
/// every store in the process that prepares slot n prepares the same text. Shapes beyond the
/// slots run unnamed, as before.
final class PreparedShapes: Sendable {
    /// The one table of the process: a slot type's static `sql` has nowhere else to read from.
    static let shared = PreparedShapes()

    struct Shape: Sendable {
        let sql: String
        let types: [PostgresDataType]
    }

    /// Slot numbers are `bits`-digit binary numbers after a leading 1 (`SlotNumber`).
    private static let bits = 7
    static var capacity: Int { 1 << bits }

    private let state = Mutex<(slots: [String: Int], shapes: [Shape])>(([:], []))
    private let runners: [Runner]

    typealias Runner = @Sendable (Transaction, PostgresBindings) async throws -> [PostgresRow]

    private init() {
        self.runners = Self.runners(under: One.self, bits: Self.bits)
    }

    /// The slot of `sql`, given it now if it is new and a slot is free; nil if none is (or if
    /// the text came with other parameter types before).
    func slot(for sql: String, types: [PostgresDataType]) -> Int? {
        state.withLock { state in
            if let slot = state.slots[sql] { return state.shapes[slot].types == types ? slot : nil }
            guard state.shapes.count < Self.capacity else { return nil }
            state.slots[sql] = state.shapes.count
            state.shapes.append(Shape(sql: sql, types: types))
            return state.shapes.count - 1
        }
    }

    /// The shape given slot type number `number`.
    func shape(number: Int) -> Shape { state.withLock { $0.shapes[number - Self.capacity] } }

    /// How many shapes have a slot.
    var count: Int { state.withLock { $0.shapes.count } }

    /// Runs `sql` prepared (under its slot's name) or, without a slot, unnamed.
    func rows(
        _ sql: String,
        _ binds: PostgresBindings,
        types: [PostgresDataType],
        _ tx: Transaction
    ) async throws
        -> [PostgresRow]
    {
        guard let slot = slot(for: sql, types: types) else {
            return try await tx.rows(PostgresQuery(unsafeSQL: sql, binds: binds))
        }
        return try await runners[slot](tx, binds)
    }

    /// One runner per slot type whose number starts with `Prefix`'s digits and has `bits`
    /// more, in order.
    private static func runners<Prefix: SlotNumber>(under _: Prefix.Type, bits: Int) -> [Runner] {
        guard bits > 0 else {
            return [{ tx, binds in try await tx.execute(Slot<Prefix>(binds: binds)) }]
        }
        return runners(under: Digit0<Prefix>.self, bits: bits - 1) + runners(under: Digit1<Prefix>.self, bits: bits - 1)
    }
}

/// A slot's number, as a type, written in binary digits after a leading 1 (so a number's type
/// is only `bits` deep): PostgresNIO names and caches a prepared statement by its type.
protocol SlotNumber: Sendable { static var number: Int { get } }
enum One: SlotNumber { static var number: Int { 1 } }
enum Digit0<Prefix: SlotNumber>: SlotNumber { static var number: Int { Prefix.number * 2 } }
enum Digit1<Prefix: SlotNumber>: SlotNumber { static var number: Int { Prefix.number * 2 + 1 } }

/// The statement prepared under slot `Number`'s name, with the text and types given that slot.
struct Slot<Number: SlotNumber>: PostgresPreparedStatement {
    static var name: String { "lattice_shape_\(Number.number)" }
    static var sql: String { PreparedShapes.shared.shape(number: Number.number).sql }
    static var bindingDataTypes: [PostgresDataType] { PreparedShapes.shared.shape(number: Number.number).types }
    typealias Row = PostgresRow

    let binds: PostgresBindings

    func makeBindings() throws -> PostgresBindings { binds }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

/// A statement's values with each one's type, a null's too (its Swift type's): the text and
/// these name one prepared shape.
struct ShapedBindings {
    private(set) var binds = PostgresBindings()
    private(set) var types: [PostgresDataType] = []

    /// `$n` for a new parameter.
    mutating func bind<T: PostgresNonThrowingEncodable>(_ value: T) -> String {
        binds.append(value)
        types.append(T.psqlType)
        return "$\(binds.count)"
    }

    mutating func bind<T: PostgresNonThrowingEncodable>(_ value: T?) -> String {
        if let value { binds.append(value) } else { binds.appendNull() }
        types.append(T.psqlType)
        return "$\(binds.count)"
    }
}

/// A statement written as a string with interpolated values, as a `PostgresQuery` is, that
/// also keeps each value's type, so `Transaction.prepared` can run it as a prepared shape.
/// For hot statements whose text is fixed.
struct ShapedQuery: ExpressibleByStringInterpolation {
    var sql = ""
    var bindings = ShapedBindings()

    init(stringLiteral value: String) { sql = value }

    init(stringInterpolation: StringInterpolation) { self = stringInterpolation.query }

    struct StringInterpolation: StringInterpolationProtocol {
        var query = ShapedQuery(stringLiteral: "")

        init(literalCapacity: Int, interpolationCount: Int) {}

        mutating func appendLiteral(_ literal: String) { query.sql += literal }

        mutating func appendInterpolation<T: PostgresNonThrowingEncodable>(_ value: T) {
            query.sql += query.bindings.bind(value)
        }

        mutating func appendInterpolation<T: PostgresNonThrowingEncodable>(_ value: T?) {
            query.sql += query.bindings.bind(value)
        }
    }
}

extension Transaction {
    /// Every row of a hot statement's answer, the statement prepared on this connection.
    func prepared(_ query: ShapedQuery) async throws -> [PostgresRow] {
        try await PreparedShapes.shared.rows(query.sql, query.bindings.binds, types: query.bindings.types, self)
    }
}
