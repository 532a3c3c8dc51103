import Foundation
import LatticeDomain
import LatticeStore
import Logging
import ServiceLifecycle
import Synchronization

/// Turns usage into ledger charges and enforces what money decides (SPEC §6):
/// - charges every due pay-as-you-go period and storage day, each with an idempotency key,
///   in the same transaction as the segment's cursor, so a crash and a replay never
///   charge twice and never skip a period;
/// - stops prepaid instances whose term ended;
/// - stops pay-as-you-go instances of a wallet that stayed empty past the grace period;
/// - deletes Stopped instances whose retention ran out;
/// - deletes audit entries older than `AuditRule.retention`, once an hour.
public final class Meter: Service, Sendable {
    let store: any Store
    let clock: any WallClock
    let configuration: ServerConfiguration
    let logger: Logger

    /// With replicas: only the lease holder meters (nil: this process always does).
    let leadership: Leadership?
    /// What the idle clocks ask before an instance is stopped for being idle.
    let idle: IdleInputs

    /// Use the store may not know yet: this replica's gateways' (`InstanceActivity`), and
    /// the GPUs' utilisation now, where the driver measures it.
    struct IdleInputs: Sendable {
        var lastUse: @Sendable (String) -> Date? = { _ in nil }
        var gpuUtilization: @Sendable (Instance) async throws -> Double? = { _ in nil }
    }
    /// When the audit log was last pruned.
    private let auditPruned = Mutex<Date?>(nil)

