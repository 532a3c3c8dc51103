import Foundation
import LatticeDomain
import LatticeStore
import LatticeTestDatabase
import LatticeTestSupport
import Testing

@testable import LatticeStorePostgres

/// Issue 23: the leader's observation (and purge) of an instance whose record it keeps is one
/// statement that commits on its own. It writes only while the row is at the generation the
/// record was decided from and the lease names the leader; else none of it is written and
/// the transaction path decides.
@Suite(.timeLimit(.minutes(10))) struct PostgresAtOnceTests {
    func create(_ name: String, on store: PostgresStore) async throws -> Instance {
        try await store.createInstance(
            draft(name),
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: name),
            couponID: nil,
            debit: .none
        )
    }

    func running(_ instance: Instance) -> Instance {
        ReconcilePlanner.apply(.running(PodInfo(name: "p", node: "node-0", ip: "10.0.0.1")), to: instance, now: t0 + 5)
    }

    @Test(.enabled(if: TestDatabase.runs))
    func anObservationOfAKeptRecordIsOneStatementAndItsNoticesAreHeard() async throws {
        let url = try await TestDatabase.freshDatabase()
        let leader = try await TestDatabase.open(url)
        let other = try await TestDatabase.open(url)
        var heard = other.changes().makeAsyncIterator()
        #expect(await heard.next() == .reconnected)
        try await fund(leader)
        _ = try #require(try await leader.claimLease(holder: "a", now: t0, ttl: 30))
        leader.fence.enable(holder: "a")
        leader.fence.hold(epoch: 1)

        let created = try await create("instance-00000001", on: leader)
        let before = leader.roundTrips.total
        #expect(try await leader.recordObservation(running(created), expectedGeneration: created.generation))
        #expect(leader.roundTrips.total - before == 1, "round trips per observation of a kept record")
        while let change = await heard.next(), change != .observed(created.name) {}

        let seen = try #require(try await other.instance(name: created.name))
        #expect(seen.status == .running && seen.generation == created.generation + 1)
        let counts = try await other.instanceCounts()
        #expect(counts[.running] == 1 && (counts[.creating] ?? 0) == 0)
        let events = try await other.events(namespace: "alice", after: 0, limit: 100).map(\.type)
        #expect(events.contains(.instanceStatus))
    }

    @Test(.enabled(if: TestDatabase.runs))
    func aRecordAnotherReplicaMovedOnWritesNothingAndTheTransactionSaysSo() async throws {
        let url = try await TestDatabase.freshDatabase()
        let one = try await TestDatabase.open(url)
        let other = try await TestDatabase.open(url)
        try await fund(one)
        let created = try await create("instance-00000001", on: one)
        let events = try await one.events(namespace: "alice", after: 0, limit: 100).count

        // The other replica records the instance running; `one` still keeps the record it
        // created, at the generation before.
        let moved = try #require(try await other.instance(name: created.name))
        #expect(try await other.recordObservation(running(moved), expectedGeneration: moved.generation))
        let afterOther = try await one.events(namespace: "alice", after: 0, limit: 100).count

        let failed = ReconcilePlanner.apply(.failed(reason: "ImagePullBackOff"), to: created, now: t0 + 6)
        #expect(try await !one.recordObservation(failed, expectedGeneration: created.generation))
        let row = try #require(try await other.instance(name: created.name))
        #expect(row.status == .running && row.generation == created.generation + 1)
        let counts = try await one.instanceCounts()
        #expect(counts[.running] == 1 && (counts[.creating] ?? 0) == 0 && (counts[.failed] ?? 0) == 0)
        #expect(try await one.nodeUsage().values.reduce(0) { $0 + $1.gpuIndices.count } == 1, "no GPU given back")
        #expect(try await one.events(namespace: "alice", after: 0, limit: 100).count == afterOther)
        #expect(afterOther > events)

        // A purge decided from the stale record is refused the same way.
        #expect(try await !one.purgeInstance(name: created.name, expectedGeneration: created.generation, at: t0 + 7))
        #expect(try await other.instance(name: created.name) != nil)
    }

    @Test(.enabled(if: TestDatabase.runs))
    func aLeaderThatLostItsLeaseWritesNothing() async throws {
        let store = try await TestDatabase.store()
        try await fund(store)
        _ = try #require(try await store.claimLease(holder: "a", now: t0, ttl: 10))
        store.fence.enable(holder: "a")
        store.fence.hold(epoch: 1)
        let created = try await create("instance-00000001", on: store)
        _ = try #require(try await store.claimLease(holder: "b", now: t0 + 20, ttl: 10))

        let trips = store.roundTrips.total
        await #expect(throws: LatticeError.self) {
            try await store.recordObservation(running(created), expectedGeneration: created.generation)
        }
        #expect(store.roundTrips.total - trips > 1, "the statement was refused and the transaction said why")
        #expect(try await store.instance(name: created.name)?.generation == created.generation)
        #expect(try await store.instanceCounts()[.creating] == 1)
    }
}
