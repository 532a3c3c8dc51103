import AsyncHTTPClient
import Foundation
import LatticeCompute
import LatticeComputeEngine
import LatticeComputeKubernetes
import LatticeDomain
import LatticeKubeFake
import LatticeTestSupport
import Testing

/// One driver under test, with a way to let time pass for it. The engine driver joins
/// this list with a real Podman and real waiting.
struct DriverHarness: Sendable {
    let driver: any ComputeDriver
    let nodeNames: [String]
    let letTimePass: @Sendable (Double) async -> Void
    /// The image workloads run (the engine needs one it has).
    var image = "img"
    /// How many workloads the backend itself holds for an instance, asked without the driver
    /// (the engine: its containers listed by label), so a duplicate cannot hide behind a
    /// dictionary key.
    var workloadsOf: @Sendable (String) async throws -> Int
}

struct DriverFactory: CustomStringConvertible, Sendable {
    let description: String
    let make: @Sendable () async throws -> DriverHarness

    /// A fresh driver whose `run()` (its watchers, followers and timers) runs beside `body`,
    /// as the server's reconciler runs it.
    func withDriver(_ body: (DriverHarness) async throws -> Void) async throws {
        let harness = try await make()
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await harness.driver.run() }
            try await body(harness)
            group.cancelAll()
        }
    }

    static let all: [DriverFactory] =
        [
            DriverFactory(description: "simulated") {
                let clock = ManualWallClock()
                let nodes = [
                    Node(name: "gpu-a", gpuModel: "4090", gpuCount: 8, cpuCores: 64, memoryGiB: 512),
                    Node(name: "gpu-b", gpuModel: "4090", gpuCount: 8, cpuCores: 64, memoryGiB: 512),
                ]
                let driver = SimulatedFleetDriver(cluster: "host-cluster", nodes: nodes, clock: clock)
                return DriverHarness(
                    driver: driver,
                    nodeNames: nodes.map(\.name),
                    letTimePass: { clock.advance(by: $0) },
                    workloadsOf: { await driver.workloadCount(instanceName: $0) }
                )
            },
            DriverFactory(description: "kubernetes (fake API server)") {
                let committer = "registry.test/lattice/committer:1"
                let fake = try await FakeKube.start(nodes: ["gpu-a", "gpu-b"], images: ["img", committer])
                let driver = try KubernetesDriver(
                    settings: KubernetesDriver.Settings(cluster: "k8s", committerImage: committer),
                    connection: KubeConnection(server: fake.url)
                )
                return DriverHarness(
                    driver: driver,
                    nodeNames: ["gpu-a", "gpu-b"],
                    letTimePass: { try? await Task.sleep(for: .milliseconds(Int($0 * 1000))) },
                    workloadsOf: { name in fake.livePods(instance: name) }
                )
            },
        ] + engine

    /// Where the engine variants run: `LATTICE_TEST_ENGINE_SOCKET` and `LATTICE_TEST_IMAGE`
    /// (scripts/test.sh starts Podman and sets both), and `LATTICE_TEST_ENGINE_SOCKET_2`, a
    /// second Podman service, for the cluster of two hosts.
    static var engineSettings: (socket: String, image: String, second: String?)? {
        let env = ProcessInfo.processInfo.environment
        guard let socket = env["LATTICE_TEST_ENGINE_SOCKET"], let image = env["LATTICE_TEST_IMAGE"] else { return nil }
        return (socket, image, env["LATTICE_TEST_ENGINE_SOCKET_2"])
    }

    /// The engine driver against a real Docker or Podman, when the test run has one.
    static var engine: [DriverFactory] {
        guard let (socket, image, second) = engineSettings else {
            FileHandle.standardError.write(
                Data(
                    ("note: the engine variants of the driver contract are skipped: "
                        + "LATTICE_TEST_ENGINE_SOCKET and LATTICE_TEST_IMAGE are not set\n")
                        .utf8
                )
            )
            return []
        }
        return [
            DriverFactory(description: "engine") {
                let node = Node(name: "this-host", gpuModel: "T4", gpuCount: 2, cpuCores: 2, memoryGiB: 2)
                let cluster = "contract-\(UUID().uuidString.prefix(8).lowercased())"
                let driver = EngineDriver(cluster: cluster, node: node, socketPath: socket, gpuRequests: .none)
                return DriverHarness(
                    driver: driver,
                    nodeNames: [node.name],
                    letTimePass: { try? await Task.sleep(for: .milliseconds(Int($0 * 1000))) },
                    image: image,
                    workloadsOf: { try await EngineProbe(socket: socket).containers(instance: $0, cluster: cluster) }
                )
            }
        ] + (second.map { second in [twoHosts(socket, second, image)] } ?? [])
    }

    /// One cluster over two engine hosts: every contract holds whichever host a workload is on.
    static func twoHosts(_ first: String, _ second: String, _ image: String) -> DriverFactory {
        DriverFactory(description: "engine, two hosts") {
            let nodes = [
                Node(name: "host-a", gpuModel: "T4", gpuCount: 2, cpuCores: 2, memoryGiB: 2),
                Node(name: "host-b", gpuModel: "T4", gpuCount: 2, cpuCores: 2, memoryGiB: 2),
            ]
            let cluster = "contract-\(UUID().uuidString.prefix(8).lowercased())"
            let driver = try EngineDriver(
                cluster: cluster,
                hosts: [
                    (nodes[0], EngineEndpoint(url: "unix://" + first)),
                    (nodes[1], EngineEndpoint(url: "unix://" + second)),
                ],
                gpuRequests: .none
            )
            return DriverHarness(
                driver: driver,
                nodeNames: nodes.map(\.name),
                letTimePass: { try? await Task.sleep(for: .milliseconds(Int($0 * 1000))) },
                image: image,
                workloadsOf: {
                    let a = try await EngineProbe(socket: first).containers(instance: $0, cluster: cluster)
                    let b = try await EngineProbe(socket: second).containers(instance: $0, cluster: cluster)
                    return a + b
                }
            )
        }
    }
}

