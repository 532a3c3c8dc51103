import Foundation
import LatticeDomain

/// The driver's own pace towards the API server: a token bucket (QPS 5, burst 10 by
/// default, as client-go) that also honours the server's `429 Too Many Requests` with
/// `Retry-After`: no request leaves before that time. Pure: the caller passes the time
/// (monotonic seconds) and sleeps for what `delay` answers.
public struct ClientRateLimit: Sendable, Equatable {
    /// The steady rate and the burst.
    public var limit: TokenBucket.Limit
    private var bucket: TokenBucket
    /// No request before this (a `Retry-After` the server asked for).
    private var pausedUntil: Double

    /// A full bucket at `now` (seconds on any monotonic clock), client-go's pace by default.
    public init(queriesPerSecond: Double = 5, burst: Double = 10, now: Double) {
        limit = TokenBucket.Limit(rate: queriesPerSecond, burst: burst)
        bucket = TokenBucket(limit: limit, now: now)
        pausedUntil = now
    }

    /// Seconds to wait before the next request may go; the request is counted as sent then.
    public mutating func delay(now: Double) -> Double {
        let start = max(now, pausedUntil)
        guard !limit.isUnlimited else { return start - now }
        // Take a token at `start`; without one, the earliest time one is there.
        var at = start
        while bucket.take(limit, now: at) != nil {
            at += 1 / limit.rate
        }
        return at - now
    }

    /// `Retry-After` in seconds: a number of seconds, or an HTTP date (RFC 9110) from `now`;
    /// one second when absent or unreadable.
    public static func retryAfterSeconds(_ value: String?, now: Date) -> Double {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return 1 }
        if let seconds = Double(value) { return max(0, seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return 1 }
        return max(0, date.timeIntervalSince(now))
    }

    /// The server answered `429` (or `503`) with `Retry-After` seconds: everything waits
    /// until then.
    public mutating func retryAfter(_ seconds: Double, now: Double) {
        pausedUntil = max(pausedUntil, now + max(0, min(seconds, 600)))
    }
}
