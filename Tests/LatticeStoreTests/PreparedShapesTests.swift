import Foundation
import LatticeDomain
import LatticeStore
import LatticeTestDatabase
import PostgresNIO
import Testing

@testable import LatticeStorePostgres

/// Issue 23: statements whose text is built at run time are prepared once per connection,
/// one slot per text, and a text seen with other parameter types runs unnamed.
@Suite(.timeLimit(.minutes(10))) struct PreparedShapesTests {
    @Test func aTextKeepsItsSlotAndATextWithOtherTypesGetsNone() throws {
        let shapes = PreparedShapes.shared
        let text = "SELECT $1::BIGINT + \(UUID().uuidString.count)  -- \(UUID().uuidString)"
        let slot = try #require(shapes.slot(for: text, types: [Int.psqlType]))
        #expect(shapes.slot(for: text, types: [Int.psqlType]) == slot)
        #expect(shapes.slot(for: text, types: [String.psqlType]) == nil)
        let other = shapes.slot(for: text + " ", types: [Int.psqlType])
        #expect(other != nil && other != slot)
        #expect(shapes.shape(number: PreparedShapes.capacity + slot).sql == text)
    }

    @Test(.enabled(if: TestDatabase.runs))
    func aPreparedShapeAnswersAsAnUnnamedStatementWouldWithNullsToo() async throws {
        let store = try await TestDatabase.store()
        let tag = UUID().uuidString
        // Five runs of one shape: PostgreSQL plans a prepared statement's first five runs for
        // their values and may keep a generic plan after; a NULL in the same place has no type
        // and so is another shape, run unnamed.
        let answers = try await store.read { tx in
            var answers: [String] = []
            for value in [1, 2, nil, 3, 4, nil, 5] as [Int?] {
                let bound = value.map { SQLValue.integer(Int64($0)) } ?? .null
                let sql: StoreSQL = "SELECT COALESCE(CAST(\(bound) AS BIGINT) * 10, -1), \(SQLValue.text(tag))"
                let rows = try await tx.shared(sql)
                answers += try rows.map { "\(try $0.decode((Int, String).self).0)" }
            }
            let query: ShapedQuery = "SELECT \(Optional<String>.none)::TEXT IS NULL, \(tag)::TEXT = \(tag)"
            for _ in 0..<3 { answers += try await tx.prepared(query).map { "\(try $0.decode((Bool, Bool).self))" } }
            return answers
        }
        #expect(answers == ["10", "20", "-1", "30", "40", "-1", "50"] + Array(repeating: "(true, true)", count: 3))
    }
}
