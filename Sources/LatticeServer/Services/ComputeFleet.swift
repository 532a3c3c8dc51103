import Foundation
import LatticeCompute
import LatticeDomain
import Logging

/// The compute drivers of every cluster in the catalog, keyed by cluster name.
public struct ComputeFleet: Sendable {
    public let drivers: [String: any ComputeDriver]

    public init(drivers: [String: any ComputeDriver]) { self.drivers = drivers }

    public func driver(for cluster: String) -> (any ComputeDriver)? { drivers[cluster] }

    /// Every driver takes in what another replica did (this one now leads).
    func adoptAll(logger: Logger) async {
        for (cluster, driver) in drivers {
            do {
                try await driver.adopt()
            } catch {
                logger.warning(
                    "cannot adopt the cluster's state",
                    metadata: ["cluster": "\(cluster)", "error": "\(error)"]
                )
            }
        }
    }

    /// Nodes of the given clusters (all when nil). A driver that does not answer
    /// contributes no nodes, so its GPUs count as unavailable rather than failing the call.
    public func nodes(clusters: [String]? = nil) async -> [ClusterNode] {
        // One cluster: the driver's own array, so the store can tell an unchanged list at once.
        if let clusters, clusters.count == 1 {
            return (try? await drivers[clusters[0]]?.nodes()) ?? []
        }
        var result: [ClusterNode] = []
        for name in (clusters ?? Array(drivers.keys)).sorted() {
            guard let driver = drivers[name], let nodes = try? await driver.nodes() else { continue }
            result.append(contentsOf: nodes)
        }
        return result
    }
}
