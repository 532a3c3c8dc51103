import Foundation
import LatticeDomain
import LatticeStore
import LatticeTestDatabase
import LatticeTestSupport
import Testing

@testable import LatticeStorePostgres

/// Issue 23: on PostgreSQL, an instance's owner and generation (what a `GET` needs before its
/// rendered JSON) and list pages come from memory while the change feed listens, and a write
/// on any replica is seen by every replica.
@Suite(.timeLimit(.minutes(10))) struct PostgresDirectoryTests {
    private static func entry(
        _ name: String,
        generation: Int,
        createdAt: Double,
        namespace: String = "alice"
    )
        -> InstanceDirectory.Entry
    {
        InstanceDirectory.Entry(
            version: InstanceVersion(name: name, namespace: namespace, cluster: "c", generation: generation),
            createdAt: createdAt
        )
    }

    private static func loaded(_ rows: [InstanceDirectory.Entry] = []) -> InstanceDirectory {
        let directory = InstanceDirectory()
        directory.listening()
        let epoch = directory.startLoad()!
        directory.install(rows, epoch: epoch)
        return directory
    }

    private static func generation(_ directory: InstanceDirectory, _ name: String) -> Int? {
        guard case .known(let version) = directory.version(name) else { Issue.record("not loaded"); return nil }
        return version?.generation
    }

    @Test func changesInAnyOrderEndTheSame() {
        let orders: [[DirectoryChange]] = [
            [
                .kept(Self.entry("a", generation: 1, createdAt: 10)),
                .kept(Self.entry("a", generation: 2, createdAt: 10)),
            ],
            [
                .kept(Self.entry("a", generation: 2, createdAt: 10)),
                .kept(Self.entry("a", generation: 1, createdAt: 10)),
            ],
        ]
        for changes in orders {
            let directory = Self.loaded()
            for change in changes { directory.apply(change) }
            #expect(Self.generation(directory, "a") == 2)
        }
        // A purge wins over an older version that arrives after it.
        let directory = Self.loaded([Self.entry("a", generation: 3, createdAt: 10)])
        directory.apply(.purged("a", createdAt: 10))
        directory.apply(.kept(Self.entry("a", generation: 2, createdAt: 10)))
        #expect(Self.generation(directory, "a") == nil)
        // A later instance of the same name is a new instance.
        directory.apply(.kept(Self.entry("a", generation: 1, createdAt: 20)))
        #expect(Self.generation(directory, "a") == 1)
        // ...which the old purge, heard again, does not remove.
        directory.apply(.purged("a", createdAt: 10))
        #expect(Self.generation(directory, "a") == 1)
    }

    @Test func pagesAreNewestFirstThenByNameAndCountTheList() throws {
        let directory = Self.loaded([
            Self.entry("b", generation: 1, createdAt: 1),
            Self.entry("d", generation: 1, createdAt: 3),
            Self.entry("x", generation: 1, createdAt: 2, namespace: "bob"),
        ])
        directory.apply(.kept(Self.entry("a", generation: 1, createdAt: 3)))
        directory.apply(.kept(Self.entry("c", generation: 1, createdAt: 2)))
        guard case .known(let all) = directory.page(namespace: "alice", cluster: "c", page: PageRequest()) else {
            Issue.record("not loaded")
            return
        }
        #expect(all.items.map(\.name) == ["a", "d", "c", "b"] && all.total == 4)
        let second = PageRequest(page: 2, pageSize: 3)
        guard case .known(let rest) = directory.page(namespace: "alice", cluster: "c", page: second) else { return }
        #expect(rest.items.map(\.name) == ["b"] && rest.total == 4)
        directory.apply(.purged("d", createdAt: 3))
        guard case .known(let after) = directory.page(namespace: "alice", cluster: "c", page: PageRequest()) else {
            return
        }
        #expect(after.items.map(\.name) == ["a", "c", "b"] && after.total == 3)
    }

    @Test func nothingIsKnownWithoutAListenerOrAfterOneIsLost() {
        let directory = InstanceDirectory()
        #expect(directory.startLoad() == nil, "nobody listens: no load")
        if case .known = directory.version("a") { Issue.record("known without a listener") }
        directory.listening()
        let stale = directory.startLoad()!
        directory.deaf()
        directory.listening()
        // A load that began before the feed was lost may have missed a change: thrown away.
        directory.install([Self.entry("a", generation: 1, createdAt: 1)], epoch: stale)
        #expect(!directory.isComplete)
        let fresh = directory.startLoad()!
        directory.install([Self.entry("a", generation: 1, createdAt: 1)], epoch: fresh)
        #expect(Self.generation(directory, "a") == 1)
        directory.deaf()
        if case .known = directory.version("a") { Issue.record("known after the listener was lost") }
    }

    @Test func aPayloadCarriesTheChangeWhole() {
        let kept = DirectoryChange.kept(Self.entry("instance-1", generation: 7, createdAt: 1_764_000_000.123456))
        #expect(DirectoryChange(payload: kept.payload) == kept)
        let purged = DirectoryChange.purged("instance-1", createdAt: 1_764_000_000.5)
        #expect(DirectoryChange(payload: purged.payload) == purged)
        #expect(DirectoryChange(payload: "i:instance-1") == nil, "the subscribers' notices are not the directory's")
        #expect(DirectoryChange(payload: "v:x\u{1F}y") == nil)
    }

    @Test(.enabled(if: TestDatabase.runs))
    func readsNeedNoRoundTripAndAWriteAnywhereIsSeenEverywhere() async throws {
        let url = try await TestDatabase.freshDatabase()
        let writer = try await TestDatabase.open(url)
        let reader = try await TestDatabase.open(url)
        let deafReplica = try await TestDatabase.open(url)
        let writerFeed = writer.changes()
        let readerFeed = reader.changes()
        var writerChanges = writerFeed.makeAsyncIterator()
        var readerChanges = readerFeed.makeAsyncIterator()
        #expect(await writerChanges.next() == .reconnected)
        #expect(await readerChanges.next() == .reconnected)
        let clock = ContinuousClock()
        let start = clock.now
        func eventually(_ what: Comment, _ condition: () async throws -> Bool) async throws {
            while try await !condition() {
                guard clock.now - start < .seconds(20) else {
                    Issue.record(what)
                    return
                }
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        try await eventually("directories loaded") {
            writer.answersInstancesFromMemory && reader.answersInstancesFromMemory
        }

        try await writer.createUser(user("alice"), token: token("t-alice", namespace: "alice"), openingCredit: nil)
        try await fund(writer)
        var created: [Instance] = []
        for number in 1...5 {
            let name = String(format: "instance-%08d", number)
            created.append(
                try await writer.createInstance(
                    draft(name),
                    on: nodes(2),
                    sshPorts: 30000...30010,
                    order: order(for: name),
                    couponID: nil,
                    debit: .none
                )
            )
        }
        let first = created[0]
        // The writer knows at once, without a round trip; the reader once it hears.
        var before = writer.roundTrips.total
        #expect(try await writer.instanceVersion(name: first.name)?.generation == first.generation)
        #expect(writer.roundTrips.total == before)
        try await eventually("the reader hears of the creates") {
            try await reader.instanceVersion(name: created[4].name) != nil
        }
        before = reader.roundTrips.total
        for instance in created {
            #expect(try await reader.instanceVersion(name: instance.name)?.generation == instance.generation)
        }
        #expect(try await reader.instanceVersion(name: "instance-99999999") == nil)
        #expect(reader.roundTrips.total == before, "answered from memory")
        // Every page from memory is the page the database gives.
        for (page, size) in [(1, 20), (1, 2), (2, 2), (3, 2), (4, 2)] {
            let request = PageRequest(page: page, pageSize: size)
            let fromMemory = try await reader.instanceVersions(
                namespace: "alice",
                cluster: first.cluster,
                page: request
            )
            let fromTable = try await deafReplica.instanceVersions(
                namespace: "alice",
                cluster: first.cluster,
                page: request
            )
            #expect(fromMemory.items == fromTable.items && fromMemory.total == fromTable.total && fromTable.total == 5)
        }
        #expect(reader.roundTrips.total == before, "pages from memory")
        // Records: the writer keeps what it wrote; the reader reads each once, then from memory.
        before = writer.roundTrips.total
        #expect(try await writer.instance(name: first.name) == first)
        #expect(writer.roundTrips.total == before, "the writer's own record from memory")
        before = reader.roundTrips.total
        #expect(try await reader.instance(name: first.name) == first)
        #expect(try await reader.instance(name: first.name) == first)
        #expect(reader.roundTrips.total - before == 1, "read once, then from memory")

        // A write on one replica: that replica answers the new generation at once, the other
        // as soon as the notification arrives.
        let running = ReconcilePlanner.apply(
            .running(PodInfo(name: "p", node: "node-0", ip: "10.0.0.1")),
            to: first,
            now: first.createdAt
        )
        #expect(try await writer.recordObservation(running, expectedGeneration: first.generation))
        let stopping = try await writer.updateInstance(namespace: "alice", name: first.name) {
            try InstanceLifecycle.powerOff($0, gracePeriodSeconds: 1, snapshot: nil, now: first.createdAt)
        }
        #expect(stopping.generation > running.generation)
        #expect(try await writer.instanceVersion(name: first.name)?.generation == stopping.generation)
        try await eventually("the other replica hears of the write") {
            try await reader.instanceVersion(name: first.name)?.generation == stopping.generation
        }
        #expect(await readerChanges.next() == .instance(first.name), "subscribers still hear the instance")
        // Who hears `.instance` reads the new record, never the one it kept.
        #expect(try await reader.instance(name: first.name) == stopping)

        // A replica whose feed does not listen keeps nothing: every read is a round trip.
        before = deafReplica.roundTrips.total
        for _ in 0..<3 {
            #expect(try await deafReplica.instanceVersion(name: first.name)?.generation == stopping.generation)
        }
        #expect(deafReplica.roundTrips.total - before == 3)

        // Purged on one replica: gone on both, and from the lists.
        let stopped = ReconcilePlanner.apply(.stopped(reason: ""), to: stopping, now: first.createdAt)
        #expect(try await writer.recordObservation(stopped, expectedGeneration: stopping.generation))
        let deleting = try await writer.updateInstance(namespace: "alice", name: first.name) {
            InstanceLifecycle.delete($0, now: first.createdAt)
        }
        #expect(try await writer.purgeInstance(name: first.name, expectedGeneration: deleting.generation, at: .now))
        #expect(try await writer.instanceVersion(name: first.name) == nil)
        try await eventually("a purge on one replica is seen on the other") {
            try await reader.instanceVersion(name: first.name) == nil
        }
        let page = try await reader.instanceVersions(namespace: "alice", cluster: first.cluster, page: PageRequest())
        #expect(page.total == 4 && !page.items.contains { $0.name == first.name })
        withExtendedLifetime((writerFeed, readerFeed)) {}
    }
}
