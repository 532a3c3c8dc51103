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

    /// One change to the state, as appended to the journal.
    enum Change: Codable {
        case workload(String, Workload?)
        case volume(String, exists: Bool)
        case lostNode(String, lost: Bool)
        case image(String, size: Int64)
        case nextIP(Int)
    }

    public let cluster: String
    let nodeList: [Node]
    let nodeIndex: [String: Int]
    let timing: Timing
    let clock: any WallClock
    let journal: FleetJournal?
    var state: State
    var pendingStartFailures: [String] = []
    /// Each workload's log, the last `SimulatedFleetDriver.logLines` lines (in memory only).
    var logs: [String: [String]] = [:]
    /// Why a workload's last startup script failed (its `statusReason` while Running).
    var startupNotes: [String: String] = [:]
    /// The node list as last reported: the same array until a node is lost or restored, so
    /// a caller can tell "unchanged" in O(1).
    var clusterNodes: [ClusterNode]?
    private let changeStream: AsyncStream<String>
    private let changeSink: AsyncStream<String>.Continuation
    /// Transitions under way, each told to the reconciler when it ends: timers that `run()`
    /// keeps as its children.
    private let timerStream: AsyncStream<(name: String, at: Date)>
    private let timerSink: AsyncStream<(name: String, at: Date)>.Continuation

    /// - Parameter stateFile: where the fleet keeps its state, so that workloads survive a
    ///   restart of the server as containers survive a restart of a real control plane.
    ///   Each change is appended to `<stateFile>.journal` (constant work per change); the
    ///   journal is folded into the state file when the fleet starts and when it grows.
    public init(
        cluster: String,
        nodes: [Node],
        timing: Timing = Timing(),
        clock: any WallClock = SystemWallClock(),
        stateFile: URL? = nil
    ) {
        self.cluster = cluster
        self.nodeList = nodes
        self.nodeIndex = Dictionary(nodes.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.timing = timing
        self.clock = clock
        (changeStream, changeSink) = AsyncStream.makeStream(of: String.self)
        (timerStream, timerSink) = AsyncStream.makeStream(of: (name: String, at: Date).self)
        if let stateFile {
            let journal = FleetJournal(stateFile: stateFile)
            self.state = journal.load()
            self.journal = journal
        } else {
            self.state = State()
            self.journal = nil
        }
        Self.reportTransitions(of: state, clock: clock, to: timerSink)
    }

    /// Transitions that were under way when the state was saved are reported when they end.
    private static func reportTransitions(
        of state: State,
        clock: any WallClock,
        to timers: AsyncStream<(name: String, at: Date)>.Continuation
    ) {
        let now = clock.now()
        for (name, workload) in state.workloads where workload.failureReason == nil && workload.transitionAt > now {
            timers.yield((name, workload.transitionAt))
        }
    }

    /// One short-lived child per transition in flight, ending when the transition does.
    public nonisolated func run() async {
        await withDiscardingTaskGroup { group in
            for await (name, time) in timerStream {
                group.addTask { [clock, changeSink] in
                    guard (try? await clock.sleep(until: time)) != nil else { return }
                    changeSink.yield(name)
                }
            }
        }
    }

    /// Replicas that share a data directory share the fleet's state file: the one that
    /// becomes the leader reads what the previous leader left in it.
    public func adopt() async throws {
        guard let journal else { return }
        state = journal.load()
        clusterNodes = nil
        Self.reportTransitions(of: state, clock: clock, to: timerSink)
    }

    static func apply(_ change: Change, to state: inout State) {
        switch change {
        case .workload(let name, let workload): state.workloads[name] = workload
        case .volume(let name, let exists):
            if exists { state.volumes.insert(name) } else { state.volumes.remove(name) }
        case .lostNode(let name, let lost):
            if lost { state.lostNodes.insert(name) } else { state.lostNodes.remove(name) }
        case .image(let reference, let size): state.images[reference] = size
        case .nextIP(let value): state.nextIP = value
        }
    }

    /// Applies changes to the state and journals them.
    func record(_ changes: Change...) throws {
        for change in changes { Self.apply(change, to: &state) }
        try journal?.append(changes, state: state)
    }

    /// Tells the reconciler about `name` once the clock reaches `time`.
    func publish(_ name: String, at time: Date) {
        if time <= clock.now() {
            changeSink.yield(name)
            return
        }
        timerSink.yield((name, time))
    }

    public nonisolated func changes() -> AsyncStream<String> { changeStream }

    // MARK: Fault injection

    /// The next `count` starts fail with `reason` (as a failed image pull would).
    public func failNextStarts(_ count: Int = 1, reason: String = "ImagePullBackOff: simulated start failure") {
        pendingStartFailures.append(contentsOf: Array(repeating: reason, count: count))
    }

    /// Takes a node away: its workloads vanish and it takes no new work.
    public func loseNode(_ name: String) throws {
        let gone = state.workloads.filter { $0.value.spec.node == name }.keys
        try record(.lostNode(name, lost: true))
        clusterNodes = nil
        for instance in gone {
            try record(.workload(instance, nil))
            changeSink.yield(instance)
        }
    }

    /// Brings a lost node back, empty.
    public func restoreNode(_ name: String) throws {
        try record(.lostNode(name, lost: false))
        clusterNodes = nil
    }

    /// Whether a data volume exists, for tests.
    public func hasVolume(_ name: String) -> Bool { state.volumes.contains(name) }
    /// How many workloads the fleet holds for an instance (0 or 1: one per name by design).
    public func workloadCount(instanceName: String) -> Int { state.workloads[instanceName] == nil ? 0 : 1 }
    /// Whether a committed image exists, for tests.
    public func hasImage(_ reference: String) -> Bool { state.images[reference] != nil }

    // MARK: ComputeDriver

    public func nodes() async throws -> [ClusterNode] {
        if let cached = clusterNodes { return cached }
        let nodes = nodeList.map {
            let lost = state.lostNodes.contains($0.name)
            return ClusterNode(
                node: $0,
                cluster: cluster,
                healthy: !lost,
                reason: lost ? "NodeLost: the node left the fleet" : ""
            )
        }
        clusterNodes = nodes
        return nodes
    }

    public func observe(instanceName: String) async throws -> WorkloadObservation? {
        state.workloads[instanceName].map { observation(of: $0, now: clock.now()) }
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
            phase: phase,
            note: startupNotes[workload.spec.instanceName] ?? "",
            apps: phase == .running ? Self.apps : nil
        )
    }

    public func start(_ spec: WorkloadSpec) async throws {
        let now = clock.now()
        guard nodeIndex[spec.node] != nil else {
            throw DriverError("node \(spec.node) is not in cluster \(cluster)", kind: .invalidSpec)
        }
        if var existing = state.workloads[spec.instanceName], existing.failureReason == nil {
            guard existing.target == .stopped else { return }
            if existing.spec.node != spec.node { existing.ip = try allocateIP(node: spec.node) }
            existing.spec = spec
            existing.target = .running
            existing.transitionAt = now.addingTimeInterval(timing.startDelay)
            try record(.workload(spec.instanceName, existing))
            boot(spec, at: now)
            publish(spec.instanceName, at: existing.transitionAt)
        } else {
            var workload = Workload(
                spec: spec,
                ip: try allocateIP(node: spec.node),
                target: .running,
                transitionAt: now.addingTimeInterval(timing.startDelay),
                failureReason: nil
            )
            if state.lostNodes.contains(spec.node) {
                workload.failureReason = "NodeLost: node \(spec.node) is not reachable"
            } else if !pendingStartFailures.isEmpty {
                workload.failureReason = pendingStartFailures.removeFirst()
            }
            try record(.workload(spec.instanceName, workload), .volume(spec.volumeName, exists: true))
            if workload.failureReason == nil { boot(spec, at: now) }
            publish(spec.instanceName, at: workload.failureReason == nil ? workload.transitionAt : now)
        }
    }

    public func stop(instanceName: String, gracePeriodSeconds: Int) async throws {
        guard var workload = state.workloads[instanceName], workload.target == .running, workload.failureReason == nil
        else { return }
        workload.target = .stopped
        workload.transitionAt = clock.now().addingTimeInterval(min(timing.stopDelay, Double(gracePeriodSeconds)))
        try record(.workload(instanceName, workload))
        publish(instanceName, at: workload.transitionAt)
    }

    public func commit(instanceName: String, imageReference: String) async throws -> Int64 {
        guard let workload = state.workloads[instanceName] else {
            throw DriverError("no workload \(instanceName) to commit", kind: .notFound)
        }
        let size = Int64(1_000_000_000 + workload.spec.volumeSizeGiB * 1_000_000)
        try record(.image(imageReference, size: size))
        return size
    }

    public func discard(instanceName: String) async throws {
        logs[instanceName] = nil
        guard state.workloads[instanceName] != nil else { return }
        try record(.workload(instanceName, nil))
    }

    public func destroy(instanceName: String, volumeName: String) async throws {
        logs[instanceName] = nil
        startupNotes[instanceName] = nil
        if state.workloads[instanceName] != nil { try record(.workload(instanceName, nil)) }
        if state.volumes.contains(volumeName) { try record(.volume(volumeName, exists: false)) }
    }

    /// The simulated fleet keeps no image bytes (a commit only reports a size), so there is
    /// nothing to remove.
    public func removeImage(reference: String) async throws {}

    // MARK: Internals

    func allocateIP(node: String) throws -> String {
        let nodeNumber = (nodeIndex[node] ?? 0) + 1
        try record(.nextIP(state.nextIP + 1))
        let host = state.nextIP % 250 + 2
        return "172.31.\(200 + nodeNumber % 50).\(host)"
    }
}

