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

@Suite struct ConsoleSessionsTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func session(expiresAt: Date) -> ConsoleSessions.Session {
        .init(namespace: "a", tokenID: "t", tokenHash: "h", isAdmin: false, expiresAt: expiresAt, csrf: "c")
    }

    @Test func sessionsAreBoundedAndExpireInOrder() {
        let sessions = ConsoleSessions(capacity: 3)
        let ids = (0..<5).map { sessions.create(session(expiresAt: t0.addingTimeInterval(Double(100 + $0))), now: t0) }
        #expect(sessions.count == 3, "the oldest are ended to make room")
        #expect(sessions.lookup(ids[0], now: t0) == nil && sessions.lookup(ids[4], now: t0) != nil)
        #expect(sessions.lookup(ids[3], now: t0.addingTimeInterval(103.5)) == nil, "expired")
        #expect(sessions.lookup(ids[4], now: t0.addingTimeInterval(103.5)) != nil)
        #expect(sessions.count == 1, "expired ones are dropped from the front")
        sessions.end(ids[4])
        #expect(sessions.lookup(ids[4], now: t0) == nil)
    }

    @Test func aRevealedSecretIsShownOnce() {
        let sessions = ConsoleSessions()
        let id = sessions.create(session(expiresAt: t0.addingTimeInterval(100)), now: t0)
        sessions.reveal(
            TokenWire(id: "x", name: "n", createdAt: "", expiresAt: "", lastUsedAt: "", token: "lat_secret"),
            in: id
        )
        #expect(sessions.takeRevealed(id)?.token == "lat_secret")
        #expect(sessions.takeRevealed(id) == nil)
    }
}
