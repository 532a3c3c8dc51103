import Foundation

/// A node as placement sees it: its capacity, what is already reserved on it, and whether
/// the driver reports it healthy.
public struct NodeCapacity: Sendable, Equatable {
    /// The node and its capacity.
    public var node: Node
    /// The cluster it belongs to.
    public var cluster: String
    /// Whether the driver reports it healthy (an unhealthy node takes no work).
    public var healthy: Bool
    /// The GPU indices reserved on it.
    public var usedGPUIndices: Set<Int>
    /// The CPU cores reserved on it.
    public var usedCPUCores: Int
    /// The memory reserved on it, in GiB.
    public var usedMemoryGiB: Int

    /// A node with what is reserved on it (nothing, by default).
    public init(
        node: Node,
        cluster: String,
        healthy: Bool = true,
        usedGPUIndices: Set<Int> = [],
        usedCPUCores: Int = 0,
        usedMemoryGiB: Int = 0
    ) {
        self.node = node
        self.cluster = cluster
        self.healthy = healthy
        self.usedGPUIndices = usedGPUIndices
        self.usedCPUCores = usedCPUCores
        self.usedMemoryGiB = usedMemoryGiB
    }

    /// GPUs still free (none on an unhealthy node).
    public var freeGPUCount: Int { healthy ? max(0, node.gpuCount - usedGPUIndices.count) : 0 }
}

/// What an instance needs from one node.
public struct PlacementRequest: Sendable, Equatable {
    /// The cluster to place in.
    public var cluster: String
    /// The GPU model asked for (`Node.gpuModel`).
    public var gpuModel: String
    /// How many GPUs, all on one node.
    public var gpuCount: Int
    /// CPU cores to reserve beside them.
    public var cpuCores: Int
    /// Memory to reserve, in GiB.
    public var memoryGiB: Int
    /// Only this node will do (the node a host-local data volume lives on).
    public var node: String?

    /// A request for `gpuCount` GPUs of `gpuModel` with the CPU and memory, on `node` only if given.
    public init(cluster: String, gpuModel: String, gpuCount: Int, cpuCores: Int, memoryGiB: Int, node: String? = nil) {
        self.cluster = cluster
        self.gpuModel = gpuModel
        self.gpuCount = gpuCount
        self.cpuCores = cpuCores
        self.memoryGiB = memoryGiB
        self.node = node
    }

    /// A request for an instance's resources.
    public init(cluster: String, resources: InstanceResources, node: String? = nil) {
        self.init(
            cluster: cluster,
            gpuModel: resources.gpuModel,
            gpuCount: resources.gpuCount,
            cpuCores: resources.cpuCores,
            memoryGiB: resources.memoryGiB,
            node: node
        )
    }

    /// Where power_on of `instance` must place: its data volume's node, if it is host-local.
    public init(powerOn instance: Instance) {
        self.init(cluster: instance.cluster, resources: instance.resources, node: instance.volume.node)
    }

    /// Why the request found no room, for the `409 InsufficientCapacity` both stores answer.
    public func refusal(freeInCluster free: Int) -> String {
        if let node {
            return "the instance's data volume is on node \(node), which cannot take it now: it is unhealthy, "
                + "draining, or lacks \(gpuCount) free \(gpuModel) GPU(s) with \(cpuCores) CPU cores and "
                + "\(memoryGiB)Gi memory; try again when it can (its data stays there)"
        }
        return "no node in cluster \(cluster) has \(gpuCount) free \(gpuModel) GPU(s) with "
            + "\(cpuCores) CPU cores and \(memoryGiB)Gi memory "
            + "(\(free) \(gpuModel) GPU(s) free in all)"
    }
}

/// Chooses a node and GPU indices for a request. Pure: the store calls it inside the
/// transaction that writes the reservation, so its input is always current.
public enum PlacementPolicy {
    /// Best fit: the healthy node of the right model with the fewest free GPUs that still
    /// fit, ties broken by name, so large holes stay free for multi-GPU SKUs. Indices are
    /// the lowest free ones.
    public static func place(_ request: PlacementRequest, on nodes: [NodeCapacity]) -> GPUPlacement? {
        let candidates = nodes.filter { capacity in
            capacity.cluster == request.cluster
                && (request.node == nil || capacity.node.name == request.node)
                && capacity.healthy
                && capacity.node.gpuModel == request.gpuModel
                && capacity.freeGPUCount >= request.gpuCount
                && capacity.node.cpuCores - capacity.usedCPUCores >= request.cpuCores
                && capacity.node.memoryGiB - capacity.usedMemoryGiB >= request.memoryGiB
        }
        guard
            let best = candidates.min(by: { a, b in
                a.freeGPUCount != b.freeGPUCount ? a.freeGPUCount < b.freeGPUCount : a.node.name < b.node.name
            })
        else { return nil }
        let indices = (0..<best.node.gpuCount).filter { !best.usedGPUIndices.contains($0) }.prefix(request.gpuCount)
        return GPUPlacement(node: best.node.name, gpuIndices: Array(indices))
    }

