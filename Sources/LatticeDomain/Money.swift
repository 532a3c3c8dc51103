import Foundation

/// An exact amount of money, counted in ten-thousandths of the currency unit.
///
/// Four decimal places keep `price * ratio` exact for catalog prices with cents and
/// discount ratios with up to four digits, so no floating point ever touches a balance.
public struct Money: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Units per whole currency unit.
    public static let scale: Int64 = 10_000
    public var units: Int64

    public init(units: Int64) { self.units = units }
    public static let zero = Money(units: 0)

    /// The largest amount one request may carry (a credit, an opening balance, a coupon):
    /// one billion. With `maximumBalance` it keeps every sum the ledger forms far from `Int64`.
    public static let maximumAmount = Money(units: 1_000_000_000 * scale)
    /// The largest wallet balance a credit may produce: one trillion.
    public static let maximumBalance = Money(units: 1_000_000_000_000 * scale)

    /// Parses a plain decimal string such as `"12"`, `"2.5"` or `"-0.0001"`.
    public init?(_ text: String) {
        guard let units = DecimalText.parse(text, scale: 4) else { return nil }
        self.units = units
    }

    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.units < rhs.units }
    public static func + (lhs: Money, rhs: Money) -> Money { Money(units: lhs.units + rhs.units) }
    public static func - (lhs: Money, rhs: Money) -> Money { Money(units: lhs.units - rhs.units) }

    /// Applies a ratio, rounding half away from zero to the money scale.
    public func applying(_ ratio: Ratio) -> Money {
        Money(units: DecimalText.divideRounded(units * ratio.units, by: Ratio.scale))
    }

    /// The wire form: at least two fraction digits, at most four, no float.
    public var description: String { DecimalText.format(units, scale: 4, minFractionDigits: 2) }

    /// A JSON number rendering for fields the seed types as numbers (`"price": 10`).
    public var jsonNumber: Double { Double(units) / Double(Self.scale) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self), let money = Money(text) {
            self = money
        } else if let int = try? container.decode(Int64.self) {
            self = Money(units: int * Self.scale)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "expected a decimal amount such as \"2.50\""
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A multiplier such as a discount ratio, exact to four decimal places (`0.48` is 4800).
public struct Ratio: Sendable, Hashable, Codable, CustomStringConvertible {
    public static let scale: Int64 = 10_000
    public var units: Int64
    public init(units: Int64) { self.units = units }
    public static let one = Ratio(units: scale)

    public init?(_ text: String) {
        guard let units = DecimalText.parse(text, scale: 4), units >= 0 else { return nil }
        self.units = units
    }

    public var description: String { DecimalText.format(units, scale: 4, minFractionDigits: 0) }
    public var jsonNumber: Double { Double(units) / Double(Self.scale) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self), let ratio = Ratio(text) {
            self = ratio
        } else if let number = try? container.decode(Double.self), let ratio = Ratio(String(number)) {
            self = ratio
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a ratio such as 0.48")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Exact decimal text handling shared by `Money` and `Ratio`.
enum DecimalText {
    static func parse(_ raw: String, scale: Int) -> Int64? {
        var text = Substring(raw.trimmingCharacters(in: .whitespaces))
        var negative = false
        if text.first == "-" {
            negative = true; text = text.dropFirst()
        } else if text.first == "+" {
            text = text.dropFirst()
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first, !whole.isEmpty || parts.count == 2 else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard whole.allSatisfy(\.isASCII), whole.allSatisfy(\.isNumber),
            fraction.allSatisfy(\.isASCII), fraction.allSatisfy(\.isNumber),
            fraction.count <= scale, whole.count <= 14, !(whole.isEmpty && fraction.isEmpty)
        else { return nil }
        let wholeValue = whole.isEmpty ? 0 : Int64(whole)!
        let padded = fraction + String(repeating: "0", count: scale - fraction.count)
        let fractionValue = padded.isEmpty ? 0 : Int64(padded)!
        var multiplier: Int64 = 1
        for _ in 0..<scale { multiplier *= 10 }
        let value = wholeValue * multiplier + fractionValue
        return negative ? -value : value
    }

    static func format(_ units: Int64, scale: Int, minFractionDigits: Int) -> String {
        var multiplier: Int64 = 1
        for _ in 0..<scale { multiplier *= 10 }
        let negative = units < 0
        let magnitude = units.magnitude
        let whole = magnitude / UInt64(multiplier)
        var fraction = String(magnitude % UInt64(multiplier))
        fraction = String(repeating: "0", count: scale - fraction.count) + fraction
        while fraction.count > minFractionDigits, fraction.hasSuffix("0") { fraction.removeLast() }
        let body = fraction.isEmpty ? "\(whole)" : "\(whole).\(fraction)"
        return negative ? "-" + body : body
    }

    /// Integer division rounding half away from zero.
    static func divideRounded(_ value: Int64, by divisor: Int64) -> Int64 {
        let quotient = value / divisor
        let remainder = value % divisor
        if remainder.magnitude * 2 >= divisor.magnitude {
            return quotient + (value < 0 ? -1 : 1)
        }
        return quotient
    }
}
