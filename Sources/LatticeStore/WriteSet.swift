import Foundation
import LatticeDomain

/// Every row one write changes, decided here once, without a database, and applied by
/// each store in its own dialect (`SQLiteStore.apply`, `PostgresStore.apply`): the
/// instance row, the GPU rows it holds, the counters kept beside it, the meter segments
/// it opens and closes, the ledger rows and the coupon and order a create touches. A
/// store's write reads what it must, asks the domain's rules, builds its write set with
/// `instance(from:to:at:schedule:)` (and adds what else it wrote), and applies it in the
/// same transaction. Nomad's plan/apply has this shape: the plan is pure, the applier dumb.
public struct WriteSet: Sendable, Equatable {
    /// What happens to the instance's own row.
    public enum InstanceRow: Sendable, Equatable {
        case insert(Instance)
        case update(Instance)
        /// `createdAt`: the purged row's, which tells it from a later instance of the same name.
        case delete(name: String, createdAt: Date)
    }

    /// GPUs, CPU and memory an instance holds on one node.
    public struct Reservation: Sendable, Equatable {
        /// The instance holding it.
        public var instanceName: String
        /// The node and the GPUs by index.
        public var placement: GPUPlacement
        /// The cores and memory its SKU grants, counted against the node's.
        public var cpuCores: Int
        /// See `cpuCores`.
        public var memoryGiB: Int
    }

    /// One GPU as `gpu_allocations` keys it.
    public struct GPU: Sendable, Hashable {
        /// The node's name.
        public var node: String
        /// The GPU's index on the node.
        public var index: Int
    }

    /// Open segments of an instance, of these kinds, end at `at` (or at their start, if later).
    public struct SegmentClosing: Sendable, Equatable {
        /// The instance whose segments close.
        public var instanceName: String
        /// Which of them (compute, storage).
        public var kinds: [MeterSegment.Kind]
        /// When they end.
        public var at: Date
    }

    /// A segment opened, and when the meter first looks at it.
    public struct OpenedSegment: Sendable, Equatable {
        /// The segment as it starts.
        public var segment: MeterSegment
        /// When the meter first charges it.
        public var due: Date
    }

    /// How much a namespace's hourly commitment and held GPUs move.
    public struct Commitment: Sendable, Equatable {
        /// The namespace whose commitment moves.
        public var namespace: String
        /// By how much its pay-as-you-go spend per hour moves, in money units.
        public var hourlyUnits: Int64
        /// By how many GPUs its held GPUs move.
        public var gpus: Int
    }

    /// How much a namespace's instance count in a cluster moves.
    public struct InstanceCount: Sendable, Equatable {
        /// The namespace counted.
        public var namespace: String
        /// The cluster counted in.
        public var cluster: String
        /// +1 for a create, -1 for a purge.
        public var delta: Int
    }

    /// A port given back, kept for `SSHPortRule.quarantine`; releases older than that are pruned.
    public struct GivenPort: Sendable, Equatable {
        /// The port.
        public var port: Int
        /// Who gave it back and when (only that namespace may take it within the quarantine).
        public var release: PortRelease
        /// Releases before this are past their quarantine and pruned by the same write.
        public var pruneBefore: Date { release.at.addingTimeInterval(-SSHPortRule.quarantine) }
    }

    /// The instance's row: inserted, updated or deleted (nil: the write leaves it).
    public var instance: InstanceRow?
    /// The reservation held before the write (its GPU rows that are not also in
    /// `reserved` go).
    public var released: Reservation?
    /// The reservation held after it (its GPU rows that were not also in `released` come).
    public var reserved: Reservation?
    /// The SSH port the instance held before and no longer holds.
    public var portFreed: Int?
    /// The SSH port the instance holds after and did not hold before.
    public var portTaken: Int?
    /// `portFreed`, kept for its namespace for the quarantine.
    public var portGivenBack: GivenPort?
    /// How the namespace's commitment moves (nil: it does not).
    public var commitment: Commitment?
    /// Per-status instance counts (`/metrics`), by how much each moves.
    public var statusCounts: [InstanceStatus: Int] = [:]
    /// How the namespace's instance count in the cluster moves (list totals).
    public var instanceCount: InstanceCount?
    /// Meter segments the write opens (a create opens storage, a start compute).
    public var openedSegments: [OpenedSegment] = []
    /// Meter segments the write closes (a stop closes compute, a purge both).
    public var closing: SegmentClosing?
    /// Orders closed (the instance they paid for is gone).
    public var closedOrders: [String] = []
    /// Orders placed.
    public var orders: [Order] = []
    /// Ledger rows to append; a row whose idempotency key is already in the ledger is
    /// skipped, and the balance moves by the rows appended.
    public var ledger: [LedgerEntry] = []
    /// Coupons rewritten (a redemption).
    public var coupons: [Coupon] = []
    /// Events the write records (`EventRule`), numbered by the store as they commit.
    public var events: [LatticeEvent] = []
    /// What the write tells the change feed (`ChangeFeed`) once it commits: every instance
    /// write names its instance, and a write with events names their namespace.
    public var notices: [StoreChange] = []

