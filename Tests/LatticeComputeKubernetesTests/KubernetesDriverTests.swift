import Foundation
import LatticeCompute
import LatticeComputeKubernetes
import LatticeDomain
import LatticeKubeFake
import LatticeTestSupport
import Testing

actor Printed {
    var stdout = ""
    var stderr = ""

    func add(_ output: ExecOutput) {
        switch output {
        case .stdout(let data): stdout += String(decoding: data, as: UTF8.self)
        case .stderr(let data): stderr += String(decoding: data, as: UTF8.self)
        }
    }
}

/// A fake API server on a free port and a driver on it.
/// Runs a driver's `run()` for as long as this is held.
final class DriverRun: Sendable {
    private let task: Task<Void, Never>

    init(_ driver: any ComputeDriver) { task = Task { await driver.run() } }

    deinit { task.cancel() }
}

struct KubeRig {
    /// The committer image the fake cluster can pull.
    static let committer = "registry.test/lattice/committer:1"
    let cluster: FakeCluster
    let url: String
    let driver: KubernetesDriver
    let server: Task<Void, any Error>
    /// The driver's `run()` (its caches' watches, the launchers), as the server's reconciler
    /// runs it, until the test lets go of the rig.
    let running: DriverRun

    static func start(
        nodes: [String] = ["gpu-a", "gpu-b"],
        images: Set<String> = ["img"],
        queriesPerSecond: Double = 50,
        burst: Double = 50,
        committerImage: String? = KubeRig.committer,
        commitTimeout: Duration = .seconds(1800),
        podGoneTimeout: Duration = .seconds(90),
        forceDeleteAfter: Duration = .seconds(60)
    ) async throws -> KubeRig {
        let fake = try await RunningFakeKube.start(nodes: nodes, images: images.union([Self.committer]))
        let (cluster, url, server) = (fake.cluster, fake.url, fake.server)
        var settings = KubernetesDriver.Settings(
            cluster: "k8s",
            publicHost: "gpu.example.com",
            committerImage: committerImage,
            queriesPerSecond: queriesPerSecond,
            burst: burst,
            commitTimeout: commitTimeout,
            podGoneTimeout: podGoneTimeout,
            unreachableAfter: .seconds(1)
        )
        settings.forceDeleteAfter = forceDeleteAfter
        let driver = try KubernetesDriver(settings: settings, connection: KubeConnection(server: url))
        return KubeRig(cluster: cluster, url: url, driver: driver, server: server, running: DriverRun(driver))
    }

    func workload(_ name: String, node: String = "gpu-a", image: String = "img") -> WorkloadSpec {
        var instance = sampleInstance(name: name, status: .creating)
        instance.placement = GPUPlacement(node: node, gpuIndices: [0])
        instance.image = image
        instance.pod = PodInfo(name: "\(name)-x7k2q", node: node, ip: "")
        return WorkloadSpec(instance: instance)
    }

