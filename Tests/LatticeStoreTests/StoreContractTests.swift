import Foundation
import LatticeDomain
import LatticeStore
import LatticeStoreSQLite
import LatticeTestDatabase
import LatticeTestSupport
import Testing

/// How to make a fresh store of one kind. Every test of this suite runs on each of them
/// unchanged: a store is done when the whole suite passes on it.
struct StoreFactory: CustomStringConvertible, Sendable {
    let description: String
    let make: @Sendable () async throws -> any Store

    static let all: [StoreFactory] =
        [
            StoreFactory(description: "sqlite-memory") { try SQLiteStore() },
            StoreFactory(description: "sqlite-file") {
                let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
                    "lattice-store-\(UUID().uuidString)"
                )
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                return try SQLiteStore(path: dir.appendingPathComponent("lattice.sqlite").path)
            },
        ]
        + (TestDatabase.runs ? [StoreFactory(description: "postgresql") { try await TestDatabase.store() }] : [])
}

let t0 = Date(timeIntervalSince1970: 1_800_000_000)

func token(_ id: String, namespace: String, hash: String? = nil) -> TokenRecord {
    TokenRecord(
        id: id,
        namespace: namespace,
        name: "n-\(id)",
        secretHash: hash ?? "hash-\(id)",
        createdAt: t0,
        expiresAt: t0.addingTimeInterval(86400)
    )
}

func user(_ namespace: String, admin: Bool = false) -> User {
    User(namespace: namespace, isAdmin: admin, createdAt: t0)
}

func nodes(_ count: Int = 1, gpus: Int = 4) -> [ClusterNode] {
    (0..<count).map {
        ClusterNode(
            node: Node(name: "node-\($0)", gpuModel: "4090", gpuCount: gpus, cpuCores: 256, memoryGiB: 2048),
            cluster: "host-cluster",
            healthy: true
        )
    }
}

func draft(_ name: String, namespace: String = "alice", gpus: Int = 1) -> Instance {
    var instance = sampleInstance(name: name, namespace: namespace, status: .creating)
    instance.placement = nil
    instance.pod = PodInfo(name: name + "-abcde", node: "", ip: "")
    instance.resources.gpuCount = gpus
    instance.access.sshPort = 0
    instance.cost.orderID = "order-\(name)"
    return instance
}

func order(for name: String, namespace: String = "alice") -> Order {
    Order(
        id: "order-\(name)",
        namespace: namespace,
        instanceName: name,
        costType: 1,
        gpuSkuID: "66",
        amount: .zero,
        status: "active",
        createdAt: t0
    )
}

/// Credits alice and bob generously, for tests about something other than the wallet.
func fund(_ store: any Store, _ amount: String = "1000000") async throws {
    for namespace in ["alice", "bob"] {
        _ = try await store.appendLedger(
            LedgerEntry(
                id: "fund-\(namespace)",
                namespace: namespace,
                kind: .credit,
                amount: Money(amount)!,
                idempotencyKey: "fund:\(namespace)",
                createdAt: t0
            )
        )
    }
}

