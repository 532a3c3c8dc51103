import AsyncHTTPClient
import Foundation
import LatticeCompute
import LatticeDomain
import NIOCore
import Synchronization

/// Runs instances as containers on one or more hosts through each host's Docker Engine API
/// (a unix socket, or TCP with mutual TLS), so the same code drives one workstation and a
/// rack of Docker or Podman servers ([engine.md](../../docs/engine.md)).
///
/// Each node of the cluster is one host (`EngineHost`); an instance's container and volume
/// live on the host it was placed on. The driver routes every call to that host, asks all
/// hosts at once where it must (never one after another, so a slow host delays no other),
/// keeps each host's health (a host that does not answer takes no new work, and its
/// instances are unseen rather than lost), and follows every host's event stream.
public final class EngineDriver: ComputeDriver, Sendable {
    /// How GPUs are asked for.
    public enum GPURequests: String, Sendable { case docker, cdi, none }

    /// Where committed snapshots go, if anywhere.
    public struct Push: Sendable {
        public var username: String
        public var password: String
        public init(username: String = "", password: String = "") {
            self.username = username
            self.password = password
        }
    }

    /// What keeps one tenant's containers from another's and from the host.
    public struct Isolation: Sendable, Equatable {
        /// The most processes a container may run (0: the engine's default, usually none).
        public var pidsLimit: Int
        /// The capabilities a container's root keeps; every other one is dropped
        /// (docs/engine.md, "Isolation").
        public var capabilities: [String]

        /// Docker's default set less `NET_RAW` (raw sockets: spoofing on the bridge), `MKNOD`,
        /// `AUDIT_WRITE` and `SETFCAP`: what a dev box needs (packages, users, files,
        /// `sshd`'s chroot, low ports), nothing that reaches past the container.
        public static let defaultCapabilities = [
            "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE",
            "SYS_CHROOT",
        ]

        public init(pidsLimit: Int = 4096, capabilities: [String] = Isolation.defaultCapabilities) {
            self.pidsLimit = pidsLimit
            self.capabilities = capabilities
        }
    }

    /// Every namespace's containers share one bridge network of their own (on each host),
    /// so no traffic flows between tenants: `lattice-<namespace>`.
    public static func networkName(namespace: String) -> String { "lattice-\(namespace)" }

    /// Maps an engine state to a workload phase.
    static func phase(state: String, status: String) -> WorkloadObservation.Phase {
        switch state.lowercased() {
        case "running": .running
        case "created", "restarting", "configured", "initialized": .starting
        case "paused", "removing", "stopping": .stopping
        case "exited", "stopped": .stopped
        case "dead": .failed(reason: "ContainerDead: \(status)")
        default: .starting
        }
    }

    /// A host's health as last seen.
    struct Health {
        var answers: Bool
        var checkedAt: Date
    }

    public let cluster: String
    let hosts: [EngineHost]
    let byNode: [String: EngineHost]
    /// How long a health reading is trusted before `nodes()` pings again.
    let healthTTL: TimeInterval = 2
    /// A host that has not answered a listing within this is left out of that resync.
    let hostDeadline: Duration = .seconds(5)
    private struct State {
        var health: [String: Health] = [:]
        /// Which host each instance's container was last seen on.
        var locations: [String: String] = [:]
        /// Whether `changes()` follows every host's events (and so keeps their health).
        var following = false
        /// GPUs counted on each host by `gpuProbeImage`, and when.
        var gpuCounts: [String: (count: Int, at: Date)] = [:]
    }

    private let state = Mutex(State())
    let gpuProbeImage: String?
    /// How often a resync counts a host's GPUs again.
    let gpuProbeInterval: TimeInterval = 600
    private let probeRequests: AsyncStream<String>
    private let probeSink: AsyncStream<String>.Continuation
    private let changeStream: AsyncStream<String>
    private let changeSink: AsyncStream<String>.Continuation
    /// Work that outlives the call that asked for it (a workload's launcher), which `run()`
    /// keeps as its children.
    private let jobs: AsyncStream<@Sendable () async -> Void>
    private let jobSink: AsyncStream<@Sendable () async -> Void>.Continuation