/// The simulated fleet's journal: one JSON line per change, appended as it happens, so a
/// change costs the same whatever the fleet holds; folded into the state file at start and
/// whenever it has grown past the state's own size.
/// Owned by its driver (an actor), which alone calls it.
final class FleetJournal {
    let stateFile: URL
    let journalFile: URL
    private var handle: FileHandle?
    private var lines = 0

    init(stateFile: URL) {
        self.stateFile = stateFile
        self.journalFile = stateFile.appendingPathExtension("journal")
    }

    /// The state file with the journal replayed over it, and the journal open for appends.
    func load() -> SimulatedFleetDriver.State {
        var state = SimulatedFleetDriver.State()
        if let data = try? Data(contentsOf: stateFile),
            let saved = try? JSONDecoder().decode(SimulatedFleetDriver.State.self, from: data)
        {
            state = saved
        }
        let replayed = replay()
        for change in replayed { SimulatedFleetDriver.apply(change, to: &state) }
        // Folded in later, when the journal has grown, not on the way to listening.
        open(replayedLines: replayed.count, state: state)
        return state
    }

    /// The changes since the state file was written; a torn last line (a crash mid-write)
    /// is ignored.
    func replay() -> [SimulatedFleetDriver.Change] {
        guard let data = try? Data(contentsOf: journalFile) else { return [] }
        let decoder = JSONDecoder()
        return data.split(separator: UInt8(ascii: "\n")).compactMap {
            try? decoder.decode(SimulatedFleetDriver.Change.self, from: Data($0))
        }
    }