/// Asks the engine directly, not through the driver under test.
struct EngineProbe {
    let socket: String

    func containers(instance: String, cluster: String) async throws -> Int {
        let filters = #"{"label":["lattice.instance=\#(instance)","lattice.cluster=\#(cluster)"]}"#
        let query = "all=true&filters=" + (filters.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        let path = socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socket
        var request = HTTPClientRequest(url: "http+unix://\(path)/v1.41/containers/json?\(query)")
        request.headers.add(name: "Host", value: "localhost")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        let list = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [Any]
        return list?.count ?? 0
    }
}

/// The fake Kubernetes API server, as the contract suite uses it.
struct FakeKube: Sendable {
    let cluster: FakeCluster
    let url: String

    static func start(nodes: [String], images: Set<String>) async throws -> FakeKube {
        let running = try await RunningFakeKube.start(nodes: nodes, images: images)
        return FakeKube(cluster: running.cluster, url: running.url)
    }

    /// Pods of the instance that are not being deleted, asked of the fake directly.
    func livePods(instance: String) -> Int {
        cluster.list("pods", namespace: nil, selector: LabelSelector(["lattice.dev/instance": instance]))
            .filter { ($0["metadata"] as? [String: Any])?["deletionTimestamp"] == nil }.count
    }
}

func spec(_ name: String, node: String) -> WorkloadSpec {
    var instance = sampleInstance(name: name, status: .creating)
    instance.placement = GPUPlacement(node: node, gpuIndices: [0])
    return WorkloadSpec(instance: instance)
}

/// A workload with its own name, ports and volume, so runs on a shared engine never collide.
func uniqueSpec(_ name: String, node: String, image: String) -> WorkloadSpec {
    var instance = sampleInstance(name: name, status: .creating)
    instance.placement = GPUPlacement(node: node, gpuIndices: [0])
    instance.image = image
    instance.resources.cpuCores = 1
    instance.resources.memoryGiB = 1
    // Unique ports and volume per workload, so runs on a shared engine do not collide.
    instance.access.sshPort = Int.random(in: 20000...29999)
    instance.volume.name = "volume-" + String(UUID().uuidString.prefix(8)).lowercased()
    instance.name = name + "-" + String(UUID().uuidString.prefix(4)).lowercased()
    instance.pod = PodInfo(name: instance.name + "-pod", node: node, ip: "")
    return WorkloadSpec(instance: instance)
}

/// Lets time pass until the workload reaches `phase`, or fails after `limit` seconds.
func waitFor(
    _ phase: WorkloadObservation.Phase,
    _ name: String,
    in harness: DriverHarness,
    limit: Double = 120
) async throws -> WorkloadObservation {
    var waited = 0.0
    while waited < limit {
        if let seen = try await harness.driver.observeAll()[name], seen.phase == phase { return seen }
        await harness.letTimePass(0.5)
        waited += 0.5
    }
    throw DriverError("\(name) did not reach \(phase)")
}

@Suite(.timeLimit(.minutes(10))) struct DriverContractTests {
    /// A CI run without an engine would pass while testing nothing of the engine driver.
    @Test func theEngineVariantsRunInCI() {
        if ProcessInfo.processInfo.environment["CI"] != nil {
            #expect(DriverFactory.engineSettings != nil, "CI is set but no engine is configured for the contract suite")
        }
    }

    @Test(arguments: DriverFactory.all)
    func reportsItsNodes(_ factory: DriverFactory) async throws {
        try await factory.withDriver { harness in
            let nodes = try await harness.driver.nodes()
            #expect(nodes.map(\.node.name).sorted() == harness.nodeNames.sorted())
            #expect(nodes.allSatisfy { $0.healthy })
        }
    }

    @Test(arguments: DriverFactory.all)
    func startsStopsAndStartsAgainIdempotently(_ factory: DriverFactory) async throws {
        try await factory.withDriver { harness in
            let driver = harness.driver
            let workload = uniqueSpec("instance-0000c001", node: harness.nodeNames[0], image: harness.image)
            try await driver.start(workload)
            try await driver.start(workload)
            #expect(try await harness.workloadsOf(workload.instanceName) == 1, "two starts, one workload")
            let running = try await waitFor(.running, workload.instanceName, in: harness)
            #expect(running.node == harness.nodeNames[0])
            #expect(!running.ip.isEmpty)
            #expect(running.podName == workload.podName)

            try await driver.stop(instanceName: workload.instanceName, gracePeriodSeconds: 1)
            try await driver.stop(instanceName: workload.instanceName, gracePeriodSeconds: 1)
            _ = try await waitFor(.stopped, workload.instanceName, in: harness)
            try await driver.stop(instanceName: workload.instanceName, gracePeriodSeconds: 1)

            var moved = workload
            moved.node = harness.nodeNames.last!
            moved.gpuIndices = [1]
            try await driver.start(moved)
            try await driver.start(moved)
            let again = try await waitFor(.running, workload.instanceName, in: harness)
            #expect(again.node == moved.node)
            #expect(try await harness.workloadsOf(workload.instanceName) == 1, "moved, not copied")
            try await driver.destroy(instanceName: workload.instanceName, volumeName: workload.volumeName)
            #expect(try await driver.observeAll()[workload.instanceName] == nil)
            #expect(try await harness.workloadsOf(workload.instanceName) == 0)
        }
    }

    @Test(arguments: DriverFactory.all)
    func commitsDiscardsAndDestroys(_ factory: DriverFactory) async throws {
        try await factory.withDriver { harness in
            let driver = harness.driver
            let workload = uniqueSpec("instance-0000c002", node: harness.nodeNames[0], image: harness.image)
            try await driver.start(workload)
            _ = try await waitFor(.running, workload.instanceName, in: harness)
            // A driver that commits running workloads (Kubernetes) is asked before any stop and
            // removes the workload itself; the others commit a stopped one.
            if !driver.commitsRunningWorkloads {
                try await driver.stop(instanceName: workload.instanceName, gracePeriodSeconds: 0)
                _ = try await waitFor(.stopped, workload.instanceName, in: harness)
            }
            #expect(
                try await driver.commit(
                    instanceName: workload.instanceName,
                    imageReference: "images.test/alice/snap:v1"
                )
                    > 0
            )
            #expect(try await driver.observe(instanceName: workload.instanceName)?.phase == .stopped)
            try await driver.discard(instanceName: workload.instanceName)
            #expect(try await driver.observeAll()[workload.instanceName] == nil)
            try await driver.discard(instanceName: workload.instanceName)
            try await driver.destroy(instanceName: workload.instanceName, volumeName: workload.volumeName)
            try await driver.destroy(instanceName: workload.instanceName, volumeName: workload.volumeName)
            #expect(try await driver.observeAll()[workload.instanceName] == nil)
        }
    }

