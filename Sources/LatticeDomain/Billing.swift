import Foundation

/// A stretch of time during which something billable exists: GPUs held by an instance
/// (`compute`), or its data disk (`storage`). Segments are opened and closed in the same
/// transactions that reserve and release what they bill, so the meter never charges an
/// instance for GPUs it does not hold.
public struct MeterSegment: Sendable, Codable, Equatable {
    /// What is billed: GPUs held (`compute`) or a data disk (`storage`).
    public enum Kind: String, Sendable, Codable, Equatable { case compute, storage }
    /// The segment's id: the instance, the kind and the generation it opened at.
    public var id: String
    /// Compute or storage.
    public var kind: Kind
    /// The namespace charged.
    public var namespace: String
    /// The instance it bills.
    public var instanceName: String
    /// The GPU SKU (compute) or disk SKU (storage) that prices the segment.
    public var skuID: String
    /// Price per hour (compute) or per GB-day (storage) when the segment opened; used if
    /// the SKU has left the catalog since.
    public var unitPrice: Money
    /// GB for storage segments; GPUs are priced by the SKU, so 1 for compute.
    public var quantity: Int
    /// Percent taken off every charge (a percentage coupon), 0 to 100.
    public var percentOff: Int
    /// When it opened.
    public var start: Date
    /// When it closed (nil: still open).
    public var end: Date?
    /// Everything before this instant has been charged.
    public var billedThrough: Date

    /// A segment as opened (`Metering.computeSegment`, `storageSegment`) or read back.
    public init(
        id: String,
        kind: Kind,
        namespace: String,
        instanceName: String,
        skuID: String,
        unitPrice: Money,
        quantity: Int = 1,
        percentOff: Int = 0,
        start: Date,
        end: Date? = nil,
        billedThrough: Date? = nil
    ) {
        self.id = id
        self.kind = kind
        self.namespace = namespace
        self.instanceName = instanceName
        self.skuID = skuID
        self.unitPrice = unitPrice
        self.quantity = quantity
        self.percentOff = percentOff
        self.start = start
        self.end = end
        self.billedThrough = billedThrough ?? start
    }

    /// Whether the meter has nothing more to do for this segment, ever.
    public var isSettled: Bool { end.map { billedThrough >= $0 } ?? false }
}

/// One period to charge.
public struct ChargePeriod: Sendable, Equatable {
    /// The period's first instant.
    public var start: Date
    /// The instant after its last.
    public var end: Date
    /// The period from `start` to `end`.
    public init(start: Date, end: Date) {
        self.start = start
        self.end = end
    }
}

/// How often metered usage is charged: the pay-as-you-go period and the time zone whose
/// calendar days storage is charged by.
public struct MeterSchedule: Sendable, Equatable {
    /// Seconds per pay-as-you-go charge (an hour by default).
    public var period: TimeInterval
    /// The zone whose calendar days storage is charged by (UTC by default).
    public var timeZone: TimeZone

    /// A schedule charging every `period` seconds and storage by `timeZone`'s days.
    public init(period: TimeInterval = 3600, timeZone: TimeZone = TimeZone(secondsFromGMT: 0)!) {
        self.period = period
        self.timeZone = timeZone
    }
}

/// The platform's billing rules, as pure functions of a segment and a time (SPEC §6).
public enum Metering {
    /// Pay-as-you-go time is metered from the moment the workload is seen running, so a
    /// start that fails (Creating or Starting → Failed) costs nothing; it ends when the GPUs
    /// are released.
    public static func startsComputeMeter(from previous: Instance, to next: Instance) -> Bool {
        next.status == .running && previous.status != .running && next.placement != nil
    }

    /// A create that failed before the workload ever ran (Creating → Failed) charges nothing,
    /// its disk included.
    public static func failedToCreate(from previous: Instance, to next: Instance) -> Bool {
        previous.status == .creating && next.status == .failed
    }

    /// The compute segment an instance opens when it starts running: pay-as-you-go only
    /// (prepaid terms are charged up front). Its id carries the instance's generation, which
    /// every write raises, so two segments opened in the same millisecond never clash.
    public static func computeSegment(of instance: Instance, at start: Date) -> MeterSegment? {
        guard instance.cost.costType == SellingType.payAsYouGo.rawValue else { return nil }
        return MeterSegment(
            id: "\(instance.name):compute:g\(instance.generation)",
            kind: .compute,
            namespace: instance.namespace,
            instanceName: instance.name,
            skuID: instance.cost.gpuSkuID,
            unitPrice: instance.cost.unitPrice,
            percentOff: instance.cost.percentOff ?? 0,
            start: start
        )
    }

    /// The storage segment an instance opens when it is created: its disk, per GB-day.
    public static func storageSegment(of instance: Instance, at start: Date) -> MeterSegment {
        MeterSegment(
            id: "\(instance.name):storage:g\(instance.generation)",
            kind: .storage,
            namespace: instance.namespace,
            instanceName: instance.name,
            skuID: instance.cost.diskSkuID,
            unitPrice: instance.cost.diskPricePerGBDay ?? Money(units: 100),
            quantity: instance.volume.sizeGiB,
            start: start
        )
    }

