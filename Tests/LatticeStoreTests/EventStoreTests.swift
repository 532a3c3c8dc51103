import Foundation
import LatticeDomain
import LatticeStore
import LatticeTestSupport
import Synchronization
import Testing

/// The outbox and the webhooks' deliveries (SPEC §13), on every store.
@Suite(.timeLimit(.minutes(10))) struct EventStoreTests {
    func create(_ store: any Store, _ name: String, namespace: String = "alice") async throws -> Instance {
        var instance = draft(name, namespace: namespace)
        instance.createdAt = t0
        return try await store.createInstance(
            instance,
            on: nodes(2),
            sshPorts: 30000...30010,
            order: order(for: name, namespace: namespace),
            couponID: nil,
            debit: .none
        )
    }

    /// An instance's life told as its writes commit, numbered per namespace, and nothing of
    /// it in another namespace's events.
    @Test(arguments: StoreFactory.all)
    func everyInstanceWriteRecordsItsEvents(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        let name = "instance-0000ev01"
        let created = try await create(store, name)
        var running = created
        running.status = .running
        running.generation += 1
        #expect(try await store.recordObservation(running, expectedGeneration: created.generation))
        let stopping = try await store.updateInstance(namespace: "alice", name: name) { current in
            var next = current
            next.status = .stopping
            next.statusReason = "IdleStopped: no session for 10 minutes"
            next.generation += 1
            return next
        }
        #expect(try await store.purgeInstance(name: name, expectedGeneration: stopping.generation, at: t0))
        let events = try await store.events(namespace: "alice", after: 0, limit: 100)
        #expect(events.map(\.id) == [1, 2, 3, 4, 5, 6])
        #expect(
            events.map(\.type) == [
                .instanceCreated, .instanceStatus, .instanceStatus, .instanceStatus, .instanceIdleStopped,
                .instanceDeleted,
            ]
        )
        #expect(events.allSatisfy { $0.instance == name && $0.namespace == "alice" })
        #expect(
            events.compactMap { $0.type == .instanceStatus ? $0.data["status"] : nil } == [
                .string("Creating"), .string("Running"), .string("Stopping"),
            ]
        )
        #expect(events[3].data["previous"] == .string("Running"))
        #expect(events[3].data["reason"] == .string("IdleStopped: no session for 10 minutes"))
        #expect(try await store.lastEventID(namespace: "alice") == 6)
        #expect(try await store.events(namespace: "alice", after: 4, limit: 100).map(\.id) == [5, 6])
        #expect(try await store.events(namespace: "bob", after: 0, limit: 100).isEmpty)
        #expect(try await store.lastEventID(namespace: "bob") == 0)

        _ = try await create(store, "instance-0000ev02", namespace: "bob")
        #expect(try await store.events(namespace: "bob", after: 0, limit: 100).map(\.id) == [1, 2])
        #expect(try await store.lastEventID(namespace: "alice") == 6, "bob's events have bob's numbers")
    }

    /// A write that fails records no event: the outbox holds only what committed.
    @Test(arguments: StoreFactory.all)
    func aRefusedWriteTellsNothing(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        _ = try await create(store, "instance-0000ev03")
        await #expect(throws: (any Error).self) { _ = try await create(store, "instance-0000ev03") }
        #expect(try await store.events(namespace: "alice", after: 0, limit: 100).count == 2)
    }

    @Test(arguments: StoreFactory.all)
    func aSnapshotReadyOrFailedIsAnEvent(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        var image = SnapshotImage(
            reference: "registry.local/alice/snap:1",
            namespace: "alice",
            sourceInstance: "instance-0000ev04",
            status: .saving,
            createdAt: t0
        )
        try await store.saveImage(image, at: t0)
        image.status = .ready
        image.sizeBytes = 2048
        try await store.saveImage(image, at: t0.addingTimeInterval(5))
        try await store.saveImage(image, at: t0.addingTimeInterval(6))
        let events = try await store.events(namespace: "alice", after: 0, limit: 10)
        #expect(events.map(\.type) == [.imageReady])
        #expect(events.first?.data["reference"] == .string("registry.local/alice/snap:1"))
        #expect(events.first?.time == t0.addingTimeInterval(5))
    }

    @Test(arguments: StoreFactory.all)
    func eventsPastTheirRetentionArePruned(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        _ = try await create(store, "instance-0000ev05")
        #expect(try await store.pruneEvents(before: t0) == 0)
        #expect(try await store.pruneEvents(before: t0.addingTimeInterval(1)) == 2)
        #expect(try await store.events(namespace: "alice", after: 0, limit: 10).isEmpty)
        #expect(try await store.lastEventID(namespace: "alice") == 2, "numbers are never given twice")
    }

    func webhook(_ id: String, namespace: String = "alice", events: [LatticeEvent.Kind] = [.instanceStatus]) -> Webhook
    {
        Webhook(
            id: id,
            namespace: namespace,
            url: "https://hooks.example.com/\(id)",
            events: events,
            secret: "whsec_\(id)",
            createdAt: t0
        )
    }

    /// Deliveries start with the events after registration, only of the types asked for; one
    /// instance's go one at a time in order, another instance's beside them.
    @Test(arguments: StoreFactory.all)
    func deliveriesQueueInOrderPerInstance(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        _ = try await create(store, "instance-0000ew01")
        try await store.createWebhook(webhook("wh-1"))
        #expect(try await store.webhooks(namespace: "alice").map(\.secret) == ["whsec_wh-1"])
        #expect(try await store.webhooks(namespace: "bob").isEmpty)
        let a = try await create(store, "instance-0000ew02")
        var running = a
        running.status = .running
        running.generation += 1
        #expect(try await store.recordObservation(running, expectedGeneration: a.generation))
        _ = try await create(store, "instance-0000ew03")
        let counter = Counter()
        #expect(try await store.queueDeliveries(webhookID: "wh-1", limit: 500, newID: counter.next) == 5)
        #expect(try await store.queueDeliveries(webhookID: "wh-1", limit: 500, newID: counter.next) == 0)
        let (all, total) = try await store.deliveries(webhookID: "wh-1", page: PageRequest())
        #expect(total == 3, "instance.status only: two of ew02, one of ew03")
        #expect(all.map(\.eventID) == [7, 5, 4], "newest first")

        let due = try await store.dueDeliveries(now: t0.addingTimeInterval(1), limit: 10)
        #expect(Set(due.map(\.0.eventID)) == [4, 7], "the first of each instance's line")
        #expect(due.first?.1?.data["status"] == .string("Creating"))
        var failed = WebhookRule.attempted(
            due.first { $0.0.eventID == 4 }!.0,
            .answered(500),
            now: t0.addingTimeInterval(1)
        )
        try await store.recordDelivery(failed)
        #expect(try await store.dueDeliveries(now: t0.addingTimeInterval(1.5), limit: 10).map(\.0.eventID) == [7])
        #expect(
            Set(try await store.dueDeliveries(now: t0.addingTimeInterval(2), limit: 10).map(\.0.eventID)) == [4, 7],
            "again after the backoff, still before the next of its line"
        )
        failed = WebhookRule.attempted(failed, .answered(204), now: t0.addingTimeInterval(2))
        try await store.recordDelivery(failed)
        #expect(
            Set(try await store.dueDeliveries(now: t0.addingTimeInterval(2), limit: 10).map(\.0.eventID)) == [5, 7]
        )
        let first = try await store.deliveries(webhookID: "wh-1", page: PageRequest()).items.last
        #expect(first?.status == .delivered && first?.attempts == 2 && first?.lastResponseStatus == 204)

        #expect(try await store.pruneDeliveries(before: t0.addingTimeInterval(1)) == 1)
        #expect(try await !store.deleteWebhook(namespace: "bob", id: "wh-1"))
        #expect(try await store.deleteWebhook(namespace: "alice", id: "wh-1"))
        #expect(try await store.deliveries(webhookID: "wh-1", page: PageRequest()).total == 0)
        #expect(try await store.dueDeliveries(now: t0.addingTimeInterval(9), limit: 10).isEmpty)
    }

    @Test(arguments: StoreFactory.all)
    func aNamespaceHasAtMostTwentyWebhooks(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        for index in 0..<WebhookRule.perNamespace { try await store.createWebhook(webhook("wh-\(index)")) }
        await #expect(throws: LatticeError.self) { try await store.createWebhook(webhook("wh-more")) }
        try await store.createWebhook(webhook("wh-bob", namespace: "bob"))
        #expect(try await store.allWebhooks().count == WebhookRule.perNamespace + 1)
    }
}