@Suite(.timeLimit(.minutes(10))) struct StoreContractTests {
    @Test(arguments: StoreFactory.all)
    func bootstrapHappensOnce(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        #expect(try await store.bootstrap(admin: user("admin", admin: true), token: token("t1", namespace: "admin")))
        #expect(try await !store.bootstrap(admin: user("admin", admin: true), token: token("t2", namespace: "admin")))
        #expect(try await store.user(namespace: "admin")?.isAdmin == true)
        #expect(try await store.tokens(namespace: "admin").map(\.id) == ["t1"])
    }

    @Test(arguments: StoreFactory.all)
    func usersAndTokens(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await store.createUser(user("alice"), token: token("a1", namespace: "alice"), openingCredit: nil)
        await #expect(throws: LatticeError.self) {
            try await store.createUser(user("alice"), token: token("a2", namespace: "alice"), openingCredit: nil)
        }
        try await store.createUser(user("bob"), token: token("b1", namespace: "bob"), openingCredit: nil)
        try await store.createToken(token("a3", namespace: "alice"))
        #expect(try await store.tokens(namespace: "alice").map(\.id).sorted() == ["a1", "a3"])
        #expect(try await store.token(secretHash: "hash-b1")?.namespace == "bob")

        let replaced = try await store.replaceTokenSecret(id: "a1", namespace: "alice", secretHash: "new")
        #expect(replaced.secretHash == "new")
        #expect(try await store.token(secretHash: "hash-a1") == nil)
        await #expect(throws: LatticeError.notFound("token 'a1'")) {
            try await store.replaceTokenSecret(id: "a1", namespace: "bob", secretHash: "x")
        }
        await #expect(throws: LatticeError.self) { try await store.deleteToken(id: "b1", namespace: "alice") }
        try await store.deleteToken(id: "a3", namespace: "alice")
        #expect(try await store.token(secretHash: "hash-a3") == nil)
        try await store.touchToken(id: "a1", at: t0)
        #expect(try await store.token(secretHash: "new")?.lastUsedAt == t0)
    }

    /// A node the driver stops reporting (it left a Kubernetes cluster) takes no more work.
    @Test(arguments: StoreFactory.all)
    func aNodeThatIsNoLongerReportedTakesNoWork(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        let both = nodes(2)
        let first = try await store.createInstance(
            draft("instance-0000a001"),
            on: both,
            sshPorts: 30000...30010,
            order: order(for: "instance-0000a001"),
            couponID: nil,
            debit: .none
        )
        let left = first.placement?.node
        let remaining = both.filter { $0.node.name != left }
        for number in 2...5 {
            let name = "instance-0000a00\(number)"
            let next = try await store.createInstance(
                draft(name),
                on: remaining,
                sshPorts: 30000...30010,
                order: order(for: name),
                couponID: nil,
                debit: .none
            )
            #expect(next.placement?.node != left)
        }
    }

    /// The meter reads what is due by index: an idle clock that ran out is due like a
    /// scheduled stop, and use that restarts it takes the instance off the list.
    @Test(arguments: StoreFactory.all)
    func anIdleClockThatRanOutIsDue(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        let name = "instance-0000e001"
        _ = try await store.createInstance(
            draft(name),
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: name),
            couponID: nil,
            debit: .none
        )
        let idle = try await store.updateInstance(namespace: "alice", name: name) { current in
            var next = current
            next.status = .running
            next.idleStop = IdleStopPolicy(afterMinutes: 10)
            next.idleSince = t0
            next.generation += 1
            return next
        }
        #expect(idle.dueAt == t0.addingTimeInterval(600))
        let before = try await store.instancesToEnforce(at: t0.addingTimeInterval(599), stoppedBefore: .distantPast)
        #expect(!before.map(\.name).contains(name))
        let after = try await store.instancesToEnforce(at: t0.addingTimeInterval(600), stoppedBefore: .distantPast)
        #expect(after.map(\.name).contains(name))
        _ = try await store.updateInstance(namespace: "alice", name: name) {
            IdleRule.used($0, at: t0.addingTimeInterval(590)) ?? $0
        }
        let used = try await store.instancesToEnforce(at: t0.addingTimeInterval(600), stoppedBefore: .distantPast)
        #expect(!used.map(\.name).contains(name), "used since: due again only 10 minutes after that")
    }

    @Test(arguments: StoreFactory.all)
    func createReservesGPUsAndAPort(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        let first = try await store.createInstance(
            draft("instance-00000001", gpus: 3),
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: "instance-00000001"),
            couponID: nil,
            debit: .none
        )
        #expect(first.placement == GPUPlacement(node: "node-0", gpuIndices: [0, 1, 2]))
        #expect(first.access.sshPort == 30000)
        #expect(first.pod?.node == "node-0")
        let second = try await store.createInstance(
            draft("instance-00000002"),
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: "instance-00000002"),
            couponID: nil,
            debit: .none
        )
        #expect(second.placement?.gpuIndices == [3])
        #expect(second.access.sshPort == 30001)
        await #expect {
            try await store.createInstance(
                draft("instance-00000003"),
                on: nodes(),
                sshPorts: 30000...30010,
                order: order(for: "instance-00000003"),
                couponID: nil,
                debit: .none
            )
        } throws: { ($0 as? LatticeError)?.code == "InsufficientCapacity" }
        #expect(try await store.instance(name: "instance-00000003") == nil)
        #expect(try await store.nodeUsage()["node-0"]?.gpuIndices == [0, 1, 2, 3])
        #expect(try await store.orders(namespace: "alice", page: PageRequest()).total == 2)
        await #expect(throws: StoreError.duplicateName) {
            try await store.createInstance(
                draft("instance-00000001"),
                on: nodes(2),
                sshPorts: 30000...30010,
                order: order(for: "x"),
                couponID: nil,
                debit: .none
            )
        }
    }

    @Test(arguments: StoreFactory.all)
    func concurrentCreatesNeverOversell(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        let results = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<40 {
                group.addTask {
                    let name = String(format: "instance-%08x", i)
                    return
                        (try? await store.createInstance(
                            draft(name),
                            on: nodes(2, gpus: 3),
                            sshPorts: 30000...31000,
                            order: order(for: name),
                            couponID: nil,
                            debit: .none
                        )) != nil
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 6)
        let usage = try await store.nodeUsage()
        #expect(usage.values.map(\.gpuIndices.count).reduce(0, +) == 6)
    }

    @Test(arguments: StoreFactory.all)
    func consoleSessionsLiveInTheStore(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        let session = ConsoleSessionRecord(
            namespace: "alice",
            tokenID: "t1",
            tokenHash: "h1",
            isAdmin: false,
            expiresAt: t0 + 100,
            csrf: "c1"
        )
        try await store.createSession(idHash: "s1", session, now: t0)
        #expect(try await store.session(idHash: "s1", now: t0) == session)
        #expect(try await store.session(idHash: "s1", now: t0 + 100) == nil, "expired")
        #expect(try await store.takeRevealed(idHash: "s1") == nil)
        try await store.setRevealed(idHash: "s1", sealed: Data([1, 2, 3]))
        #expect(try await store.takeRevealed(idHash: "s1") == Data([1, 2, 3]))
        #expect(try await store.takeRevealed(idHash: "s1") == nil, "shown once")
        try await store.endSession(idHash: "s1")
        #expect(try await store.session(idHash: "s1", now: t0) == nil)
        // creating one after another has expired (and is cleared away) keeps the new one
        try await store.createSession(idHash: "s2", session, now: t0)
        try await store.createSession(idHash: "s3", session, now: t0 + 200)
        #expect(try await store.session(idHash: "s3", now: t0 + 50) != nil)
        #expect(try await store.session(idHash: "s2", now: t0 + 50) == nil)
    }

    @Test(arguments: StoreFactory.all)
    func oneLeaderAtATimeAndItsWritesAreFenced(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        #expect(try await store.leaderLease() == nil)
        let a = try #require(try await store.claimLease(holder: "a", now: t0, ttl: 10))
        #expect(a == LeaderLease(holder: "a", epoch: 1, expiresAt: t0 + 10))
        #expect(try await store.claimLease(holder: "b", now: t0 + 5, ttl: 10)?.holder == "a", "b waits while a leads")
        #expect(try await store.claimLease(holder: "a", now: t0 + 5, ttl: 10)?.epoch == 1, "a renews, same epoch")

        // a leads with its epoch: its fenced writes go ahead
        store.fence.enable(holder: "a")
        let created = try await store.createInstance(
            draft("instance-00000001"),
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: "instance-00000001"),
            couponID: nil,
            debit: .none
        )
        let running = ReconcilePlanner.apply(.running(PodInfo(name: "p", node: "node-0", ip: "")), to: created, now: t0)
        await #expect(throws: LatticeError.self, "enabled but not holding an epoch: refused") {
            try await store.recordObservation(running, expectedGeneration: created.generation)
        }
        store.fence.hold(epoch: 1)
        #expect(try await store.recordObservation(running, expectedGeneration: created.generation))

        // a pauses past its lease; b takes over with the next epoch; a's late write is refused
        let b = try #require(try await store.claimLease(holder: "b", now: t0 + 16, ttl: 10))
        #expect(b.holder == "b" && b.epoch == 2)
        let stale = ReconcilePlanner.apply(.stopped(reason: ""), to: running, now: t0)
        await #expect(throws: LatticeError.self) {
            try await store.recordObservation(stale, expectedGeneration: running.generation)
        }
        await #expect(throws: LatticeError.self) { try await store.setDepletedSince(namespace: "alice", t0) }
        #expect(try await store.instance(name: created.name)?.status == .running, "nothing was written")

        // b hands the lease back on shutdown: the next claim takes it at once, epoch 3
        try await store.releaseLease(holder: "a", now: t0 + 17)
        #expect(try await store.leaderLease()?.holder == "b", "only the holder can release")
        try await store.releaseLease(holder: "b", now: t0 + 17)
        let c = try #require(try await store.claimLease(holder: "c", now: t0 + 17, ttl: 10))
        #expect(c.holder == "c" && c.epoch == 3)
    }

    @Test(arguments: StoreFactory.all)
    func observationsAreConditionalAndReleaseGPUs(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        let created = try await store.createInstance(
            draft("instance-00000001", gpus: 4),
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: "instance-00000001"),
            couponID: nil,
            debit: .none
        )
        let running = ReconcilePlanner.apply(
            .running(PodInfo(name: "p", node: "node-0", ip: "10.0.0.1")),
            to: created,
            now: t0
        )
        #expect(try await store.recordObservation(running, expectedGeneration: created.generation))
        #expect(
            try await !store.recordObservation(running, expectedGeneration: created.generation),
            "a stale write loses"
        )
        let stopping = try await store.updateInstance(namespace: "alice", name: created.name) {
            try InstanceLifecycle.powerOff($0, gracePeriodSeconds: 1, snapshot: nil, now: t0)
        }
        #expect(stopping.status == .stopping)
        #expect(try await store.nodeUsage()["node-0"]?.gpuIndices.count == 4)
        let stopped = ReconcilePlanner.apply(.stopped(reason: ""), to: stopping, now: t0)
        #expect(try await store.recordObservation(stopped, expectedGeneration: stopping.generation))
        #expect(try await store.nodeUsage()["node-0"] == nil)

        let other = try await store.createInstance(
            draft("instance-00000002", gpus: 2),
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: "instance-00000002"),
            couponID: nil,
            debit: .none
        )
        #expect(other.placement?.gpuIndices == [0, 1])
        await #expect {
            try await store.powerOn(
                namespace: "alice",
                name: created.name,
                on: nodes(),
                sshPorts: 30000...30010,
                podName: "p2",
                now: t0,
                debit: .none
            )
        } throws: { ($0 as? LatticeError)?.code == "InsufficientCapacity" }
        #expect(try await store.instance(name: created.name)?.status == .stopped)
        let deleted = try await store.updateInstance(namespace: "alice", name: other.name) {
            InstanceLifecycle.delete($0, now: t0)
        }
        #expect(try await store.purgeInstance(name: other.name, expectedGeneration: deleted.generation, at: t0))
        let started = try await store.powerOn(
            namespace: "alice",
            name: created.name,
            on: nodes(),
            sshPorts: 30000...30010,
            podName: "p2",
            now: t0,
            debit: .none
        )
        #expect(started.status == .starting && started.placement?.gpuIndices == [0, 1, 2, 3])
    }

    @Test(arguments: StoreFactory.all)
    func tenantsAreIsolated(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        _ = try await store.createInstance(
            draft("instance-0000000a", namespace: "alice"),
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: "a", namespace: "alice"),
            couponID: nil,
            debit: .none
        )
        _ = try await store.createInstance(
            draft("instance-0000000b", namespace: "bob"),
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: "b", namespace: "bob"),
            couponID: nil,
            debit: .none
        )
        #expect(try await store.instance(namespace: "bob", name: "instance-0000000a") == nil)
        await #expect(throws: LatticeError.notFound("instance 'instance-0000000a'")) {
            try await store.updateInstance(namespace: "bob", name: "instance-0000000a") {
                InstanceLifecycle.delete($0, now: t0)
            }
        }
        await #expect(throws: LatticeError.self) {
            try await store.powerOn(
                namespace: "bob",
                name: "instance-0000000a",
                on: nodes(),
                sshPorts: 30000...30010,
                podName: "p",
                now: t0,
                debit: .none
            )
        }
        #expect(
            try await store.instances(namespace: "alice", cluster: nil, page: PageRequest()).items.map(\.name) == [
                "instance-0000000a"
            ]
        )
        #expect(try await store.orders(namespace: "bob", page: PageRequest()).items.map(\.instanceName) == ["b"])
        try await store.saveImage(
            SnapshotImage(
                reference: "h/alice/x:1",
                namespace: "alice",
                sourceInstance: "a",
                status: .ready,
                createdAt: t0
            )
        )
        #expect(try await store.images(namespace: "bob").isEmpty)
        #expect(try await store.images(namespace: "alice").map(\.reference) == ["h/alice/x:1"])
    }

    @Test(arguments: StoreFactory.all)
    func listsArePaged(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        for i in 0..<5 {
            var instance = draft(String(format: "instance-%08x", i))
            instance.createdAt = t0.addingTimeInterval(Double(i))
            _ = try await store.createInstance(
                instance,
                on: nodes(3),
                sshPorts: 30000...30010,
                order: order(for: "\(i)"),
                couponID: nil,
                debit: .none
            )
        }
        let page = try await store.instances(
            namespace: "alice",
            cluster: "host-cluster",
            page: PageRequest(page: 2, pageSize: 2)
        )
        #expect(page.total == 5)
        #expect(page.items.map(\.name) == ["instance-00000002", "instance-00000001"])
        #expect(try await store.instances(namespace: "alice", cluster: "elsewhere", page: PageRequest()).total == 0)
    }

    @Test(arguments: StoreFactory.all)
    func ledgerIsIdempotentAndBalances(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        let credit = LedgerEntry(
            id: "c1",
            namespace: "alice",
            kind: .credit,
            amount: Money("100")!,
            idempotencyKey: "credit:1",
            createdAt: t0
        )
        try await store.createUser(user("alice"), token: token("a1", namespace: "alice"), openingCredit: credit)
        let charge = LedgerEntry(
            id: "x1",
            namespace: "alice",
            kind: .compute,
            amount: Money("2.5")!,
            instanceName: "i",
            periodStart: t0,
            periodEnd: t0.addingTimeInterval(3600),
            idempotencyKey: "i:0",
            createdAt: t0
        )
        #expect(try await store.appendLedger(charge))
        var replay = charge
        replay.id = "x2"
        #expect(try await !store.appendLedger(replay), "same idempotency key: no second charge")
        #expect(try await store.balance(namespace: "alice") == Money("97.5")!)
        #expect(try await store.balance(namespace: "bob") == .zero)
        let bills = try await store.ledger(namespace: "alice", kinds: [.compute], page: PageRequest())
        #expect(bills.total == 1 && bills.items.first?.periodStart == t0)
    }

    /// Issue "hardening" 5: a create or power_on needs an hour of everything the namespace
    /// would then run; a failed start is not billed; an order closes when its instance goes.
    @Test(arguments: StoreFactory.all)
    func theWalletCoversEverythingTheNamespaceRuns(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store, "5")  // two hours of one 2.50 instance
        func create(_ number: Int) async throws -> Instance {
            let name = String(format: "instance-%08d", number)
            return try await store.createInstance(
                draft(name),
                on: nodes(2),
                sshPorts: 30000...30010,
                order: order(for: name),
                couponID: nil,
                debit: .none
            )
        }
        let first = try await create(1)
        let second = try await create(2)
        await #expect { try await create(3) } throws: { ($0 as? LatticeError)?.kind == .paymentRequired }

        // The second fails to start: it commits nothing, and its time is not billed; the
        // first is metered from the moment it runs.
        let failed = ReconcilePlanner.apply(.failed(reason: "ImagePullFailed: x"), to: second, now: t0)
        #expect(try await store.recordObservation(failed, expectedGeneration: second.generation))
        let later = t0.addingTimeInterval(30)
        let running = ReconcilePlanner.apply(
            .running(PodInfo(name: "p", node: "node-0", ip: "")),
            to: first,
            now: later
        )
        #expect(try await store.recordObservation(running, expectedGeneration: first.generation))
        let compute = try await store.unsettledSegments().filter { $0.kind == .compute }
        #expect(compute.map(\.instanceName) == [first.name] && compute.first?.start == later)
        let third = try await create(3)
        await #expect { try await create(4) } throws: { ($0 as? LatticeError)?.kind == .paymentRequired }

        // Power-on counts what runs too; a purge closes the order.
        await #expect {
            try await store.powerOn(
                namespace: "alice",
                name: second.name,
                on: nodes(2),
                sshPorts: 30000...30010,
                podName: "p",
                now: t0,
                debit: .none
            )
        } throws: { ($0 as? LatticeError)?.kind == .paymentRequired }
        let deleting = try await store.updateInstance(namespace: "alice", name: third.name) {
            InstanceLifecycle.delete($0, now: t0)
        }
        #expect(try await store.purgeInstance(name: third.name, expectedGeneration: deleting.generation, at: t0))
        _ = try await store.powerOn(
            namespace: "alice",
            name: second.name,
            on: nodes(2),
            sshPorts: 30000...30010,
            podName: "p",
            now: t0,
            debit: .none
        )
        let orders = try await store.orders(namespace: "alice", page: PageRequest(page: 1, pageSize: 100)).items
        #expect(orders.first { $0.instanceName == third.name }?.status == "closed")
        #expect(orders.first { $0.instanceName == first.name }?.status == "active")
    }

    /// Issue "hardening" 3: a Stopped (or Failed) instance gives its SSH port back, and
    /// power_on takes a free one.
    @Test(arguments: StoreFactory.all)
    func stoppedInstancesHoldNoPort(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        let ports = 30000...30001
        func create(_ number: Int) async throws -> Instance {
            let name = String(format: "instance-%08d", number)
            return try await store.createInstance(
                draft(name),
                on: nodes(2),
                sshPorts: ports,
                order: order(for: name),
                couponID: nil,
                debit: .none
            )
        }
        func settle(_ instance: Instance, _ observation: ObservedTransition) async throws -> Instance {
            let next = ReconcilePlanner.apply(observation, to: instance, now: t0)
            #expect(try await store.recordObservation(next, expectedGeneration: instance.generation))
            return next
        }
        let first = try await create(1)
        let second = try await create(2)
        #expect(Set([first.access.sshPort, second.access.sshPort]) == Set(ports))
        await #expect { try await create(3) } throws: { ($0 as? LatticeError)?.code == "InsufficientCapacity" }

        let running = try await settle(first, .running(PodInfo(name: "p", node: "node-0", ip: "")))
        let stopping = try await store.updateInstance(namespace: "alice", name: first.name) {
            try InstanceLifecycle.powerOff($0, gracePeriodSeconds: 1, snapshot: nil, now: t0)
        }
        #expect(running.access.sshPort == stopping.access.sshPort, "Stopping still holds its port")
        let stopped = try await settle(stopping, .stopped(reason: ""))
        #expect(stopped.access.sshPort == 0)
        #expect(try await store.instance(name: first.name)?.access.sshPort == 0)
        let third = try await create(3)
        #expect(third.access.sshPort == first.access.sshPort, "the freed port is taken again")

        func powerOnFirst() async throws -> Instance {
            try await store.powerOn(
                namespace: "alice",
                name: first.name,
                on: nodes(2),
                sshPorts: ports,
                podName: "p2",
                now: t0,
                debit: .none
            )
        }
        await #expect { try await powerOnFirst() } throws: { ($0 as? LatticeError)?.code == "InsufficientCapacity" }
        _ = try await settle(second, .failed(reason: "ImagePullFailed: x"))
        let restarted = try await powerOnFirst()
        #expect(restarted.access.sshPort == second.access.sshPort && restarted.status == .starting)
    }

    /// Issue 22: a port given back goes to another namespace only after a day, unless the
    /// range has nothing else left; its own namespace gets it back at once.
    @Test(arguments: StoreFactory.all)
    func aPortGivenBackIsKeptFromOtherNamespacesForADay(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        let ports = 30000...30002
        var number = 0
        func create(_ namespace: String, at: Date) async throws -> Instance {
            number += 1
            let name = String(format: "instance-%08d", number)
            var instance = draft(name, namespace: namespace)
            instance.createdAt = at
            return try await store.createInstance(
                instance,
                on: nodes(2),
                sshPorts: ports,
                order: order(for: name, namespace: namespace),
                couponID: nil,
                debit: .none
            )
        }
        func stop(_ instance: Instance, at: Date) async throws {
            let running = ReconcilePlanner.apply(
                .running(PodInfo(name: "p", node: "node-0", ip: "")),
                to: instance,
                now: at
            )
            #expect(try await store.recordObservation(running, expectedGeneration: instance.generation))
            let stopping = try await store.updateInstance(namespace: instance.namespace, name: instance.name) {
                try InstanceLifecycle.powerOff($0, gracePeriodSeconds: 1, snapshot: nil, now: at)
            }
            let stopped = ReconcilePlanner.apply(.stopped(reason: ""), to: stopping, now: at)
            #expect(try await store.recordObservation(stopped, expectedGeneration: stopping.generation))
        }
        let first = try await create("alice", at: t0)
        #expect(first.access.sshPort == 30000)
        try await stop(first, at: t0)
        #expect(try await create("bob", at: t0.addingTimeInterval(60)).access.sshPort == 30001)
        let again = try await create("alice", at: t0.addingTimeInterval(61))
        #expect(again.access.sshPort == 30000, "the namespace that gave it back gets it again")
        try await stop(again, at: t0.addingTimeInterval(62))
        #expect(try await create("bob", at: t0.addingTimeInterval(63)).access.sshPort == 30002)
        #expect(
            try await create("bob", at: t0.addingTimeInterval(64)).access.sshPort == 30000,
            "with nothing else left, the quarantined port goes"
        )

        let later = try await factory.make()
        try await fund(later)
        let held = try await later.createInstance(
            draft("instance-00000101"),
            on: nodes(2),
            sshPorts: ports,
            order: order(for: "instance-00000101"),
            couponID: nil,
            debit: .none
        )
        let running = ReconcilePlanner.apply(.running(PodInfo(name: "p", node: "node-0", ip: "")), to: held, now: t0)
        #expect(try await later.recordObservation(running, expectedGeneration: held.generation))
        #expect(try await later.purgeInstance(name: held.name, expectedGeneration: running.generation, at: t0))
        var bobs = draft("instance-00000102", namespace: "bob")
        bobs.createdAt = t0.addingTimeInterval(SSHPortRule.quarantine + 1)
        let next = try await later.createInstance(
            bobs,
            on: nodes(2),
            sshPorts: ports,
            order: order(for: "instance-00000102", namespace: "bob"),
            couponID: nil,
            debit: .none
        )
        #expect(next.access.sshPort == 30000, "a day later the port is anyone's")
    }

    @Test(arguments: StoreFactory.all)
    func idempotencyKeysAreClaimedOnceAndKeptPerNamespace(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        #expect(try await store.claimIdempotencyKey(namespace: "alice", key: "k", requestHash: "h", now: t0) == .claim)
        #expect(
            try await store.claimIdempotencyKey(namespace: "alice", key: "k", requestHash: "h", now: t0) == .inProgress
        )
        #expect(try await store.claimIdempotencyKey(namespace: "bob", key: "k", requestHash: "h", now: t0) == .claim)
        try await store.completeIdempotencyKey(namespace: "alice", key: "k", status: 200, body: Data("1".utf8))
        #expect(
            try await store.claimIdempotencyKey(namespace: "alice", key: "k", requestHash: "h", now: t0)
                == .replay(status: 200, body: Data("1".utf8))
        )
        #expect(try await store.claimIdempotencyKey(namespace: "alice", key: "k", requestHash: "x", now: t0) == .reused)
        try await store.releaseIdempotencyKey(namespace: "bob", key: "k")
        #expect(try await store.claimIdempotencyKey(namespace: "bob", key: "k", requestHash: "y", now: t0) == .claim)
    }

    @Test(arguments: StoreFactory.all)
    func aKeyedWriteRecordsItsOutcomeInItsOwnTransaction(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        let instance = draft("instance-0000ab01")
        #expect(try await store.claimIdempotencyKey(namespace: "alice", key: "c1", requestHash: "h", now: t0) == .claim)
        let scope = IdempotencyScope(namespace: "alice", key: "c1")
        scope.expect(.instance(namespace: "alice", name: instance.name))
        _ = try await IdempotencyScope.$current.withValue(scope) {
            try await store.createInstance(
                instance,
                on: nodes(),
                sshPorts: 30000...30010,
                order: order(for: instance.name),
                couponID: nil,
                debit: .none
            )
        }
        // The process dies here, before the answer is kept: a retry is told what the work answers.
        #expect(
            try await store.claimIdempotencyKey(namespace: "alice", key: "c1", requestHash: "h", now: t0)
                == .answerAgain(.instance(namespace: "alice", name: instance.name))
        )
        try await store.releaseIdempotencyKey(namespace: "alice", key: "c1")
        #expect(
            try await store.claimIdempotencyKey(namespace: "alice", key: "c1", requestHash: "h", now: t0)
                == .answerAgain(.instance(namespace: "alice", name: instance.name)),
            "a committed outcome is not released"
        )
        // A write that fails records nothing: the key is free again once released.
        #expect(try await store.claimIdempotencyKey(namespace: "alice", key: "c2", requestHash: "h", now: t0) == .claim)
        let failing = IdempotencyScope(namespace: "alice", key: "c2")
        failing.expect(.answer(status: 200, body: Data("\"ok\"".utf8)))
        await #expect(throws: (any Error).self) {
            try await IdempotencyScope.$current.withValue(failing) {
                try await store.createInstance(
                    instance,
                    on: nodes(),
                    sshPorts: 30000...30010,
                    order: order(for: instance.name),
                    couponID: nil,
                    debit: .none
                )
            }
        }
        try await store.releaseIdempotencyKey(namespace: "alice", key: "c2")
        #expect(try await store.claimIdempotencyKey(namespace: "alice", key: "c2", requestHash: "h", now: t0) == .claim)
        // An answer known in advance is kept as the answer itself.
        let known = IdempotencyScope(namespace: "alice", key: "c3")
        #expect(try await store.claimIdempotencyKey(namespace: "alice", key: "c3", requestHash: "h", now: t0) == .claim)
        known.expect(.answer(status: 200, body: Data("\"ok\"".utf8)))
        try await IdempotencyScope.$current.withValue(known) {
            _ = try await store.appendLedger(
                LedgerEntry(
                    id: "credit-1",
                    namespace: "alice",
                    kind: .credit,
                    amount: Money(units: 100),
                    idempotencyKey: "credit:1",
                    createdAt: t0
                )
            )
        }
        #expect(
            try await store.claimIdempotencyKey(namespace: "alice", key: "c3", requestHash: "h", now: t0)
                == .replay(status: 200, body: Data("\"ok\"".utf8))
        )
    }

    @Test(arguments: StoreFactory.all)
    func snapshotsAskedForCountAgainstTheQuotaInTheWrite(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        try await store.setQuota(namespace: "alice", Quota(instances: 10, gpus: 10, tokens: 10, snapshots: 1))
        for name in ["instance-0000aa01", "instance-0000aa02"] {
            _ = try await store.createInstance(
                draft(name),
                on: nodes(),
                sshPorts: 30000...30010,
                order: order(for: name),
                couponID: nil,
                debit: .none
            )
        }
        func askForSnapshot(_ name: String, _ reference: String) async throws {
            _ = try await store.updateInstance(namespace: "alice", name: name) { current in
                var next = current
                next.desired.snapshot = SnapshotRequest(imageReference: reference)
                return next
            }
        }
        try await askForSnapshot("instance-0000aa01", "h/alice/one:1")
        // The first is still being saved (no image yet), and it counts already.
        let refused = await #expect(throws: LatticeError.self) {
            try await askForSnapshot("instance-0000aa02", "h/alice/two:1")
        }
        #expect(refused?.code == "QuotaExceeded")
        #expect(try await store.quotaUsage(namespace: "alice").snapshots == 1)
    }

    @Test(arguments: StoreFactory.all)
    func aNamespaceKeepsItsNewestIdempotencyKeysOnly(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        let count = Idempotency.keysPerNamespace + 5
        for n in 0..<count {
            _ = try await store.claimIdempotencyKey(
                namespace: "alice",
                key: "k\(n)",
                requestHash: "h",
                now: t0.addingTimeInterval(Double(n) / 1000)
            )
        }
        let later = t0.addingTimeInterval(Double(count) / 1000)
        #expect(
            try await store.claimIdempotencyKey(namespace: "alice", key: "k0", requestHash: "h", now: later) == .claim
        )
        #expect(
            try await store.claimIdempotencyKey(namespace: "alice", key: "k\(count - 1)", requestHash: "h", now: later)
                == .inProgress
        )
    }

    /// After a restart the capacity index is built by the first write, which names one
    /// cluster's nodes; another cluster's nodes, with reservations in the rows, must come in
    /// with them, and the free counts must agree with the rows.
    @Test func theIndexLearnsEveryClustersReservationsAfterARestart() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lattice-index-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("lattice.sqlite").path
        func cluster(_ name: String) -> [ClusterNode] {
            [
                ClusterNode(
                    node: Node(name: "\(name)-node", gpuModel: "4090", gpuCount: 1, cpuCores: 64, memoryGiB: 512),
                    cluster: name,
                    healthy: true
                )
            ]
        }
        func create(_ store: SQLiteStore, _ number: Int, on cluster: String) async throws -> Instance {
            var instance = draft(String(format: "instance-%08d", number))
            instance.cluster = cluster
            return try await store.createInstance(
                instance,
                on: clusterNodes[cluster]!,
                sshPorts: 30000...30010,
                order: order(for: instance.name),
                couponID: nil,
                debit: .none
            )
        }
        let clusterNodes = ["a": cluster("a"), "b": cluster("b")]
        do {
            let store = try SQLiteStore(path: path)
            try await fund(store)
            _ = try await create(store, 1, on: "b")
        }
        let store = try SQLiteStore(path: path)
        _ = try await create(store, 2, on: "a")
        await #expect { try await create(store, 3, on: "b") } throws: {
            ($0 as? LatticeError)?.code == "InsufficientCapacity"
        }
        let all = clusterNodes.values.flatMap { $0 }
        #expect(try await store.freeGPUs(model: "4090", clusters: ["a", "b"], nodes: all) == 0)
        let deleting = try await store.updateInstance(namespace: "alice", name: "instance-00000001") {
            InstanceLifecycle.delete($0, now: t0)
        }
        #expect(try await store.purgeInstance(name: deleting.name, expectedGeneration: deleting.generation, at: t0))
        #expect(try await store.freeGPUs(model: "4090", clusters: ["b"], nodes: all) == 1)
        #expect(try await create(store, 3, on: "b").placement?.node == "b-node")
    }

    @Test func fileStoreKeepsEverythingAcrossReopen() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lattice-reopen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("lattice.sqlite").path
        do {
            let store = try SQLiteStore(path: path)
            try await store.createUser(user("alice"), token: token("a1", namespace: "alice"), openingCredit: nil)
            try await fund(store)
            _ = try await store.createInstance(
                draft("instance-00000001"),
                on: nodes(),
                sshPorts: 30000...30010,
                order: order(for: "1"),
                couponID: nil,
                debit: .none
            )
        }
        let reopened = try SQLiteStore(path: path)
        #expect(try await reopened.instance(name: "instance-00000001")?.placement != nil)
        #expect(try await reopened.nodeUsage()["node-0"]?.gpuIndices == [0])
        #expect(try await reopened.user(namespace: "alice") != nil)
    }
}

