import Foundation
import LatticeDomain
import Synchronization

/// Recently verified tokens, so that a burst of requests costs one store lookup rather
/// than two per request. Revocation and regeneration evict the entry before they answer,
/// and a lookup that raced with an eviction is not cached (the `epoch` check), so a
/// revoked secret fails on the very next request. Entries also expire after `timeToLive`,
/// which bounds how long another replica may still accept a token revoked elsewhere.
final class TokenCache: Sendable {
    struct Entry {
        var token: TokenRecord
        var isAdmin: Bool
        var cachedAt: Date
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var hashesByID: [String: Set<String>] = [:]
        var evictions: UInt64 = 0

        mutating func remove(_ secretHash: String) {
            guard let entry = entries.removeValue(forKey: secretHash) else { return }
            hashesByID[entry.token.id]?.remove(secretHash)
            if hashesByID[entry.token.id]?.isEmpty == true { hashesByID[entry.token.id] = nil }
        }
    }

    private let state = Mutex(State())
    private let timeToLive: TimeInterval
    private let capacity: Int

    init(timeToLive: TimeInterval = 5, capacity: Int = 10_000) {
        self.timeToLive = timeToLive
        self.capacity = capacity
    }

    /// Read before a store lookup and hand to `store(_:epoch:)`.
    var epoch: UInt64 { state.withLock { $0.evictions } }

    func lookup(secretHash: String, now: Date) -> Entry? {
        state.withLock { state in
            guard let entry = state.entries[secretHash] else { return nil }
            guard now.timeIntervalSince(entry.cachedAt) < timeToLive, now >= entry.cachedAt else {
                state.remove(secretHash)
                return nil
            }
            return entry
        }
    }

    /// Caches a token read from the store, unless an eviction happened since `epoch` (the
    /// read may predate it).
    func store(_ entry: Entry, epoch: UInt64) {
        state.withLock { state in
            guard epoch == state.evictions else { return }
            if state.entries.count >= capacity {
                state.entries.removeAll(keepingCapacity: true)
                state.hashesByID.removeAll(keepingCapacity: true)
            }
            state.entries[entry.token.secretHash] = entry
            state.hashesByID[entry.token.id, default: []].insert(entry.token.secretHash)
        }
    }

    func update(_ token: TokenRecord) {
        state.withLock { state in
            if state.entries[token.secretHash] != nil { state.entries[token.secretHash]?.token = token }
        }
    }

    /// Forgets every cached secret of a token id (after regenerate or delete).
    func evict(tokenID: String) {
        state.withLock { state in
            state.evictions &+= 1
            for hash in state.hashesByID.removeValue(forKey: tokenID) ?? [] { state.entries[hash] = nil }
        }
    }

    /// Forgets everything (the replicas' change feed reconnected and may have missed evictions).
    func evictAll() {
        state.withLock { state in
            state.evictions &+= 1
            state.entries.removeAll()
            state.hashesByID.removeAll()
        }
    }
}
