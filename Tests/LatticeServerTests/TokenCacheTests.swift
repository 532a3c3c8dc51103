import Foundation
import LatticeDomain
import Testing

@testable import LatticeServer

@Suite struct TokenCacheTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func entry(id: String, hash: String) -> TokenCache.Entry {
        let token = TokenRecord(
            id: id,
            namespace: "alice",
            name: "t",
            secretHash: hash,
            createdAt: now,
            expiresAt: now.addingTimeInterval(86400)
        )
        return TokenCache.Entry(token: token, isAdmin: false, cachedAt: now)
    }

    @Test func evictionForgetsEverySecretOfTheToken() {
        let cache = TokenCache()
        cache.store(entry(id: "a", hash: "h1"), epoch: cache.epoch)
        cache.store(entry(id: "b", hash: "h2"), epoch: cache.epoch)
        cache.evict(tokenID: "a")
        #expect(cache.lookup(secretHash: "h1", now: now) == nil)
        #expect(cache.lookup(secretHash: "h2", now: now)?.token.id == "b")
    }

    /// A request that read the token from the store before a revocation committed must not
    /// put it back into the cache afterwards.
    @Test func aLookupThatRacedARevocationIsNotCached() {
        let cache = TokenCache()
        let before = cache.epoch
        cache.evict(tokenID: "a")
        cache.store(entry(id: "a", hash: "h1"), epoch: before)
        #expect(cache.lookup(secretHash: "h1", now: now) == nil)
    }

    @Test func entriesExpire() {
        let cache = TokenCache(timeToLive: 5)
        cache.store(entry(id: "a", hash: "h1"), epoch: cache.epoch)
        #expect(cache.lookup(secretHash: "h1", now: now.addingTimeInterval(4)) != nil)
        #expect(cache.lookup(secretHash: "h1", now: now.addingTimeInterval(6)) == nil)
    }
}