@Suite(.timeLimit(.minutes(10))) struct GatewayLookupContractTests {
    @Test(arguments: StoreFactory.all)
    func portsAndUIDsFindTheirInstance(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await fund(store)
        var created: [Instance] = []
        for (index, name) in ["instance-00000001", "instance-00000002"].enumerated() {
            var instance = draft(name)
            instance.uid = "00000000-0000-4000-8000-00000000000\(index)"
            created.append(
                try await store.createInstance(
                    instance,
                    on: nodes(),
                    sshPorts: 30000...30010,
                    order: order(for: name),
                    couponID: nil,
                    debit: .none
                )
            )
        }
        #expect(try await store.sshPortHolders() == [30000: "instance-00000001", 30001: "instance-00000002"])
        #expect(try await store.instanceName(holdingSSHPort: 30001) == "instance-00000002")
        #expect(try await store.instanceName(holdingSSHPort: 30005) == nil)
        #expect(try await store.instanceName(uid: created[1].uid) == "instance-00000002")
        #expect(try await store.instanceName(uid: "00000000-0000-0000-0000-000000000000") == nil)
    }
}

@Suite(.timeLimit(.minutes(10))) struct SSHKeyStoreContractTests {
    func key(_ id: String, _ namespace: String, _ fingerprint: String) -> SSHKeyRecord {
        SSHKeyRecord(
            id: id,
            namespace: namespace,
            name: "key \(id)",
            publicKey: "ssh-ed25519 AAAA\(id)",
            fingerprint: fingerprint,
            createdAt: t0.addingTimeInterval(Double(id.count))
        )
    }

    @Test(arguments: StoreFactory.all)
    func keysBelongToOneNamespace(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await store.createSSHKey(key("k1", "alice", "SHA256:a"))
        try await store.createSSHKey(key("k22", "alice", "SHA256:b"))
        // The same key may be registered by another namespace, not twice by one.
        try await store.createSSHKey(key("k3", "bob", "SHA256:a"))
        await #expect(throws: LatticeError.self) { try await store.createSSHKey(key("k4", "alice", "SHA256:a")) }
        #expect(try await store.sshKeys(namespace: "alice").map(\.id) == ["k1", "k22"])
        #expect(try await store.sshKeys(namespace: "alice").first == key("k1", "alice", "SHA256:a"))
        await #expect(throws: LatticeError.notFound("ssh key 'k3'")) {
            try await store.deleteSSHKey(id: "k3", namespace: "alice")
        }
        try await store.deleteSSHKey(id: "k1", namespace: "alice")
        #expect(try await store.sshKeys(namespace: "alice").map(\.id) == ["k22"])
        #expect(try await store.sshKeys(namespace: "bob").count == 1)
    }

    @Test(arguments: StoreFactory.all)
    func aNamespaceHoldsAHundredKeys(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        for index in 0..<SSHKeyRecord.limitPerNamespace {
            try await store.createSSHKey(key("k\(index)", "alice", "SHA256:\(index)"))
        }
        await #expect(throws: LatticeError.self) { try await store.createSSHKey(key("kx", "alice", "SHA256:x")) }
    }
}

