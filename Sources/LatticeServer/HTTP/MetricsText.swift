import Foundation
import LatticeDomain

/// `/metrics` in the Prometheus text format: instances per status (one grouped count over
/// an indexed column, no record decoded) and free GPUs per SKU.
enum MetricsText {
    static func render(api: LatticeAPI) async throws -> String {
        let byStatus = try await api.store.instanceCounts()
        var lines = [
            "# HELP lattice_instances Instances by lifecycle status.",
            "# TYPE lattice_instances gauge",
        ]
        for status in InstanceStatus.allCases {
            lines.append("lattice_instances{status=\"\(status.rawValue)\"} \(byStatus[status] ?? 0)")
        }
        lines.append("# HELP lattice_sku_remaining_gpus Free GPUs of each SKU's model in its region.")
        lines.append("# TYPE lattice_sku_remaining_gpus gauge")
        for sku in try await api.gpuSkus(regionID: nil) {
            lines.append(
                "lattice_sku_remaining_gpus{sku=\"\(sku.skusID)\",model=\"\(sku.gpuProduct)\"} \(sku.remainGPUCount)"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
