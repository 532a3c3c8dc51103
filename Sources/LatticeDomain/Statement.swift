import Foundation

/// A calendar month in the server's time zone, as `?month=YYYY-MM` names it.
public struct StatementMonth: Sendable, Equatable {
    public var year: Int
    public var month: Int

    public init(year: Int, month: Int) {
        self.year = year
        self.month = month
    }

    /// Parses `YYYY-MM` (years 2000 to 2999); the message names the field.
    public static func parse(_ text: String) throws -> StatementMonth {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 4, parts[1].count == 2,
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let year = Int(parts[0]), let month = Int(parts[1]), (2000...2999).contains(year), (1...12).contains(month)
        else {
            throw LatticeError.invalidField("month", "must be a month as YYYY-MM, such as 2026-12")
        }
        return StatementMonth(year: year, month: month)
    }

    /// The month that holds `date` in `timeZone`.
    public static func containing(_ date: Date, timeZone: TimeZone) -> StatementMonth {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month], from: date)
        return StatementMonth(year: parts.year!, month: parts.month!)
    }

    public var description: String { String(format: "%04d-%02d", year, month) }

    /// Its first instant and the next month's, in `timeZone`.
    public func bounds(timeZone: TimeZone) -> (start: Date, end: Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let start = calendar.date(from: DateComponents(year: year, month: month, day: 1))!
        return (start, calendar.date(byAdding: .month, value: 1, to: start)!)
    }
}

/// A tenant's bill for one month, made from the ledger rows written in it (`createdAt`),
/// so that it sums exactly to the ledger: `closing = opening + credits − charges`.
public struct Statement: Sendable, Equatable {
    /// One instance's charges in the month, by kind.
    public struct InstanceTotal: Sendable, Equatable {
        public var instanceName: String
        public var compute: Money = .zero
        public var prepaid: Money = .zero
        public var storage: Money = .zero
        public var image: Money = .zero
        public var total: Money { compute + prepaid + storage + image }
    }

    public var month: StatementMonth
    public var opening: Money
    /// Every row of the month, oldest first.
    public var lines: [LedgerEntry]
    public var instances: [InstanceTotal]
    /// Operators' debits (positive) and refunds (negative), in order.
    public var adjustments: [LedgerEntry]
    /// Their sum: debits less refunds.
    public var adjustmentsTotal: Money {
        adjustments.reduce(.zero) { $0 + ($1.kind == .refund ? Money(units: -$1.amount.units) : $1.amount) }
    }
    /// Money that came in: top-ups (`credit`) and amount coupons (`coupon:` keys).
    public var topUps: Money
    public var coupons: Money
    /// Everything charged (compute, prepaid, storage, image, debits) less refunds.
    public var charges: Money
    public var closing: Money

    /// Whether a credit row is an amount coupon's.
    public static func isCoupon(_ entry: LedgerEntry) -> Bool {
        entry.kind == .credit && entry.idempotencyKey.hasPrefix("coupon:")
    }

    public init(month: StatementMonth, opening: Money, entries: [LedgerEntry]) {
        self.month = month
        self.opening = opening
        lines = entries
        var byInstance: [String: InstanceTotal] = [:]
        var order: [String] = []
        var adjustments: [LedgerEntry] = []
        var topUps = Money.zero
        var coupons = Money.zero
        var charges = Money.zero
        for entry in entries {
            switch entry.kind {
            case .credit:
                if Self.isCoupon(entry) { coupons = coupons + entry.amount } else { topUps = topUps + entry.amount }
                continue
            case .refund:
                adjustments.append(entry)
                charges = charges - entry.amount
                continue
            case .adjustment:
                adjustments.append(entry)
                charges = charges + entry.amount
                continue
            case .compute, .prepaid, .storage, .image:
                charges = charges + entry.amount
            }
            if byInstance[entry.instanceName] == nil {
                order.append(entry.instanceName)
                byInstance[entry.instanceName] = InstanceTotal(instanceName: entry.instanceName)
            }
            switch entry.kind {
            case .compute:
                byInstance[entry.instanceName]!.compute = byInstance[entry.instanceName]!.compute + entry.amount
            case .prepaid:
                byInstance[entry.instanceName]!.prepaid = byInstance[entry.instanceName]!.prepaid + entry.amount
            case .storage:
                byInstance[entry.instanceName]!.storage = byInstance[entry.instanceName]!.storage + entry.amount
            case .image: byInstance[entry.instanceName]!.image = byInstance[entry.instanceName]!.image + entry.amount
            default: break
            }
        }
        instances = order.map { byInstance[$0]! }
        self.adjustments = adjustments
        self.topUps = topUps
        self.coupons = coupons
        self.charges = charges
        closing = opening + topUps + coupons - charges
    }
}
