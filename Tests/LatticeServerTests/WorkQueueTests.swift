import Foundation
import LatticeCompute
import LatticeDomain
import LatticeTestSupport
import Logging
import Testing

@testable import LatticeServer

@Suite(.timeLimit(.minutes(10))) struct WorkQueueTests {
    /// Random adds, hand-outs and dones against a model: a key is handed out at most once
    /// at a time, never lost (every key added is handed out after its last add), and waits
    /// at most once.
    @Test func noKeyIsLostOrWorkedTwiceAtOnce() {
        var rng = SplitMix64(state: 9)
        var queue = WorkQueueState<Int>()
        var inProgress: Set<Int> = []
        // Keys added since they were last handed out: each must be handed out again.
        var owed: Set<Int> = []
        for _ in 0..<20_000 {
            switch Int.random(in: 0..<3, using: &rng) {
            case 0:
                let key = Int.random(in: 0..<50, using: &rng)
                queue.add(key)
                owed.insert(key)
            case 1:
                if let key = queue.next() {
                    #expect(!inProgress.contains(key), "\(key) handed out while in progress")
                    inProgress.insert(key)
                    owed.remove(key)
                }
            default:
                if let key = inProgress.randomElement(using: &rng) {
                    inProgress.remove(key)
                    queue.done(key)
                }
            }
            #expect(queue.waiting <= 50, "a key waits at most once")
            #expect(queue.inProgress == inProgress.count)
        }
        // Finish everything: every owed key comes out.
        for key in inProgress { queue.done(key) }
        inProgress = []
        var seen: Set<Int> = []
        while let key = queue.next() {
            seen.insert(key)
            queue.done(key)
        }
        #expect(owed.isSubset(of: seen), "lost: \(owed.subtracting(seen))")
    }

    @Test func waitingWorkersWakeForNewKeysAndOnShutDown() async {
        let queue = WorkQueue()
        async let first = queue.next()
        async let second = queue.next()
        try? await Task.sleep(for: .milliseconds(20))
        queue.add("a")
        queue.add("a")
        queue.add("b")
        let got = await [first, second].compactMap { $0 }.sorted()
        #expect(got == ["a", "b"])
        async let third = queue.next()
        try? await Task.sleep(for: .milliseconds(20))
        queue.shutDown()
        #expect(await third == nil)
        queue.add("c")
        #expect(queue.waiting == 0, "adds after shut-down are ignored")
    }
}

@Suite(.timeLimit(.minutes(10))) struct EventDrivenReconcilerTests {
    /// With the fleet's start delay on an injected clock, the reconciler records Running as
    /// soon as the fleet says the start finished: no resync, no polling.
    @Test func aDriverEventReachesTheStoreWithoutAResync() async throws {
        var catalog = instantCatalog()
        catalog.regions[0].clusters[0].startDelaySeconds = 5
        let server = try await TestServer(configuration: ServerConfiguration(catalog: catalog))
        let reconciler = server.reconciler
        let run = Task { try await reconciler.run() }
        let follower = server.follower
        let follow = Task { try await follower.run() }
        defer {
            run.cancel()
            follow.cancel()
        }
        // The resync at start has run once the reconciler says it is ready.
        while !reconciler.readiness.isReady { try await Task.sleep(for: .milliseconds(5)) }

        let created = try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        #expect(try await eventually { try await server.store.instance(name: created.name)?.status == .creating })
        // The start has reached the fleet (on a loaded machine it may take a while): only
        // then does advancing the clock finish it.
        let fleet = server.fleet.driver(for: "host-cluster") as! SimulatedFleetDriver
        #expect(try await eventually { await fleet.workloadCount(instanceName: created.name) == 1 })
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await server.store.instance(name: created.name)?.status == .creating, "the start takes 5 s")
        server.clock.advance(by: 5)
        #expect(try await eventually { try await server.store.instance(name: created.name)?.status == .running })
        // and a power_off goes the same way
        try await server.api.powerOff(principal: admin, cluster: "host-cluster", name: created.name, body: .object([:]))
        #expect(try await eventually { try await fleet.observe(instanceName: created.name)?.phase != .running })
        server.clock.advance(by: 2)
        #expect(try await eventually { try await server.store.instance(name: created.name)?.status == .stopped })
    }

    /// Polls `condition` for up to a few seconds of real time.
    func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<400 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}
