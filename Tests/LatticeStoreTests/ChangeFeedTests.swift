import Foundation
import LatticeDomain
import LatticeStore
import LatticeTestSupport
import Testing

/// The one change feed: every replica hears of each committed instance write (a port taken
/// at create, given back at purge) and token change, its own and the others'; a write
/// that fails tells nobody.
@Suite(.timeLimit(.minutes(10))) struct ChangeFeedTests {
    @Test(arguments: Replicas.all)
    func everyReplicaHearsOfEveryCommittedWrite(_ replicas: Replicas) async throws {
        let stores = try await replicas.make()
        let writer = stores[0]
        let listener = stores[stores.count - 1]
        try await fund(writer)
        let heard = Heard(listener.changes())
        // PostgreSQL's feed says it (re)connected once it listens; SQLite's listens at once.
        if stores.count > 1 { #expect(try await heard.next() == .reconnected) }

        let name = "instance-00000001"
        let created = try await writer.createInstance(
            draft(name),
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: name),
            couponID: nil,
            debit: .none
        )
        #expect(try await heard.next() == .instance(name), "the create (its port) is heard")
        #expect(try await heard.next() == .events("alice"), "and its events")

        // A create that fails (the name is taken) commits nothing and tells nothing.
        await #expect(throws: (any Error).self) {
            try await writer.createInstance(
                draft(name),
                on: nodes(),
                sshPorts: 30000...30010,
                order: order(for: name),
                couponID: nil,
                debit: .none
            )
        }
        #expect(try await writer.purgeInstance(name: name, expectedGeneration: created.generation, at: t0 + 60))
        #expect(try await heard.next() == .observed(name), "the purge (its port given back) is heard, nothing before")
        #expect(try await heard.next() == .events("alice"))

        try await writer.createUser(user("carol"), token: token("tc", namespace: "carol"), openingCredit: nil)
        try await writer.deleteToken(id: "tc", namespace: "carol")
        #expect(try await heard.next() == .token("tc"))
    }
}

/// Reads a change stream one change at a time, failing after 5 s of silence.
final class Heard: @unchecked Sendable {
    private var iterator: AsyncStream<StoreChange>.AsyncIterator

    init(_ stream: AsyncStream<StoreChange>) { iterator = stream.makeAsyncIterator() }

    func next() async throws -> StoreChange? {
        try await withThrowingTaskGroup(of: StoreChange?.self) { group in
            group.addTask { [self] in await self.iterator.next() }
            group.addTask {
                try await Task.sleep(for: .seconds(5))
                throw CancellationError()
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
    }
}