    /// Waits until `check` holds for the instance's observation (up to 20 s).
    func waitFor(
        _ name: String,
        _ what: String = "the expected phase",
        _ check: (WorkloadObservation?) -> Bool
    ) async throws -> WorkloadObservation? {
        for _ in 0..<200 {
            let seen = try await driver.observe(instanceName: name)
            if check(seen) { return seen }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw DriverError("\(name) did not reach \(what)")
    }

    /// Waits until every cache has listed and is watching.
    func settle() async throws {
        for _ in 0..<100 where !driver.feeds.values.allSatisfy({ $0.lists >= 1 && $0.watches >= 1 }) {
            try await Task.sleep(for: .milliseconds(100))
        }
        // The watch requests have left once the server counted them.
        for _ in 0..<100 where cluster.stats.watches < 3 { try await Task.sleep(for: .milliseconds(50)) }
    }

    func pods(_ name: String) -> [[String: Any]] {
        cluster.list("pods", namespace: "lattice-instances", selector: LabelSelector(["lattice.dev/instance": name]))
    }
}

@Suite(.timeLimit(.minutes(10))) struct KubernetesDriverTests {
    @Test func anInstanceIsAPodAPVCASecretTwoServicesAndAnIngress() async throws {
        let rig = try await KubeRig.start()
        let spec = rig.workload("instance-0000k001")
        try await rig.driver.start(spec)
        try await rig.driver.start(spec)
        let running = try await rig.waitFor(spec.instanceName) { $0?.phase == .running }
        #expect(running?.podName == spec.podName && running?.node == "gpu-a" && running?.ip.isEmpty == false)
        func has(_ resource: String, _ name: String) -> Bool {
            rig.cluster.object(.init(resource: resource, namespace: "lattice-instances", name: name)) != nil
        }
        #expect(has("persistentvolumeclaims", spec.volumeName))
        #expect(has("secrets", "\(spec.instanceName)-secrets"))
        #expect(has("services", "\(spec.instanceName)-web"))
        #expect(!has("services", "\(spec.instanceName)-ssh"), "no NodePort to the image's sshd unless asked for")
        #expect(has("networkpolicies", "lattice-instances-isolation"))
        #expect(has("ingresses", spec.instanceName))
        #expect(rig.pods(spec.instanceName).count == 1, "two starts, one pod")
        let labels = try #require((rig.pods(spec.instanceName).first?["metadata"] as? [String: Any])?["labels"])
        #expect((labels as? [String: String])?["lattice.dev/namespace"] == spec.namespace)
        // The pod's log, as `pods/log` answers it.
        let log = ExecText()
        #expect(try await rig.driver.logs(instanceName: spec.instanceName, tail: 10, follow: false) { log.append($0) })
        #expect(log.text.hasPrefix("Started container main"))
        #expect(try await rig.driver.logs(instanceName: "instance-0000none", tail: 10, follow: false) { _ in } == false)
        // Followed: a line written later arrives; the stream ends with the pod.
        let followed = ExecText()
        let following = Task {
            try await rig.driver.logs(instanceName: spec.instanceName, tail: 10, follow: true) { followed.append($0) }
        }
        for _ in 0..<50 where followed.text.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        rig.cluster.appendLog(namespace: "lattice-instances", pod: spec.podName, "written while followed")
        for _ in 0..<50 where !followed.text.contains("written while followed") {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(followed.text.contains("written while followed"))
        // Reachable from the control plane at the pod's address.
        let endpoint = try await rig.driver.endpoint(instanceName: spec.instanceName, port: 8888)
        #expect(endpoint?.host == running?.ip && endpoint?.port == 8888)

        // power_off deletes the pod and keeps the PVC; delete removes everything.
        try await rig.driver.stop(instanceName: spec.instanceName, gracePeriodSeconds: 1)
        _ = try await rig.waitFor(spec.instanceName, "stopped") { $0?.phase == .stopped }
        #expect(rig.pods(spec.instanceName).isEmpty && has("persistentvolumeclaims", spec.volumeName))
        #expect(try await following.value, "the followed log ended with its pod")
        try await rig.driver.destroy(instanceName: spec.instanceName, volumeName: spec.volumeName)
        #expect(try await rig.driver.observe(instanceName: spec.instanceName) == nil)
        #expect(!has("persistentvolumeclaims", spec.volumeName) && !has("secrets", "\(spec.instanceName)-secrets"))
    }

    @Test func deletingAnInstanceWhoseNodeDiedForceDeletesItsPodsAfterAGracePeriod() async throws {
        // A wide margin between the two: on a loaded machine the first destroy's own deletes
        // may take seconds, and must not reach the force-delete age before it waits.
        let rig = try await KubeRig.start(podGoneTimeout: .seconds(1), forceDeleteAfter: .seconds(6))
        let spec = rig.workload("instance-0000k0f1")
        try await rig.driver.start(spec)
        _ = try await rig.waitFor(spec.instanceName) { $0?.phase == .running }
        rig.cluster.setReady("gpu-a", false)
        // No kubelet confirms the deletion: the pod stays Terminating, and the driver says so.
        await #expect(throws: DriverError.self) {
            try await rig.driver.destroy(instanceName: spec.instanceName, volumeName: spec.volumeName)
        }
        #expect(rig.pods(spec.instanceName).count == 1, "still there, Terminating")
        try await Task.sleep(for: .seconds(6))
        try await rig.driver.destroy(instanceName: spec.instanceName, volumeName: spec.volumeName)
        #expect(rig.pods(spec.instanceName).isEmpty, "force-deleted once the grace period was behind it")
        #expect(try await rig.driver.observe(instanceName: spec.instanceName) == nil)
    }

    @Test func podTroubleBecomesStatusesAndReasons() async throws {
        let rig = try await KubeRig.start()
        // An image the kubelet cannot pull.
        let missing = rig.workload("instance-0000k002", image: "nowhere.example/none:1")
        try await rig.driver.start(missing)
        let pull = try await rig.waitFor(missing.instanceName) { if case .failed = $0?.phase { true } else { false } }
        #expect(
            pull?.phase
                == .failed(
                    reason: "ImagePullFailed: failed to pull and unpack image \"nowhere.example/none:1\": not found"
                )
        )

        // A cordoned node: closed in nodes(), and a pod pinned there is unschedulable.
        rig.cluster.cordon("gpu-b", true)
        // The cordon reaches the driver through its node watch: waited for, not slept on
        // (a loaded machine may take longer than any fixed pause).
        var nodes = try await rig.driver.nodes()
        for _ in 0..<100 where nodes.first(where: { $0.node.name == "gpu-b" })?.healthy != false {
            try await Task.sleep(for: .milliseconds(50))
            nodes = try await rig.driver.nodes()
        }
        #expect(nodes.first { $0.node.name == "gpu-b" }?.healthy == false)
        let pinned = rig.workload("instance-0000k003", node: "gpu-b")
        try await rig.driver.start(pinned)
        let refused = try await rig.waitFor(pinned.instanceName) { if case .failed = $0?.phase { true } else { false } }
        guard case .failed(let reason)? = refused?.phase else { return }
        #expect(reason.hasPrefix("Unschedulable: 0/2 nodes are available: 1 node(s) were unschedulable"))

        // A lost node: its pod is lost with it.
        let doomed = rig.workload("instance-0000k004")
        try await rig.driver.start(doomed)
        _ = try await rig.waitFor(doomed.instanceName) { $0?.phase == .running }
        rig.cluster.loseNode("gpu-a")
        let lost = try await rig.waitFor(doomed.instanceName) { if case .failed = $0?.phase { true } else { false } }
        #expect(lost?.phase == .failed(reason: "WorkloadLost: the pod's node left the cluster"))
        #expect(try await rig.driver.nodes().map(\.node.name) == ["gpu-b"])
    }

