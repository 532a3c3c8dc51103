import Foundation
import LatticeDomain

/// The parts of a Pod's status the driver reads.
public struct PodStatus: Decodable, Sendable, Equatable {
    /// One of the pod's conditions (`PodScheduled`, `Ready`, ...).
    public struct Condition: Decodable, Sendable, Equatable {
        /// Which condition.
        public var type: String
        /// `True`, `False` or `Unknown`.
        public var status: String
        /// A word for why (`Unschedulable`).
        public var reason: String?
        /// The scheduler's or kubelet's own words.
        public var message: String?
    }
    /// What a container is doing: waiting, running or ended.
    public struct ContainerState: Decodable, Sendable, Equatable {
        /// Not running yet (`ErrImagePull`, `ContainerCreating`, ...).
        public struct Waiting: Decodable, Sendable, Equatable {
            /// Why it waits.
            public var reason: String?
            /// The kubelet's words.
            public var message: String?
        }
        /// Ended (`OOMKilled`, `Error`, `Completed`).
        public struct Terminated: Decodable, Sendable, Equatable {
            /// How it ended.
            public var reason: String?
            /// Its termination message (the committer's size or error).
            public var message: String?
            /// Its exit status.
            public var exitCode: Int?
        }
        /// Set while waiting.
        public var waiting: Waiting?
        /// Set once ended.
        public var terminated: Terminated?
        /// Set while running (`startedAt`).
        public var running: [String: String]?
    }
    /// One container's state, now and before its last restart.
    public struct ContainerStatus: Decodable, Sendable, Equatable {
        /// Now.
        public var state: ContainerState?
        /// Before the last restart (an OOM kill shows here after the restart).
        public var lastState: ContainerState?
        /// Whether it passes its readiness check.
        public var ready: Bool?
    }
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    public var phase: String?
    /// The pod's address on the pod network, once it runs.
    public var podIP: String?
    /// The pod's conditions.
    public var conditions: [Condition]?
    /// Its containers' states.
    public var containerStatuses: [ContainerStatus]?
    /// Why the pod failed or was evicted (`Evicted`, `NodeLost`).
    public var reason: String?
    /// The kubelet's words about it.
    public var message: String?

    /// What the planner sees of a pod: Kubernetes' words become Lattice's statuses and
    /// reasons (`ImagePullFailed: …`, the scheduler's message, `OOMKilled: …`).
    public func phase(deleting: Bool, nodeLost: Bool) -> WorkloadObservation.Phase {
        if nodeLost { return .failed(reason: "WorkloadLost: the pod's node left the cluster") }
        if deleting { return .stopping }
        let containers = containerStatuses ?? []
        for container in containers {
            if let waiting = container.state?.waiting,
                ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"].contains(waiting.reason ?? "")
            {
                return .failed(reason: "ImagePullFailed: \(waiting.message ?? waiting.reason ?? "")")
            }
            for state in [container.state, container.lastState] {
                if let ended = state?.terminated, ended.reason == "OOMKilled" {
                    return .failed(reason: "OOMKilled: the workload ran out of memory and was killed")
                }
            }
        }
        if let unschedulable = conditions?.first(where: {
            $0.type == "PodScheduled" && $0.status == "False" && $0.reason == "Unschedulable"
        }) {
            return .failed(reason: "Unschedulable: \(unschedulable.message ?? "the scheduler found no room")")
        }
        switch phase ?? "Pending" {
        case "Running":
            return containers.allSatisfy { $0.ready ?? false } ? .running : .starting
        case "Succeeded":
            return .stopped
        case "Failed":
            return .failed(reason: "PodFailed: \([reason, message].compactMap { $0 }.joined(separator: ": "))")
        default:
            return .starting
        }
    }
}
