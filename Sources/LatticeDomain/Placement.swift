import Foundation

/// A node as placement sees it: its capacity, what is already reserved on it, and whether
/// the driver reports it healthy.
public struct NodeCapacity: Sendable, Equatable {
    public var node: Node
    public var cluster: String
    public var healthy: Bool
    public var usedGPUIndices: Set<Int>
    public var usedCPUCores: Int
    public var usedMemoryGiB: Int

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

    public var freeGPUCount: Int { healthy ? max(0, node.gpuCount - usedGPUIndices.count) : 0 }
}

/// What an instance needs from one node.
public struct PlacementRequest: Sendable, Equatable {
    public var cluster: String
    public var gpuModel: String
    public var gpuCount: Int
    public var cpuCores: Int
    public var memoryGiB: Int
    /// Only this node will do (the node a host-local data volume lives on).
    public var node: String?

    public init(cluster: String, gpuModel: String, gpuCount: Int, cpuCores: Int, memoryGiB: Int, node: String? = nil) {
        self.cluster = cluster
        self.gpuModel = gpuModel
        self.gpuCount = gpuCount
        self.cpuCores = cpuCores
        self.memoryGiB = memoryGiB
        self.node = node
    }

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
/// new one gets the lowest free port. Both stores ask this rule; they differ only in how
/// they know which ports are taken.
public enum SSHPortRule {
    /// The lowest port of `range`, at or above `from` (no port below it is free), that
    /// `isTaken` does not claim; nil when there is none.
    public static func lowestFree(
        in range: ClosedRange<Int>,
        from: Int,
        isTaken: (Int) throws -> Bool
    ) rethrows -> Int? {
        var port = max(range.lowerBound, from)
        while port <= range.upperBound {
            if try !isTaken(port) { return port }
            port += 1
        }
        return nil
    }

    /// The answer when every port of `range` is held.
    public static func noneFree(in range: ClosedRange<Int>) -> LatticeError {
        .insufficientCapacity("no free SSH port left in \(range.lowerBound)-\(range.upperBound)")
    }
}