@Suite(.timeLimit(.minutes(10))) struct TemplateStoreContractTests {
    func template(
        _ id: String,
        _ namespace: String,
        public isPublic: Bool = false,
        at seconds: Double = 0
    )
        -> InstanceTemplate
    {
        InstanceTemplate(
            id: id,
            namespace: namespace,
            name: "template \(id)",
            image: "images.example/ml/torch:2",
            env: ["A": "1"],
            ports: [PublishedPort(port: 8000, name: "api", isPublic: true)],
            startupScript: "echo hi",
            diskSizeGB: 80,
            description: "d",
            isPublic: isPublic,
            createdAt: t0.addingTimeInterval(seconds)
        )
    }

    @Test(arguments: StoreFactory.all)
    func aNamespaceSeesItsOwnAndThePublicOnes(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await store.createTemplate(template("tpl-a", "alice", at: 1))
        try await store.createTemplate(template("tpl-b", "bob", at: 2))
        try await store.createTemplate(template("tpl-p", "admin", public: true, at: 3))
        #expect(try await store.templates(visibleTo: "alice").map(\.id) == ["tpl-a", "tpl-p"])
        #expect(try await store.templates(visibleTo: "bob").map(\.id) == ["tpl-b", "tpl-p"])
        #expect(try await store.template(id: "tpl-a") == template("tpl-a", "alice", at: 1))
        #expect(try await store.template(id: "tpl-x") == nil)
        try await store.deleteTemplate(id: "tpl-a")
        #expect(try await store.templates(visibleTo: "alice").map(\.id) == ["tpl-p"])
        await #expect(throws: LatticeError.notFound("template 'tpl-a'")) { try await store.deleteTemplate(id: "tpl-a") }
    }

    @Test(arguments: StoreFactory.all)
    func aNamespaceKeepsAHundredTemplates(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        for index in 0..<InstanceTemplate.limitPerNamespace {
            try await store.createTemplate(template("tpl-\(index)", "alice", at: Double(index)))
        }
        await #expect(throws: LatticeError.self) { try await store.createTemplate(template("tpl-x", "alice")) }
        try await store.createTemplate(template("tpl-y", "bob"))
    }
}

