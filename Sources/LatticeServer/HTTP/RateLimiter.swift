import Foundation
import LatticeDomain
import Synchronization

/// Token buckets by key (a token id, a client address), answering `429` with
/// `Retry-After`. Memory is bounded: once it holds `capacity` keys, buckets that have
/// refilled completely (they remember nothing) are dropped, and if none has, the oldest half
/// is; a dropped bucket comes back full, which only ever errs towards letting a request in.
final class RateLimiter: Sendable {
    let limit: TokenBucket.Limit
    private let what: String
    private let capacity: Int
    private let now: @Sendable () -> Double
    private let buckets = Mutex([String: TokenBucket]())

    init(
        _ limit: TokenBucket.Limit,
        what: String,
        capacity: Int = 100_000,
        now: @escaping @Sendable () -> Double = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    ) {
        self.limit = limit
        self.what = what
        self.capacity = capacity
        self.now = now
    }

    /// Takes one request's token for `key`, or throws `429`.
    func take(_ key: String) throws {
        guard !limit.isUnlimited else { return }
        let refusal: Int? = buckets.withLock { buckets in
            let time = now()
            var bucket = buckets[key] ?? bounded(TokenBucket(limit: limit, now: time), in: &buckets, at: time)
            let wait = bucket.take(limit, now: time)
            buckets[key] = bucket
            return wait
        }
        if let refusal { throw LatticeError.rateLimited(what, retryAfter: refusal) }
    }

    /// Throws `429` if `key` has no token left, without taking one (used to stop a client
    /// whose failures are counted with `take`).
    func check(_ key: String) throws {
        guard !limit.isUnlimited else { return }
        let refusal: Int? = buckets.withLock { buckets in
            guard var bucket = buckets[key] else { return nil }
            let wait = bucket.isEmpty(limit, now: now())
            buckets[key] = bucket
            return wait
        }
        if let refusal { throw LatticeError.rateLimited(what, retryAfter: refusal) }
    }

    var count: Int { buckets.withLock { $0.count } }

    /// Makes room before a new key is added (inside the lock).
    private func bounded(
        _ bucket: TokenBucket,
        in buckets: inout [String: TokenBucket],
        at time: Double
    ) -> TokenBucket {
        guard buckets.count >= capacity else { return bucket }
        buckets = buckets.filter { !$0.value.isFull(limit, now: time) }
        if buckets.count >= capacity {
            let oldest = buckets.sorted { $0.value.updated < $1.value.updated }.prefix(buckets.count / 2)
            for (key, _) in oldest { buckets[key] = nil }
        }
        return bucket
    }
}
