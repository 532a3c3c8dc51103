import Foundation

/// The user-facing verbs of SPEC §5 as a pure state machine: each takes an instance and
/// returns the instance as it must be written, or `InvalidState`.
///
/// GPU reservation is not done here: `powerOn` takes the placement the store found inside
/// the same transaction.
public enum InstanceLifecycle {
    /// `power_off`: only a Running instance stops. GPUs stay held until the stop completes.
    public static func powerOff(
        _ instance: Instance,
        gracePeriodSeconds: Int,
        snapshot: SnapshotRequest?,
        now: Date
    ) throws -> Instance {
        guard instance.status == .running else {
            throw LatticeError.invalidState(
                "instance \(instance.name) is \(instance.status.rawValue); power_off needs Running"
            )
        }
        var next = instance
        next.status = .stopping
        next.statusReason = ""
        next.desired.power = .off
        next.desired.snapshot = snapshot
        next.desired.gracePeriodSeconds = gracePeriodSeconds
        next.updatedAt = now
        next.generation += 1
        return next
    }

    /// Whether `power_on` is allowed: a Stopped instance starts; a Failed one may retry.
    public static func checkPowerOn(_ instance: Instance) throws {
        guard instance.status == .stopped || instance.status == .failed else {
            throw LatticeError.invalidState(
                "instance \(instance.name) is \(instance.status.rawValue); power_on needs Stopped or Failed"
            )
        }
    }

    /// `power_on` with the GPUs the store reserved.
    public static func powerOn(
        _ instance: Instance,
        placement: GPUPlacement,
        podName: String,
        now: Date
    ) throws -> Instance {
        try checkPowerOn(instance)
        var next = instance
        next.status = .starting
        next.statusReason = ""
        next.desired.power = .on
        next.desired.snapshot = nil
        next.placement = placement
        next.pod = PodInfo(name: podName, node: placement.node, ip: "")
        next.stoppedAt = nil
        next.updatedAt = now
        next.generation += 1
        return next
    }

    /// A stop the platform decides (prepaid term over, wallet empty): like `power_off`, but
    /// also from Creating and Starting, and with a reason. Nil when there is nothing to stop.
    public static func systemStop(_ instance: Instance, reason: String, now: Date) -> Instance? {
        guard !instance.desired.deleted, [.creating, .starting, .running].contains(instance.status) else { return nil }
        var next = instance
        next.status = .stopping
        next.statusReason = reason
        next.desired.power = .off
        next.desired.snapshot = nil
        next.updatedAt = now
        next.generation += 1
        return next
    }

    /// `renew`: extends a prepaid term from its end, or from now if it already ended.
    public static func renew(_ instance: Instance, term: CostTime, timeZone: TimeZone, now: Date) throws -> Instance {
        guard instance.cost.costType != SellingType.payAsYouGo.rawValue else {
            throw LatticeError.invalidField(
                "CostTime",
                "instance \(instance.name) is pay-as-you-go; only prepaid terms are renewed"
            )
        }
        guard !instance.desired.deleted else {
            throw LatticeError.invalidState("instance \(instance.name) is being deleted")
        }
        var next = instance
        let from = max(instance.scheduleStopAt ?? now, now)
        next.scheduleStopAt = term.end(from: from, timeZone: timeZone)
        next.updatedAt = now
        next.generation += 1
        return next
    }

    /// `DELETE`: allowed in every state; deleting twice is not an error.
    public static func delete(_ instance: Instance, now: Date) -> Instance {
        var next = instance
        guard !instance.desired.deleted else { return instance }
        next.status = .deleting
        next.statusReason = ""
        next.desired.deleted = true
        next.updatedAt = now
        next.generation += 1
        return next
    }
}