    /// Free GPUs of a model in a set of nodes (the SKU list's `remainGPUCount`).
    public static func freeGPUs(model: String, on nodes: [NodeCapacity]) -> Int {
        nodes.filter { $0.node.gpuModel == model }.reduce(0) { $0 + $1.freeGPUCount }
    }
}

/// SSH ports: every instance that holds GPUs holds one port of the configured range, and a
/// new one gets the lowest free port. A port given back stays in quarantine for a day: in
/// that time only the namespace that gave it back gets it again, so a `known_hosts` entry
/// or a saved `ssh -p` line never leads into another tenant's instance, unless the range
/// has nothing else left (then the port given back longest ago goes first). Both stores ask
/// this rule; they differ only in how they know which ports are taken and given back.
public enum SSHPortRule {
    /// How long a port given back is kept from other namespaces.
    public static let quarantine: TimeInterval = 86_400

    /// The scan for `namespace` over `range` at or above `from` (no port below it is
    /// untaken): its `port` is nil when every port is taken.
    public static func choose(
        in range: ClosedRange<Int>,
        from: Int,
        for namespace: String,
        now: Date,
        isTaken: (Int) -> Bool,
        release: (Int) -> PortRelease?
    ) -> Choice {
        var choice = Choice(namespace: namespace, now: now)
        var port = max(range.lowerBound, from)
        while port <= range.upperBound {
            if choice.consider(port, taken: isTaken(port), release: release(port)) { break }
            port += 1
        }
        return choice
    }

    /// A scan over ports in rising order, which may come in windows (the PostgreSQL store
    /// reads the taken ports a window at a time).
    public struct Choice: Sendable {
        /// The namespace the port is for (its own quarantined ports are free to it).
        public let namespace: String
        /// The time quarantines are judged at.
        public let now: Date
        /// The port that is free for this namespace, once seen.
        public private(set) var free: Int?
        /// The lowest port no instance holds, quarantined or not.
        public private(set) var lowestUntaken: Int?
        /// The quarantined port given back longest ago, for when nothing else is left.
        private var fallback: PortRelease?
        private var fallbackPort: Int?

        /// A scan that has seen nothing yet.
        public init(namespace: String, now: Date) {
            self.namespace = namespace
            self.now = now
        }

        /// Looks at `port`; true once the answer is found (the scan may stop).
        public mutating func consider(_ port: Int, taken: Bool, release: PortRelease?) -> Bool {
            guard free == nil else { return true }
            guard !taken else { return false }
            if lowestUntaken == nil { lowestUntaken = port }
            guard let release, release.holds(against: namespace, at: now) else {
                free = port
                return true
            }
            if fallback.map({ release.at < $0.at }) ?? true {
                fallback = release
                fallbackPort = port
            }
            return false
        }

        /// The answer: the free port, else the quarantined one given back longest ago.
        public var port: Int? { free ?? fallbackPort }
    }

    /// The answer when every port of `range` is held.
    public static func noneFree(in range: ClosedRange<Int>) -> LatticeError {
        .insufficientCapacity("no free SSH port left in \(range.lowerBound)-\(range.upperBound)")
    }
}

/// A port given back: by which namespace and when.
public struct PortRelease: Sendable, Equatable {
    /// The namespace that gave it back.
    public var namespace: String
    /// When it was given back.
    public var at: Date

    /// A port given back by `namespace` at `at`.
    public init(namespace: String, at: Date) {
        self.namespace = namespace
        self.at = at
    }

    /// Whether the port is still kept from `other` at `now`.
    public func holds(against other: String, at now: Date) -> Bool {
        other != namespace && now < at.addingTimeInterval(SSHPortRule.quarantine)
    }

    /// The port was given back when `previous` held it and `next` (nil once purged) does not.
    public static func given(
        from previous: Instance,
        to next: Instance?,
        at: Date
    ) -> (port: Int, release: PortRelease)? {
        let port = previous.access.sshPort
        guard port > 0, next?.access.sshPort != port else { return nil }
        return (port, PortRelease(namespace: previous.namespace, at: at))
    }
}
