import Foundation

/// A node an operator drained: no new placements until undrained; what runs there runs on.
public struct NodeDrain: Sendable, Equatable {
    public var node: String
    public var since: Date

    public init(node: String, since: Date) {
        self.node = node
        self.since = since
    }
}

/// How a node looks to an operator (`GET /admin/nodes`) and to placement.
public enum NodeHealth: String, Sendable, Equatable, Codable {
    case healthy, unhealthy, draining

    /// A drain wins over what the driver says: the operator asked for no new work there.
    public static func of(_ node: ClusterNode, drainedSince: String?) -> (NodeHealth, String) {
        if let drainedSince { return (.draining, "drained since \(drainedSince)") }
        return node.healthy
            ? (.healthy, "") : (.unhealthy, node.reason.isEmpty ? "the node does not answer" : node.reason)
    }

    /// The nodes as placement must see them: drained ones take no new work.
    public static func placeable(_ nodes: [ClusterNode], drained: Set<String>) -> [ClusterNode] {
        guard !drained.isEmpty else { return nodes }
        return nodes.map { node in
            guard drained.contains(node.node.name) else { return node }
            var closed = node
            closed.healthy = false
            closed.reason = "draining"
            return closed
        }
    }
}

/// One node in `GET /admin/nodes`.
public struct AdminNodeWire: Codable, Sendable, Equatable {
    public var name: String
    public var cluster: String
    public var gpuModel: String
    public var gpuTotal: Int
    public var gpuFree: Int
    public var health: String
    public var reason: String

    public init(
        name: String,
        cluster: String,
        gpuModel: String,
        gpuTotal: Int,
        gpuFree: Int,
        health: String,
        reason: String
    ) {
        self.name = name
        self.cluster = cluster
        self.gpuModel = gpuModel
        self.gpuTotal = gpuTotal
        self.gpuFree = gpuFree
        self.health = health
        self.reason = reason
    }
}