@Suite(.timeLimit(.minutes(10))) struct BudgetStoreContractTests {
    @Test(arguments: StoreFactory.all)
    func aBudgetIsKeptPerNamespaceAndReplaced(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        #expect(try await store.budget(namespace: "alice") == nil)
        let first = Budget(
            namespace: "alice",
            monthlyLimit: Money("500")!,
            alertAt: [50, 100],
            action: .block,
            updatedAt: t0
        )
        try await store.setBudget(first)
        #expect(try await store.budget(namespace: "alice") == first)
        #expect(try await store.stoppingBudgets().isEmpty)
        var second = first
        second.action = .stop
        second.monthlyLimit = Money("20")!
        try await store.setBudget(second)
        try await store.setBudget(
            Budget(namespace: "bob", monthlyLimit: Money("1")!, alertAt: [], action: .notify, updatedAt: t0)
        )
        #expect(try await store.budget(namespace: "alice") == second)
        #expect(try await store.stoppingBudgets().map(\.namespace) == ["alice"])
    }
}

@Suite(.timeLimit(.minutes(10))) struct NodeDrainContractTests {
    @Test(arguments: StoreFactory.all)
    func drainsAreKeptUntilUndrained(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        #expect(try await store.drainedNodes().isEmpty)
        try await store.setDrained(node: "node-1", true, at: t0)
        // Draining again keeps the first time.
        try await store.setDrained(node: "node-1", true, at: t0.addingTimeInterval(60))
        try await store.setDrained(node: "node-0", true, at: t0.addingTimeInterval(5))
        #expect(
            try await store.drainedNodes()
                == [NodeDrain(node: "node-0", since: t0.addingTimeInterval(5)), NodeDrain(node: "node-1", since: t0)]
        )
        try await store.setDrained(node: "node-1", false, at: t0)
        try await store.setDrained(node: "node-9", false, at: t0)
        #expect(try await store.drainedNodes().map(\.node) == ["node-0"])
    }

    /// What a create reads first, in one read: the namespace's own budget and idle default,
    /// every drained node.
    @Test(arguments: StoreFactory.all)
    func startInputsAreTheNamespacesBudgetIdleDefaultAndTheDrainedNodes(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        #expect(try await store.startInputs(namespace: "alice") == StartInputs())
        let budget = Budget(namespace: "alice", monthlyLimit: Money("5")!, alertAt: [50], action: .block, updatedAt: t0)
        try await store.setBudget(budget)
        try await store.setBudget(
            Budget(namespace: "bob", monthlyLimit: Money("1")!, alertAt: [], action: .stop, updatedAt: t0)
        )
        let idle = IdleDefault(
            namespace: "alice",
            policy: IdleStopPolicy(afterMinutes: 30),
            wakeOnConnect: true,
            updatedAt: t0
        )
        try await store.setIdleDefault(idle)
        try await store.setDrained(node: "node-2", true, at: t0)
        try await store.setDrained(node: "node-1", true, at: t0.addingTimeInterval(5))
        let inputs = try await store.startInputs(namespace: "alice")
        #expect(inputs.budget == budget && inputs.idleDefault == idle)
        #expect(
            inputs.drained == [
                NodeDrain(node: "node-1", since: t0.addingTimeInterval(5)), NodeDrain(node: "node-2", since: t0),
            ]
        )
        #expect(try await store.startInputs(namespace: "carol").budget == nil)
    }
}

