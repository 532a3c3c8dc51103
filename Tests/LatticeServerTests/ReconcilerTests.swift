import Foundation
import LatticeCompute
import LatticeDomain
import LatticeStore
import LatticeTestSupport
import Logging
import Testing

@testable import LatticeServer

/// A driver in front of the simulated fleet whose calls can be made to fail or to hang.
final class FaultyDriver: ComputeDriver, @unchecked Sendable {
    enum Mode { case healthy, down, startsFail, commitsFail, hanging }
    let inner: any ComputeDriver
    private let lock = NSLock()
    private var mode = Mode.healthy
    private var calls: [String] = []

    init(_ inner: any ComputeDriver) { self.inner = inner }

    func set(_ mode: Mode) { lock.withLock { self.mode = mode } }
    var startCalls: Int { lock.withLock { calls.filter { $0 == "start" }.count } }

    private func enter(_ call: String) async throws {
        let mode = lock.withLock {
            calls.append(call)
            return self.mode
        }
        switch (mode, call) {
        case (.down, _): throw DriverError("engine down")
        case (.startsFail, "start"): throw DriverError("image pull timed out")
        case (.commitsFail, "commit"): throw DriverError("commit: no space left on device")
        case (.hanging, _): try await Task.sleep(for: .seconds(3600))
        default: return
        }
    }

    func nodes() async throws -> [ClusterNode] { try await inner.nodes() }
    func observeAll() async throws -> [String: WorkloadObservation] {
        try await enter("observe")
        return try await inner.observeAll()
    }
    func observe(instanceName: String) async throws -> WorkloadObservation? {
        try await enter("observe")
        return try await inner.observe(instanceName: instanceName)
    }
    func changes() -> AsyncStream<String> { inner.changes() }
    func run() async { await inner.run() }
    func start(_ spec: WorkloadSpec) async throws {
        try await enter("start")
        try await inner.start(spec)
    }
    func stop(instanceName: String, gracePeriodSeconds: Int) async throws {
        try await inner.stop(instanceName: instanceName, gracePeriodSeconds: gracePeriodSeconds)
    }
    func commit(instanceName: String, imageReference: String) async throws -> Int64 {
        try await enter("commit")
        return try await inner.commit(instanceName: instanceName, imageReference: imageReference)
    }
    func discard(instanceName: String) async throws { try await inner.discard(instanceName: instanceName) }
    func logs(
        instanceName: String,
        tail: Int,
        follow: Bool,
        output: @escaping @Sendable (Data) async -> Void
    )
        async throws -> Bool
    { try await inner.logs(instanceName: instanceName, tail: tail, follow: follow, output: output) }
    func metrics(instanceName: String) async throws -> WorkloadMetrics? {
        try await inner.metrics(instanceName: instanceName)
    }
    func destroy(instanceName: String, volumeName: String) async throws {
        try await inner.destroy(instanceName: instanceName, volumeName: volumeName)
    }
    func removeImage(reference: String) async throws { try await inner.removeImage(reference: reference) }
    func exec(
        instanceName: String,
        _ request: ExecRequest,
        input: AsyncStream<ExecInput>,
        output: @escaping @Sendable (ExecOutput) async -> Void
    ) async throws -> Int32 {
        try await inner.exec(instanceName: instanceName, request, input: input, output: output)
    }
    func endpoint(instanceName: String, port: Int) async throws -> WorkloadEndpoint? {
        try await inner.endpoint(instanceName: instanceName, port: port)
    }
}

/// A server whose one cluster runs behind a `FaultyDriver`.
struct FaultyServer {
    let base: TestServer
    let driver: FaultyDriver
    let reconciler: Reconciler

    init() async throws {
        base = try await TestServer(
            configuration: ServerConfiguration(catalog: instantCatalog()),
            start: RFC3339.parse("2026-03-10T00:00:00Z")!
        )
        driver = FaultyDriver(base.fleet.driver(for: "host-cluster")!)
        reconciler = Reconciler(
            store: base.store,
            fleet: ComputeFleet(drivers: ["host-cluster": driver]),
            clock: base.clock,
            logger: Logger(label: "test"),
            readiness: Readiness(),
            observeTimeout: .milliseconds(200)
        )
    }

    /// A resync and the work it queued; the keys worked on (a key waiting out its backoff
    /// is not).
    @discardableResult
    func pass() async -> [String] {
        await reconciler.resync()
        return await reconciler.drain()
    }
}

