import Foundation
import LatticeDomain
import Testing

@Suite(.timeLimit(.minutes(10))) struct TimeFormatterArithmeticTests {
    /// What `format` did before it counted days itself: a Gregorian calendar in the offset.
    func byCalendar(_ date: Date, offset: Int) -> String {
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
        let magnitude = abs(offset)
        return base + String(format: "%@%02d:%02d", offset < 0 ? "-" : "+", magnitude / 3600, magnitude % 3600 / 60)
    }

    @Test func formatsEveryTimeAsACalendarWould() {
        var random = SystemRandomNumberGenerator()
        let offsets = [0, 8 * 3600, -(5 * 3600 + 30 * 60), 14 * 3600, -12 * 3600]
        for _ in 0..<2_000 {
            // From 1900 to 2200, with fractions of a second (which the seed's format drops).
            let seconds = Double.random(in: -2_208_988_800...7_258_118_400, using: &random)
            let offset = offsets.randomElement(using: &random)!
            let date = Date(timeIntervalSince1970: seconds)
            #expect(
                TimeFormatter(timeZone: TimeZone(secondsFromGMT: offset)!).format(date)
                    == byCalendar(date, offset: offset)
            )
        }
    }

    @Test func formatsLeapDaysYearEndsAndTheEpoch() {
        let utc = TimeFormatter()
        let cases: [(Double, String)] = [
            (0, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (1_798_761_599.75, "2026-12-31T23:59:59Z"),
        ]
        for (seconds, text) in cases { #expect(utc.format(Date(timeIntervalSince1970: seconds)) == text) }
        #expect(utc.format(nil) == TimeFormatter.zero)
    }
}
