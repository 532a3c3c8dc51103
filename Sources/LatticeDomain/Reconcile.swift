import Foundation

/// What a compute driver last reported for one instance's workload.
public struct WorkloadObservation: Sendable, Equatable, Codable {
    public enum Phase: Sendable, Equatable, Codable {
        case starting, running, stopping, stopped
        case failed(reason: String)
    }
    public var instanceName: String
    public var podName: String
    public var node: String
    public var ip: String
    public var phase: Phase
    /// What a Running instance should say in its `statusReason` (the driver's caveat, such
    /// as a data disk it cannot cap); "" says nothing.
    public var note: String
    /// Which of JupyterLab and Tensorboard the Running workload serves; nil where the
    /// driver cannot tell (the record keeps what it saw last).
    public var apps: WorkloadApps?

    public init(
        instanceName: String,
        podName: String,
        node: String,
        ip: String,
        phase: Phase,
        note: String = "",
        apps: WorkloadApps? = nil
    ) {
        self.instanceName = instanceName
        self.podName = podName
        self.node = node
        self.ip = ip
        self.phase = phase
        self.note = note
        self.apps = apps
    }
}

/// One step the reconciler takes for an instance: at most one driver call, then at most
/// one recorded transition.
public enum ReconcileStep: Sendable, Equatable {
    /// Create the workload if absent and start it (idempotent).
    case start
    /// Stop the workload with the grace period (idempotent).
    case stop(gracePeriodSeconds: Int)
    /// Commit the stopped workload as an image, then record Stopped.
    case commitThenStop(SnapshotRequest)
    /// Remove the workload but keep its data volume (after a failure).
    case discard
    /// Remove the workload and its volume, then forget the instance.
    case destroyThenPurge
    /// Record an observed transition without calling the driver.
    case record(ObservedTransition)
}

/// A status change the reconciler writes from what it observed.
public enum ObservedTransition: Sendable, Equatable {
    /// Running, with the driver's note as the `statusReason` ("" for none) and the apps it saw.
    case running(PodInfo, note: String = "", apps: WorkloadApps? = nil)
    case podMoved(PodInfo)
    /// Releases GPUs.
    case stopped(reason: String)
    /// Releases GPUs.
    case failed(reason: String)
    case saving
    /// The workload's node does not answer: the instance keeps its status and says why.
    case unreachable(reason: String)
}

/// What the resync reads of every instance: enough to tell whether it needs a look,
/// without decoding the whole record.
public struct InstanceSummary: Sendable, Equatable {
    public var name: String
    public var cluster: String
    public var status: InstanceStatus
    public var deleted: Bool

    public init(name: String, cluster: String, status: InstanceStatus, deleted: Bool) {
        self.name = name
        self.cluster = cluster
        self.status = status
        self.deleted = deleted
    }
}

/// Who owns an instance and which version of its record is current: enough to answer
/// from a cache of rendered records without reading the record itself.
public struct InstanceVersion: Sendable, Equatable {
    public var name: String
    public var namespace: String
    public var cluster: String
    public var generation: Int

    public init(name: String, namespace: String, cluster: String, generation: Int) {
        self.name = name
        self.namespace = namespace
        self.cluster = cluster
        self.generation = generation
    }
}

/// The reconciler's brain: a pure function from desired + observed state to the next step.
/// The executor applies it and runs again; every step is idempotent, so a crash between
/// any two steps is repaired by the next pass.
public enum ReconcilePlanner {
    /// Prefix of the reason an instance on an unanswering node shows.
    public static let unreachablePrefix = "NodeUnreachable: "

