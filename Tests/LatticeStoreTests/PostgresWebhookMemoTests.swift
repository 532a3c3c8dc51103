import Foundation
import LatticeDomain
import LatticeStore
import LatticeTestDatabase
import LatticeTestSupport
import Testing

@testable import LatticeStorePostgres

/// Issue 23: the leader's webhook sender asks for every webhook on each commit that records
/// events; on PostgreSQL the list comes from memory while the change feed listens, and a
/// webhook created or deleted on any replica is seen on every replica.
@Suite(.timeLimit(.minutes(10))) struct PostgresWebhookMemoTests {
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

    @Test func aReadThatBeganBeforeAForgetIsNotKept() {
        let memo = WebhookMemo()
        #expect(memo.lookup().list == nil)
        memo.keep([], generation: memo.lookup().generation)
        #expect(memo.lookup().list == nil, "nothing is kept while the feed is not heard")
        memo.listening(true)
        let before = memo.lookup().generation
        memo.forget()
        memo.keep([webhook("wh-old")], generation: before)
        #expect(memo.lookup().list == nil)
        memo.keep([webhook("wh-new")], generation: memo.lookup().generation)
        #expect(memo.lookup().list?.map(\.id) == ["wh-new"])
        memo.listening(false)
        #expect(memo.lookup().list == nil)
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
        while await oneChanges.next() != .webhooks {}
        #expect(try await one.allWebhooks().isEmpty)
    }
}
