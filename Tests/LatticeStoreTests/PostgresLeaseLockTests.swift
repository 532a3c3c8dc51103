import Foundation
import LatticeDomain
import LatticeStore
import LatticeTestDatabase
import Synchronization
import Testing

@testable import LatticeStorePostgres

/// Issue 23: a fenced write holds the lease row FOR KEY SHARE until it commits. The leader's
/// renewal keeps the epoch and does not wait for it (before, every renewal queued behind the
/// writes in flight and stalled every write that came after it, up to 6 s under load); a
/// takeover, which raises the epoch, waits for it, so no write of the old leader commits after.
@Suite(.timeLimit(.minutes(10))) struct PostgresLeaseLockTests {
    /// What happened, in order.
    final class Log: Sendable {
        private let lines = Mutex<[String]>([])
        func add(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    /// A fenced write that read the lease row and commits `holding` later, while `claim` runs.
    func claim(
        during store: PostgresStore,
        holding: Duration = .milliseconds(800),
        _ claim: @escaping @Sendable () async throws -> LeaderLease?
    ) async throws -> (LeaderLease?, [String]) {
        let log = Log()
        let lease = try await withThrowingTaskGroup(of: LeaderLease?.self) { group in
            group.addTask {
                try await store.transaction { tx in
                    _ = try await PostgresStore.fetch(StoreQueries.lease.forKeyShare(), tx)
                    try await Task.sleep(for: holding)
                    log.add("write committed")
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(200))
                let lease = try await claim()
                log.add("claimed")
                return lease
            }
            var claimed: LeaderLease?
            for try await lease in group { claimed = claimed ?? lease }
            return claimed
        }
        return (lease, log.all)
    }

    @Test(.enabled(if: TestDatabase.runs))
    func aRenewalPassesAFencedWriteInFlightAndATakeoverWaitsForIt() async throws {
        let store = try await TestDatabase.store()
        let start = Date()
        let ttl: TimeInterval = 30
        _ = try #require(try await store.claimLease(holder: "a", now: start, ttl: ttl))

        let (renewed, renewal) = try await claim(during: store) {
            try await store.claimLease(holder: "a", now: start + 1, ttl: ttl)
        }
        #expect(renewed?.holder == "a" && renewed?.epoch == 1)
        #expect(renewal == ["claimed", "write committed"])

        // After the lease lapsed another replica takes it, only once the write is in.
        let (taken, takeover) = try await claim(during: store) {
            try await store.claimLease(holder: "b", now: start + 2 * ttl, ttl: ttl)
        }
        #expect(taken?.holder == "b" && taken?.epoch == 2)
        #expect(takeover == ["write committed", "claimed"])
    }
}
