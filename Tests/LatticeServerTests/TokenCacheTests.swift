import Foundation
import LatticeDomain
import LatticeStore
import LatticeStoreSQLite
import Testing

@testable import LatticeServer

@Suite(.timeLimit(.minutes(10))) struct TokenCacheTests {
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

@Suite(.timeLimit(.minutes(10))) struct ConsoleSessionsTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func session(expiresAt: Date, namespace: String = "a") -> ConsoleSessions.Session {
        .init(namespace: namespace, tokenID: "t", tokenHash: "h", isAdmin: false, expiresAt: expiresAt, csrf: "c")
    }

    @Test func sessionsAreBoundedPerNamespaceAndExpire() async throws {
        let sessions = ConsoleSessions(store: try SQLiteStore())
        var ids: [String] = []
        for n in 0..<(SessionLimits.perNamespace + 2) {
            ids.append(try await sessions.create(session(expiresAt: t0.addingTimeInterval(Double(100 + n))), now: t0))
        }
        let other = try await sessions.create(session(expiresAt: t0.addingTimeInterval(50), namespace: "b"), now: t0)
        #expect(try await sessions.lookup(ids[0], now: t0) == nil, "the oldest are ended to make room")
        #expect(try await sessions.lookup(ids[1], now: t0) == nil)
        #expect(try await sessions.lookup(ids[2], now: t0) != nil)
        #expect(try await sessions.lookup(other, now: t0) != nil, "another namespace's stay")
        #expect(try await sessions.lookup(other, now: t0.addingTimeInterval(50)) == nil, "expired")
        try await sessions.end(ids[2])
        #expect(try await sessions.lookup(ids[2], now: t0) == nil)
        #expect(try await sessions.lookup("not-a-session", now: t0) == nil)
    }

    @Test func aRevealedSecretIsShownOnceAndNeverStoredReadable() async throws {
        let store = try SQLiteStore()
        let sessions = ConsoleSessions(store: store)
        let id = try await sessions.create(session(expiresAt: t0.addingTimeInterval(100)), now: t0)
        try await sessions.reveal(
            TokenWire(id: "x", name: "n", createdAt: "", expiresAt: "", lastUsedAt: "", token: "lat_secret"),
            in: id
        )
        // What the store keeps is sealed with a key only the cookie gives.
        let sealed = try #require(try await store.takeRevealed(idHash: ConsoleSessions.hash(id)))
        #expect(sealed.range(of: Data("lat_secret".utf8)) == nil)
        try await store.setRevealed(idHash: ConsoleSessions.hash(id), sealed: sealed)
        let other = try await sessions.create(session(expiresAt: t0.addingTimeInterval(100)), now: t0)
        try await store.setRevealed(idHash: ConsoleSessions.hash(other), sealed: sealed)
        await #expect(throws: (any Error).self, "another session's key cannot open it") {
            try await sessions.takeRevealed(other)
        }
        #expect(try await sessions.takeRevealed(id)?.token == "lat_secret")
        #expect(try await sessions.takeRevealed(id) == nil)
    }
}
