import Foundation
import LatticeDomain
import Testing

/// SPEC §12's budgets: the body, the month's spend from the ledger, the forecast.
@Suite(.timeLimit(.minutes(10))) struct BudgetTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    func fields(_ text: String) throws -> JSONFields { try JSONFields(JSONValue.parseBody(Data(text.utf8))) }

    @Test func readsAndChecksTheBody() throws {
        let budget = try Budget(
            fields: fields(#"{"monthlyLimit": "500", "alertAt": [80, 50, 80], "action": "block"}"#),
            namespace: "alice",
            now: now
        )
        #expect(budget.monthlyLimit == Money("500") && budget.alertAt == [50, 80] && budget.action == .block)
        let plain = try Budget(fields: fields(#"{"monthlyLimit": 20}"#), namespace: "alice", now: now)
        #expect(plain.alertAt == Budget.defaultAlerts && plain.action == .notify)
        for bad in [
            #"{}"#, #"{"monthlyLimit": "0"}"#, #"{"monthlyLimit": "-5"}"#, #"{"monthlyLimit": "ten"}"#,
            #"{"monthlyLimit": "5", "action": "pause"}"#, #"{"monthlyLimit": "5", "alertAt": [0]}"#,
            #"{"monthlyLimit": "5", "alertAt": "50"}"#,
        ] {
            #expect(throws: LatticeError.self, "\(bad)") { try Budget(fields: fields(bad), namespace: "a", now: now) }
        }
    }

    @Test func spendIsTheMonthsChargesLessRefunds() {
        func entry(_ kind: LedgerEntry.Kind, _ amount: String) -> LedgerEntry {
            LedgerEntry(
                id: UUID().uuidString,
                namespace: "alice",
                kind: kind,
                amount: Money(amount)!,
                instanceName: "",
                periodStart: now,
                periodEnd: now,
                idempotencyKey: UUID().uuidString,
                createdAt: now
            )
        }
        let spent = Budget.spent([
            entry(.credit, "1000"), entry(.compute, "2.50"), entry(.storage, "0.50"), entry(.prepaid, "30"),
            entry(.adjustment, "5"), entry(.refund, "3"),
        ])
        #expect(spent == Money("35"))
        let budget = Budget(namespace: "alice", monthlyLimit: Money("35")!, alertAt: [], action: .block, updatedAt: now)
        #expect(budget.blocks(spent: spent) && !budget.blocks(spent: Money("34.9999")!))
        #expect(
            budget.refusal(spent: spent).code == "BudgetExceeded" && budget.refusal(spent: spent).kind.status == 402
        )
        var notify = budget
        notify.action = .notify
        #expect(notify.isReached(spent: spent) && !notify.blocks(spent: spent))
    }

    @Test func theForecastScalesTheSpendToTheWholeMonth() {
        let utc = TimeZone(identifier: "UTC")!
        let month = Budget.month(of: Date(timeIntervalSince1970: 1_796_083_200 + 10 * 86400), timeZone: utc)
        // 1_796_083_200 is 2026-12-01T00:00:00Z: December, 31 days.
        #expect(month.start == Date(timeIntervalSince1970: 1_796_083_200) && month.duration == 31 * 86400)
        let tenDaysIn = month.start.addingTimeInterval(10 * 86400)
        let forecast = Budget.forecast(spent: Money("100")!, month: month, now: tenDaysIn)
        #expect(forecast == Money("310"))
    }
}