    /// - Parameters:
    ///   - hosts: each node with its engine endpoint.
    ///   - discoverGPUs: count a host's GPUs with `nvidia-smi` where the host is this machine
    ///     (a unix socket), instead of trusting the catalog's `gpuCount`.
    public init(
        cluster: String,
        hosts: [(node: Node, endpoint: EngineEndpoint)],
        gpuRequests: GPURequests = .docker,
        client: HTTPClient = EngineClients.plain,
        discoverGPUs: Bool = false,
        push: Push? = nil,
        isolation: Isolation = Isolation(),
        gpuProbeImage: String? = nil
    ) throws {
        self.cluster = cluster
        self.gpuProbeImage = gpuProbeImage
        (changeStream, changeSink) = AsyncStream.makeStream(of: String.self)
        (jobs, jobSink) = AsyncStream.makeStream(of: (@Sendable () async -> Void).self)
        (probeRequests, probeSink) = AsyncStream.makeStream(of: String.self)
        var made: [EngineHost] = []
        for (node, endpoint) in hosts {
            let engine = try EngineAPI(endpoint: endpoint, client: client)
            var node = node
            if discoverGPUs, case .unix = engine.address, let count = GPUDiscovery.nvidiaGPUCount() {
                node.gpuCount = count
            }
            made.append(
                EngineHost(
                    cluster: cluster,
                    node: node,
                    engine: engine,
                    gpuRequests: gpuRequests,
                    push: push,
                    isolation: isolation,
                    changeSink: changeSink,
                    jobSink: jobSink
                )
            )
        }
        self.hosts = made
        byNode = Dictionary(made.map { ($0.node.name, $0) }) { first, _ in first }
    }

    /// One host on a unix socket (a workstation, and the tests).
    public convenience init(
        cluster: String,
        node: Node,
        socketPath: String,
        gpuRequests: GPURequests = .docker,
        client: HTTPClient = EngineClients.plain,
        discoverGPUs: Bool = false,
        push: Push? = nil,
        isolation: Isolation = Isolation()
    ) {
        // A unix endpoint cannot fail to parse.
        try! self.init(
            cluster: cluster,
            hosts: [(node, EngineEndpoint(url: "unix://" + socketPath))],
            gpuRequests: gpuRequests,
            client: client,
            discoverGPUs: discoverGPUs,
            push: push,
            isolation: isolation
        )
    }

    /// The `POST /containers/create` body (of the first host); pure, for the unit tests.
    public func createBody(_ spec: WorkloadSpec) -> [String: Any] { hosts[0].createBody(spec) }

    // MARK: Health and routing

    func record(_ node: String, answers: Bool) {
        let changed = state.withLock { state in
            let before = state.health[node]?.answers
            state.health[node] = Health(answers: answers, checkedAt: Date())
            return before != nil && before != answers
        }
        // A host that came back may have other GPUs now: count them again.
        if changed, answers { probeSink.yield(node) }
        // A host that went away or came back: its instances need a look (a reason shown, or
        // taken away).
        if changed {
            let there = state.withLock { state in state.locations.filter { $0.value == node }.map(\.key) }
            for name in there { changeSink.yield(name) }
        }
    }

    func remember(_ instance: String, on node: String) { state.withLock { state in state.locations[instance] = node } }

    /// Whether the host's last reading says it does not answer.
    func isDown(_ host: EngineHost) -> Bool {
        state.withLock { state in state.health[host.node.name]?.answers == false }
    }

