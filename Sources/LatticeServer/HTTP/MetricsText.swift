import Foundation
import LatticeDomain

/// `/metrics` in the Prometheus text format: the recorded counters and histograms, and the
/// gauges read now (instances per status from one grouped count, GPUs per cluster and
/// model from the fleet's nodes and the allocations, free GPUs per SKU).
enum MetricsText {
    static func render(api: LatticeAPI, metrics: ServerMetrics) async throws -> String {
        let byStatus = try await api.store.instanceCounts()
        let nodes = await api.fleet.nodes()
        // The same node list, less those drained or unhealthy (one fleet read, not two).
        let drained = Set(try await api.store.drainedNodes().map(\.node))
        let placeable = Set(NodeHealth.placeable(nodes, drained: drained).map(\.node.name))
        let usage = try await api.store.nodeUsage()
        var gpus: [String: ServerMetrics.GPUCount] = [:]
        for node in nodes where node.node.gpuCount > 0 {
            let key = node.cluster + "\u{0}" + node.node.gpuModel
            var count =
                gpus[key] ?? ServerMetrics.GPUCount(cluster: node.cluster, model: node.node.gpuModel, free: 0, used: 0)
            let used = min(usage[node.node.name]?.gpuIndices.count ?? 0, node.node.gpuCount)
            count.used += used
            // A node that is drained or does not answer has nothing free to rent.
            if placeable.contains(node.node.name) { count.free += node.node.gpuCount - used }
            gpus[key] = count
        }
        let skus = try await api.gpuSkus(regionID: nil).map {
            (sku: $0.skusID, model: $0.gpuProduct, $0.remainGPUCount)
        }
        return metrics.render(
            instances: byStatus,
            gpus: gpus.values.sorted { ($0.cluster, $0.model) < ($1.cluster, $1.model) },
            skuRemaining: skus
        )
    }
}
