import Foundation

/// Free capacity of every node, kept in memory and ordered for best fit, so placing one
/// instance costs O(log n) instead of a look at every node and every reservation.
///
/// It answers exactly what `PlacementPolicy.place` answers over the same nodes (the
/// healthy node of the model with the fewest free GPUs that still fit, ties by name,
/// lowest free indices). It is built from the store's reservations and changed only by
/// committed writes; the store's `(node, gpu_index)` key stays the guard against any bug.
public struct CapacityIndex: Sendable, Equatable {
    /// Nodes by name, with what is reserved on them.
    public private(set) var nodes: [String: NodeCapacity] = [:]
    /// For each cluster and GPU model: the node names of each free-GPU count, sorted.
    private var buckets: [Shelf: [Int: [String]]] = [:]

    private struct Shelf: Hashable, Sendable {
        var cluster: String
        var model: String
    }

    public init(nodes: [ClusterNode], usage: [String: NodeUsage]) {
        for node in nodes {
            let used = usage[node.node.name] ?? NodeUsage()
            insert(
                NodeCapacity(
                    node: node.node,
                    cluster: node.cluster,
                    healthy: node.healthy,
                    usedGPUIndices: used.gpuIndices,
                    usedCPUCores: used.cpuCores,
                    usedMemoryGiB: used.memoryGiB
                )
            )
        }
    }

    /// Best fit for `request`, or nil when no node has room.
    public func place(_ request: PlacementRequest) -> GPUPlacement? {
        guard let counts = buckets[Shelf(cluster: request.cluster, model: request.gpuModel)] else { return nil }
        for free in counts.keys.sorted() where free >= request.gpuCount {
            for name in counts[free] ?? [] {
                guard request.node == nil || name == request.node, let capacity = nodes[name], capacity.healthy,
                    capacity.node.cpuCores - capacity.usedCPUCores >= request.cpuCores,
                    capacity.node.memoryGiB - capacity.usedMemoryGiB >= request.memoryGiB
                else { continue }
                let indices = (0..<capacity.node.gpuCount).lazy.filter { !capacity.usedGPUIndices.contains($0) }
                return GPUPlacement(node: name, gpuIndices: Array(indices.prefix(request.gpuCount)))
            }
        }
        return nil
    }

    /// Free GPUs of a model, in one cluster or in all.
    public func freeGPUs(model: String, cluster: String? = nil) -> Int {
        var total = 0
        for (shelf, counts) in buckets where shelf.model == model && (cluster == nil || shelf.cluster == cluster) {
            for (free, names) in counts { total += free * names.count }
        }
        return total
    }

    /// A committed reservation.
    public mutating func reserve(_ placement: GPUPlacement, cpuCores: Int, memoryGiB: Int) {
        update(placement.node) {
            $0.usedGPUIndices.formUnion(placement.gpuIndices)
            $0.usedCPUCores += cpuCores
            $0.usedMemoryGiB += memoryGiB
        }
    }

    /// A committed release.
    public mutating func release(_ placement: GPUPlacement, cpuCores: Int, memoryGiB: Int) {
        update(placement.node) {
            $0.usedGPUIndices.subtract(placement.gpuIndices)
            $0.usedCPUCores -= cpuCores
            $0.usedMemoryGiB -= memoryGiB
        }
    }

    /// What the driver now says about a node (health, and capacity it discovered).
    public mutating func refresh(_ node: ClusterNode) {
        guard nodes[node.node.name] != nil else {
            insert(NodeCapacity(node: node.node, cluster: node.cluster, healthy: node.healthy))
            return
        }
        update(node.node.name) {
            $0.node = node.node
            $0.healthy = node.healthy
        }
    }

    // MARK: Internals

    private mutating func update(_ name: String, _ change: (inout NodeCapacity) -> Void) {
        guard var capacity = nodes[name] else { return }
        remove(capacity)
        change(&capacity)
        insert(capacity)
    }

    private mutating func insert(_ capacity: NodeCapacity) {
        nodes[capacity.node.name] = capacity
        let shelf = Shelf(cluster: capacity.cluster, model: capacity.node.gpuModel)
        let name = capacity.node.name
        let at = buckets[shelf]?[capacity.freeGPUCount].map { Self.insertionPoint(of: name, in: $0) } ?? 0
        // Mutated in place: no copy of a shelf however many nodes it holds.
        buckets[shelf, default: [:]][capacity.freeGPUCount, default: []].insert(name, at: at)
    }

    private mutating func remove(_ capacity: NodeCapacity) {
        let shelf = Shelf(cluster: capacity.cluster, model: capacity.node.gpuModel)
        let free = capacity.freeGPUCount
        nodes[capacity.node.name] = nil
        guard let names = buckets[shelf]?[free] else { return }
        let at = Self.insertionPoint(of: capacity.node.name, in: names)
        guard at < names.count, names[at] == capacity.node.name else { return }
        buckets[shelf]?[free]?.remove(at: at)
        if buckets[shelf]?[free]?.isEmpty == true { buckets[shelf]?[free] = nil }
    }

    private static func insertionPoint(of name: String, in names: [String]) -> Int {
        var low = 0
        var high = names.count
        while low < high {
            let mid = (low + high) / 2
            if names[mid] < name { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