@Suite(.timeLimit(.minutes(10))) struct ReconcilerTests {
    @Test func aFailingStepBacksOffExponentiallyAndRecovers() async throws {
        let server = try await FaultyServer()
        let clock = server.base.clock
        let created = try await server.base.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        server.driver.set(.down)
        #expect(await server.pass().isEmpty, "a driver that cannot even list is left alone")
        #expect(try await server.base.store.instance(name: created.name)?.status == .creating)

        server.driver.set(.startsFail)
        #expect(await server.pass() == [created.name], "first attempt")
        #expect(await server.pass().isEmpty, "backing off")
        clock.advance(by: 0.5)
        #expect(await server.pass() == [created.name], "retried after 0.5 s")
        clock.advance(by: 0.9)
        #expect(await server.pass().isEmpty, "the next wait is 1 s")
        clock.advance(by: 0.1)
        #expect(await server.pass() == [created.name])
        clock.advance(by: 1.9)
        #expect(await server.pass().isEmpty, "then 2 s")
        clock.advance(by: 0.1)
        #expect(await server.pass() == [created.name])
        for _ in 0..<8 {
            clock.advance(by: 3600)
            await server.pass()
        }
        clock.advance(by: 29.9)
        #expect(await server.pass().isEmpty, "the wait is capped at 30 s")
        clock.advance(by: 0.1)
        #expect(await server.pass() == [created.name])
        #expect(server.driver.startCalls == 13)
        #expect(try await server.base.store.instance(name: created.name)?.status == .creating, "failures are retried")

        // Once the driver works, one success clears the backoff and the instance runs.
        server.driver.set(.healthy)
        clock.advance(by: 30)
        #expect(await server.pass() == [created.name])
        #expect(
            await server.pass() == [created.name, created.name],
            "no backoff left: Running is recorded, and its key looked at once more"
        )
        #expect(try await server.base.store.instance(name: created.name)?.status == .running)
    }

    @Test func anUnansweringDriverKeepsLastKnownStateAndHoldsUpNothing() async throws {
        let server = try await FaultyServer()
        let created = try await server.base.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        await server.pass()
        await server.pass()
        #expect(try await server.base.store.instance(name: created.name)?.status == .running)
        server.driver.set(.hanging)
        let started = ContinuousClock.now
        #expect(await server.pass().isEmpty)
        #expect(ContinuousClock.now - started < .seconds(30), "the pass gives up on the driver")
        let kept = try await server.base.store.instance(name: created.name)
        #expect(kept?.status == .running, "no answer is not a lost workload")
        // The API keeps answering meanwhile.
        let listed = try await server.base.api.instances(
            principal: admin,
            cluster: "host-cluster",
            page: PageRequest(page: 1, pageSize: 20)
        )
        #expect(listed.totalCount == 1)
        server.driver.set(.healthy)
        #expect(await server.pass().isEmpty, "nothing to do once it answers again")
    }

    @Test func aSnapshotThatFailsIsMarkedFailedAndTheInstanceStillStops() async throws {
        let server = try await FaultyServer()
        let created = try await server.base.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        await server.pass()
        await server.pass()
        server.driver.set(.commitsFail)
        try await server.base.api.powerOff(
            principal: admin,
            cluster: "host-cluster",
            name: created.name,
            body: .object(["needSnapshot": .bool(true), "imageName": .string("snap"), "tag": .string("v1")])
        )
        for _ in 0..<4 { await server.pass() }
        let stopped = try await server.base.store.instance(name: created.name)!
        #expect(stopped.status == .stopped)
        #expect(stopped.statusReason == "SnapshotFailed: commit: no space left on device")
        #expect(stopped.placement == nil, "GPUs released")
        let images = try await server.base.api.images(principal: admin, page: PageRequest(page: 1, pageSize: 20)).nodes
        let snapshot = images.first { $0.name == "images.neolink-ai.com/admin/snap:v1" }
        #expect(snapshot?.status == "Failed")
        await #expect {
            try await server.base.api.createInstance(
                principal: admin,
                cluster: "host-cluster",
                body: body(image: "images.neolink-ai.com/admin/snap:v1")
            )
        } throws: { ($0 as? LatticeError)?.code == "ImageNotReady" }
        // power_on works from there, on the instance's own image
        server.driver.set(.healthy)
        try await server.base.api.powerOn(principal: admin, cluster: "host-cluster", name: created.name)
        await server.pass()
        await server.pass()
        #expect(try await server.base.store.instance(name: created.name)?.status == .running)
    }
}
