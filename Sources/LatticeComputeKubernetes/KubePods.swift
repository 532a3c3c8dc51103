import Foundation
import LatticeCompute
import LatticeDomain
import Synchronization

/// A Pod as the driver reads it.
public struct PodObject: KubeCached {
    /// Where the pod is (or is to be) bound.
    public struct Spec: Decodable, Sendable {
        /// Set by the scheduler once the pod is bound.
        public var nodeName: String?
        /// How an older Lattice pinned pods (`kubernetes.io/hostname`).
        public var nodeSelector: [String: String]?
        /// How Lattice pins pods now (by node name).
        public var affinity: Affinity?
    }
    /// The part of `spec.affinity` that pins a pod to a node by name.
    public struct Affinity: Decodable, Sendable {
        /// `nodeAffinity`: only its required part pins.
        public struct NodeAffinity: Decodable, Sendable {
            /// The terms the scheduler must satisfy.
            public var requiredDuringSchedulingIgnoredDuringExecution: NodeSelector?
        }
        /// Terms, any of which may hold.
        public struct NodeSelector: Decodable, Sendable {
            /// The terms.
            public var nodeSelectorTerms: [Term]?
        }
        /// One term: requirements on the node object's fields, all of which must hold.
        public struct Term: Decodable, Sendable {
            /// The field requirements (`metadata.name In [...]`).
            public var matchFields: [Requirement]?
        }
        /// `key operator values`.
        public struct Requirement: Decodable, Sendable {
            /// The field, `metadata.name` for a pin.
            public var key: String
            /// `In` for a pin.
            public var `operator`: String
            /// The node names.
            public var values: [String]?
        }
        /// The node affinity, when the pod has one.
        public var nodeAffinity: NodeAffinity?

        /// The one node a `metadata.name In [node]` term names.
        public var pinnedNode: String? {
            let terms = nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []
            let fields: [Requirement] = terms.flatMap { $0.matchFields ?? [] }
            let byName = fields.filter { $0.key == "metadata.name" && $0.operator == "In" }
            guard byName.count == 1, let values = byName[0].values, values.count == 1 else { return nil }
            return values[0]
        }
    }
    /// Name, labels, version and deletion mark.
    public var metadata: ObjectMeta
    /// Its node, bound or pinned.
    public var spec: Spec?
    /// What the kubelet and scheduler say of it.
    public var status: PodStatus?

    /// The node the pod runs on, else the one it is pinned to (by name; by the hostname
    /// label on pods an older Lattice made).
    public var node: String {
        spec?.nodeName ?? spec?.affinity?.pinnedNode ?? spec?.nodeSelector?["kubernetes.io/hostname"] ?? ""
    }
    /// Going: deleted, within its grace period.
    public var deleting: Bool { metadata.deletionTimestamp != nil }
    /// The instance it runs (its `lattice.dev/instance` label).
    public var instance: String? { metadata.labels?[KubeObjects.instanceLabel] }
}

/// Which pods the driver deleted itself, and which instances lost theirs to someone else
/// (`kubectl delete pod`, an eviction): those are `WorkloadLost`, not stopped.
final class PodLosses: Sendable {
    private struct State {
        var deletedByUs: Set<String> = []
        var lost: [String: String] = [:]
    }

    private let state = Mutex(State())

    func deleting(_ pod: String) { state.withLock { state in _ = state.deletedByUs.insert(pod) } }
    func reason(_ instance: String) -> String? { state.withLock { state in state.lost[instance] } }
    func clear(_ instance: String) { state.withLock { state in _ = state.lost.removeValue(forKey: instance) } }

    /// A pod changed: one that is going, and not by the driver's hand, is a loss.
    func changed(old: PodObject?, new: PodObject?) {
        guard let pod = new ?? old, let instance = pod.instance else { return }
        // Only the moment a live pod starts to go counts (not its later events).
        let starts = old.map { !$0.deleting } ?? false
        let going = new == nil || new?.deleting == true
        guard going else { return }
        state.withLock { state in
            if state.deletedByUs.contains(pod.metadata.name) {
                if new == nil { state.deletedByUs.remove(pod.metadata.name) }
            } else if starts, state.lost[instance] == nil {
                state.lost[instance] = "WorkloadLost: pod \(pod.metadata.name) was deleted outside Lattice"
            }
        }
    }
}

/// Any object of which only the metadata matters (the instances' Secrets).
public struct MetadataOnly: KubeCached {
    /// Name, labels, version and deletion mark.
    public var metadata: ObjectMeta
}