    /// A write set that changes nothing.
    public init() {}

    /// Whether applying it changes nothing (a store then sends no statement).
    public var isEmpty: Bool { self == WriteSet() }

    /// GPU rows that go: held before and not after.
    public var freedGPUs: [GPU] { Self.gpus(of: released).filter { !Set(Self.gpus(of: reserved)).contains($0) } }
    /// GPU rows that come: held after and not before. A row another instance holds fails
    /// the write (the primary key is the last guard against overselling).
    public var takenGPUs: [GPU] { Self.gpus(of: reserved).filter { !Set(Self.gpus(of: released)).contains($0) } }
    /// Whether a reservation was given back or moved (PostgreSQL raises its placement version).
    public var givesBackReservation: Bool { released != nil }

    static func gpus(of reservation: Reservation?) -> [GPU] {
        guard let reservation else { return [] }
        return reservation.placement.gpuIndices.map { GPU(node: reservation.placement.node, index: $0) }
    }

    /// What changes when an instance goes from `previous` to `next` at `at` (nil: not there,
    /// so `previous: nil` is a create and `next: nil` a purge): its row, its GPU rows, the
    /// namespace's commitment and counts, the port it gave back, and its meter segments (a
    /// create opens storage; a start opens compute; a release of GPUs closes compute; a
    /// purge closes both and closes its order).
    ///
    /// `observed`: the reconciler records what a driver reported (an observation or a
    /// purge), so the feed says `.observed` (ports may have been given back; nothing more for
    /// the reconciler to do) rather than `.instance` (work for the reconciler).
    public static func instance(
        from previous: Instance?,
        to next: Instance?,
        at: Date,
        schedule: MeterSchedule,
        observed: Bool = false
    ) -> WriteSet {
        var set = WriteSet()
        switch (previous, next) {
        case (nil, let next?): set.instance = .insert(next)
        case (_?, let next?): set.instance = .update(next)
        case (let previous?, nil): set.instance = .delete(name: previous.name, createdAt: previous.createdAt)
        case (nil, nil): return set
        }
        let name = next?.name ?? previous!.name
        let namespace = next?.namespace ?? previous!.namespace
        set.notices = [observed ? .observed(name) : .instance(name)]
        set.events = EventRule.instance(from: previous, to: next, at: at)
        if !set.events.isEmpty { set.notices.append(.events(namespace)) }
        if previous?.placement != next?.placement {
            set.released = previous.flatMap(reservation(of:))
            set.reserved = next.flatMap(reservation(of:))
        }
        let oldPort = previous?.access.sshPort ?? 0
        let newPort = next?.access.sshPort ?? 0
        if oldPort != newPort {
            if oldPort > 0 { set.portFreed = oldPort }
            if newPort > 0 { set.portTaken = newPort }
        }
        if let previous, let given = PortRelease.given(from: previous, to: next, at: at) {
            set.portGivenBack = GivenPort(port: given.port, release: given.release)
        }
        let hourly = WalletRule.commitment(of: next).units - WalletRule.commitment(of: previous).units
        let gpus = (next?.placement?.gpuIndices.count ?? 0) - (previous?.placement?.gpuIndices.count ?? 0)
        if hourly != 0 || gpus != 0 {
            set.commitment = Commitment(namespace: namespace, hourlyUnits: hourly, gpus: gpus)
        }
        if previous?.status != next?.status {
            if let status = previous?.status { set.statusCounts[status, default: 0] -= 1 }
            if let status = next?.status { set.statusCounts[status, default: 0] += 1 }
        }
        switch (previous, next) {
        case (nil, let next?):
            set.instanceCount = InstanceCount(namespace: namespace, cluster: next.cluster, delta: 1)
            set.open(Metering.storageSegment(of: next, at: next.createdAt), schedule: schedule)
        case (let previous?, let next?):
            if Metering.startsComputeMeter(from: previous, to: next) {
                if let segment = Metering.computeSegment(of: next, at: at) { set.open(segment, schedule: schedule) }
            } else if Metering.failedToCreate(from: previous, to: next) {
                // The disk of a create that failed is never billed: its segment closes where it opened.
                set.closing = SegmentClosing(instanceName: name, kinds: [.compute, .storage], at: next.createdAt)
            } else if previous.placement != nil, next.placement == nil {
                set.closing = SegmentClosing(instanceName: name, kinds: [.compute], at: at)
            }
        case (let previous?, nil):
            set.instanceCount = InstanceCount(namespace: namespace, cluster: previous.cluster, delta: -1)
            set.closing = SegmentClosing(instanceName: name, kinds: [.compute, .storage], at: at)
            set.closedOrders.append(previous.cost.orderID)
        case (nil, nil):
            break
        }
        return set
    }

    static func reservation(of instance: Instance) -> Reservation? {
        instance.placement.map {
            Reservation(
                instanceName: instance.name,
                placement: $0,
                cpuCores: instance.resources.cpuCores,
                memoryGiB: instance.resources.memoryGiB
            )
        }
    }

