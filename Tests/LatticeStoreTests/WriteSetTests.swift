import Foundation
import LatticeDomain
import LatticeTestSupport
import Testing

@testable import LatticeStore

/// The write set is decided without a database: these tables say what each kind of
/// instance write changes, for both stores at once.
@Suite(.timeLimit(.minutes(10))) struct WriteSetTests {
    let schedule = MeterSchedule()

    func placed(
        _ name: String = "instance-1",
        status: InstanceStatus,
        gpus: [Int]? = [0],
        port: Int = 30001
    ) -> Instance {
        var instance = draft(name)
        instance.status = status
        instance.placement = gpus.map { GPUPlacement(node: "node-0", gpuIndices: $0) }
        instance.resources.gpuCount = gpus?.count ?? 1
        instance.access.sshPort = port
        instance.updatedAt = t0.addingTimeInterval(60)
        return instance
    }

    @Test func aCreateInsertsReservesCountsAndOpensStorage() {
        let created = placed(status: .creating)
        let set = WriteSet.instance(from: nil, to: created, at: t0, schedule: schedule)
        #expect(set.instance == .insert(created))
        #expect(set.takenGPUs == [WriteSet.GPU(node: "node-0", index: 0)])
        #expect(set.freedGPUs.isEmpty && !set.givesBackReservation)
        #expect(set.portTaken == 30001 && set.portFreed == nil && set.portGivenBack == nil)
        #expect(set.commitment == WriteSet.Commitment(namespace: "alice", hourlyUnits: Money("2.50")!.units, gpus: 1))
        #expect(set.statusCounts == [.creating: 1])
        #expect(set.instanceCount == WriteSet.InstanceCount(namespace: "alice", cluster: "host-cluster", delta: 1))
        #expect(set.openedSegments.map(\.segment.kind) == [.storage])
        #expect(set.closing == nil && set.closedOrders.isEmpty)
    }

    @Test func startingToRunOpensComputeAndMovesOnlyTheStatus() {
        let creating = placed(status: .creating)
        let running = placed(status: .running)
        let set = WriteSet.instance(from: creating, to: running, at: t0.addingTimeInterval(60), schedule: schedule)
        #expect(set.instance == .update(running))
        #expect(set.released == nil && set.reserved == nil && set.takenGPUs.isEmpty)
        #expect(set.commitment == nil && set.instanceCount == nil)
        #expect(set.statusCounts == [.creating: -1, .running: 1])
        #expect(set.openedSegments.map(\.segment.kind) == [.compute])
        #expect(set.openedSegments.first?.segment.start == t0.addingTimeInterval(60))
    }

    @Test func stoppingGivesBackGPUsClosesComputeAndKeepsThePortGivenBack() {
        let running = placed(status: .running)
        var stopped = placed(status: .stopped, gpus: nil, port: 0)
        stopped.generation += 1
        let at = t0.addingTimeInterval(3600)
        let set = WriteSet.instance(from: running, to: stopped, at: at, schedule: schedule)
        #expect(set.freedGPUs == [WriteSet.GPU(node: "node-0", index: 0)] && set.takenGPUs.isEmpty)
        #expect(set.givesBackReservation)
        #expect(set.closing == WriteSet.SegmentClosing(instanceName: "instance-1", kinds: [.compute], at: at))
        #expect(set.commitment == WriteSet.Commitment(namespace: "alice", hourlyUnits: -Money("2.50")!.units, gpus: -1))
        #expect(set.portFreed == 30001)
        #expect(set.portGivenBack == WriteSet.GivenPort(port: 30001, release: PortRelease(namespace: "alice", at: at)))
        #expect(set.openedSegments.isEmpty)
    }

    @Test func aCreateThatFailsClosesItsDiskWhereItOpenedSoItIsNeverBilled() {
        let creating = placed(status: .creating)
        var failed = placed(status: .failed, gpus: nil, port: 0)
        failed.generation += 1
        let set = WriteSet.instance(from: creating, to: failed, at: t0.addingTimeInterval(90), schedule: schedule)
        #expect(
            set.closing
                == WriteSet.SegmentClosing(
                    instanceName: "instance-1",
                    kinds: [.compute, .storage],
                    at: creating.createdAt
                )
        )
        #expect(set.givesBackReservation)
    }

    @Test func movingGPUsFreesAndTakesOnlyTheDifference() {
        let before = placed(status: .running, gpus: [0, 1])
        let after = placed(status: .running, gpus: [1, 2])
        let set = WriteSet.instance(from: before, to: after, at: t0, schedule: schedule)
        #expect(set.freedGPUs == [WriteSet.GPU(node: "node-0", index: 0)])
        #expect(set.takenGPUs == [WriteSet.GPU(node: "node-0", index: 2)])
        #expect(set.commitment == nil)
    }

    @Test func aPurgeDeletesClosesEverythingAndItsOrder() {
        let running = placed(status: .running)
        let at = t0.addingTimeInterval(7200)
        let set = WriteSet.instance(from: running, to: nil, at: at, schedule: schedule, observed: true)
        #expect(set.instance == .delete(name: "instance-1", createdAt: running.createdAt))
        #expect(set.freedGPUs.count == 1 && set.givesBackReservation)
        #expect(
            set.closing == WriteSet.SegmentClosing(instanceName: "instance-1", kinds: [.compute, .storage], at: at)
        )
        #expect(set.closedOrders == ["order-instance-1"])
        #expect(set.instanceCount?.delta == -1 && set.statusCounts == [.running: -1])
        #expect(set.portGivenBack?.port == 30001)
        #expect(
            set.notices == [.observed("instance-1"), .events("alice")],
            "the feed hears of the purge (its port is free) and of its event"
        )
        #expect(set.events.map(\.type) == [.instanceDeleted])
    }

    @Test func anUnchangedInstanceChangesOnlyItsRow() {
        let running = placed(status: .running)
        let set = WriteSet.instance(from: running, to: running, at: t0, schedule: schedule)
        var expected = WriteSet()
        expected.instance = .update(running)
        expected.notices = [.instance("instance-1")]
        #expect(set == expected)
    }

    @Test func aSegmentClosesAtItsStartAtTheEarliest() {
        let segment = Metering.storageSegment(of: placed(status: .creating), at: t0)
        #expect(segment.closed(at: t0.addingTimeInterval(-5)).end == t0)
        #expect(segment.closed(at: t0.addingTimeInterval(5)).end == t0.addingTimeInterval(5))
    }

    // MARK: A create's checks, in order

    func reads(
        nameTaken: Bool = false,
        instances: Int = 0,
        balance: String = "100",
        coupon: Coupon? = nil
    ) -> CreateReads {
        CreateReads(
            nameTaken: nameTaken,
            usage: QuotaUsage(instances: instances),
            quota: Quota(instances: 2, gpus: 8, tokens: 8, snapshots: 8),
            balance: Money(balance)!,
            committed: .zero,
            coupon: coupon
        )
    }

    @Test func aCreateChecksTheNameThenTheCouponThenTheQuotaThenTheWallet() throws {
        let instance = draft("instance-1")
        #expect(throws: StoreError.duplicateName) {
            try CreateDecision.check(instance, reads: reads(nameTaken: true, instances: 9), couponID: "x", debit: .none)
        }
        let unknown = #expect(throws: LatticeError.self) {
            try CreateDecision.check(instance, reads: reads(instances: 9), couponID: "nope", debit: .none)
        }
        #expect(unknown?.code == "UnknownCoupon")
        let quota = #expect(throws: LatticeError.self) {
            try CreateDecision.check(instance, reads: reads(instances: 2, balance: "0"), couponID: nil, debit: .none)
        }
        #expect(quota?.code == "QuotaExceeded")
        let wallet = #expect(throws: LatticeError.self) {
            try CreateDecision.check(instance, reads: reads(balance: "0"), couponID: nil, debit: .none)
        }
        #expect(wallet?.code == "InsufficientBalance")
        let (checked, writes) = try CreateDecision.check(instance, reads: reads(), couponID: nil, debit: .none)
        #expect(checked == instance && writes.isEmpty)
    }

    @Test func aCreateWritesItsChargesOrderAndNotice() throws {
        let charge = LedgerEntry(
            id: "l1",
            namespace: "alice",
            kind: .prepaid,
            amount: Money("10")!,
            idempotencyKey: "prepaid:instance-1",
            createdAt: t0
        )
        let debit = WalletDebit(required: Money("10")!, charges: [charge])
        let (checked, writes) = try CreateDecision.check(
            draft("instance-1"),
            reads: reads(balance: "20"),
            couponID: nil,
            debit: debit
        )
        let placement = GPUPlacement(node: "node-0", gpuIndices: [3])
        let (instance, set) = CreateDecision.created(
            checked,
            placement: placement,
            sshPort: 30007,
            order: order(for: "instance-1"),
            writes: writes,
            schedule: schedule
        )
        #expect(instance.placement == placement && instance.access.sshPort == 30007 && instance.pod?.node == "node-0")
        #expect(set.instance == .insert(instance))
        #expect(set.ledger == [charge] && set.orders == [order(for: "instance-1")])
        #expect(set.notices == [.instance("instance-1"), .events("alice")])
        #expect(set.events.map(\.type) == [.instanceCreated, .instanceStatus])
    }

    @Test func aWriteThatNeedsNoMoneyIsNotRefusedForANegativeBalance() throws {
        try DebitRule.check(.none, namespace: "alice", balance: Money("-5")!, committed: .zero, starting: nil)
        #expect(throws: LatticeError.self) {
            try DebitRule.check(
                WalletDebit(required: Money("1")!, charges: []),
                namespace: "alice",
                balance: .zero,
                committed: .zero,
                starting: nil
            )
        }
    }
}