    /// The host an instance's container is on: where it was last seen, else whichever
    /// answering host has it (all asked at once, each within `hostDeadline`: an unanswering
    /// host's calls would otherwise wait out the HTTP client's retries).
    func host(of instance: String) async -> EngineHost? {
        if let node = state.withLock({ state in state.locations[instance] }), let host = byNode[node] { return host }
        let deadline = hostDeadline
        let found: EngineHost? = await withTaskGroup(of: EngineHost?.self) { group -> EngineHost? in
            for host in hosts where !isDown(host) {
                group.addTask {
                    if host.hasStartFailure(instance) { return host }
                    let containers = try? await withDeadline(deadline) { try await host.containers(of: instance) }
                    return containers?.isEmpty == false ? host : nil
                }
            }
            for await candidate in group {
                if let candidate {
                    group.cancelAll()
                    return candidate
                }
            }
            return nil
        }
        if let found { remember(instance, on: found.node.name) }
        return found
    }

    // MARK: ComputeDriver

    public func nodes() async throws -> [ClusterNode] {
        let now = Date()
        // While every host's event stream is followed, the streams keep the readings (up when
        // connected, down when broken) and only a host never read is pinged; otherwise a
        // reading older than `healthTTL` is taken again. Never in the way of a create for long.
        let stale = state.withLock { state in
            hosts.filter { host in
                guard let reading = state.health[host.node.name] else { return true }
                return !state.following && now.timeIntervalSince(reading.checkedAt) > healthTTL
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for host in stale {
                group.addTask { self.record(host.node.name, answers: await host.ping()) }
            }
        }
        let (readings, counts) = state.withLock { state in (state.health, state.gpuCounts) }
        return hosts.map { host in
            let answers = readings[host.node.name]?.answers ?? false
            var node = host.node
            if let counted = counts[node.name] { node.gpuCount = counted.count }
            return ClusterNode(
                node: node,
                cluster: cluster,
                healthy: answers,
                reason: answers
                    ? ""
                    : "EngineUnreachable: the engine of \(host.node.name) at \(host.engine.endpoint.url) "
                        + "does not answer",
                unreachable: !answers
            )
        }
    }

    public func observeAll() async throws -> [String: WorkloadObservation] {
        let deadline = hostDeadline
        let results = await withTaskGroup(of: (EngineHost, [String: WorkloadObservation]?).self) { group in
            for host in hosts {
                group.addTask {
                    let seen = try? await withDeadline(deadline) { try await host.observeAll() }
                    return (host, seen)
                }
            }
            var results: [(EngineHost, [String: WorkloadObservation]?)] = []
            for await result in group { results.append(result) }
            return results
        }
        var merged: [String: WorkloadObservation] = [:]
        let now = Date()
        let counted = state.withLock { state in state.gpuCounts }
        for (host, seen) in results {
            record(host.node.name, answers: seen != nil)
            // The resync counts a host's GPUs again now and then.
            if seen != nil, gpuProbeImage != nil, let last = counted[host.node.name]?.at,
                now.timeIntervalSince(last) > gpuProbeInterval
            {
                probeSink.yield(host.node.name)
            }
            for (name, observation) in seen ?? [:] {
                merged[name] = observation
                remember(name, on: host.node.name)
            }
        }
        return merged
    }

    public func observe(instanceName: String) async throws -> WorkloadObservation? {
        guard let host = await host(of: instanceName) else { return nil }
        // Known down and still not answering: unseen, at once.
        if isDown(host), await !host.ping(timeout: .seconds(1)) { return nil }
        do {
            let seen = try await withDeadline(hostDeadline) { try await host.observe(instanceName: instanceName) }
            record(host.node.name, answers: true)
            return seen
        } catch {
            // A host that does not answer: the workload is unseen (nil), and the node's health
            // says why, so the planner keeps the instance and shows the reason.
            let answers = await host.ping()
            record(host.node.name, answers: answers)
            if answers { throw error }
            return nil
        }
    }

    /// What every host's event stream says, as one stream of names (`run()` follows them).
    public func changes() -> AsyncStream<String> { changeStream }

    /// Follows every host's event stream, each on its own, and counts GPUs when asked, as
    /// children, until cancelled.
    public func run() async {
        state.withLock { state in state.following = true }
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                for host in self.hosts {
                    group.addTask {
                        await host.follow(self.changeSink) { up in self.record(host.node.name, answers: up) }
                    }
                }
                if self.gpuProbeImage != nil {
                    // Every host's GPUs counted at start, then whenever asked (a host back, a resync).
                    for host in self.hosts { self.probeSink.yield(host.node.name) }
                    group.addTask {
                        for await node in self.probeRequests {
                            if let host = self.byNode[node] { await self.countGPUs(host) }
                        }
                    }
                }
                for await job in self.jobs { group.addTask { await job() } }
            }
        } onCancel: {
            self.probeSink.finish()
            self.jobSink.finish()
        }
        state.withLock { state in state.following = false }
        changeSink.finish()
    }

    /// Counts a host's GPUs with the probe image; a failed count keeps the last one (or the
    /// catalog's).
    func countGPUs(_ host: EngineHost) async {
        guard let image = gpuProbeImage, let count = await host.probeGPUs(image: image) else { return }
        state.withLock { state in state.gpuCounts[host.node.name] = (count, Date()) }
    }

    public func start(_ spec: WorkloadSpec) async throws {
        guard let host = byNode[spec.node] else {
            throw DriverError("node \(spec.node) is not in cluster \(cluster)", kind: .invalidSpec)
        }
        // Placed on another host than its container's: the workload moves (its old container
        // goes; a host-local volume does not follow, which is why power_on stays put).
        if let previous = await self.host(of: spec.instanceName), previous !== host {
            try await previous.discard(instanceName: spec.instanceName)
        }
        remember(spec.instanceName, on: host.node.name)
        try await host.start(spec)
    }

    public func stop(instanceName: String, gracePeriodSeconds: Int) async throws {
        guard let host = await host(of: instanceName) else { return }
        try await host.stop(instanceName: instanceName, gracePeriodSeconds: gracePeriodSeconds)
    }

    public func commit(instanceName: String, imageReference: String) async throws -> Int64 {
        guard let host = await host(of: instanceName) else {
            throw DriverError("no container of \(instanceName) to commit", kind: .notFound)
        }
        return try await host.commit(instanceName: instanceName, imageReference: imageReference)
    }

    public func discard(instanceName: String) async throws {
        guard let host = await host(of: instanceName) else { return }
        try await host.discard(instanceName: instanceName)
    }

    public func destroy(instanceName: String, volumeName: String) async throws {
        // The volume may outlive its container: without a known host, every host is asked.
        let targets = await host(of: instanceName).map { [$0] } ?? hosts
        try await withThrowingTaskGroup(of: Void.self) { group in
            for host in targets {
                group.addTask { try await host.destroy(instanceName: instanceName, volumeName: volumeName) }
            }
            try await group.waitForAll()
        }
        state.withLock { state in _ = state.locations.removeValue(forKey: instanceName) }
    }

    public func removeImage(reference: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for host in hosts { group.addTask { try await host.removeImage(reference: reference) } }
            try await group.waitForAll()
        }
    }

    public func exec(
        instanceName: String,
        _ request: ExecRequest,
        input: AsyncStream<ExecInput>,
        output: @escaping @Sendable (ExecOutput) async -> Void
    ) async throws -> Int32 {
        guard let host = await host(of: instanceName) else {
            throw DriverError("\(instanceName) has no container", kind: .notFound)
        }
        return try await host.exec(instanceName: instanceName, request, input: input, output: output)
    }

    public func logs(
        instanceName: String,
        tail: Int,
        follow: Bool,
        output: @escaping @Sendable (Data) async -> Void
    ) async throws -> Bool {
        guard let host = await host(of: instanceName) else { return false }
        return try await host.logs(instanceName: instanceName, tail: tail, follow: follow, output: output)
    }

    public func metrics(instanceName: String) async throws -> WorkloadMetrics? {
        guard let host = await host(of: instanceName) else { return nil }
        return try await host.metrics(instanceName: instanceName, now: Date())
    }

    public func endpoint(instanceName: String, port: Int) async throws -> WorkloadEndpoint? {
        guard let host = await host(of: instanceName) else { return nil }
        return try await host.endpoint(instanceName: instanceName, port: port)
    }
}