final class Counter: Sendable {
    private let value = Mutex(0)

    @Sendable func next() -> String {
        "whd-\(value.withLock { $0 += 1; return $0 })"
    }
}

@Suite(.timeLimit(.minutes(10))) struct AlertStoreTests {
    /// An alert raised is one event, told once until it is cleared; a new budget clears the
    /// budget's alerts so they are told against it.
    @Test(arguments: StoreFactory.all)
    func alertsAreToldOnceUntilCleared(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        let event = LatticeEvent(namespace: "alice", time: t0, type: .lowBalance, data: ["balance": .string("1.00")])
        let raise: @Sendable (AlertReads) -> AlertDecision = { reads in
            reads.raised.contains("low_balance") ? AlertDecision() : AlertDecision(raise: ["low_balance": event])
        }
        #expect(try await store.recordAlerts(namespace: "alice", raise).map(\.type) == [.lowBalance])
        #expect(try await store.recordAlerts(namespace: "alice", raise).isEmpty)
        #expect(try await store.events(namespace: "alice", after: 0, limit: 10).map(\.type) == [.lowBalance])
        _ = try await store.recordAlerts(namespace: "alice") { _ in AlertDecision(clear: ["low_balance"]) }
        #expect(try await store.recordAlerts(namespace: "alice", raise).count == 1, "told again once cleared")

        let threshold = LatticeEvent(
            namespace: "alice",
            time: t0,
            type: .budgetThreshold,
            data: ["percent": .number(50)]
        )
        let budgetAlert: @Sendable (AlertReads) -> AlertDecision = { reads in
            reads.raised.contains("budget:2027-01:50")
                ? AlertDecision() : AlertDecision(raise: ["budget:2027-01:50": threshold])
        }
        #expect(try await store.recordAlerts(namespace: "alice", budgetAlert).count == 1)
        #expect(try await store.recordAlerts(namespace: "alice", budgetAlert).isEmpty)
        try await store.setBudget(
            Budget(namespace: "alice", monthlyLimit: Money("500")!, alertAt: [50], action: .notify, updatedAt: t0)
        )
        #expect(try await store.recordAlerts(namespace: "alice", budgetAlert).count == 1, "a new budget alerts afresh")
        #expect(try await store.recordAlerts(namespace: "alice", raise).isEmpty, "the wallet's alert stays")
    }
}

@Suite(.timeLimit(.minutes(10))) struct NodeHealthStoreTests {
    @Test(arguments: StoreFactory.all)
    func nodeHealthIsKeptWithItsEvents(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        #expect(try await store.nodeHealth().isEmpty)
        let event = EventRule.node("n1", cluster: "c", from: .healthy, to: .draining, reason: "drained", at: t0)!
        try await store.recordNodeHealth([("n1", .draining), ("n2", .healthy)], events: [event], at: t0)
        #expect(try await store.nodeHealth() == ["n1": .draining, "n2": .healthy])
        try await store.recordNodeHealth([("n1", .healthy)], events: [], at: t0)
        #expect(try await store.nodeHealth()["n1"] == .healthy)
        let told = try await store.events(namespace: LatticeEvent.nodes, after: 0, limit: 10)
        #expect(told.map(\.type) == [.nodeDrained] && told.first?.id == 1)
    }
}
