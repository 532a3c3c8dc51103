import Foundation
import LatticeDomain

extension LatticeAPI {
    // MARK: Nodes

    /// The clusters' nodes as placement must see them: what the drivers report, with the
    /// drained ones closed to new work.
    func placeableNodes(clusters: [String]? = nil, drained: [NodeDrain]? = nil) async throws -> [ClusterNode] {
        let nodes = await fleet.nodes(clusters: clusters)
        let drained = try await { if let drained { drained } else { try await store.drainedNodes() } }()
        return NodeHealth.placeable(nodes, drained: Set(drained.map(\.node)))
    }

    /// `GET /admin/nodes`: every node with its cluster, GPU model, GPUs total and free, and
    /// health (`healthy`, `unhealthy` or `draining`, with a reason).
    public func adminNodes(principal: Principal) async throws -> [AdminNodeWire] {
        try requireAdmin(principal)
        let nodes = await fleet.nodes()
        let drained = Dictionary(try await store.drainedNodes().map { ($0.node, $0.since) }) { first, _ in first }
        let usage = try await store.nodeUsage()
        return nodes.sorted { ($0.cluster, $0.node.name) < ($1.cluster, $1.node.name) }.map { node in
            let (health, reason) = NodeHealth.of(node, drainedSince: drained[node.node.name].map(wire.time.format))
            let used = usage[node.node.name]?.gpuIndices.count ?? 0
            return AdminNodeWire(
                name: node.node.name,
                cluster: node.cluster,
                gpuModel: node.node.gpuModel,
                gpuTotal: node.node.gpuCount,
                gpuFree: max(0, node.node.gpuCount - used),
                health: health.rawValue,
                reason: reason
            )
        }
    }

    /// `POST /admin/nodes/{node}/drain` and `.../undrain`: stop or resume placing on a node.
    /// Instances on it keep running; a drain survives restarts and holds on every replica.
    public func setDrained(principal: Principal, node: String, _ drained: Bool) async throws -> AdminNodeWire {
        try requireAdmin(principal)
        // Catalog nodes, and those a cluster reports itself (Kubernetes).
        var known = catalog.clusters.contains { $0.nodes.contains { $0.name == node } }
        if !known { known = await fleet.nodes().contains { $0.node.name == node } }
        guard known else { throw LatticeError.notFound("node '\(node.prefix(100))'") }
        try await store.setDrained(node: node, drained, at: clock.now())
        guard let answer = try await adminNodes(principal: principal).first(where: { $0.name == node }) else {
            throw LatticeError.notFound("node '\(node.prefix(100))'")
        }
        return answer
    }
}