@Suite(.timeLimit(.minutes(10))) struct AuditContractTests {
    func entry(_ id: String, _ namespace: String, _ action: String, at seconds: TimeInterval) -> AuditEntry {
        AuditEntry(
            id: id,
            time: t0.addingTimeInterval(seconds),
            namespace: namespace,
            actor: namespace,
            action: action,
            target: "instance-\(id)",
            status: 200,
            requestId: "req-\(id)",
            remoteAddress: "127.0.0.1"
        )
    }

    /// Newest first, per namespace or all, by action, paged; a prune removes only the old.
    @Test(arguments: StoreFactory.all)
    func entriesAreKeptNewestFirstAndPruned(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        let entries = [
            entry("a1", "alice", "instance.create", at: 0), entry("b1", "bob", "instance.create", at: 1),
            entry("a2", "alice", "instance.power_off", at: 2), entry("a3", "alice", "token.create", at: 3),
        ]
        try await store.appendAudit(Array(entries.prefix(1)))
        try await store.appendAudit(Array(entries.dropFirst()))
        let alice = try await store.auditEntries(namespace: "alice", action: nil, page: PageRequest())
        #expect(alice.items.map(\.id) == ["a3", "a2", "a1"] && alice.total == 3)
        #expect(alice.items.first == entries[3], "every field comes back as written")
        let creates = try await store.auditEntries(namespace: nil, action: "instance.create", page: PageRequest())
        #expect(creates.items.map(\.id) == ["b1", "a1"])
        let page2 = try await store.auditEntries(namespace: nil, action: nil, page: PageRequest(page: 2, pageSize: 3))
        #expect(page2.items.map(\.id) == ["a1"] && page2.total == 4)
        #expect(try await store.auditEntries(namespace: "carol", action: nil, page: PageRequest()).total == 0)
        #expect(try await store.pruneAudit(before: t0.addingTimeInterval(1.5)) == 2)
        #expect(
            try await store.auditEntries(namespace: nil, action: nil, page: PageRequest()).items.map(\.id) == [
                "a3", "a2",
            ]
        )
    }
}
