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

    /// `power_on` with the GPUs the store reserved; a pay-as-you-go instance is priced
    /// again (`unitPrice`: the SKU's price now, SPEC §9).
    public static func powerOn(
        _ instance: Instance,
        placement: GPUPlacement,
        sshPort: Int,
        podName: String,
        now: Date,
        unitPrice: Money? = nil
    ) throws -> Instance {
        try checkPowerOn(instance)
        var next = instance
        if let unitPrice, instance.cost.costType == SellingType.payAsYouGo.rawValue { next.cost.unitPrice = unitPrice }
        next.access.sshPort = sshPort
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

    /// `schedule_stop` (SPEC §12): a pay-as-you-go instance powers off (or is deleted) at
    /// `at`; nil clears it. A prepaid instance stops at its term's end, moved by `renew`.
    public static func scheduleStop(
        _ instance: Instance,
        at: Date?,
        action: ScheduledStopAction,
        now: Date
    ) throws -> Instance {
        guard !instance.desired.deleted else {
            throw LatticeError.invalidState("instance \(instance.name) is being deleted")
        }
        guard instance.cost.costType == SellingType.payAsYouGo.rawValue else {
            throw LatticeError.invalidState(
                "instance \(instance.name) is prepaid: it stops when its term ends; use renew to move that"
            )
        }
        if let at, at <= now {
            throw LatticeError.invalidField("at", "must be in the future (or 0001-01-01T00:00:00Z to clear)")
        }
        var next = instance
        next.scheduleStopAt = at
        next.scheduleStopAction = at == nil ? nil : action
        next.updatedAt = now
        next.generation += 1
        return next
    }

    /// What the leader writes once a pay-as-you-go instance's scheduled time has come: a
    /// power off (the schedule then cleared, so a power on runs on) or a delete; nil when
    /// there is nothing to do (the time was moved, or the instance is not running).
    public static func scheduledStop(_ instance: Instance, now: Date, format: (Date) -> String) -> Instance? {
        guard instance.cost.costType == SellingType.payAsYouGo.rawValue, let at = instance.scheduleStopAt, at <= now
        else { return nil }
        if instance.scheduleStopAction == .delete {
            guard !instance.desired.deleted else { return nil }
            var deleted = delete(instance, now: now)
            deleted.statusReason = "ScheduledDelete: deleted as scheduled for \(format(at))"
            return deleted
        }
        guard
            var stopped = systemStop(
                instance,
                reason: "ScheduledStop: powered off as scheduled for \(format(at))",
                now: now
            )
        else { return nil }
        stopped.scheduleStopAt = nil
        stopped.scheduleStopAction = nil
        return stopped
    }

    /// What `renew` writes: the instance with its term moved, and the charge for the new term.
    public struct Renewal: Sendable, Equatable {
        public var instance: Instance
        public var charge: LedgerEntry
    }

    /// `renew`: extends a prepaid term from its end, or from now if it already ended, and
    /// charges the new term at `pricePerUnit` per unit.
    ///
    /// The charge's idempotency key derives from the request, never from chance: from the
    /// client's `Idempotency-Key` when it sent one, so a retried renew is recognised and
    /// charged once; otherwise from the term's start, so no term is ever charged twice.
    public static func renew(
        _ instance: Instance,
        term: CostTime,
        pricePerUnit: Money,
        requestKey: String?,
        chargeID: String,
        timeZone: TimeZone,
        now: Date
    ) throws -> Renewal {
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
        let end = term.end(from: from, timeZone: timeZone)
        next.scheduleStopAt = end
        next.updatedAt = now
        next.generation += 1
        let key =
            requestKey.map { "renew:\(instance.name):request:\($0)" }
            ?? "renew:\(instance.name):from:\(Int64(from.timeIntervalSince1970))"
        let charge = LedgerEntry(
            id: chargeID,
            namespace: instance.namespace,
            kind: .prepaid,
            amount: Money(units: pricePerUnit.units * Int64(term.count)),
            instanceName: instance.name,
            periodStart: from,
            periodEnd: end,
            idempotencyKey: key,
            createdAt: now
        )
        return Renewal(instance: next, charge: charge)
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