    /// - Parameters:
    ///   - unreachable: why the instance's node does not answer, when it does not (a host
    ///     that may come back): a workload not seen there is not lost, only unseen.
    ///   - commitsRunning: the driver snapshots a running workload and removes it itself
    ///     (Kubernetes), so a power_off with a snapshot goes to Saving without a stop.
    public static func plan(
        _ instance: Instance,
        observed: WorkloadObservation?,
        unreachable: String? = nil,
        commitsRunning: Bool = false
    ) -> ReconcileStep? {
        if instance.desired.deleted { return .destroyThenPurge }
        if observed == nil, let unreachable {
            guard instance.status == .running else { return nil }
            let reason = unreachablePrefix + unreachable
            return instance.statusReason == reason ? nil : .record(.unreachable(reason: reason))
        }
        switch instance.status {
        case .creating, .starting:
            guard let observed else { return .start }
            switch observed.phase {
            case .starting, .stopping: return nil
            case .stopped: return .start
            case .running: return .record(.running(pod(observed), note: observed.note, apps: observed.apps))
            case .failed(let reason): return .record(.failed(reason: reason))
            }
        case .running:
            guard let observed else {
                return .record(.failed(reason: "WorkloadLost: the workload vanished from its node"))
            }
            switch observed.phase {
            case .running:
                let seen = pod(observed)
                // Back from an unanswering node, or the driver's note or apps changed: the
                // record follows.
                if instance.statusReason != observed.note || (observed.apps != nil && instance.apps != observed.apps) {
                    return .record(.running(seen, note: observed.note, apps: observed.apps))
                }
                return seen == instance.pod ? nil : .record(.podMoved(seen))
            case .starting: return nil
            case .stopping, .stopped: return .record(.failed(reason: "Exited: the workload stopped on its own"))
            case .failed(let reason): return .record(.failed(reason: reason))
            }
        case .stopping:
            guard let observed else { return .record(.stopped(reason: "")) }
            if commitsRunning, instance.desired.snapshot != nil, observed.phase == .running {
                return .record(.saving)
            }
            switch observed.phase {
            case .starting, .running: return .stop(gracePeriodSeconds: instance.desired.gracePeriodSeconds)
            case .stopping: return nil
            case .stopped:
                if instance.desired.snapshot != nil { return .record(.saving) }
                return .record(.stopped(reason: ""))
            case .failed: return .record(.stopped(reason: ""))
            }
        case .saving:
            guard let request = instance.desired.snapshot else { return .record(.stopped(reason: "")) }
            return .commitThenStop(request)
        case .stopped:
            if let observed, observed.phase == .running || observed.phase == .starting {
                return .stop(gracePeriodSeconds: instance.desired.gracePeriodSeconds)
            }
            return nil
        case .failed:
            if let observed, observed.phase != .stopped { return .discard }
            return nil
        case .deleting:
            return .destroyThenPurge
        }
    }

    /// Whether an instance in `status` whose workload is `observed` is at rest, so the
    /// resync need not look at it: the planner has nothing to do for it (a pod that moved
    /// while Running is the one thing this cannot see; the driver's events report it).
    public static func isSettled(_ summary: InstanceSummary, observed: WorkloadObservation.Phase?) -> Bool {
        if summary.deleted { return false }
        switch (summary.status, observed) {
        case (.running, .running?): return true
        case (.stopped, nil), (.stopped, .stopped?), (.stopped, .stopping?), (.stopped, .failed?): return true
        case (.failed, nil), (.failed, .stopped?): return true
        default: return false
        }
    }

    private static func pod(_ observed: WorkloadObservation) -> PodInfo {
        PodInfo(name: observed.podName, node: observed.node, ip: observed.ip)
    }

    /// Applies an observed transition to the instance record. GPU release is signalled by
    /// `placement` becoming nil; the store frees the rows in the same transaction.
    public static func apply(_ transition: ObservedTransition, to instance: Instance, now: Date) -> Instance {
        var next = instance
        switch transition {
        case .running(let pod, let note, let apps):
            // The idle clock (SPEC §12) starts when the instance comes up.
            if instance.status != .running { next.idleSince = now }
            next.status = .running
            next.statusReason = note
            next.pod = pod
            // nil: the driver cannot tell (now); what was seen last stands.
            next.apps = apps ?? instance.apps
            // A host-local volume stays where the workload first ran.
            if next.volume.hostLocal == true, next.volume.node == nil, !pod.node.isEmpty { next.volume.node = pod.node }
        case .podMoved(let pod):
            next.pod = pod
        case .stopped(let reason):
            next.status = .stopped
            // A platform stop (term ended, wallet empty) keeps the reason it was given.
            next.statusReason = reason.isEmpty ? instance.statusReason : reason
            next.placement = nil
            next.pod = nil
            next.apps = nil
            next.desired.snapshot = nil
            next.stoppedAt = now
            // A Stopped instance holds no shared port; power_on takes a free one.
            next.access.sshPort = 0
        case .failed(let reason):
            next.status = .failed
            next.statusReason = reason
            next.placement = nil
            next.pod = nil
            next.apps = nil
            next.access.sshPort = 0
        case .saving:
            next.status = .saving
        case .unreachable(let reason):
            next.statusReason = reason
        }
        next.updatedAt = now
        next.generation += 1
        return next
    }
}
