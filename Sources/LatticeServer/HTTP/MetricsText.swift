import Foundation
import LatticeDomain

/// `/metrics` in the Prometheus text format: instances per status and free GPUs per SKU,
/// computed from the store at scrape time.
enum MetricsText {
    static func render(api: LatticeAPI) async throws -> String {
        let instances = try await api.store.allInstances()
        var byStatus: [InstanceStatus: Int] = [:]
        for instance in instances { byStatus[instance.status, default: 0] += 1 }
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
