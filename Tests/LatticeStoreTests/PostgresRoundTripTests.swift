import Foundation
import LatticeDomain
import LatticeStore
import LatticeStorePostgres
import LatticeTestDatabase
import LatticeTestSupport
import Testing

/// Issue 23: a create on PostgreSQL is a few round trips, not one per row it touches.
@Suite(.timeLimit(.minutes(10))) struct PostgresRoundTripTests {
    @Test(.enabled(if: TestDatabase.runs))
    func aCreateIsAFewRoundTrips() async throws {
        let store = try await TestDatabase.store()
        // As the server has it: the namespace's user row holds its balance.
        try await store.createUser(user("alice"), token: token("t-alice", namespace: "alice"), openingCredit: nil)
        try await fund(store)
        // The first create builds the capacity index from the rows; the ones after it are
        // what a running server does.
        var trips: [Int] = []
        for number in 1...3 {
            let name = String(format: "instance-%08d", number)
            let before = store.roundTrips.total
            _ = try await store.createInstance(
                draft(name),
                on: nodes(2),
                sshPorts: 30000...30010,
                order: order(for: name),
                couponID: nil,
                debit: .none
            )
            trips.append(store.roundTrips.total - before)
        }
        // BEGIN, one read for every check (`lattice_create_reads`: the wallet lock, the
        // placement version's row lock, the free port's window), one statement for the whole
        // write set, COMMIT.
        #expect(trips.dropFirst().allSatisfy { $0 <= 4 }, "round trips per create: \(trips)")
        let created = try #require(try await store.instance(name: "instance-00000003"))
        #expect(created.placement != nil && created.access.sshPort == 30002)
        #expect(try await store.nodeUsage().values.reduce(0) { $0 + $1.gpuIndices.count } == 3)
        #expect(try await store.orders(namespace: "alice", page: PageRequest()).total == 3)
        #expect(try await store.instanceCounts()[.creating] == 3)

        // A batch of audit entries: one statement that commits on its own.
        let entries = (1...3).map { number in
            AuditEntry(
                id: "audit-\(number)",
                time: created.createdAt,
                namespace: "alice",
                actor: "alice",
                action: "instance.create",
                target: "instance-0000000\(number)",
                status: 200,
                requestId: "req-\(number)",
                remoteAddress: "127.0.0.1"
            )
        }
        let trip = store.roundTrips.total
        try await store.appendAudit(entries)
        #expect(store.roundTrips.total - trip == 1, "round trips per audit batch")
        #expect(try await store.auditEntries(namespace: "alice", action: nil, page: PageRequest()).items.count == 3)

        // What the reconciler writes after a create, decided from the record this store kept:
        // one statement that commits on its own, checking the row's generation and the lease
        // as it writes (`applyAtOnce`).
        var running = created
        running.status = .running
        running.generation += 1
        running.updatedAt = created.createdAt.addingTimeInterval(5)
        var before = store.roundTrips.total
        #expect(try await store.recordObservation(running, expectedGeneration: created.generation))
        #expect(store.roundTrips.total - before == 1, "round trips per observation")
        before = store.roundTrips.total
        let at = created.createdAt.addingTimeInterval(60)
        #expect(try await store.purgeInstance(name: running.name, expectedGeneration: running.generation, at: at))
        #expect(store.roundTrips.total - before == 1, "round trips per purge")
        #expect(try await store.nodeUsage().values.reduce(0) { $0 + $1.gpuIndices.count } == 2)
        #expect(try await store.instanceCounts()[.running] ?? 0 == 0)
        #expect(
            try await store.orders(namespace: "alice", page: PageRequest()).items.first {
                $0.instanceName == running.name
            }?.status == "closed"
        )
    }
}
