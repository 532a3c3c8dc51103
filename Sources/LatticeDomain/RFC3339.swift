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
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: offset)!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let base = String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d",
            c.year!,
            c.month!,
            c.day!,
            c.hour!,
            c.minute!,
            c.second!
        )
        if offset == 0 { return base + "Z" }
        let sign = offset < 0 ? "-" : "+"
        let magnitude = abs(offset)
        return base + String(format: "%@%02d:%02d", sign, magnitude / 3600, (magnitude % 3600) / 60)
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
