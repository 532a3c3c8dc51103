import Foundation

/// A token bucket: holds up to `burst` tokens, refills `rate` tokens per second, and each
/// request takes one. Pure: the caller passes the time (monotonic seconds).
public struct TokenBucket: Sendable, Equatable {
    public struct Limit: Sendable, Equatable {
        /// Tokens per second; 0 means no limit.
        public var rate: Double
        public var burst: Double

        public init(rate: Double, burst: Double) {
            self.rate = rate
            self.burst = max(1, burst)
        }

        public var isUnlimited: Bool { rate <= 0 }
    }

    public private(set) var tokens: Double
    public private(set) var updated: Double

    public init(limit: Limit, now: Double) {
        tokens = limit.burst
        updated = now
    }

    mutating func refill(_ limit: Limit, now: Double) {
        if now > updated { tokens = min(limit.burst, tokens + (now - updated) * limit.rate) }
        updated = max(updated, now)
    }

    /// Takes a token; nil if one was free, else the whole seconds until one will be.
    public mutating func take(_ limit: Limit, now: Double) -> Int? {
        guard !limit.isUnlimited else { return nil }
        refill(limit, now: now)
        if tokens >= 1 {
            tokens -= 1
            return nil
        }
        return max(1, Int(((1 - tokens) / limit.rate).rounded(.up)))
    }

    /// Whether a request now would be refused, without taking a token.
    public mutating func isEmpty(_ limit: Limit, now: Double) -> Int? {
        guard !limit.isUnlimited else { return nil }
        refill(limit, now: now)
        return tokens >= 1 ? nil : max(1, Int(((1 - tokens) / limit.rate).rounded(.up)))
    }

    /// A bucket that has refilled completely carries no state worth keeping.
    public func isFull(_ limit: Limit, now: Double) -> Bool {
        tokens + max(0, now - updated) * limit.rate >= limit.burst
    }
}
