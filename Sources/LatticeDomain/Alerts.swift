import Foundation

/// What the meter reads of a namespace before it tells of money (SPEC §12, §13).
public struct AlertReads: Sendable, Equatable {
    public var balance: Money
    /// What the namespace's running instances cost an hour.
    public var hourly: Money
    /// The alerts raised and not cleared (`AlertRule` keys).
    public var raised: Set<String>

    public init(balance: Money, hourly: Money, raised: Set<String>) {
        self.balance = balance
        self.hourly = hourly
        self.raised = raised
    }
}

/// The alerts to raise (each told once, as its event) and those to clear (so they may be
/// told again).
public struct AlertDecision: Sendable, Equatable {
    public var raise: [String: LatticeEvent] = [:]
    public var clear: Set<String> = []

    public init(raise: [String: LatticeEvent] = [:], clear: Set<String> = []) {
        self.raise = raise
        self.clear = clear
    }
}

/// When a namespace is told of its money: `billing.low_balance` once the wallet holds less
/// than an hour of its running instances (told again only after it held more), and
/// `budget.threshold` once for each of the budget's `alertAt` percentages the month's spend
/// reaches (each month afresh).
public enum AlertRule {
    public static let lowBalance = "low_balance"

    public static func budgetKey(month: String, percent: Int) -> String { "budget:\(month):\(percent)" }

    /// `2026-12`: the month a spend is counted in, in the server's time zone.
    public static func monthLabel(_ month: DateInterval, timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month], from: month.start)
        return String(format: "%04d-%02d", parts.year ?? 0, parts.month ?? 0)
    }

    public struct BudgetSpend: Sendable, Equatable {
        public var budget: Budget
        public var spent: Money
        public var month: String

        public init(budget: Budget, spent: Money, month: String) {
            self.budget = budget
            self.spent = spent
            self.month = month
        }
    }

    public static func decide(
        namespace: String,
        _ reads: AlertReads,
        budget: BudgetSpend?,
        currency: String,
        now: Date
    ) -> AlertDecision {
        var decision = AlertDecision()
        let low = reads.hourly > .zero && reads.balance < reads.hourly
        if low, !reads.raised.contains(lowBalance) {
            decision.raise[lowBalance] = LatticeEvent(
                namespace: namespace,
                time: now,
                type: .lowBalance,
                data: [
                    "balance": .string(reads.balance.description), "hourly": .string(reads.hourly.description),
                    "currency": .string(currency),
                ]
            )
        } else if !low, reads.raised.contains(lowBalance) {
            decision.clear.insert(lowBalance)
        }
        if let budget, budget.budget.monthlyLimit > .zero {
            for percent in budget.budget.alertAt {
                let key = budgetKey(month: budget.month, percent: percent)
                // spent / limit >= percent / 100, in whole units.
                let reached = budget.spent.units * 100 >= budget.budget.monthlyLimit.units * Int64(percent)
                guard reached, !reads.raised.contains(key) else { continue }
                decision.raise[key] = LatticeEvent(
                    namespace: namespace,
                    time: now,
                    type: .budgetThreshold,
                    data: [
                        "percent": .number(Double(percent)), "spent": .string(budget.spent.description),
                        "monthlyLimit": .string(budget.budget.monthlyLimit.description),
                        "action": .string(budget.budget.action.rawValue), "month": .string(budget.month),
                        "currency": .string(currency),
                    ]
                )
            }
        }
        return decision
    }
}
