import Foundation
import LatticeDomain
import Testing

@Suite(.timeLimit(.minutes(10))) struct MeteringTests {
    let t0 = RFC3339.parse("2026-03-10T10:00:00Z")!
    let utc = TimeZone(secondsFromGMT: 0)!

    func compute(start: Date, end: Date? = nil, billedThrough: Date? = nil) -> MeterSegment {
        MeterSegment(
            id: "s",
            kind: .compute,
            namespace: "alice",
            instanceName: "instance-00000001",
            skuID: "66",
            unitPrice: Money("2.50")!,
            start: start,
            end: end,
            billedThrough: billedThrough
        )
    }

    @Test func accruesPerSecond() {
        #expect(Metering.computeCharge(pricePerHour: Money("3.60")!, seconds: 90) == Money("0.09")!)
        #expect(Metering.computeCharge(pricePerHour: Money("2.50")!, seconds: 3600) == Money("2.50")!)
        #expect(Metering.computeCharge(pricePerHour: Money("4.80")!, seconds: 1800) == Money("2.40")!)
        #expect(
            Metering.computeCharge(pricePerHour: Money("10")!, seconds: 3599) == Money("10.00")!,
            "9.9972 rounds to 10.00"
        )
        #expect(Metering.computeCharge(pricePerHour: Money("10")!, seconds: 3582) == Money("9.95")!)
        #expect(Metering.computeCharge(pricePerHour: Money("10")!, seconds: 3600, percentOff: 20) == Money("8")!)
    }

    @Test func chargesAtLeastTheMinimum() {
        #expect(Metering.computeCharge(pricePerHour: Money("2.50")!, seconds: 1) == Money("0.01")!)
        #expect(Metering.computeCharge(pricePerHour: Money("0.01")!, seconds: 60) == Money("0.01")!)
        #expect(Metering.computeCharge(pricePerHour: Money("2.50")!, seconds: 0) == .zero)
        #expect(Metering.storageCharge(pricePerGBDay: Money("0.01")!, sizeGiB: 0, seconds: 60) == Money("0.01")!)
        #expect(Metering.storageCharge(pricePerGBDay: Money("0.01")!, sizeGiB: 50, seconds: 86400) == Money("0.50")!)
        #expect(Metering.storageCharge(pricePerGBDay: Money("0.01")!, sizeGiB: 50, seconds: 0) == .zero)
    }

    @Test func storageIsMeteredToTheSecondAtItsDailyPrice() {
        // The disk: 50 GB that lived 24 seconds pays 24 seconds, the minimum, not 0.50.
        #expect(Metering.storageCharge(pricePerGBDay: Money("0.01")!, sizeGiB: 50, seconds: 24) == Money("0.01")!)
        // 14 hours of 50 GB at 0.01/GB/day: 0.2916.. → 0.29.
        #expect(
            Metering.storageCharge(pricePerGBDay: Money("0.01")!, sizeGiB: 50, seconds: 14 * 3600) == Money("0.29")!
        )
        // 1000 GB for 12 hours: 5.00; with a coupon's 20 % off: 4.00.
        #expect(Metering.storageCharge(pricePerGBDay: Money("0.01")!, sizeGiB: 1000, seconds: 43200) == Money("5")!)
        #expect(
            Metering.storageCharge(pricePerGBDay: Money("0.01")!, sizeGiB: 1000, seconds: 43200, percentOff: 20)
                == Money("4")!
        )
    }

    @Test func deductsHourlyWhileRunning() {
        let open = compute(start: t0)
        #expect(Metering.dueComputePeriods(open, now: t0.addingTimeInterval(3599), period: 3600).isEmpty)
        let due = Metering.dueComputePeriods(open, now: t0.addingTimeInterval(2.5 * 3600), period: 3600)
        #expect(
            due == [
                ChargePeriod(start: t0, end: t0.addingTimeInterval(3600)),
                ChargePeriod(start: t0.addingTimeInterval(3600), end: t0.addingTimeInterval(7200)),
            ]
        )
        let later = compute(start: t0, billedThrough: t0.addingTimeInterval(7200))
        #expect(Metering.dueComputePeriods(later, now: t0.addingTimeInterval(2.5 * 3600), period: 3600).isEmpty)
    }

    @Test func chargesThePartialPeriodAtStop() {
        let closed = compute(start: t0, end: t0.addingTimeInterval(5400), billedThrough: t0.addingTimeInterval(3600))
        #expect(
            Metering.dueComputePeriods(closed, now: t0.addingTimeInterval(5400), period: 3600)
                == [ChargePeriod(start: t0.addingTimeInterval(3600), end: t0.addingTimeInterval(5400))]
        )
        var settled = closed
        settled.billedThrough = t0.addingTimeInterval(5400)
        #expect(settled.isSettled)
        #expect(Metering.dueComputePeriods(settled, now: t0.addingTimeInterval(9999), period: 3600).isEmpty)
    }

    @Test func periodsTileTheSegmentWithoutGapsOrOverlaps() {
        for _ in 0..<200 {
            let length = Double.random(in: 0...(30 * 3600))
            var segment = compute(start: t0, end: t0.addingTimeInterval(length))
            var covered: [ChargePeriod] = []
            var now = t0
            while !segment.isSettled {
                now = now.addingTimeInterval(Double.random(in: 1...7200))
                let due = Metering.dueComputePeriods(segment, now: now, period: 3600)
                if let last = due.last { segment.billedThrough = last.end }
                covered += due
            }
            #expect(covered.first?.start ?? t0 == t0)
            #expect((covered.last?.end ?? t0) == t0.addingTimeInterval(length))
            for (a, b) in zip(covered, covered.dropFirst()) { #expect(a.end == b.start) }
        }
    }

    @Test func storageIsChargedPerCalendarDayTouched() {
        let segment = MeterSegment(
            id: "d",
            kind: .storage,
            namespace: "alice",
            instanceName: "i",
            skuID: "1",
            unitPrice: Money("0.01")!,
            quantity: 50,
            start: t0
        )
        let day1End = RFC3339.parse("2026-03-11T00:00:00Z")!
        #expect(Metering.dueStoragePeriods(segment, now: t0.addingTimeInterval(3600), timeZone: utc).isEmpty)
        #expect(
            Metering.dueStoragePeriods(segment, now: day1End, timeZone: utc) == [ChargePeriod(start: t0, end: day1End)]
        )
        var deleted = segment
        deleted.end = RFC3339.parse("2026-03-12T05:00:00Z")!
        let days = Metering.dueStoragePeriods(deleted, now: deleted.end!, timeZone: utc)
        #expect(days.count == 3, "10 Mar (from 10:00), 11 Mar, 12 Mar (until 05:00)")
        #expect(days.last == ChargePeriod(start: RFC3339.parse("2026-03-12T00:00:00Z")!, end: deleted.end!))
        #expect(
            Metering.dueStoragePeriods(deleted, now: RFC3339.parse("2026-03-12T04:00:00Z")!, timeZone: utc).count == 2,
            "the last part of a day is due once the disk is gone"
        )
        var brief = segment
        brief.end = t0.addingTimeInterval(24)
        #expect(
            Metering.dueStoragePeriods(brief, now: brief.end!, timeZone: utc)
                == [ChargePeriod(start: t0, end: t0.addingTimeInterval(24))]
        )
        var sameInstant = segment
        sameInstant.end = t0
        #expect(Metering.dueStoragePeriods(sameInstant, now: t0, timeZone: utc).isEmpty, "a failed create: nothing")
        let shanghai = TimeZone(identifier: "Asia/Shanghai")!
        #expect(
            Metering.dueStoragePeriods(segment, now: RFC3339.parse("2026-03-10T16:00:00Z")!, timeZone: shanghai).count
                == 1,
            "in +08:00 the day of 18:00 ends at 16:00 UTC"
        )
    }

    @Test func couponsKnowWhyTheyAreRefused() {
        let coupon = Coupon(id: "C1", kind: .percent, value: Money("20")!, expiresAt: t0, maxUses: 1, createdAt: t0)
        #expect(coupon.refusal(at: t0.addingTimeInterval(-1), namespace: "alice") == nil)
        #expect(coupon.refusal(at: t0, namespace: "alice")?.code == "CouponExpired")
        var used = coupon
        used.expiresAt = nil
        used.uses = 1
        #expect(used.refusal(at: t0, namespace: "alice")?.code == "CouponUsedUp")
        #expect(coupon.percent == 20)
        var limited = coupon
        limited.namespaces = ["bob"]
        #expect(limited.refusal(at: t0.addingTimeInterval(-1), namespace: "alice")?.code == "UnknownCoupon")
        #expect(limited.refusal(at: t0.addingTimeInterval(-1), namespace: "bob") == nil)
    }

    @Test func redeemingACouponIsDecidedInTheDomain() throws {
        var instance = sampleInstanceForBilling()
        instance.createdAt = t0
        let percent = Coupon(id: "P", kind: .percent, value: Money("25")!, expiresAt: nil, maxUses: 2, createdAt: t0)
        let byPercent = try percent.redeem(for: instance)
        #expect(byPercent.coupon.uses == 1 && byPercent.instance.cost.percentOff == 25 && byPercent.credit == nil)
        let amount = Coupon(id: "A", kind: .amount, value: Money("10")!, expiresAt: nil, maxUses: 1, createdAt: t0)
        let byAmount = try amount.redeem(for: instance)
        #expect(byAmount.credit?.amount == Money("10")! && byAmount.credit?.kind == .credit)
        #expect(byAmount.credit?.idempotencyKey == "coupon:A:\(instance.name)")
        #expect(byAmount.instance == instance)
        #expect(throws: LatticeError.self) { try byAmount.coupon.redeem(for: instance) }
    }

    @Test func anAmountCouponIsRedeemedOncePerNamespaceUnlessTheAdminAllowsMore() throws {
        var alice = sampleInstanceForBilling()
        alice.createdAt = t0
        var bob = alice
        bob.namespace = "bob"
        let amount = Coupon(id: "A", kind: .amount, value: Money("10")!, expiresAt: nil, maxUses: 100, createdAt: t0)
        let once = try amount.redeem(for: alice).coupon
        let error = #expect(throws: LatticeError.self) { try once.redeem(for: alice) }
        #expect(error?.code == "CouponUsedUp" && error?.message.contains("per namespace") == true)
        #expect(try once.redeem(for: bob).coupon.uses == 2, "another namespace still may")
        var generous = amount
        generous.usesPerNamespace = 2
        let twice = try generous.redeem(for: alice).coupon.redeem(for: alice).coupon
        #expect(twice.redeemedBy == ["alice": 2])
        #expect(throws: LatticeError.self) { try twice.redeem(for: alice) }
        let percent = Coupon(id: "P", kind: .percent, value: Money("25")!, expiresAt: nil, maxUses: 5, createdAt: t0)
        let used = try percent.redeem(for: alice).coupon.redeem(for: alice).coupon
        #expect(used.uses == 2 && used.namespaceLimit == nil, "a percentage has no limit per namespace of its own")
    }

    @Test func theWalletCoversAnHourOfEverythingTheNamespaceWouldRun() throws {
        func check(_ balance: String, committed: String, adding: String, upfront: String = "0") throws {
            try WalletRule.check(
                namespace: "alice",
                balance: Money(balance)!,
                committed: Money(committed)!,
                adding: Money(adding)!,
                upfront: Money(upfront)!
            )
        }
        try check("10", committed: "0", adding: "10")
        try check("20", committed: "10", adding: "10")
        #expect(throws: LatticeError.self) { try check("19.99", committed: "10", adding: "10") }
        #expect(throws: LatticeError.self) { try check("100", committed: "10", adding: "0", upfront: "91") }
        // A 100 % coupon (nothing per hour) does not start anything on a negative balance.
        try check("0", committed: "0", adding: "0")
        #expect { try check("-0.01", committed: "0", adding: "0") } throws: {
            ($0 as? LatticeError)?.kind == .paymentRequired
        }
        var instance = sampleInstanceForBilling()
        #expect(WalletRule.hourlyRate(of: instance) == .zero, "prepaid is paid up front")
        instance.cost.costType = 1
        instance.cost.unitPrice = Money("10")!
        instance.cost.percentOff = 25
        #expect(WalletRule.hourlyRate(of: instance) == Money("7.5")!)
        instance.placement = GPUPlacement(node: "n", gpuIndices: [0])
        #expect(WalletRule.commitment(of: instance) == Money("7.5")!)
        instance.placement = nil
        #expect(WalletRule.commitment(of: instance) == .zero)
    }

    @Test func renewExtendsFromTheEndOrFromNowAndChargesThatTerm() throws {
        var prepaid = sampleInstanceForBilling()
        prepaid.scheduleStopAt = t0
        let term = try CostTime.parse("+3D", field: "CostTime")
        func renew(_ instance: Instance, key: String? = nil, now: Date) throws -> InstanceLifecycle.Renewal {
            try InstanceLifecycle.renew(
                instance,
                term: term,
                pricePerUnit: Money("50")!,
                requestKey: key,
                chargeID: "c",
                timeZone: utc,
                now: now
            )
        }
        let early = try renew(prepaid, now: t0.addingTimeInterval(-86400))
        #expect(early.instance.scheduleStopAt == t0.addingTimeInterval(3 * 86400))
        #expect(early.charge.amount == Money("150")!)
        #expect(early.charge.kind == .prepaid)
        #expect(early.charge.periodStart == t0 && early.charge.periodEnd == t0.addingTimeInterval(3 * 86400))
        let late = try renew(prepaid, now: t0.addingTimeInterval(86400))
        #expect(late.instance.scheduleStopAt == t0.addingTimeInterval(4 * 86400))
        #expect(late.charge.periodStart == t0.addingTimeInterval(86400))

        // The key comes from the request: the client's key, or else the term's start.
        #expect(early.charge.idempotencyKey == "renew:instance-00000001:from:\(Int64(t0.timeIntervalSince1970))")
        #expect(
            try renew(prepaid, now: t0.addingTimeInterval(-86400)).charge.idempotencyKey == early.charge.idempotencyKey
        )
        let keyed = try renew(prepaid, key: "k1", now: t0)
        #expect(keyed.charge.idempotencyKey == "renew:instance-00000001:request:k1")
        #expect(try renew(early.instance, key: "k1", now: t0).charge.idempotencyKey == keyed.charge.idempotencyKey)

        var payg = prepaid
        payg.cost.costType = 1
        #expect(throws: LatticeError.self) { try renew(payg, now: t0) }
        #expect(throws: LatticeError.self) { try renew(InstanceLifecycle.delete(prepaid, now: t0), now: t0) }
    }

    func sampleInstanceForBilling() -> Instance {
        var instance = Instance(
            name: "instance-00000001",
            uid: "u",
            namespace: "alice",
            cluster: "c",
            regionID: "r",
            displayName: "d",
            image: "i",
            cost: CostSelection(
                costType: 4,
                costTime: "1D",
                couponID: "",
                discountID: "",
                gpuSkuID: "101",
                diskSkuID: "1",
                orderID: "o",
                unitPrice: Money("50")!
            ),
            resources: InstanceResources(
                cpuCores: 1,
                memoryGiB: 1,
                gpuCount: 1,
                gpuModel: "4090",
                gpuResourceKey: "k",
                systemDiskGiB: 30
            ),
            volume: DataVolume(name: "v", pathInContainer: "/root/data", sizeGiB: 50, type: "t"),
            access: AccessSecrets(jupyterToken: "t", sshPassword: "p", sshPort: 1),
            createdAt: t0
        )
        instance.status = .running
        return instance
    }
}
