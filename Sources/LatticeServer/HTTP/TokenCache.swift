import Foundation
import LatticeDomain

/// Recently verified tokens, so that a burst of requests costs one store lookup rather
/// than two per request. Revocation and regeneration through this process evict the
/// entry at once; entries also expire after `timeToLive`, which bounds how long another
/// replica may still accept a token revoked elsewhere.
final class TokenCache: @unchecked Sendable {
    struct Entry {
        var token: TokenRecord
        var isAdmin: Bool
        var cachedAt: Date
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private let timeToLive: TimeInterval
    private let capacity: Int

    init(timeToLive: TimeInterval = 5, capacity: Int = 10_000) {
        self.timeToLive = timeToLive
        self.capacity = capacity
    }

    func lookup(secretHash: String, now: Date) -> Entry? {
        lock.withLock {
            guard let entry = entries[secretHash] else { return nil }
            guard now.timeIntervalSince(entry.cachedAt) < timeToLive, now >= entry.cachedAt else {
                entries[secretHash] = nil
                return nil
            }
            return entry
        }
    }

    func store(_ entry: Entry) {
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[entry.token.secretHash] = entry
        }
    }

    func update(_ token: TokenRecord) {
        lock.withLock {
            if entries[token.secretHash] != nil { entries[token.secretHash]?.token = token }
        }
    }

    /// Forgets every cached secret of a token id (after regenerate or delete).
    func evict(tokenID: String) {
        lock.withLock { entries = entries.filter { $0.value.token.id != tokenID } }
    }
}