    /// No charge line is smaller than this.
    public static let minimumCharge = Money(units: 100)

    /// Pay-as-you-go: exact per-second accrual (`price/h * seconds / 3600`), rounded half
    /// up to cents, at least the minimum charge for any usage.
    public static func computeCharge(pricePerHour: Money, seconds: Int64, percentOff: Int = 0) -> Money {
        guard seconds > 0 else { return .zero }
        let exact = pricePerHour.units * seconds * Int64(100 - percentOff)
        let units = DecimalText.divideRounded(exact, by: 3600 * 100)
        return atLeastMinimum(roundToCents(Money(units: units)))
    }

    /// Storage: the size times the per-GB-day price, to the second (`seconds / 86400` of a
    /// day), rounded half up to cents, at least the minimum charge for any time at all, and
    /// nothing (no line) for none: a disk that lives 24 seconds pays for 24 seconds (SPEC §6).
    public static func storageCharge(pricePerGBDay: Money, sizeGiB: Int, seconds: Int64, percentOff: Int = 0) -> Money {
        guard seconds > 0 else { return .zero }
        let exact = pricePerGBDay.units * Int64(sizeGiB) * seconds * Int64(100 - percentOff)
        return atLeastMinimum(roundToCents(Money(units: DecimalText.divideRounded(exact, by: 86_400 * 100))))
    }

    /// `money` rounded half up to whole cents.
    public static func roundToCents(_ money: Money) -> Money {
        Money(units: DecimalText.divideRounded(money.units, by: 100) * 100)
    }

    static func atLeastMinimum(_ money: Money) -> Money { money < minimumCharge ? minimumCharge : money }

    /// Compute periods due at `now`: every whole `period` since `billedThrough` that has
    /// elapsed, and the partial last one once the segment has closed. Periods chain, so
    /// none overlap and none are skipped.
    public static func dueComputePeriods(_ segment: MeterSegment, now: Date, period: TimeInterval) -> [ChargePeriod] {
        var periods: [ChargePeriod] = []
        var cursor = segment.billedThrough
        let limit = min(now, segment.end ?? now)
        while cursor.addingTimeInterval(period) <= limit {
            let next = cursor.addingTimeInterval(period)
            periods.append(ChargePeriod(start: cursor, end: next))
            cursor = next
        }
        if let end = segment.end, end <= now, cursor < end {
            periods.append(ChargePeriod(start: cursor, end: end))
        }
        return periods
    }

    /// Storage periods due at `now`: each calendar day (in `timeZone`) the disk existed on,
    /// once that day is over, and the part of a day up to the disk's end once it is gone.
    /// Periods chain, so none overlap and none are skipped; a disk that never existed for a
    /// moment (a create that failed) has none.
    public static func dueStoragePeriods(_ segment: MeterSegment, now: Date, timeZone: TimeZone) -> [ChargePeriod] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        var periods: [ChargePeriod] = []
        var cursor = segment.billedThrough
        while true {
            let dayEnd = calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: cursor))!
            if let end = segment.end, end <= dayEnd {
                if end <= now, cursor < end { periods.append(ChargePeriod(start: cursor, end: end)) }
                return periods
            }
            guard dayEnd <= now else { return periods }
            periods.append(ChargePeriod(start: cursor, end: dayEnd))
            cursor = dayEnd
        }
    }

    /// When a segment next has something to charge: the end of its current period (or
    /// day), or its end once it has closed. The meter looks only at segments that are due.
    public static func nextDue(_ segment: MeterSegment, period: TimeInterval, timeZone: TimeZone) -> Date {
        if let end = segment.end { return end }
        switch segment.kind {
        case .compute:
            return segment.billedThrough.addingTimeInterval(period)
        case .storage:
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            return calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: segment.billedThrough))!
        }
    }

    /// The idempotency key of a charge: the segment and the period's start.
    public static func key(_ segment: MeterSegment, _ period: ChargePeriod) -> String {
        "\(segment.kind.rawValue):\(segment.instanceName):\(Int64(period.start.timeIntervalSince1970 * 1000))"
    }
}

/// A coupon an admin issues: a fixed amount credited when redeemed, or a percentage off
/// the instance's pay-as-you-go charges.
public struct Coupon: Sendable, Codable, Equatable {
    /// A fixed amount credited when redeemed, or a percentage off pay-as-you-go charges.
    public enum Kind: String, Sendable, Codable, Equatable { case amount, percent }
    /// The code a create or a redemption names (`Cost.CouponID`).
    public var id: String
    /// Amount or percentage.
    public var kind: Kind
    /// The amount (for `amount`) or the percentage 1–100 (for `percent`, whole units).
    public var value: Money
    /// When it can no longer be redeemed (nil: never).
    public var expiresAt: Date?
    /// Redemptions allowed across every namespace.
    public var maxUses: Int
    /// Redemptions so far, across every namespace.
    public var uses: Int
    /// When an admin issued it.
    public var createdAt: Date
    /// The namespaces that may redeem it; nil means any.
    public var namespaces: [String]?
    /// How many times one namespace may redeem it; nil: once for an amount coupon (money
    /// given once to each tenant), without a limit of its own for a percentage.
    public var usesPerNamespace: Int?
    /// Redemptions so far, per namespace.
    public var redeemedBy: [String: Int]?
    /// When an admin disabled it: redeemed no more, kept for the record (and for instances
    /// created with it, whose percentage stays).
    public var disabledAt: Date?

