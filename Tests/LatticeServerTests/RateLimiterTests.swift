import Foundation
import LatticeDomain
import Testing

@testable import LatticeServer

@Suite(.timeLimit(.minutes(10))) struct RateLimiterTests {
    @Test func aBucketRefillsAtItsRateUpToItsBurst() {
        let limit = TokenBucket.Limit(rate: 2, burst: 3)
        var bucket = TokenBucket(limit: limit, now: 0)
        #expect((0..<3).allSatisfy { _ in bucket.take(limit, now: 0) == nil })
        #expect(bucket.take(limit, now: 0) == 1, "one token comes back in half a second: wait 1 s")
        #expect(bucket.take(limit, now: 0.5) == nil)
        #expect(bucket.isFull(limit, now: 100))
        #expect(bucket.take(TokenBucket.Limit(rate: 0, burst: 1), now: 0) == nil, "rate 0 is no limit")
    }

    @Test func limitersAreKeyedAndBounded() throws {
        final class Clock: @unchecked Sendable { var now = 0.0 }
        let clock = Clock()
        let limiter = RateLimiter(TokenBucket.Limit(rate: 1, burst: 1), what: "t", capacity: 4, now: { clock.now })
        try limiter.take("a")
        #expect(throws: LatticeError.self) { try limiter.take("a") }
        try limiter.take("b")
        for key in ["c", "d", "e", "f", "g"] { try limiter.take(key) }
        #expect(limiter.count <= 4)
        clock.now = 10
        try limiter.take("a")
        #expect(throws: LatticeError.rateLimited("t", retryAfter: 1)) { try limiter.take("a") }
    }
}