    @Test(arguments: DriverFactory.all)
    func unknownWorkloadsAreNoOps(_ factory: DriverFactory) async throws {
        try await factory.withDriver { harness in
            let driver = harness.driver
            try await driver.stop(instanceName: "instance-ffffffff", gracePeriodSeconds: 1)
            try await driver.discard(instanceName: "instance-ffffffff")
            try await driver.destroy(instanceName: "instance-ffffffff", volumeName: "volume-ffffffff")
            await #expect(throws: (any Error).self) {
                try await driver.commit(instanceName: "instance-ffffffff", imageReference: "x/y/z:1")
            }
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct SimulatedFleetFaultTests {
    let nodes = [Node(name: "gpu-a", gpuModel: "4090", gpuCount: 8, cpuCores: 64, memoryGiB: 512)]

    @Test func injectedStartFailureIsObservedAsFailed() async throws {
        let clock = ManualWallClock()
        let driver = SimulatedFleetDriver(cluster: "c", nodes: nodes, clock: clock)
        await driver.failNextStarts(1, reason: "ImagePullBackOff: no such image")
        try await driver.start(spec("instance-0000f001", node: "gpu-a"))
        #expect(
            try await driver.observeAll()["instance-0000f001"]?.phase
                == .failed(reason: "ImagePullBackOff: no such image")
        )
        try await driver.start(spec("instance-0000f002", node: "gpu-a"))
        clock.advance(by: 5)
        #expect(try await driver.observeAll()["instance-0000f002"]?.phase == .running)
    }

    @Test func lostNodeDropsItsWorkloadsAndTakesNoWork() async throws {
        let clock = ManualWallClock()
        let driver = SimulatedFleetDriver(cluster: "c", nodes: nodes, clock: clock)
        try await driver.start(spec("instance-0000f003", node: "gpu-a"))
        try await driver.loseNode("gpu-a")
        #expect(try await driver.observeAll().isEmpty)
        #expect(try await driver.nodes().first?.healthy == false)
        try await driver.start(spec("instance-0000f004", node: "gpu-a"))
        guard case .failed(let reason)? = try await driver.observeAll()["instance-0000f004"]?.phase else {
            Issue.record("expected failure"); return
        }
        #expect(reason.hasPrefix("NodeLost"))
        try await driver.restoreNode("gpu-a")
        #expect(try await driver.nodes().first?.healthy == true)
    }

    @Test func timingsFollowTheInjectedClock() async throws {
        let clock = ManualWallClock()
        let driver = SimulatedFleetDriver(
            cluster: "c",
            nodes: nodes,
            timing: .init(startDelay: 2, stopDelay: 3),
            clock: clock
        )
        try await driver.start(spec("instance-0000f005", node: "gpu-a"))
        clock.advance(by: 1.9)
        #expect(try await driver.observeAll()["instance-0000f005"]?.phase == .starting)
        clock.advance(by: 0.2)
        #expect(try await driver.observeAll()["instance-0000f005"]?.phase == .running)
        try await driver.stop(instanceName: "instance-0000f005", gracePeriodSeconds: 10)
        clock.advance(by: 2.9)
        #expect(try await driver.observeAll()["instance-0000f005"]?.phase == .stopping)
        clock.advance(by: 0.2)
        #expect(try await driver.observeAll()["instance-0000f005"]?.phase == .stopped)
    }

    @Test func stateFileSurvivesARestart() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-\(UUID().uuidString).json")
        let clock = ManualWallClock()
        let first = SimulatedFleetDriver(cluster: "c", nodes: nodes, clock: clock, stateFile: file)
        try await first.start(spec("instance-0000f006", node: "gpu-a"))
        clock.advance(by: 5)
        let second = SimulatedFleetDriver(cluster: "c", nodes: nodes, clock: clock, stateFile: file)
        #expect(try await second.observeAll()["instance-0000f006"]?.phase == .running)
        #expect(await second.hasVolume(spec("instance-0000f006", node: "gpu-a").volumeName))
    }
}