    @Test func aPodDeletedUnderUsIsLost() async throws {
        let rig = try await KubeRig.start()
        let spec = rig.workload("instance-0000k005")
        var changes = rig.driver.changes().makeAsyncIterator()
        try await rig.driver.start(spec)
        _ = try await rig.waitFor(spec.instanceName) { $0?.phase == .running }
        #expect(await changes.next() == spec.instanceName)
        // Someone runs kubectl delete pod: the pod goes, the instance stays defined.
        try await rig.driver.api.call(.DELETE, "/api/v1/namespaces/lattice-instances/pods/\(spec.podName)")
        let after = try await rig.waitFor(spec.instanceName, "not running") { $0?.phase != .running }
        #expect(after?.phase == .failed(reason: "WorkloadLost: pod \(spec.podName) was deleted outside Lattice"))
        // A pod the driver deletes itself is a stop, not a loss.
        try await rig.driver.start(rig.workload("instance-0000k005"))
        _ = try await rig.waitFor(spec.instanceName) { $0?.phase == .running }
        try await rig.driver.stop(instanceName: spec.instanceName, gracePeriodSeconds: 0)
        _ = try await rig.waitFor(spec.instanceName, "stopped") { $0?.phase == .stopped }
    }

    @Test func watchesSurviveDroppedConnectionsAndExpiredHistory() async throws {
        let rig = try await KubeRig.start()
        let first = rig.workload("instance-0000k006")
        try await rig.driver.start(first)
        _ = try await rig.waitFor(first.instanceName) { $0?.phase == .running }
        let listed = rig.driver.feeds["pods"]?.lists ?? 0
        // Bookmarks keep the version fresh while nothing of ours changes.
        for _ in 0..<30 where (rig.driver.feeds["nodes"]?.bookmarks ?? 0) == 0 {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect((rig.driver.feeds["nodes"]?.bookmarks ?? 0) > 0)
        // A dropped watch resumes from where it was, without a new list.
        rig.cluster.dropWatches()
        let second = rig.workload("instance-0000k007")
        try await rig.driver.start(second)
        _ = try await rig.waitFor(second.instanceName) { $0?.phase == .running }
        #expect(rig.driver.feeds["pods"]?.lists == listed)
        #expect((rig.driver.feeds["pods"]?.watches ?? 0) >= 2)
        // 410 Gone: the driver lists again and sees what happened meanwhile.
        rig.cluster.expireHistory()
        try await rig.driver.stop(instanceName: first.instanceName, gracePeriodSeconds: 0)
        _ = try await rig.waitFor(first.instanceName, "stopped") { $0?.phase == .stopped }
        for _ in 0..<50 where (rig.driver.feeds["pods"]?.lists ?? 0) <= listed {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect((rig.driver.feeds["pods"]?.lists ?? 0) > listed)
        #expect(try await rig.driver.observe(instanceName: second.instanceName)?.phase == .running)
    }

    @Test func anAPIServerThatStopsAnsweringClosesItsNodes() async throws {
        let rig = try await KubeRig.start()
        #expect(try await rig.driver.nodes().allSatisfy(\.healthy))
        rig.server.cancel()
        var nodes: [ClusterNode] = []
        for _ in 0..<100 {
            nodes = try await rig.driver.nodes()
            if nodes.allSatisfy({ !$0.healthy }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(nodes.count == 2 && nodes.allSatisfy { !$0.healthy && $0.unreachable })
        #expect(nodes.first?.reason.hasPrefix("ClusterUnreachable: ") == true)
    }

    @Test func throttlingIsHonoured() async throws {
        let rig = try await KubeRig.start()
        try await rig.settle()
        rig.cluster.throttleNext(2, retryAfter: 1)
        let started = ContinuousClock.now
        try await rig.driver.start(rig.workload("instance-0000k008"))
        #expect(ContinuousClock.now - started >= .seconds(1), "waited for Retry-After")
        #expect(rig.cluster.stats.throttled == 2)
    }

    @Test func theClientPaceIsTheTokenBucket() async throws {
        let rig = try await KubeRig.start(queriesPerSecond: 5, burst: 2)
        try await rig.settle()
        let before = rig.cluster.stats.requests
        let started = ContinuousClock.now
        // Six requests (a start) at 5 per second after a burst of two: at least 0.6 s.
        try await rig.driver.start(rig.workload("instance-0000k009"))
        #expect(rig.cluster.stats.requests - before == 6)
        #expect(ContinuousClock.now - started >= .milliseconds(600))
    }

    @Test func snapshotsRunAsAJobAndAFailedJobKeepsThePod() async throws {
        let rig = try await KubeRig.start()
        #expect(rig.driver.commitsRunningWorkloads)
        let spec = rig.workload("instance-0000k010")
        try await rig.driver.start(spec)
        _ = try await rig.waitFor(spec.instanceName) { $0?.phase == .running }
        // The registry refuses: the Job's message, and the pod still runs.
        await #expect(
            throws: DriverError(
                "push harbor.test/alice/refused:v1: 403 Forbidden: the registry refused the push",
                kind: .workloadFailed
            )
        ) {
            _ = try await rig.driver.commit(
                instanceName: spec.instanceName,
                imageReference: "harbor.test/alice/refused:v1"
            )
        }
        #expect(try await rig.driver.observe(instanceName: spec.instanceName)?.phase == .running)
        // It works: the size the committer wrote, and only then the pod goes.
        let size = try await rig.driver.commit(
            instanceName: spec.instanceName,
            imageReference: "harbor.test/alice/ok:v1"
        )
        #expect(size == 52_428_800)
        #expect(try await rig.driver.observe(instanceName: spec.instanceName)?.phase == .stopped)
        let jobKey = FakeCluster.Key(
            resource: "jobs",
            namespace: "lattice-instances",
            name: "\(spec.instanceName)-commit"
        )
        let job = try #require(rig.cluster.object(jobKey))
        let podSpec = ((job["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
        let data = try JSONSerialization.data(withJSONObject: ["metadata": ["name": "p"], "spec": podSpec ?? [:]])
        #expect(try JSONDecoder().decode(PodObject.self, from: data).node == "gpu-a", "the Job runs on the pod's node")
        // power_on from the snapshot: the pushed image is pullable now.
        var again = rig.workload("instance-0000k011", image: "harbor.test/alice/ok:v1")
        again.volumeName = spec.volumeName
        try await rig.driver.start(again)
        _ = try await rig.waitFor(again.instanceName) { $0?.phase == .running }
    }

    /// Pods are pinned by the node's name, which need not be its hostname label; the
    /// committer runs on a cordoned node (it tolerates every taint), so a user can still
    /// power off with a snapshot while the operator drains the node.
    @Test func pinnedByNodeNameAndCommittedOnACordonedNode() async throws {
        let rig = try await KubeRig.start(commitTimeout: .seconds(15))
        rig.cluster.addNode("gpu-c", gpus: 8, hostname: "ip-10-0-0-7")
        let spec = rig.workload("instance-0000k012", node: "gpu-c")
        try await rig.driver.start(spec)
        let running = try await rig.waitFor(spec.instanceName) { $0?.phase == .running }
        #expect(running?.node == "gpu-c")
        rig.cluster.cordon("gpu-c", true)
        let size = try await rig.driver.commit(instanceName: spec.instanceName, imageReference: "harbor.test/a/c:v1")
        #expect(size == 52_428_800)
        #expect(try await rig.driver.observe(instanceName: spec.instanceName)?.phase == .stopped)
        // A new pod does not go onto the cordoned node: the scheduler's own words.
        var again = rig.workload("instance-0000k012", node: "gpu-c")
        again.podName = "instance-0000k012-b4m9z"
        try await rig.driver.start(again)
        let refused = try await rig.waitFor(spec.instanceName, "failed") { observation in
            if case .failed = observation?.phase { true } else { false }
        }
        #expect(
            refused?.phase == .failed(reason: "Unschedulable: 0/3 nodes are available: 1 node(s) were unschedulable.")
        )
    }

    /// A GPU pool's taint is tolerated; a node kept for other work by a taint takes none,
    /// and a pod put there anyway is refused in the scheduler's words.
    @Test func taintedNodesTakeWorkOnlyWhenTolerated() async throws {
        let rig = try await KubeRig.start()
        rig.cluster.taint("gpu-a", key: "nvidia.com/gpu", value: "present", effect: "NoSchedule")
        rig.cluster.taint("gpu-b", key: "dedicated", value: "training", effect: "NoSchedule")
        let spec = rig.workload("instance-0000k015", node: "gpu-a")
        try await rig.driver.start(spec)
        _ = try await rig.waitFor(spec.instanceName) { $0?.phase == .running }
        var nodes: [String: ClusterNode] = [:]
        for _ in 0..<50 {
            nodes = Dictionary(uniqueKeysWithValues: try await rig.driver.nodes().map { ($0.node.name, $0) })
            if nodes["gpu-b"]?.healthy == false { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(nodes["gpu-a"]?.healthy == true)
        #expect(
            nodes["gpu-b"]?.reason.hasPrefix("Tainted: the node has the taint dedicated=training:NoSchedule") == true
        )
        let refused = rig.workload("instance-0000k016", node: "gpu-b")
        try await rig.driver.start(refused)
        let failed = try await rig.waitFor(refused.instanceName, "failed") { observation in
            if case .failed = observation?.phase { true } else { false }
        }
        #expect(
            failed?.phase
                == .failed(
                    reason:
                        "Unschedulable: 0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: training}."
                )
        )
    }

    /// A committer that cannot run fails the snapshot in seconds, in the pod's words, and
    /// leaves no Job behind; no committer at all fails at once. The pod runs on meanwhile.
    @Test func aSnapshotWithoutAWorkingCommitterFailsSayingWhy() async throws {
        let rig = try await KubeRig.start(committerImage: "registry.test/lattice/typo:1")
        let spec = rig.workload("instance-0000k013")
        try await rig.driver.start(spec)
        _ = try await rig.waitFor(spec.instanceName) { $0?.phase == .running }
        let message =
            "the snapshot Job cannot run: ImagePullFailed: failed to pull and unpack image"
            + " \"registry.test/lattice/typo:1\": not found"
        await #expect(throws: DriverError(message, kind: .workloadFailed)) {
            _ = try await rig.driver.commit(instanceName: spec.instanceName, imageReference: "harbor.test/a/b:v1")
        }
        let job = FakeCluster.Key(resource: "jobs", namespace: "lattice-instances", name: "instance-0000k013-commit")
        #expect(rig.cluster.object(job) == nil)
        #expect(try await rig.driver.observe(instanceName: spec.instanceName)?.phase == .running)

        let bare = try await KubeRig.start(committerImage: nil)
        let other = bare.workload("instance-0000k014")
        try await bare.driver.start(other)
        _ = try await bare.waitFor(other.instanceName) { $0?.phase == .running }
        let none =
            "cluster k8s has no committer: set kubernetes.committerImage in the catalog (deploy/committer builds one)"
        await #expect(throws: DriverError(none, kind: .invalidSpec)) {
            _ = try await bare.driver.commit(instanceName: other.instanceName, imageReference: "harbor.test/a/b:v1")
        }
    }

    /// SSH sessions run in the pod through `pods/exec` (WebSocket, v5 channels); the fake
    /// runs the command on this machine.
    @Test func execRunsInThePodWithItsInputOutputAndExitStatus() async throws {
        let rig = try await KubeRig.start()
        let spec = rig.workload("instance-0000k012")
        try await rig.driver.start(spec)
        _ = try await rig.waitFor(spec.instanceName) { $0?.phase == .running }
        let printed = Printed()
        let (input, feed) = AsyncStream.makeStream(of: ExecInput.self)
        feed.yield(.data(Data("from stdin\n".utf8)))
        feed.yield(.endOfInput)
        let status = try await rig.driver.exec(
            instanceName: spec.instanceName,
            ExecRequest(command: #"cat; echo "to stderr $GREETING" >&2; exit 3"#, environment: ["GREETING": "hello"]),
            input: input,
            output: { await printed.add($0) }
        )
        #expect(status == 3)
        #expect(await printed.stdout == "from stdin\n")
        #expect(await printed.stderr == "to stderr hello\n")
        // A command that reads nothing ends although its input stays open (ssh host cmd).
        let (open, _) = AsyncStream.makeStream(of: ExecInput.self)
        let quick = try await rig.driver.exec(
            instanceName: spec.instanceName,
            ExecRequest(command: "exit 4"),
            input: open,
            output: { _ in }
        )
        #expect(quick == 4)
        // Not running: a clear error.
        try await rig.driver.stop(instanceName: spec.instanceName, gracePeriodSeconds: 0)
        _ = try await rig.waitFor(spec.instanceName, "stopped") { $0?.phase == .stopped }
        await #expect(throws: DriverError("\(spec.instanceName) has no running pod", kind: .notFound)) {
            _ = try await rig.driver.exec(
                instanceName: spec.instanceName,
                ExecRequest(command: "true"),
                input: AsyncStream { $0.finish() },
                output: { _ in }
            )
        }
    }

    /// SPEC §11 on Kubernetes: once the pod runs, the driver runs the launcher in it; the
    /// startup script sees the pod's environment and the data disk's path, and its failure is
    /// in the observation; a new start (power_off, power_on) runs it again.
    @Test func theLauncherRunsAtEveryStartAndItsReportIsObserved() async throws {
        let rig = try await KubeRig.start()
        var spec = rig.workload("instance-0000k014")
        spec.environment["MODE"] = "k8s"
        spec.startupScript = #"[ "$MODE" = k8s ] || exit 9; [ -n "$LATTICE_DATA_PATH" ] || exit 8; exit 3"#
        try await rig.driver.start(spec)
        _ = try await rig.waitFor(spec.instanceName, "the script's report") {
            $0?.phase == .running && $0?.note == WorkloadLauncher.Report.failureNote(status: 3)
        }
        try await rig.driver.stop(instanceName: spec.instanceName, gracePeriodSeconds: 0)
        _ = try await rig.waitFor(spec.instanceName, "stopped") { $0?.phase == .stopped }
        spec.startupScript = "exit 5"
        spec.podName = "\(spec.instanceName)-b2c3d"
        try await rig.driver.start(spec)
        _ = try await rig.waitFor(spec.instanceName, "the second start's report") {
            $0?.podName == spec.podName && $0?.note == WorkloadLauncher.Report.failureNote(status: 5)
        }
    }

    /// A container that started before the driver began was launched by the Lattice before
    /// it (a restart, a failover): its startup script does not run twice; a new start does.
    @Test func aContainerStartedBeforeTheDriverIsNotLaunchedAgain() throws {
        func pod(_ name: String, startedAt: String) throws -> PodObject {
            let json = """
                {"metadata": {"name": "\(name)", "labels": {"\(KubeObjects.instanceLabel)": "instance-0000k015"}},
                 "status": {"phase": "Running",
                            "containerStatuses": [{"state": {"running": {"startedAt": "\(startedAt)"}}}]}}
                """
            return try JSONDecoder().decode(PodObject.self, from: Data(json.utf8))
        }
        let launches = KubeLaunches(since: try #require(KubeLaunches.date("2026-12-07T09:00:00Z")))
        #expect(launches.toLaunch(try pod("p-1", startedAt: "2026-12-07T08:00:00Z")) == nil)
        #expect(launches.toLaunch(try pod("p-1", startedAt: "2026-12-07T09:30:00Z")) == "p-1@2026-12-07T09:30:00Z")
        #expect(launches.toLaunch(try pod("p-1", startedAt: "2026-12-07T09:30:00Z")) == nil, "once per start")
        #expect(launches.toLaunch(try pod("p-2", startedAt: "2026-12-07T08:59:59.5Z")) != nil, "within the margin")
    }

    @Test func theFakeServerKeepsResourceVersionsAndFieldManagers() async throws {
        let rig = try await KubeRig.start()
        let api = rig.driver.api
        let path = "/api/v1/namespaces/lattice-instances/secrets/s1"
        let secret: [String: Any] = [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "s1", "namespace": "lattice-instances"],
        ]
        try await api.apply(path, secret)
        // Another manager conflicts unless it forces.
        let other = try await api.send(
            .PATCH,
            path,
            query: [("fieldManager", "kubectl")],
            json: secret.merging(["stringData": ["a": "b"]]) { $1 },
            contentType: "application/apply-patch+yaml"
        )
        #expect(other.status == 409)
        // An update at a stale resourceVersion conflicts.
        var stale = try await api.call(.GET, path).object
        var meta = stale["metadata"] as? [String: Any] ?? [:]
        meta["resourceVersion"] = "1"
        stale["metadata"] = meta
        #expect(try await api.send(.PUT, path, json: stale).status == 409)
        // generateName, and a taken name.
        let pods = "/api/v1/namespaces/lattice-instances/secrets"
        let generated = try await api.call(
            .POST,
            pods,
            json: ["apiVersion": "v1", "kind": "Secret", "metadata": ["generateName": "gen-"]]
        )
        let name = (generated.object["metadata"] as? [String: Any])?["name"] as? String ?? ""
        #expect(name.hasPrefix("gen-") && name.count == 9)
        #expect(try await api.send(.POST, pods, json: secret).status == 409)
    }
}

/// Against a real cluster, only when `KUBECONFIG` names one: a pod starts on a node of it,
/// stops (the PVC stays) and is removed with everything else. `LATTICE_E2E_IMAGE` (default
/// `registry.k8s.io/pause:3.10`, which runs until stopped), `LATTICE_E2E_NAMESPACE` (default
/// `lattice-e2e`, made if absent) and `LATTICE_E2E_STORAGE_CLASS` adjust it.
@Suite(.timeLimit(.minutes(10))) struct KubernetesEndToEndTests {
    static var kubeconfig: String? {
        ProcessInfo.processInfo.environment["KUBECONFIG"]?.split(separator: ":").first.map(String.init)
    }

    @Test(.enabled(if: kubeconfig != nil, "KUBECONFIG does not name a cluster"))
    func aPodStartsStopsAndGoesOnARealCluster() async throws {
        let env = ProcessInfo.processInfo.environment
        let connection = try KubeConnection.kubeconfig(path: try #require(Self.kubeconfig))
        let namespace = env["LATTICE_E2E_NAMESPACE"] ?? "lattice-e2e"
        let driver = try KubernetesDriver(
            settings: KubernetesDriver.Settings(
                cluster: "e2e",
                namespace: namespace,
                storageClass: env["LATTICE_E2E_STORAGE_CLASS"]
            ),
            connection: connection
        )
        let running = DriverRun(driver)
        defer { withExtendedLifetime(running) {} }
        let created = try await driver.api.send(
            .POST,
            "/api/v1/namespaces",
            json: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": namespace]]
        )
        #expect(created.ok || created.status == 409, "\(created.message)")
        // Any schedulable node will do: the pod asks for no GPU.
        let nodes = try await driver.api.call(.GET, "/api/v1/nodes").object["items"] as? [[String: Any]] ?? []
        let names = nodes.compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String }
        let node = try #require(names.first, "the cluster has no node")
        var instance = sampleInstance(
            name: "instance-e2e\(UUID().uuidString.prefix(5).lowercased())",
            status: .creating
        )
        instance.placement = GPUPlacement(node: node, gpuIndices: [])
        instance.image = env["LATTICE_E2E_IMAGE"] ?? "registry.k8s.io/pause:3.10"
        instance.resources.cpuCores = 1
        instance.resources.memoryGiB = 1
        instance.volume.sizeGiB = 1
        instance.access.sshPort = 0
        instance.pod = PodInfo(name: "\(instance.name)-e2e01", node: node, ip: "")
        let spec = WorkloadSpec(instance: instance)
        try await driver.start(spec)
        defer { Task { try? await driver.destroy(instanceName: spec.instanceName, volumeName: spec.volumeName) } }
        var seen: WorkloadObservation?
        for _ in 0..<180 {
            seen = try await driver.observe(instanceName: spec.instanceName)
            if seen?.phase == .running { break }
            if case .failed = seen?.phase { break }
            try await Task.sleep(for: .seconds(1))
        }
        #expect(seen?.phase == .running, "\(String(describing: seen))")
        try await driver.stop(instanceName: spec.instanceName, gracePeriodSeconds: 5)
        for _ in 0..<120 where try await driver.observe(instanceName: spec.instanceName)?.phase != .stopped {
            try await Task.sleep(for: .seconds(1))
        }
        #expect(try await driver.observe(instanceName: spec.instanceName)?.phase == .stopped)
        try await driver.destroy(instanceName: spec.instanceName, volumeName: spec.volumeName)
        #expect(try await driver.observe(instanceName: spec.instanceName) == nil)
    }
}
