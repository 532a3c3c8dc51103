import Foundation
import LatticeDomain

/// A cluster's nodes as Lattice places on them: GPUs from `status.allocatable` of the
/// SKU's resource key (default `nvidia.com/gpu`), the model from a label (default
/// `nvidia.com/gpu.product`), CPU and memory from `allocatable`; a node that is not Ready,
/// is cordoned (`spec.unschedulable`) or has a `NoSchedule`/`NoExecute` taint the instance
/// pods do not tolerate takes no new work, and says why.
public struct KubeNodeReader: Sendable {
    /// The node resource that counts GPUs.
    public var gpuResourceKey: String
    /// The node label that names the GPU model.
    public var modelLabel: String
    /// The taint keys instance pods tolerate (`KubeObjects.tolerations`).
    public var tolerated: Set<String>

    /// A reader for one cluster's settings; `tolerated` defaults to the GPU resource key.
    public init(
        gpuResourceKey: String = "nvidia.com/gpu",
        modelLabel: String = "nvidia.com/gpu.product",
        tolerated: Set<String>? = nil
    ) {
        self.gpuResourceKey = gpuResourceKey
        self.modelLabel = modelLabel
        self.tolerated = tolerated ?? [gpuResourceKey]
    }

    /// The fields of a Node object the reader uses.
    public struct NodeObject: KubeCached {
        /// The node's scheduling switches.
        public struct Spec: Decodable, Sendable {
            /// Cordoned.
            public var unschedulable: Bool?
            /// What keeps pods off it unless they tolerate it.
            public var taints: [Taint]?
        }
        /// `key=value:effect`.
        public struct Taint: Decodable, Sendable {
            /// The taint's key, which a toleration names.
            public var key: String
            /// Its value, for the reason only (tolerations here match any value).
            public var value: String?
            /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
            public var effect: String
        }
        /// One of the node's conditions (`Ready` is the one read).
        public struct Condition: Decodable, Sendable {
            /// Which condition.
            public var type: String
            /// `True`, `False` or `Unknown`.
            public var status: String
            /// The kubelet's or node controller's words.
            public var message: String?
        }
        /// What the node reports.
        public struct Status: Decodable, Sendable {
            /// What pods may request on it (GPUs under the resource key, `cpu`, `memory`).
            public var allocatable: [String: String]?
            /// Its conditions.
            public var conditions: [Condition]?
        }
        /// Name and labels (the GPU model's among them).
        public var metadata: ObjectMeta
        /// Cordon and taints.
        public var spec: Spec?
        /// Capacity and health.
        public var status: Status?
    }

    /// The node as placement sees it; nil for a node without GPUs of the key.
    public func clusterNode(_ object: NodeObject, cluster: String) -> ClusterNode? {
        let allocatable = object.status?.allocatable ?? [:]
        guard let gpus = allocatable[gpuResourceKey].flatMap(Int.init), gpus > 0 else { return nil }
        let node = Node(
            name: object.metadata.name,
            gpuModel: object.metadata.labels?[modelLabel] ?? "unknown",
            gpuCount: gpus,
            cpuCores: Self.cores(allocatable["cpu"] ?? "0"),
            memoryGiB: Self.gibibytes(allocatable["memory"] ?? "0")
        )
        let ready = object.status?.conditions?.first { $0.type == "Ready" }
        if object.spec?.unschedulable == true {
            return ClusterNode(node: node, cluster: cluster, healthy: false, reason: "Cordoned: the node is cordoned")
        }
        guard ready?.status == "True" else {
            let why = ready?.message.map { ": \($0)" } ?? ""
            // NotReady may pass (a kubelet restarting): its pods are unseen, not lost.
            return ClusterNode(
                node: node,
                cluster: cluster,
                healthy: false,
                reason: "NodeNotReady\(why)",
                unreachable: true
            )
        }
        // The scheduler would refuse a pod here: a taint it does not tolerate (pressure,
        // a pool kept for other work). PreferNoSchedule only prefers.
        if let taint = object.spec?.taints?.first(where: {
            ($0.effect == "NoSchedule" || $0.effect == "NoExecute") && !tolerated.contains($0.key)
                && $0.key != "node.kubernetes.io/unschedulable"
        }) {
            let value = taint.value.map { "=\($0)" } ?? ""
            let reason =
                "Tainted: the node has the taint \(taint.key)\(value):\(taint.effect), which instance pods do not"
                + " tolerate (kubernetes.tolerations)"
            return ClusterNode(node: node, cluster: cluster, healthy: false, reason: reason)
        }
        return ClusterNode(node: node, cluster: cluster, healthy: true)
    }

    /// Whole cores of a CPU quantity (`8`, `7500m`).
    static func cores(_ quantity: String) -> Int {
        if quantity.hasSuffix("m") { return (Int(quantity.dropLast()) ?? 0) / 1000 }
        return Int(Double(quantity) ?? 0)
    }

    /// Whole GiB of a memory quantity (`1024Gi`, `65843212Ki`, `512Mi`, bytes).
    static func gibibytes(_ quantity: String) -> Int {
        let units: [(String, Double)] = [
            ("Ki", 1024), ("Mi", 1_048_576), ("Gi", 1_073_741_824), ("Ti", 1_099_511_627_776),
            ("k", 1000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000),
        ]
        for (suffix, factor) in units where quantity.hasSuffix(suffix) {
            let number = Double(quantity.dropLast(suffix.count)) ?? 0
            return Int(number * factor / 1_073_741_824)
        }
        return Int((Double(quantity) ?? 0) / 1_073_741_824)
    }
}
