import Foundation
import LatticeDomain
import LatticeStore
import LatticeStorePostgres
import LatticeTestSupport
import Testing

/// Issue 23: a create on PostgreSQL is a few round trips, not one per row it touches.
@Suite struct PostgresRoundTripTests {
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
        // BEGIN, the wallet lock, one read for every check, the placement version (its row
        // lock), the free port, one statement for every write, COMMIT.
        #expect(trips.dropFirst().allSatisfy { $0 <= 7 }, "round trips per create: \(trips)")
        let created = try #require(try await store.instance(name: "instance-00000003"))
        #expect(created.placement != nil && created.access.sshPort == 30002)
        #expect(try await store.nodeUsage().values.reduce(0) { $0 + $1.gpuIndices.count } == 3)
        #expect(try await store.orders(namespace: "alice", page: PageRequest()).total == 3)
        #expect(try await store.instanceCounts()[.creating] == 3)
    }
}
