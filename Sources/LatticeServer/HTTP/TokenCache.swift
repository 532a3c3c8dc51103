import Foundation
import LatticeDomain

/// Recently verified tokens, so that a burst of requests costs one store lookup rather
/// than two per request. Revocation and regeneration evict the entry before they answer,
/// and a lookup that raced with an eviction is not cached (the `epoch` check), so a
/// revoked secret fails on the very next request. Entries also expire after `timeToLive`,
/// which bounds how long another replica may still accept a token revoked elsewhere.
final class TokenCache: @unchecked Sendable {
    struct Entry {
        var token: TokenRecord
        var isAdmin: Bool
        var cachedAt: Date
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var hashesByID: [String: Set<String>] = [:]
    private var evictions: UInt64 = 0
    private let timeToLive: TimeInterval
    private let capacity: Int

    init(timeToLive: TimeInterval = 5, capacity: Int = 10_000) {
        self.timeToLive = timeToLive
        self.capacity = capacity
    }

    /// Read before a store lookup and hand to `store(_:epoch:)`.
    var epoch: UInt64 { lock.withLock { evictions } }

    func lookup(secretHash: String, now: Date) -> Entry? {
        lock.withLock {
            guard let entry = entries[secretHash] else { return nil }
            guard now.timeIntervalSince(entry.cachedAt) < timeToLive, now >= entry.cachedAt else {
                remove(secretHash)
                return nil
            }
            return entry
        }
    }

    /// Caches a token read from the store, unless an eviction happened since `epoch` (the
    /// read may predate it).
    func store(_ entry: Entry, epoch: UInt64) {
        lock.withLock {
            guard epoch == evictions else { return }
            if entries.count >= capacity {
                entries.removeAll(keepingCapacity: true)
                hashesByID.removeAll(keepingCapacity: true)
            }
            entries[entry.token.secretHash] = entry
            hashesByID[entry.token.id, default: []].insert(entry.token.secretHash)
        }
    }

    func update(_ token: TokenRecord) {
        lock.withLock {
            if entries[token.secretHash] != nil { entries[token.secretHash]?.token = token }
        }
    }

    /// Forgets every cached secret of a token id (after regenerate or delete).
    func evict(tokenID: String) {
        lock.withLock {
            evictions &+= 1
            for hash in hashesByID.removeValue(forKey: tokenID) ?? [] { entries[hash] = nil }
        }
    }

    /// Forgets everything (the replicas' change feed reconnected and may have missed evictions).
    func evictAll() {
        lock.withLock {
            evictions &+= 1
            entries.removeAll()
            hashesByID.removeAll()
        }
    }

    private func remove(_ secretHash: String) {
        guard let entry = entries.removeValue(forKey: secretHash) else { return }
        hashesByID[entry.token.id]?.remove(secretHash)
        if hashesByID[entry.token.id]?.isEmpty == true { hashesByID[entry.token.id] = nil }
    }
}