    init(
        store: any Store,
        clock: any WallClock,
        configuration: ServerConfiguration,
        logger: Logger,
        leadership: Leadership? = nil,
        idle: IdleInputs = IdleInputs()
    ) {
        self.leadership = leadership
        self.idle = idle
        self.store = store
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.tick()
                do { try await Task.sleep(for: self.configuration.meterInterval) } catch { break }
            }
        }
    }

    /// One pass: charge, then enforce. One segment's, instance's or namespace's failure is
    /// logged and tried again next pass; it does not hold up the others.
    func tick() async {
        guard leadership?.isLeader ?? true else { return }
        do {
            try await chargeSegments()
            try await enforce()
            try await pruneAudit()
        } catch {
            logger.warning("meter pass failed; will retry", metadata: ["error": "\(error)"])
        }
    }

    /// Deletes the audit entries, events and settled webhook deliveries past their retention,
    /// at most once an hour.
    func pruneAudit() async throws {
        let now = clock.now()
        let due = auditPruned.withLock { last in
            guard last.map({ now.timeIntervalSince($0) >= 3600 }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return }
        let removed = try await store.pruneAudit(before: now.addingTimeInterval(-AuditRule.retention))
        if removed > 0 { logger.info("audit entries past their retention deleted", metadata: ["count": "\(removed)"]) }
        let dayAgo = now.addingTimeInterval(-LatticeEvent.retention)
        let events = try await store.pruneEvents(before: dayAgo)
        let deliveries = try await store.pruneDeliveries(before: dayAgo)
        if events + deliveries > 0 {
            logger.info(
                "events and webhook deliveries past their retention deleted",
                metadata: ["events": "\(events)", "deliveries": "\(deliveries)"]
            )
        }
    }

    /// The charges due for one segment in `periods`: compute at the unit price the
    /// instance started with (a price changed since applies from its next start, SPEC §9),
    /// storage at the disk's daily price, both to the second.
    func charges(for segment: MeterSegment, in periods: [ChargePeriod], now: Date) -> [LedgerEntry] {
        var rng = SystemRandomNumberGenerator()
        return periods.compactMap { period in
            let amount: Money
            let seconds = Int64(period.end.timeIntervalSince(period.start).rounded())
            switch segment.kind {
            case .compute:
                amount = Metering.computeCharge(
                    pricePerHour: segment.unitPrice,
                    seconds: seconds,
                    percentOff: segment.percentOff
                )
            case .storage:
                amount = Metering.storageCharge(
                    pricePerGBDay: segment.unitPrice,
                    sizeGiB: segment.quantity,
                    seconds: seconds
                )
            }
            // A period under half a second rounds to nothing: no line (the segment still
            // moves past it).
            guard amount > .zero else { return nil }
            return LedgerEntry(
                id: Identifiers.uuid(using: &rng),
                namespace: segment.namespace,
                kind: segment.kind == .compute ? .compute : .storage,
                amount: amount,
                instanceName: segment.instanceName,
                periodStart: period.start,
                periodEnd: period.end,
                idempotencyKey: Metering.key(segment, period),
                createdAt: now
            )
        }
    }

    /// Charges the segments that are due, and tells the store when each is next due.
    func chargeSegments() async throws {
        let now = clock.now()
        let charged = Mutex(Set<String>())
        for segment in try await store.dueSegments(at: now) {
            await isolated("segment", segment.instanceName) {
                if try await self.charge(segment, now: now) { charged.withLock { _ = $0.insert(segment.namespace) } }
            }
        }
        // Money moved: the namespaces charged are told if their wallet runs low or their
        // spend reaches a budget's alert.
        for namespace in charged.withLock({ $0 }).sorted() {
            await isolated("alerts", namespace) { try await self.alert(namespace, now: now) }
        }
    }

    /// Raises the namespace's alerts of money (`AlertRule`), each told once as an event.
    func alert(_ namespace: String, now: Date) async throws {
        var spend: AlertRule.BudgetSpend?
        if let budget = try await store.budget(namespace: namespace) {
            let month = Budget.month(of: now, timeZone: configuration.time.timeZone)
            let entries = try await store.ledger(namespace: namespace, from: month.start, to: now).entries
            spend = AlertRule.BudgetSpend(
                budget: budget,
                spent: Budget.spent(entries),
                month: AlertRule.monthLabel(month, timeZone: configuration.time.timeZone)
            )
        }
        let currency = configuration.currency
        let told = try await store.recordAlerts(namespace: namespace) { [spend] reads in
            AlertRule.decide(namespace: namespace, reads, budget: spend, currency: currency, now: now)
        }
        for event in told {
            logger.info("alert", metadata: ["namespace": "\(namespace)", "type": "\(event.type.rawValue)"])
        }
    }

    /// Runs one item's work; a failure is logged, and the pass goes on with the next item.
    func isolated(_ what: String, _ name: String, _ work: () async throws -> Void) async {
        do {
            try await work()
        } catch {
            logger.warning(
                "meter: \(what) failed; will retry next pass",
                metadata: [what: "\(name)", "error": "\(error)"]
            )
        }
    }

    /// The periods of `segment` due at `now`, each to be charged once.
    func periods(of segment: MeterSegment, now: Date) -> [ChargePeriod] {
        switch segment.kind {
        case .compute: Metering.dueComputePeriods(segment, now: now, period: configuration.chargePeriod)
        case .storage: Metering.dueStoragePeriods(segment, now: now, timeZone: configuration.time.timeZone)
        }
    }

    /// Charges what is due of one segment; whether any money moved.
    @discardableResult func charge(_ segment: MeterSegment, now: Date) async throws -> Bool {
        let periods = periods(of: segment, now: now)
        let due = charges(for: segment, in: periods, now: now)
        var charged = segment
        if let last = periods.last?.end { charged.billedThrough = last }
        let nextDue = Metering.nextDue(
            charged,
            period: configuration.chargePeriod,
            timeZone: configuration.time.timeZone
        )
        _ = try await store.applyCharges(
            segmentID: segment.id,
            billedThrough: charged.billedThrough,
            charges: due,
            nextDue: nextDue
        )
        return !due.isEmpty
    }

    /// Acts on what money and time decide, reading only the instances concerned: ended
    /// prepaid terms, retention that ran out, wallets that ran dry under running instances.
    func enforce() async throws {
        let now = clock.now()
        for instance in try await store.instancesToEnforce(
            at: now,
            stoppedBefore: now.addingTimeInterval(-configuration.retention)
        ) {
            await isolated("instance", instance.name) { try await self.enforce(instance, now: now) }
        }
        for (namespace, holders) in try await store.payAsYouGoHolders() {
            await isolated("namespace", namespace) {
                try await self.enforceWallet(namespace: namespace, holders: holders, now: now)
            }
        }
        // Budgets that stop (SPEC §12): their namespace's pay-as-you-go instances power off
        // once the month's spend reaches the limit (disks kept).
        for budget in try await store.stoppingBudgets() {
            await isolated("budget", budget.namespace) { try await self.enforceBudget(budget, now: now) }
        }
    }

    /// Powers off a namespace's running pay-as-you-go instances once its month's spend has
    /// reached a `stop` budget's limit.
    func enforceBudget(_ budget: Budget, now: Date) async throws {
        let month = Budget.month(of: now, timeZone: configuration.time.timeZone)
        let spent = Budget.spent(
            try await store.ledger(namespace: budget.namespace, from: month.start, to: now).entries
        )
        guard budget.isReached(spent: spent) else { return }
        var page = PageRequest(page: 1, pageSize: 100)
        var running: [Instance] = []
        while true {
            let (items, total) = try await store.instances(namespace: budget.namespace, cluster: nil, page: page)
            running += items.filter {
                $0.cost.costType == SellingType.payAsYouGo.rawValue
                    && [.creating, .starting, .running].contains($0.status)
            }
            guard !items.isEmpty, page.offset + items.count < total else { break }
            page.page += 1
        }
        for instance in running {
            try await stop(
                instance,
                reason: "BudgetExceeded: the month's spend reached the budget's limit of \(budget.monthlyLimit)",
                now: now
            )
        }
    }

    /// Ends an expired retention or prepaid term.
    func enforce(_ instance: Instance, now: Date) async throws {
        if instance.status == .stopped {
            _ = try await store.updateInstance(namespace: instance.namespace, name: instance.name) { current in
                guard current.status == .stopped else { return current }
                var deleted = InstanceLifecycle.delete(current, now: now)
                deleted.statusReason =
                    "RetentionExpired: data kept \(Int(self.configuration.retention / 86400)) days after stop"
                return deleted
            }
        } else if instance.cost.costType == SellingType.payAsYouGo.rawValue {
            // A tenant's schedule (SPEC §12): power off or delete; then its idle clock.
            let format = configuration.time.format
            if let at = instance.scheduleStopAt, at <= now {
                let done = try await store.updateInstance(namespace: instance.namespace, name: instance.name) {
                    current in
                    InstanceLifecycle.scheduledStop(current, now: now, format: { format($0) }) ?? current
                }
                if done.statusReason.hasPrefix("Scheduled") {
                    logger.info(
                        "scheduled stop",
                        metadata: ["instance": "\(instance.name)", "reason": "\(done.statusReason)"]
                    )
                }
            }
            if let due = IdleRule.stopsAt(instance), due <= now { try await enforceIdle(instance, now: now) }
        } else if let end = instance.scheduleStopAt {
            try await stop(
                instance,
                reason: "TermEnded: the prepaid term ended at \(configuration.time.format(end))",
                now: now
            )
        }
    }

    /// An instance whose idle period ran out: used since through this replica's gateway, or
    /// its GPUs busy now, its clock restarts; otherwise it is powered off, disk kept, and
    /// the stop is audited (`instance.idle_stopped`).
    func enforceIdle(_ instance: Instance, now: Date) async throws {
        var lastUse = idle.lastUse(instance.name)
        if let below = instance.idleStop?.gpuUtilizationBelow,
            let peak = try? await idle.gpuUtilization(instance), peak >= Double(below)
        {
            lastUse = now
        }
        let usedAt = lastUse
        let format = configuration.time.format
        let done = try await store.updateInstance(namespace: instance.namespace, name: instance.name) { current in
            if let usedAt, let restarted = IdleRule.restart(current, usedAt: usedAt, now: now) { return restarted }
            return IdleRule.idleStop(current, now: now, format: { format($0) }) ?? current
        }
        guard instance.status == .running, done.status == .stopping, done.statusReason.hasPrefix("IdleStopped")
        else { return }
        logger.info("idle stop", metadata: ["instance": "\(instance.name)", "reason": "\(done.statusReason)"])
        try await store.appendAudit([
            AuditEntry(
                id: AuditRecorder.newID(),
                time: now,
                namespace: instance.namespace,
                actor: "lattice:idle",
                action: "instance.idle_stopped",
                target: instance.name,
                status: 200,
                requestId: "",
                remoteAddress: ""
            )
        ])
    }

    /// Stops a namespace's pay-as-you-go instances once its wallet has been dry for the grace period.
    func enforceWallet(namespace: String, holders: [String], now: Date) async throws {
        let balance = try await store.balance(namespace: namespace)
        let recorded = try await store.depletedSince(namespace: namespace)
        let since = WalletDepletion.since(balance: balance, recorded: recorded, now: now)
        if since != recorded { try await store.setDepletedSince(namespace: namespace, since) }
        guard WalletDepletion.graceIsOver(since: since, grace: configuration.depletionGrace, now: now),
            let since
        else { return }
        for name in holders {
            guard let instance = try await store.instance(namespace: namespace, name: name) else { continue }
            try await stop(
                instance,
                reason: "InsufficientBalance: the wallet ran out at \(configuration.time.format(since))",
                now: now
            )
        }
    }

    func stop(_ instance: Instance, reason: String, now: Date) async throws {
        let stopped = try await store.updateInstance(namespace: instance.namespace, name: instance.name) {
            current in
            InstanceLifecycle.systemStop(current, reason: reason, now: now) ?? current
        }
        if stopped.status == .stopping, stopped.statusReason == reason {
            logger.info("stopping instance", metadata: ["instance": "\(instance.name)", "reason": "\(reason)"])
        }
    }
}
