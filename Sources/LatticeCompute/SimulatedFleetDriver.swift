import Foundation
import LatticeDomain

/// A fleet of GPU nodes that exists only in memory (and, if given a state file, on disk),
/// in the spirit of KWOK: workloads take a configurable time to start and stop, get pod
/// names, node names and IPs, and faults can be injected. It is the embedded default, not
/// a test double: the reconciler drives it exactly as it drives a real engine.
public actor SimulatedFleetDriver: ComputeDriver {
    /// Timings of the simulated fleet.
    public struct Timing: Sendable {
        public var startDelay: TimeInterval
        public var stopDelay: TimeInterval
        public init(startDelay: TimeInterval = 2, stopDelay: TimeInterval = 2) {
            self.startDelay = startDelay
            self.stopDelay = stopDelay
        }
    }

    struct Workload: Codable, Equatable {
        var spec: WorkloadSpec
        var ip: String
        /// The phase the workload is moving to, and when it gets there.
        var target: Target
        var transitionAt: Date
        var failureReason: String?

        enum Target: String, Codable { case running, stopped }
    }

    struct State: Codable, Equatable {
        var workloads: [String: Workload] = [:]
        var volumes: Set<String> = []
        var lostNodes: Set<String> = []
        var images: [String: Int64] = [:]
        var nextIP: Int = 10
    }

    public let cluster: String
    let nodeList: [Node]
    let timing: Timing
    let clock: any WallClock
    let stateFile: URL?
    var state: State
    var pendingStartFailures: [String] = []

    /// - Parameter stateFile: where the fleet keeps its state, so that workloads survive a
    ///   restart of the server as containers survive a restart of a real control plane.
    public init(
        cluster: String,
        nodes: [Node],
        timing: Timing = Timing(),
        clock: any WallClock = SystemWallClock(),
        stateFile: URL? = nil
    ) {
        self.cluster = cluster
        self.nodeList = nodes
        self.timing = timing
        self.clock = clock
        self.stateFile = stateFile
        if let stateFile, let data = try? Data(contentsOf: stateFile),
            let saved = try? JSONDecoder().decode(State.self, from: data)
        {
            state = saved
        } else {
            state = State()
        }
    }

    // MARK: Fault injection

    /// The next `count` starts fail with `reason` (as a failed image pull would).
    public func failNextStarts(_ count: Int = 1, reason: String = "ImagePullBackOff: simulated start failure") {
        pendingStartFailures.append(contentsOf: Array(repeating: reason, count: count))
    }

    /// Takes a node away: its workloads vanish and it takes no new work.
    public func loseNode(_ name: String) throws {
        state.lostNodes.insert(name)
        state.workloads = state.workloads.filter { $0.value.spec.node != name }
        try persist()
    }

    /// Brings a lost node back, empty.
    public func restoreNode(_ name: String) throws {
        state.lostNodes.remove(name)
        try persist()
    }

    /// Whether a data volume exists, for tests.
    public func hasVolume(_ name: String) -> Bool { state.volumes.contains(name) }
    /// How many workloads the fleet holds for an instance (0 or 1: one per name by design).
    public func workloadCount(instanceName: String) -> Int { state.workloads[instanceName] == nil ? 0 : 1 }
    /// Whether a committed image exists, for tests.
    public func hasImage(_ reference: String) -> Bool { state.images[reference] != nil }

    // MARK: ComputeDriver

    public func nodes() async throws -> [ClusterNode] {
        nodeList.map { ClusterNode(node: $0, cluster: cluster, healthy: !state.lostNodes.contains($0.name)) }
    }

    public func observeAll() async throws -> [String: WorkloadObservation] {
        let now = clock.now()
        var result: [String: WorkloadObservation] = [:]
        for (name, workload) in state.workloads {
            result[name] = observation(of: workload, now: now)
        }
        return result
    }

    func observation(of workload: Workload, now: Date) -> WorkloadObservation {
        let phase: WorkloadObservation.Phase
        if let reason = workload.failureReason {
            phase = .failed(reason: reason)
        } else {
            let arrived = now >= workload.transitionAt
            switch workload.target {
            case .running: phase = arrived ? .running : .starting
            case .stopped: phase = arrived ? .stopped : .stopping
            }
        }
        return WorkloadObservation(
            instanceName: workload.spec.instanceName,
            podName: workload.spec.podName,
            node: workload.spec.node,
            ip: phase == .running ? workload.ip : "",
            phase: phase
        )
    }

    public func start(_ spec: WorkloadSpec) async throws {
        let now = clock.now()
        guard nodeList.contains(where: { $0.name == spec.node }) else {
            throw DriverError("node \(spec.node) is not in cluster \(cluster)")
        }
        if var existing = state.workloads[spec.instanceName], existing.failureReason == nil {
            guard existing.target == .stopped else { return }
            if existing.spec.node != spec.node { existing.ip = allocateIP(node: spec.node) }
            existing.spec = spec
            existing.target = .running
            existing.transitionAt = now.addingTimeInterval(timing.startDelay)
            state.workloads[spec.instanceName] = existing
        } else {
            var workload = Workload(
                spec: spec,
                ip: allocateIP(node: spec.node),
                target: .running,
                transitionAt: now.addingTimeInterval(timing.startDelay),
                failureReason: nil
            )
            if state.lostNodes.contains(spec.node) {
                workload.failureReason = "NodeLost: node \(spec.node) is not reachable"
            } else if !pendingStartFailures.isEmpty {
                workload.failureReason = pendingStartFailures.removeFirst()
            }
            state.workloads[spec.instanceName] = workload
            state.volumes.insert(spec.volumeName)
        }
        try persist()
    }

    public func stop(instanceName: String, gracePeriodSeconds: Int) async throws {
        guard var workload = state.workloads[instanceName], workload.target == .running, workload.failureReason == nil
        else { return }
        workload.target = .stopped
        workload.transitionAt = clock.now().addingTimeInterval(min(timing.stopDelay, Double(gracePeriodSeconds)))
        state.workloads[instanceName] = workload
        try persist()
    }

    public func commit(instanceName: String, imageReference: String) async throws -> Int64 {
        guard let workload = state.workloads[instanceName] else {
            throw DriverError("no workload \(instanceName) to commit")
        }
        let size = Int64(1_000_000_000 + workload.spec.volumeSizeGiB * 1_000_000)
        state.images[imageReference] = size
        try persist()
        return size
    }

    public func discard(instanceName: String) async throws {
        guard state.workloads.removeValue(forKey: instanceName) != nil else { return }
        try persist()
    }

    public func destroy(instanceName: String, volumeName: String) async throws {
        let removedWorkload = state.workloads.removeValue(forKey: instanceName) != nil
        let removedVolume = state.volumes.remove(volumeName) != nil
        if removedWorkload || removedVolume { try persist() }
    }

    // MARK: Internals

    func allocateIP(node: String) -> String {
        let nodeIndex = (nodeList.firstIndex { $0.name == node } ?? 0) + 1
        state.nextIP += 1
        let host = state.nextIP % 250 + 2
        return "172.31.\(200 + nodeIndex % 50).\(host)"
    }

    func persist() throws {
        guard let stateFile else { return }
        let data = try JSONEncoder().encode(state)
        try data.write(to: stateFile, options: .atomic)
    }
}
