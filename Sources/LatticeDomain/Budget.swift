import Foundation

/// A namespace's monthly budget (SPEC §12): a limit, the percentages at which it is told,
/// and what happens at 100 %: `notify` only, `block` new creates and power_on with
/// `402 BudgetExceeded`, or `stop` (block, and power off the pay-as-you-go instances).
public struct Budget: Sendable, Codable, Equatable {
    public enum Action: String, Sendable, Codable, Equatable { case notify, block, stop }

    public var namespace: String
    public var monthlyLimit: Money
    public var alertAt: [Int]
    public var action: Action
    public var updatedAt: Date

    public init(namespace: String, monthlyLimit: Money, alertAt: [Int], action: Action, updatedAt: Date) {
        self.namespace = namespace
        self.monthlyLimit = monthlyLimit
        self.alertAt = alertAt
        self.action = action
        self.updatedAt = updatedAt
    }

    public static let defaultAlerts = [50, 80, 100]

    /// A `PUT /budget` body.
    public init(fields body: JSONFields, namespace: String, now: Date) throws {
        self.namespace = namespace
        updatedAt = now
        guard let limitText = try body.string("monthlyLimit") else { throw LatticeError.missingField("monthlyLimit") }
        guard let limit = Money(limitText.trimmingCharacters(in: .whitespaces)), limit.units > 0 else {
            throw LatticeError.invalidField("monthlyLimit", "must be a positive amount such as \"500\" or \"99.50\"")
        }
        monthlyLimit = limit
        if let value = body.fields["alertAt"], value != .null {
            guard case .array(let items) = value, items.count <= 10 else {
                throw LatticeError.invalidField("alertAt", "must be an array of at most 10 percentages")
            }
            var percents: [Int] = []
            for (index, item) in items.enumerated() {
                guard case .number(let number) = item, number == number.rounded(), (1...1000).contains(number) else {
                    throw LatticeError.invalidField("alertAt[\(index)]", "must be a whole percentage from 1 to 1000")
                }
                percents.append(Int(number))
            }
            alertAt = Array(Set(percents)).sorted()
        } else {
            alertAt = Self.defaultAlerts
        }
        let text = try body.string("action") ?? "notify"
        guard let action = Action(rawValue: text) else {
            throw LatticeError.invalidField("action", "must be notify, block or stop, got \"\(text.prefix(40))\"")
        }
        self.action = action
    }

    /// Whether `spent` has reached the limit.
    public func isReached(spent: Money) -> Bool { spent.units >= monthlyLimit.units }

    /// Whether creates and power_on are refused now.
    public func blocks(spent: Money) -> Bool { action != .notify && isReached(spent: spent) }

    public func refusal(spent: Money) -> LatticeError {
        LatticeError(
            .paymentRequired,
            code: "BudgetExceeded",
            "namespace \(namespace) spent \(spent) this month, its budget's monthly limit of \(monthlyLimit); "
                + "raise the limit (PUT /mdc/api/v1/budget) or wait for next month"
        )
    }

    /// The month's spend at the rate so far: `spent` scaled from the time elapsed to the
    /// whole month.
    public static func forecast(spent: Money, month: DateInterval, now: Date) -> Money {
        let elapsed = max(1, min(now, month.end).timeIntervalSince(month.start))
        let scaled = Double(spent.units) * month.duration / elapsed
        return Money(units: Int64(scaled.rounded()))
    }

    /// The calendar month that holds `now`, in `timeZone`.
    public static func month(of now: Date, timeZone: TimeZone) -> DateInterval {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let start = calendar.dateInterval(of: .month, for: now)?.start ?? now
        let end = calendar.date(byAdding: .month, value: 1, to: start) ?? now
        return DateInterval(start: start, end: end)
    }

    /// What a month's ledger rows spent: the charges (compute, prepaid, storage, images)
    /// and operators' debits, less operators' refunds; credits are not spending.
    public static func spent(_ entries: [LedgerEntry]) -> Money {
        var units: Int64 = 0
        for entry in entries {
            switch entry.kind {
            case .compute, .prepaid, .storage, .image, .adjustment: units += abs(entry.amount.units)
            case .refund: units -= abs(entry.amount.units)
            case .credit: break
            }
        }
        return Money(units: max(0, units))
    }
}

/// `GET`/`PUT /budget`'s answer.
public struct BudgetWire: Codable, Sendable, Equatable {
    public var namespace: String
    public var monthlyLimit: String
    public var alertAt: [Int]
    public var action: String
    public var spentThisMonth: String
    public var forecast: String
    public var currency: String

    public init(_ budget: Budget, spent: Money, forecast: Money, currency: String) {
        namespace = budget.namespace
        monthlyLimit = budget.monthlyLimit.description
        alertAt = budget.alertAt
        action = budget.action.rawValue
        spentThisMonth = spent.description
        self.forecast = forecast.description
        self.currency = currency
    }
}
