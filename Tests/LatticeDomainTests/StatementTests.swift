import Foundation
import LatticeDomain
import Testing

/// A month's statement sums exactly to the ledger it is made of, whatever the month holds:
/// charges at changed prices, debits, refunds, top-ups and coupons.
@Suite(.timeLimit(.minutes(10))) struct StatementTests {
    /// A small deterministic generator, so a failure names its seed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    let month = StatementMonth(year: 2026, month: 12)

    func entries(seed: UInt64) -> [LedgerEntry] {
        var rng = SplitMix(state: seed)
        let kinds: [LedgerEntry.Kind] = LedgerEntry.Kind.allCases
        return (0..<Int.random(in: 0...60, using: &rng)).map { index in
            let kind = kinds.randomElement(using: &rng)!
            let coupon = kind == .credit && Bool.random(using: &rng)
            return LedgerEntry(
                id: "e\(index)",
                namespace: "alice",
                kind: kind,
                // 0.01 to 999.99, any price an admin may have set in the month.
                amount: Money(units: Int64.random(in: 1...99_999, using: &rng) * 100),
                instanceName: kind == .credit || kind == .refund || kind == .adjustment
                    ? "" : "instance-\(Int.random(in: 0...4, using: &rng))",
                idempotencyKey: coupon ? "coupon:C\(index):i" : "\(kind.rawValue):\(index)",
                createdAt: Date(timeIntervalSince1970: 1_796_000_000 + Double(index)),
                reason: kind == .refund || kind == .adjustment ? "reason \(index)" : nil
            )
        }
    }

    @Test(arguments: 0..<200)
    func sumsExactlyToTheLedger(seed: Int) {
        let rows = entries(seed: UInt64(seed))
        let opening = Money(units: Int64(seed) * 12_345)
        let statement = Statement(month: month, opening: opening, entries: rows)
        let ledger = rows.reduce(Money.zero) { $0 + Money(units: $1.signedUnits) }
        #expect(statement.closing == opening + ledger)
        let perInstance = statement.instances.reduce(Money.zero) { $0 + $1.total }
        let adjusted = statement.adjustments.reduce(Money.zero) {
            $0 + ($1.kind == .refund ? Money(units: -$1.amount.units) : $1.amount)
        }
        #expect(statement.charges == perInstance + adjusted)
        #expect(statement.lines.count == rows.count)
        let wire = StatementWire(
            statement,
            namespace: "alice",
            currency: "CNY",
            bounds: month.bounds(timeZone: TimeZone(secondsFromGMT: 0)!),
            time: { $0.map { "\($0.timeIntervalSince1970)" } ?? "" }
        )
        #expect(wire.totals.closingBalance == statement.closing.description)
        #expect(wire.csv.components(separatedBy: "\r\n").count == rows.count + 4, "header, rows, 2 totals, end")
    }

    @Test func monthsParseAndBoundInTheServersZone() throws {
        #expect(try StatementMonth.parse("2026-02") == StatementMonth(year: 2026, month: 2))
        for bad in ["2026-13", "2026-2", "26-02", "2026/02", "", "3000-01", "２０２６-01"] {
            #expect(throws: LatticeError.self) { try StatementMonth.parse(bad) }
        }
        let shanghai = TimeZone(identifier: "Asia/Shanghai")!
        let bounds = StatementMonth(year: 2026, month: 12).bounds(timeZone: shanghai)
        #expect(bounds.start == RFC3339.parse("2026-11-30T16:00:00Z"))
        #expect(bounds.end == RFC3339.parse("2026-12-31T16:00:00Z"))
        #expect(StatementMonth.containing(RFC3339.parse("2026-11-30T17:00:00Z")!, timeZone: shanghai).month == 12)
    }

    @Test func csvFieldsAreQuotedAndFormulasDefused() {
        let entry = LedgerEntry(
            id: "x",
            namespace: "alice",
            kind: .adjustment,
            amount: Money("5")!,
            idempotencyKey: "adjustment:x",
            createdAt: Date(timeIntervalSince1970: 0),
            reason: "=HYPERLINK(\"x\"), said \"ops\""
        )
        let statement = Statement(month: month, opening: .zero, entries: [entry])
        let csv = StatementWire(
            statement,
            namespace: "alice",
            currency: "CNY",
            bounds: month.bounds(timeZone: TimeZone(secondsFromGMT: 0)!),
            time: { _ in "t" }
        ).csv
        #expect(csv.contains(#""'=HYPERLINK(""x""), said ""ops""""#))
        #expect(csv.contains("closing balance"))
    }
}