    /// Appends after what was replayed; a state file is written first if there is none.
    func open(replayedLines: Int, state: SimulatedFleetDriver.State) {
        try? handle?.close()
        handle = nil
        guard FileManager.default.fileExists(atPath: stateFile.path),
            FileManager.default.fileExists(atPath: journalFile.path),
            let handle = try? FileHandle(forWritingTo: journalFile)
        else {
            compact(state)
            return
        }
        // A torn last line must not swallow the next change: start on a fresh line.
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data("\n".utf8))
        self.handle = handle
        lines = replayedLines
    }

    /// Writes the state file and starts an empty journal.
    func compact(_ state: SimulatedFleetDriver.State) {
        do {
            try JSONEncoder().encode(state).write(to: stateFile, options: .atomic)
            try? handle?.close()
            _ = FileManager.default.createFile(atPath: journalFile.path, contents: nil)
            handle = try FileHandle(forWritingTo: journalFile)
            lines = 0
        } catch {
            handle = nil
        }
    }

    func append(_ changes: [SimulatedFleetDriver.Change], state: SimulatedFleetDriver.State) throws {
        guard let handle else { return }
        var data = Data()
        let encoder = JSONEncoder()
        for change in changes {
            data.append(try encoder.encode(change))
            data.append(UInt8(ascii: "\n"))
        }
        try handle.seekToEnd()
        try handle.write(contentsOf: data)
        lines += changes.count
        if lines > 10_000 + 2 * state.workloads.count { compact(state) }
    }
}

// MARK: Exec

extension SimulatedFleetDriver {
    /// Runs the built-in `SimulatedShell` "inside" a running workload.
    public func exec(
        instanceName: String,
        _ request: ExecRequest,
        input: AsyncStream<ExecInput>,
        output: @escaping @Sendable (ExecOutput) async -> Void
    ) async throws -> Int32 {
        guard let workload = state.workloads[instanceName],
            observation(of: workload, now: clock.now()).phase == .running
        else { throw DriverError("\(instanceName) has no running workload", kind: .notFound) }
        let node = nodeIndex[workload.spec.node].map { nodeList[$0] }
        var shell = SimulatedShell(
            machine: SimulatedShell.Machine(
                hostname: instanceName,
                gpuModel: node?.gpuModel ?? "",
                gpuIndices: workload.spec.gpuIndices
            ),
            environment: workload.spec.environment.filter { !WorkloadSpec.secretEnvironmentKeys.contains($0.key) }
                .merging(request.environment) { _, given in given }
                .merging(["HOME": "/root", "USER": "root"]) { own, _ in own },
            terminal: request.terminal
        )
        func say(_ text: String) async { if !text.isEmpty { await output(.stdout(Data(text.utf8))) } }
        if let command = request.command {
            let step = shell.run(commandLine: command)
            await say(step.output)
            return step.exitStatus ?? 0
        }
        await say(shell.greeting().output)
        for await event in input {
            let step: SimulatedShell.Step
            switch event {
            case .data(let data): step = shell.feed(data)
            case .resize(let size):
                shell.resize(size)
                continue
            case .endOfInput: step = shell.endOfInput()
            }
            await say(step.output)
            if let status = step.exitStatus { return status }
        }
        return 0
    }

    /// Nothing listens inside a simulated workload.
    public func endpoint(instanceName: String, port: Int) async throws -> WorkloadEndpoint? { nil }
}