    /// The most times one namespace may redeem the coupon.
    public var namespaceLimit: Int? { usesPerNamespace ?? (kind == .amount ? 1 : nil) }

    /// A coupon as an admin issues it (no redemptions yet, by default).
    public init(
        id: String,
        kind: Kind,
        value: Money,
        expiresAt: Date?,
        maxUses: Int,
        uses: Int = 0,
        createdAt: Date,
        namespaces: [String]? = nil,
        usesPerNamespace: Int? = nil
    ) {
        self.id = id
        self.kind = kind
        self.value = value
        self.expiresAt = expiresAt
        self.maxUses = maxUses
        self.uses = uses
        self.createdAt = createdAt
        self.namespaces = namespaces
        self.usesPerNamespace = usesPerNamespace
    }

    /// The percentage off, for a `percent` coupon (the value's whole units).
    public var percent: Int { Int(value.units / Money.scale) }

    /// What redeeming the coupon on a pay-as-you-go create does.
    public struct Redemption: Sendable, Equatable {
        /// The coupon with one more use, to write back.
        public var coupon: Coupon
        /// The instance with the coupon's percentage off its compute charges, if any.
        public var instance: Instance
        /// For an amount coupon: the credit to append, before the wallet check (so the
        /// coupon can pay for the first hour).
        public var credit: LedgerEntry?
    }

    /// Redeems the coupon for `instance` (created at its `createdAt`), or says why not.
    public func redeem(for instance: Instance) throws -> Redemption {
        if let refusal = refusal(at: instance.createdAt, namespace: instance.namespace) { throw refusal }
        var used = self
        used.uses += 1
        used.redeemedBy = (redeemedBy ?? [:]).merging([instance.namespace: 1], uniquingKeysWith: +)
        var instance = instance
        var credit: LedgerEntry?
        switch kind {
        case .percent:
            instance.cost.percentOff = min(100, max(0, percent))
        case .amount:
            let key = "coupon:\(id):\(instance.name)"
            credit = LedgerEntry(
                id: key,
                namespace: instance.namespace,
                kind: .credit,
                amount: value,
                instanceName: instance.name,
                idempotencyKey: key,
                createdAt: instance.createdAt
            )
        }
        return Redemption(coupon: used, instance: instance, credit: credit)
    }

    /// Why `namespace` cannot redeem the coupon now, if it cannot. A coupon limited to other
    /// namespaces answers as a missing one does, so its existence is not given away.
    public func refusal(at now: Date, namespace: String) -> LatticeError? {
        if let namespaces, !namespaces.contains(namespace) {
            return LatticeError.unprocessable("UnknownCoupon", "Cost.CouponID: no coupon '\(id)'")
        }
        if disabledAt != nil {
            return LatticeError.unprocessable("CouponDisabled", "Cost.CouponID: coupon '\(id)' was disabled")
        }
        if let expiresAt, expiresAt <= now {
            return LatticeError.unprocessable("CouponExpired", "Cost.CouponID: coupon '\(id)' expired")
        }
        if let limit = namespaceLimit, redeemedBy?[namespace, default: 0] ?? 0 >= limit {
            return LatticeError.unprocessable(
                "CouponUsedUp",
                "Cost.CouponID: coupon '\(id)' may be used \(limit) time\(limit == 1 ? "" : "s") per namespace, "
                    + "and namespace '\(namespace)' has used it"
            )
        }
        if uses >= maxUses {
            return LatticeError.unprocessable(
                "CouponUsedUp",
                "Cost.CouponID: coupon '\(id)' has been used \(uses) of \(maxUses) times"
            )
        }
        return nil
    }
}

/// When a pay-as-you-go wallet has run dry (SPEC §6): instances run on for a grace period
/// counted from the first time the meter saw the balance at or below zero, and stop when it
/// is over. A top-up before then ends the depletion.
public enum WalletDepletion {
    /// The depletion start to record after seeing `balance` at `now`.
    public static func since(balance: Money, recorded: Date?, now: Date) -> Date? {
        balance > .zero ? nil : (recorded ?? now)
    }

    /// Whether the grace period that started at `since` is over at `now`.
    public static func graceIsOver(since: Date?, grace: TimeInterval, now: Date) -> Bool {
        guard let since else { return false }
        return now.timeIntervalSince(since) >= grace
    }
}
