import Foundation
import LatticeDomain
import LatticeStore
import Testing

/// The SQL both stores share: values are bound, never spliced, and each dialect renders
/// the placeholders its own way; rows read back as the types the schema holds.
@Suite(.timeLimit(.minutes(10))) struct StoreSQLTests {
    @Test func valuesAreBoundInOrderAndRenderedPerDialect() {
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        let sql: StoreSQL = """
            SELECT doc FROM ledger WHERE namespace = \("o'brien") AND kind IN (\(list: ["credit", "storage"]))
                AND created_at > \(at) AND seq > \(7) LIMIT \(20)
            """
        #expect(
            sql.binds == [
                .text("o'brien"), .text("credit"), .text("storage"), .real(1_800_000_000), .integer(7), .integer(20),
            ]
        )
        #expect(!sql.text.contains("o'brien"), "a value never enters the text")
        #expect(sql.text.filter { $0 == "?" }.count == 6)
        let postgres = sql.rendered { "$\($0)" }
        #expect(postgres.contains("namespace = $1 AND kind IN ($2, $3)") && postgres.contains("LIMIT $6"))
        #expect(sql.rendered { _ in "?" } == sql.text, "SQLite keeps `?`")
    }

    @Test func anEmptyListMatchesNothingAndNilsBindNull() {
        let none: String? = nil
        let sql: StoreSQL = "SELECT 1 FROM t WHERE k IN (\(list: [])) OR v = \(none) OR d = \(Date?.none)"
        #expect(sql.text == "SELECT 1 FROM t WHERE k IN (NULL) OR v = ? OR d = ?")
        #expect(sql.binds == [.null, .null])
        #expect(sql.rowLock == nil && sql.forUpdate().rowLock == .update && sql.forShare().rowLock == .share)
    }

    @Test func rowsReadBackTheirTypes() throws {
        let row = SQLRow([.text("a"), .integer(3), .real(1.5), .boolean(true), .integer(0), .null, .blob(Data([1]))])
        #expect(try row.text(0) == "a")
        #expect(try row.integer(1) == 3 && row.real(1) == 3, "an integer reads as a number too")
        #expect(try row.date(2) == Date(timeIntervalSince1970: 1.5))
        #expect(try row.bool(3) && !row.bool(4), "PostgreSQL's BOOLEAN and SQLite's 0/1 alike")
        #expect(try row.optionalText(5) == nil && row.optionalDate(5) == nil && row.optionalInteger(5) == nil)
        #expect(try row.optionalBlob(6) == Data([1]))
        #expect(throws: SQLRowError.self) { try row.text(1) }
        #expect(throws: SQLRowError.self) { try row.integer(0) }
        #expect(throws: SQLRowError.self) { try row.text(9) }
    }
}
