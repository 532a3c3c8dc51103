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

        /// Waits until `line` was logged or `limit` passed; polling keeps the test free of timing
        /// guesses about how long a busy machine takes to hand out a connection.
        func wait(for line: String, atMost limit: Duration) async throws {
            let clock = ContinuousClock()
            let deadline = clock.now + limit
            while !all.contains(line), clock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        }
    }

    /// A fenced write that read the lease row and holds it until `claim` is done or `holding`
    /// passed; `claim` starts only once the write holds the row.
    func claim(
        during store: PostgresStore,
        holding: Duration,
        _ claim: @escaping @Sendable () async throws -> LeaderLease?
    ) async throws -> (LeaderLease?, [String]) {
        let log = Log()
        let lease = try await withThrowingTaskGroup(of: LeaderLease?.self) { group in
            group.addTask {
                try await store.transaction { tx in
                    _ = try await PostgresStore.fetch(StoreQueries.lease.forKeyShare(), tx)
                    log.add("locked")
                    try await log.wait(for: "claimed", atMost: holding)
                    log.add("write committed")
                }
                return nil
            }
            group.addTask {
                try await log.wait(for: "locked", atMost: .seconds(60))
                let lease = try await claim()
                log.add("claimed")
                return lease
            }
            var claimed: LeaderLease?
            for try await lease in group { claimed = claimed ?? lease }
            return claimed
        }
        return (lease, log.all.filter { $0 != "locked" })
    }

    @Test(.enabled(if: TestDatabase.runs))
    func aRenewalPassesAFencedWriteInFlightAndATakeoverWaitsForIt() async throws {
        let store = try await TestDatabase.store()
        let start = Date()
        let ttl: TimeInterval = 30
        _ = try #require(try await store.claimLease(holder: "a", now: start, ttl: ttl))

        // The write holds the row until the renewal is done (or 30 s, when the renewal waits for it).
        let (renewed, renewal) = try await claim(during: store, holding: .seconds(30)) {
            try await store.claimLease(holder: "a", now: start + 1, ttl: ttl)
        }
        #expect(renewed?.holder == "a" && renewed?.epoch == 1)
        #expect(renewal == ["claimed", "write committed"])

        // After the lease lapsed another replica takes it, only once the write is in.
        let (taken, takeover) = try await claim(during: store, holding: .seconds(1)) {
            try await store.claimLease(holder: "b", now: start + 2 * ttl, ttl: ttl)
        }
        #expect(taken?.holder == "b" && taken?.epoch == 2)
        #expect(takeover == ["write committed", "claimed"])
    }
}
