import Foundation
import LatticeDomain
import LatticeStore
import LatticeTestDatabase
import LatticeTestSupport
import Testing

@testable import LatticeStorePostgres

/// Issue 23: what many calls read and few writes change is kept in memory on PostgreSQL while
/// the change feed listens (`FeedMemo`), and a write on any replica is seen on every replica:
/// the leader's webhook sender asks for every webhook on each commit that records events, and
/// every create reads its namespace's budget, default idle stop and the drained nodes.
@Suite(.timeLimit(.minutes(10))) struct PostgresFeedMemoTests {
    func webhook(_ id: String) -> Webhook {
        Webhook(
            id: id,
            namespace: "alice",
            url: "https://hooks.example.com/\(id)",
            events: [.instanceStatus],
            secret: "whsec_\(id)",
            createdAt: t0
        )
    }

    /// Waits until `count` notices of `change` came, whatever else comes between.
    func hear(
        _ count: Int,
        of change: StoreChange,
        on changes: inout AsyncStream<StoreChange>.Iterator
    ) async throws {
        var heard = 0
        while heard < count {
            let next = try #require(await changes.next())
            if next == change { heard += 1 }
        }
    }

    @Test func aReadThatBeganBeforeAForgetIsNotKept() {
        let memo = FeedMemo<String, [String]>()
        #expect(memo.lookup("k").value == nil)
        memo.keep([], for: "k", generation: memo.lookup("k").generation)
        #expect(memo.lookup("k").value == nil, "nothing is kept while the feed is not heard")
        memo.listening(true)
        let before = memo.lookup("k").generation
        memo.forget()
        memo.keep(["old"], for: "k", generation: before)
        #expect(memo.lookup("k").value == nil)
        memo.keep(["new"], for: "k", generation: memo.lookup("k").generation)
        #expect(memo.lookup("k").value == ["new"])
        #expect(memo.lookup("other").value == nil)
        memo.listening(false)
        #expect(memo.lookup("k").value == nil)
    }

    @Test func aFullMemoStartsAfresh() {
        let memo = FeedMemo<String, Int>(capacity: 2)
        memo.listening(true)
        for (key, value) in [("a", 1), ("b", 2), ("c", 3)] {
            memo.keep(value, for: key, generation: memo.lookup(key).generation)
        }
        #expect(memo.lookup("a").value == nil && memo.lookup("b").value == nil && memo.lookup("c").value == 3)
    }

    @Test(.enabled(if: TestDatabase.runs))
    func aWebhookCreatedOrDeletedOnAnyReplicaIsSeenOnEvery() async throws {
        let url = try await TestDatabase.freshDatabase()
        let one = try await TestDatabase.open(url)
        let other = try await TestDatabase.open(url)
        var oneChanges = one.changes().makeAsyncIterator()
        var otherChanges = other.changes().makeAsyncIterator()
        #expect(await oneChanges.next() == .reconnected)
        #expect(await otherChanges.next() == .reconnected)
        try await one.createUser(user("alice"), token: token("t-alice", namespace: "alice"), openingCredit: nil)

        #expect(try await one.allWebhooks().isEmpty)
        #expect(try await other.allWebhooks().isEmpty)
        let trips = other.roundTrips.total
        #expect(try await other.allWebhooks().isEmpty)
        #expect(other.roundTrips.total == trips, "a kept list reads nothing")

        // The writer sees its own write at once; the other replica once the notice arrives.
        try await one.createWebhook(webhook("wh-1"))
        #expect(try await one.allWebhooks().map(\.id) == ["wh-1"])
        #expect(await otherChanges.next() == .webhooks)
        #expect(try await other.allWebhooks().map(\.id) == ["wh-1"])
        #expect(try await other.deleteWebhook(namespace: "alice", id: "wh-1"))
        #expect(try await other.allWebhooks().isEmpty)
        // `one` hears its own create, then the other's delete.
        try await hear(2, of: .webhooks, on: &oneChanges)
        #expect(try await one.allWebhooks().isEmpty)
    }

    @Test(.enabled(if: TestDatabase.runs))
    func aBudgetIdleDefaultOrDrainSetOnAnyReplicaIsSeenOnEvery() async throws {
        let url = try await TestDatabase.freshDatabase()
        let one = try await TestDatabase.open(url)
        let other = try await TestDatabase.open(url)
        var oneChanges = one.changes().makeAsyncIterator()
        var otherChanges = other.changes().makeAsyncIterator()
        #expect(await oneChanges.next() == .reconnected)
        #expect(await otherChanges.next() == .reconnected)

        #expect(try await other.startInputs(namespace: "alice") == StartInputs())
        let trips = other.roundTrips.total
        #expect(try await other.startInputs(namespace: "alice") == StartInputs())
        #expect(other.roundTrips.total == trips, "kept inputs read nothing")

        // Each kind of write: the writer sees it at once, the other replica once told.
        let budget = Budget(namespace: "alice", monthlyLimit: Money("5")!, alertAt: [50], action: .block, updatedAt: t0)
        try await one.setBudget(budget)
        #expect(try await one.startInputs(namespace: "alice").budget == budget)
        #expect(await otherChanges.next() == .startInputs)
        #expect(try await other.startInputs(namespace: "alice").budget == budget)

        let idle = IdleDefault(
            namespace: "alice",
            policy: IdleStopPolicy(afterMinutes: 30),
            wakeOnConnect: true,
            updatedAt: t0
        )
        try await one.setIdleDefault(idle)
        #expect(await otherChanges.next() == .startInputs)
        #expect(try await other.startInputs(namespace: "alice").idleDefault == idle)

        _ = try await other.startInputs(namespace: "bob")
        try await one.setDrained(node: "node-1", true, at: t0)
        #expect(await otherChanges.next() == .startInputs)
        #expect(try await other.startInputs(namespace: "bob").drained == [NodeDrain(node: "node-1", since: t0)])

        // `one` heard its own three writes; it keeps what it reads now until the fourth notice.
        try await hear(3, of: .startInputs, on: &oneChanges)
        #expect(try await one.startInputs(namespace: "alice").idleDefault == idle)
        #expect(try await other.clearIdleDefault(namespace: "alice"))
        #expect(try await other.startInputs(namespace: "alice").idleDefault == nil)
        try await hear(1, of: .startInputs, on: &oneChanges)
        let seen = try await one.startInputs(namespace: "alice")
        #expect(seen.idleDefault == nil && seen.budget == budget && seen.drained.map(\.node) == ["node-1"])
    }
}
