import PostgresNIO
import Synchronization

/// Statements whose text is built at run time but takes only a few shapes (a write set's
/// statement: the parts present, every value a parameter), prepared once per connection.
///
/// An unnamed statement is parsed, analysed and planned on every call, and for the write
/// statements of a create or an observation that is about two fifths of what PostgreSQL spends
/// on them. PostgresNIO prepares only statements whose text is a type's static property, so
/// each shape seen is given one of `capacity` numbered slot types, `Slot<...>`, whose `sql`
/// reads the shape's text from here. A slot's text never changes once given, so every
/// connection and every store in the process that prepares slot n prepares the same text.
/// Shapes beyond the slots run unnamed, as before.
final class PreparedShapes: Sendable {
    /// The one table of the process: a slot type's static `sql` has nowhere else to read from.
    static let shared = PreparedShapes(capacity: 64)

    struct Shape: Sendable {
        let sql: String
        let types: [PostgresDataType]
    }

    private let capacity: Int
    private let state = Mutex<(slots: [String: Int], shapes: [Shape])>(([:], []))
    private let runners: [Runner]

    typealias Runner = @Sendable (Transaction, PostgresBindings) async throws -> [PostgresRow]

    init(capacity: Int) {
        self.capacity = capacity
        self.runners = Self.runners(from: Zero.self, count: capacity)
    }

    /// The slot of `sql`, given it now if it is new and a slot is free; nil if none is (or if
    /// the text came with other parameter types before).
    func slot(for sql: String, types: [PostgresDataType]) -> Int? {
        state.withLock { state in
            if let slot = state.slots[sql] { return state.shapes[slot].types == types ? slot : nil }
            guard state.shapes.count < capacity else { return nil }
            state.slots[sql] = state.shapes.count
            state.shapes.append(Shape(sql: sql, types: types))
            return state.shapes.count - 1
        }
    }

    func shape(_ slot: Int) -> Shape { state.withLock { $0.shapes[slot] } }

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

    /// One runner per slot type, `Zero`, `Next<Zero>`, `Next<Next<Zero>>`, ...
    private static func runners<S: SlotNumber>(from _: S.Type, count: Int) -> [Runner] {
        guard count > 0 else { return [] }
        let run: Runner = { tx, binds in try await tx.execute(Slot<S>(binds: binds)) }
        return [run] + runners(from: Next<S>.self, count: count - 1)
    }
}

/// A slot's number, as a type: PostgresNIO names and caches a prepared statement by its type.
protocol SlotNumber: Sendable { static var number: Int { get } }
enum Zero: SlotNumber { static var number: Int { 0 } }
enum Next<Previous: SlotNumber>: SlotNumber { static var number: Int { Previous.number + 1 } }

/// The statement prepared under slot `Number`'s name, with the text and types given that slot.
struct Slot<Number: SlotNumber>: PostgresPreparedStatement {
    static var name: String { "lattice_shape_\(Number.number)" }
    static var sql: String { PreparedShapes.shared.shape(Number.number).sql }
    static var bindingDataTypes: [PostgresDataType] { PreparedShapes.shared.shape(Number.number).types }
    typealias Row = PostgresRow

    let binds: PostgresBindings

    func makeBindings() throws -> PostgresBindings { binds }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}
