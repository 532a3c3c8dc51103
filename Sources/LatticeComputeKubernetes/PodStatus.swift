import Foundation
import LatticeDomain

/// The parts of a Pod's status the driver reads.
public struct PodStatus: Decodable, Sendable, Equatable {
    public struct Condition: Decodable, Sendable, Equatable {
        public var type: String
        public var status: String
        public var reason: String?
        public var message: String?
    }
    public struct ContainerState: Decodable, Sendable, Equatable {
        public struct Waiting: Decodable, Sendable, Equatable {
            public var reason: String?
            public var message: String?
        }
        public struct Terminated: Decodable, Sendable, Equatable {
            public var reason: String?
            public var message: String?
            public var exitCode: Int?
        }
        public var waiting: Waiting?
        public var terminated: Terminated?
        public var running: [String: String]?
    }
    public struct ContainerStatus: Decodable, Sendable, Equatable {
        public var state: ContainerState?
        public var lastState: ContainerState?
        public var ready: Bool?
    }
    public var phase: String?
    public var podIP: String?
    public var conditions: [Condition]?
    public var containerStatuses: [ContainerStatus]?
    public var reason: String?
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
