import Foundation

/// A prepaid term as written in `CostTime`: `3D`, `2W`, `1M`; `+3D` extends a term.
public struct CostTime: Sendable, Equatable {
    public enum Unit: String, Sendable, Equatable { case day = "D", week = "W", month = "M" }
    public var count: Int
    public var unit: Unit
    public var isExtension: Bool

    public init(count: Int, unit: Unit, isExtension: Bool = false) {
        self.count = count
        self.unit = unit
        self.isExtension = isExtension
    }

    /// Parses `CostTime`; the message names the field for any mistake.
    public static func parse(_ text: String, field: String = "Cost.CostTime") throws -> CostTime {
        var body = Substring(text.trimmingCharacters(in: .whitespaces))
        var isExtension = false
        if body.first == "+" { isExtension = true; body = body.dropFirst() }
        guard let last = body.last, let unit = Unit(rawValue: String(last).uppercased()) else {
            throw LatticeError.invalidField(
                field,
                "'\(text)' must be a count and a unit D, W or M, such as 3D, 2W or 1M"
            )
        }
        let digits = body.dropLast()
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let count = Int(digits), count >= 1,
            count <= 1000
        else {
            throw LatticeError.invalidField(
                field,
                "'\(text)' must start with a positive whole count (1 to 1000), such as 3D"
            )
        }
        return CostTime(count: count, unit: unit, isExtension: isExtension)
    }

    public var description: String { (isExtension ? "+" : "") + "\(count)\(unit.rawValue)" }

    /// The end of a term that starts at `start`; months are calendar months in `timeZone`.
    public func end(from start: Date, timeZone: TimeZone) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        switch unit {
        case .day: return calendar.date(byAdding: .day, value: count, to: start)!
        case .week: return calendar.date(byAdding: .day, value: 7 * count, to: start)!
        case .month: return calendar.date(byAdding: .month, value: count, to: start)!
        }
    }
}

/// Prices from the catalog.
public enum Pricing {
    /// `price * ratio` inside the discount window (both ends included), `price` outside it.
    public static func effectivePrice(of sku: GPUSKU, at time: Date) -> Money {
        guard let discount = activeDiscount(of: sku, at: time) else { return sku.price }
        return sku.price.applying(discount.ratio)
    }

    public static func activeDiscount(of sku: GPUSKU, at time: Date) -> Discount? {
        guard let discount = sku.discount, discount.start <= time, time <= discount.end else { return nil }
        return discount
    }
}
