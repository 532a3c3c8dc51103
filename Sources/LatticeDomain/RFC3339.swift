import Foundation

/// RFC 3339 times as the seed writes them: a configured UTC offset, and the zero time
/// `0001-01-01T00:00:00Z` for "never".
public struct TimeFormatter: Sendable {
    public static let zero = "0001-01-01T00:00:00Z"
    public let timeZone: TimeZone

    public init(timeZone: TimeZone = TimeZone(secondsFromGMT: 0)!) { self.timeZone = timeZone }

    /// Parses `UTC`, `Z`, `+08:00`, `-0530` or an IANA name such as `Asia/Shanghai`.
    public init?(zone: String) {
        let text = zone.trimmingCharacters(in: .whitespaces)
        if text.isEmpty || text.uppercased() == "UTC" || text == "Z" {
            self.init(); return
        }
        if let sign = text.first, sign == "+" || sign == "-" {
            let digits = text.dropFirst().replacingOccurrences(of: ":", with: "")
            guard digits.count == 4 || digits.count == 2, let value = Int(digits) else { return nil }
            let hours = digits.count == 4 ? value / 100 : value, minutes = digits.count == 4 ? value % 100 : 0
            guard hours <= 14, minutes < 60 else { return nil }
            let seconds = (hours * 3600 + minutes * 60) * (sign == "-" ? -1 : 1)
            guard let zone = TimeZone(secondsFromGMT: seconds) else { return nil }
            self.init(timeZone: zone); return
        }
        guard let zone = TimeZone(identifier: text) else { return nil }
        self.init(timeZone: zone)
    }

    /// Formats a time, or the zero time for nil.
    public func format(_ date: Date?) -> String {
        guard let date else { return Self.zero }
        let offset = timeZone.secondsFromGMT(for: date)
        // Whole seconds, as the seed writes them; the civil date by arithmetic, because a
        // `Calendar` and `String(format:)` per time cost more than the rest of a rendered instance.
        let local = Int((date.timeIntervalSince1970 + Double(offset)).rounded(.down))
        let (days, second) = local.quotientAndRemainder(dividingBy: 86_400)
        let (dayNumber, secondOfDay) = second < 0 ? (days - 1, second + 86_400) : (days, second)
        let (year, month, day) = Self.civil(daysSinceEpoch: dayNumber)
        var text = Self.digits(year, 4) + "-" + Self.digits(month, 2) + "-" + Self.digits(day, 2)
        text += "T" + Self.digits(secondOfDay / 3600, 2) + ":" + Self.digits(secondOfDay % 3600 / 60, 2) + ":"
        text += Self.digits(secondOfDay % 60, 2)
        if offset == 0 { return text + "Z" }
        let magnitude = abs(offset)
        return text + (offset < 0 ? "-" : "+") + Self.digits(magnitude / 3600, 2) + ":"
            + Self.digits(magnitude % 3600 / 60, 2)
    }

    /// The proleptic Gregorian date of a day counted from 1970-01-01, by whole 400-year eras
    /// (146,097 days each) that start on March 1st, so a leap day ends its year.
    static func civil(daysSinceEpoch: Int) -> (year: Int, month: Int, day: Int) {
        let shifted = daysSinceEpoch + 719_468  // days from 0000-03-01
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let marchMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * marchMonth + 2) / 5 + 1
        let month = marchMonth < 10 ? marchMonth + 3 : marchMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func digits(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}

/// Parsing of RFC 3339 text, with or without fractional seconds.
public enum RFC3339 {
    public static func parse(_ text: String) -> Date? {
        if text == TimeFormatter.zero { return nil }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }
}