    mutating func open(_ segment: MeterSegment, schedule: MeterSchedule) {
        let due = Metering.nextDue(segment, period: schedule.period, timeZone: schedule.timeZone)
        openedSegments.append(OpenedSegment(segment: segment, due: due))
    }
}

extension MeterSegment {
    /// This open segment closed at `at` (never before it started), as `WriteSet.closing` closes it.
    public func closed(at: Date) -> MeterSegment {
        var segment = self
        segment.end = Swift.max(at, start)
        return segment
    }
}

/// What a create reads before it decides; each store reads it its own way inside its
/// write transaction (SQLite in a few in-process reads, PostgreSQL in one statement).
public struct CreateReads: Sendable {
    /// Whether an instance of the draft's name exists (a name is never given twice).
    public var nameTaken: Bool
    /// What the namespace holds now, against `quota`.
    public var usage: QuotaUsage
    /// The namespace's quota (an admin's: unlimited; none set: the server's default).
    public var quota: Quota
    /// The wallet's balance.
    public var balance: Money
    /// What the namespace's running pay-as-you-go instances spend per hour.
    public var committed: Money
    /// The coupon the create names, if it names one and it exists.
    public var coupon: Coupon?

    /// What was read.
    public init(nameTaken: Bool, usage: QuotaUsage, quota: Quota, balance: Money, committed: Money, coupon: Coupon?) {
        self.nameTaken = nameTaken
        self.usage = usage
        self.quota = quota
        self.balance = balance
        self.committed = committed
        self.coupon = coupon
    }
}

/// A create's decisions, in one place for both stores: its checks, in the order the API
/// promises (the name, the coupon, the quota, the wallet), then what it writes once a node,
/// GPUs and a port are chosen.
public enum CreateDecision {
    /// Checks `draft` against what the create read; returns the instance as the coupon
    /// leaves it and the writes decided so far (the coupon's use and credit, the charges).
    public static func check(
        _ draft: Instance,
        reads: CreateReads,
        couponID: String?,
        debit: WalletDebit
    ) throws -> (instance: Instance, writes: WriteSet) {
        if reads.nameTaken { throw StoreError.duplicateName }
        var instance = draft
        var writes = WriteSet()
        var balance = reads.balance
        if let couponID, !couponID.isEmpty {
            guard let coupon = reads.coupon else {
                throw LatticeError.unprocessable("UnknownCoupon", "Cost.CouponID: no coupon '\(couponID)'")
            }
            let redemption = try coupon.redeem(for: instance)
            writes.coupons.append(redemption.coupon)
            instance = redemption.instance
            if let credit = redemption.credit {
                writes.ledger.append(credit)
                balance = balance + credit.amount
            }
        }
        try QuotaRule.check(
            namespace: draft.namespace,
            usage: reads.usage,
            adding: QuotaUsage(instances: 1, gpus: draft.resources.gpuCount),
            quota: reads.quota
        )
        try WalletRule.check(
            namespace: draft.namespace,
            balance: balance,
            committed: reads.committed,
            adding: WalletRule.hourlyRate(of: instance),
            upfront: debit.required
        )
        writes.ledger += debit.charges
        return (instance, writes)
    }

    /// The instance placed on `placement` with `port`, and everything its create writes.
    public static func created(
        _ checked: Instance,
        placement: GPUPlacement,
        sshPort: Int,
        order: Order,
        writes: WriteSet,
        schedule: MeterSchedule
    ) -> (instance: Instance, writes: WriteSet) {
        var instance = checked
        instance.access.sshPort = sshPort
        instance.placement = placement
        instance.pod = PodInfo(name: instance.pod?.name ?? "", node: placement.node, ip: "")
        var set = WriteSet.instance(from: nil, to: instance, at: instance.createdAt, schedule: schedule)
        set.ledger = writes.ledger
        set.coupons = writes.coupons
        set.orders = [order]
        return (instance, set)
    }
}

/// The wallet check of a write that is not a create (see `WalletRule`): one that starts an
/// instance (power on) is checked against the namespace's whole hourly commitment, any
/// other only against its own `required`.
public enum DebitRule {
    /// Throws `402 InsufficientBalance` when the balance does not cover the debit (and, for a
    /// start, an hour of the namespace's commitment with the instance in it).
    public static func check(
        _ debit: WalletDebit,
        namespace: String,
        balance: Money,
        committed: Money,
        starting: Instance?
    ) throws {
        if let starting {
            try WalletRule.check(
                namespace: namespace,
                balance: balance,
                committed: committed,
                adding: WalletRule.hourlyRate(of: starting),
                upfront: debit.required
            )
        } else if needsBalance(debit, starting: nil), balance < debit.required {
            throw LatticeError(
                .paymentRequired,
                code: "InsufficientBalance",
                "balance \(balance) does not cover \(debit.required); ask an admin to credit namespace '\(namespace)'"
            )
        }
    }

    /// Whether the check needs the balance at all.
    public static func needsBalance(_ debit: WalletDebit, starting: Instance?) -> Bool {
        starting != nil || debit.required > .zero || !debit.charges.isEmpty
    }
}
