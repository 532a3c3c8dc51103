import Foundation
import LatticeCompute
import LatticeDomain
import LatticeStore
import LatticeTestSupport
import Logging
import Testing

@testable import LatticeServer

/// A catalog whose fleet starts and stops instantly, so billing tests control time alone.
func instantCatalog(nodes: Int = 4) -> Catalog {
    var catalog = Catalog.builtIn
    catalog.regions[0].clusters[0].startDelaySeconds = 0
    catalog.regions[0].clusters[0].stopDelaySeconds = 0
    catalog.regions[0].clusters[0].nodes =
        (0..<nodes).map { Node(name: "gpu-4090-\($0)", gpuModel: "4090", gpuCount: 8, cpuCores: 1024, memoryGiB: 8192) }
        + (0..<2).map { Node(name: "gpu-h20-\($0)", gpuModel: "H20", gpuCount: 8, cpuCores: 1024, memoryGiB: 16384) }
    return catalog
}

let admin = Principal(namespace: "admin", tokenID: "t", isAdmin: true)

func body(
    sku: String = "66",
    costType: String = "1",
    costTime: String = "",
    coupon: String = "",
    size: Int = 50,
    image: String = "images.neolink-ai.com/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04"
) -> JSONValue {
    .object([
        "Cost": .object([
            "CostType": .string(costType), "DiskSKUID": .string("1"), "GPUSKUID": .string(sku),
            "CostTime": .string(costTime), "CouponID": .string(coupon),
        ]),
        "VolumeMount": .array([.object(["Size": .number(Double(size))])]),
        "namespace": .string("admin"), "displayName": .string("bill"),
        "image": .string(image),
    ])
}

func charges(
    _ store: any Store,
    _ namespace: String = "admin",
    kinds: Set<LedgerEntry.Kind> = [.compute, .prepaid, .storage]
) async throws -> [LedgerEntry] {
    var all: [LedgerEntry] = []
    var page = 1
    while true {
        let (items, total) = try await store.ledger(
            namespace: namespace,
            kinds: kinds,
            page: PageRequest(page: page, pageSize: 100)
        )
        all += items
        if all.count >= total || items.isEmpty {
            return all.sorted { ($0.periodStart ?? .distantPast, $0.id) < ($1.periodStart ?? .distantPast, $1.id) }
        }
        page += 1
    }
}

@Suite(.timeLimit(.minutes(10))) struct BillingTests {
    // 2026-03-10T00:00:00Z: outside every discount window of the built-in catalog except "3".
    let start = RFC3339.parse("2026-03-10T00:00:00Z")!

    @Test func payAsYouGoIsChargedHourlyAndAtStop() async throws {
        let server = try await TestServer(configuration: ServerConfiguration(catalog: instantCatalog()), start: start)
        let created = try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        await server.settle()
        server.clock.advance(by: 3600 + 30)
        await server.meter.tick()
        var compute = try await charges(server.store, kinds: [.compute])
        #expect(compute.map(\.amount) == [Money("2.50")!])
        #expect(compute.first?.periodStart == start)
        try await server.api.powerOff(principal: admin, cluster: "host-cluster", name: created.name, body: .object([:]))
        await server.settle()
        await server.meter.tick()
        compute = try await charges(server.store, kinds: [.compute])
        #expect(compute.map(\.amount) == [Money("2.50")!, Money("0.02")!], "30 s at 2.50/h is 0.0208")
        server.clock.advance(by: 7200)
        await server.meter.tick()
        #expect(try await charges(server.store, kinds: [.compute]).count == 2, "no charge while Stopped")
        server.clock.advance(by: 86400)
        await server.meter.tick()
        let storage = try await charges(server.store, kinds: [.storage])
        #expect(storage.map(\.amount) == [Money("0.50")!], "50 GB for 10 March; 11 March is not over")
        let balance = try await server.store.balance(namespace: "admin")
        #expect(balance == Money("1000")! - Money("2.52")! - Money("0.50")!)
    }

    @Test func replayedMeterPassesNeverChargeTwice() async throws {
        let server = try await TestServer(configuration: ServerConfiguration(catalog: instantCatalog()), start: start)
        _ = try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        await server.settle()
        server.clock.advance(by: 5 * 3600)
        // A pass that read the segment, then lost the answer of its write (a timeout, or a
        // second pass that overlapped it): the same charges arrive again for the old cursor.
        let stale = try await server.store.unsettledSegments().first { $0.kind == .compute }!
        let due = server.meter.charges(
            for: stale,
            in: server.meter.periods(of: stale, now: server.clock.now()),
            now: server.clock.now()
        )
        #expect(due.count == 5)
        #expect(
            try await server.store.applyCharges(
                segmentID: stale.id,
                billedThrough: due.last!.periodEnd!,
                charges: due,
                nextDue: nil
            )
                == 5
        )
        #expect(
            try await server.store.applyCharges(
                segmentID: stale.id,
                billedThrough: due.last!.periodEnd!,
                charges: due,
                nextDue: nil
            )
                == 0
        )
        await server.meter.tick()
        await server.meter.tick()
        let compute = try await charges(server.store, kinds: [.compute])
        #expect(compute.count == 5)
        #expect(Set(compute.map(\.idempotencyKey)).count == 5)
        let moved = try await server.store.unsettledSegments().first { $0.id == stale.id }!
        #expect(moved.billedThrough == due.last!.periodEnd!, "the cursor never moves back")
    }

    @Test func renewChargesTheTermAndARetriedRenewChargesOnce() async throws {
        let server = try await TestServer(
            configuration: ServerConfiguration(catalog: instantCatalog()),
            adminCredit: "250",
            start: start
        )
        let created = try await server.api.createInstance(
            principal: admin,
            cluster: "host-cluster",
            body: body(sku: "101", costType: "4", costTime: "3D")
        )
        #expect(try await server.store.balance(namespace: "admin") == Money("100")!, "3 days at 50.00 up front")
        let renew = { (key: String?) in
            try await server.api.renew(
                principal: admin,
                cluster: "host-cluster",
                name: created.name,
                body: .object(["CostTime": .string("+1D")]),
                idempotencyKey: key
            )
        }
        let first = try await renew("retry-me")
        #expect(first.ScheduleStopTimestamp == "2026-03-14T00:00:00Z")
        let retried = try await renew("retry-me")
        #expect(retried.ScheduleStopTimestamp == "2026-03-14T00:00:00Z", "a retry does not extend again")
        #expect(try await server.store.balance(namespace: "admin") == Money("50")!, "and is not charged again")
        let prepaid = try await charges(server.store, kinds: [.prepaid])
        #expect(prepaid.map(\.amount) == [Money("150")!, Money("50")!])
        #expect(prepaid.last?.periodStart == RFC3339.parse("2026-03-13T00:00:00Z"))
        #expect(prepaid.last?.periodEnd == RFC3339.parse("2026-03-14T00:00:00Z"))

        // Without a key every renew is a new one, charged for its own term.
        let second = try await renew(nil)
        #expect(second.ScheduleStopTimestamp == "2026-03-15T00:00:00Z")
        #expect(try await server.store.balance(namespace: "admin") == .zero)

        // An empty wallet: 402, and the term stays where it was.
        await #expect {
            try await renew("another")
        } throws: { ($0 as? LatticeError)?.kind.status == 402 && ($0 as? LatticeError)?.code == "InsufficientBalance" }
        let after = try await server.api.instance(principal: admin, cluster: "host-cluster", name: created.name)
        #expect(after.ScheduleStopTimestamp == "2026-03-15T00:00:00Z")
        #expect(try await charges(server.store, kinds: [.prepaid]).count == 3)
    }

    @Test func prepaidIsChargedUpFrontAndStoppedAtTheEnd() async throws {
        let server = try await TestServer(configuration: ServerConfiguration(catalog: instantCatalog()), start: start)
        let created = try await server.api.createInstance(
            principal: admin,
            cluster: "host-cluster",
            body: body(sku: "101", costType: "4", costTime: "3D")
        )
        #expect(created.ScheduleStopTimestamp == "2026-03-13T00:00:00Z")
        #expect(try await charges(server.store, kinds: [.prepaid]).map(\.amount) == [Money("150")!])
        await server.settle()
        let renewed = try await server.api.renew(
            principal: admin,
            cluster: "host-cluster",
            name: created.name,
            body: .object(["CostTime": .string("+1D")])
        )
        #expect(renewed.ScheduleStopTimestamp == "2026-03-14T00:00:00Z")
        await #expect(throws: LatticeError.self) {
            try await server.api.renew(
                principal: admin,
                cluster: "host-cluster",
                name: created.name,
                body: .object(["CostTime": .string("+1W")])
            )
        }
        server.clock.advance(by: 4 * 86400)
        await server.meter.tick()
        await server.settle()
        let stopped = try await server.store.instance(name: created.name)!
        #expect(stopped.status == .stopped)
        #expect(stopped.statusReason.hasPrefix("TermEnded"))
        #expect(try await charges(server.store, kinds: [.compute]).isEmpty, "prepaid time is not metered")
        await #expect {
            try await server.api.powerOn(principal: admin, cluster: "host-cluster", name: created.name)
        } throws: { ($0 as? LatticeError)?.code == "TermExpired" }
        _ = try await server.api.renew(
            principal: admin,
            cluster: "host-cluster",
            name: created.name,
            body: .object(["CostTime": .string("+1D")])
        )
        try await server.api.powerOn(principal: admin, cluster: "host-cluster", name: created.name)
    }

    @Test func insufficientBalanceIs402() async throws {
        let server = try await TestServer(
            configuration: ServerConfiguration(catalog: instantCatalog()),
            adminCredit: "2.49",
            start: start
        )
        await #expect {
            try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        } throws: { ($0 as? LatticeError)?.kind.status == 402 && ($0 as? LatticeError)?.code == "InsufficientBalance" }
        await #expect {
            try await server.api.createInstance(
                principal: admin,
                cluster: "host-cluster",
                body: body(sku: "101", costType: "4", costTime: "1D")
            )
        } throws: { ($0 as? LatticeError)?.code == "InsufficientBalance" }
        #expect(try await server.store.nodeUsage().isEmpty, "a refused create reserves nothing")
        _ = try await server.store.appendLedger(
            LedgerEntry(
                id: "c2",
                namespace: "admin",
                kind: .credit,
                amount: Money("0.01")!,
                idempotencyKey: "c2",
                createdAt: start
            )
        )
        _ = try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
    }

    @Test func emptyWalletStopsPayAsYouGoAfterTheGracePeriod() async throws {
        let configuration = ServerConfiguration(catalog: instantCatalog(), depletionGrace: 600)
        let server = try await TestServer(configuration: configuration, adminCredit: "5", start: start)
        let created = try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        await server.settle()
        server.clock.advance(by: 2 * 3600)
        await server.meter.tick()
        #expect(try await server.store.balance(namespace: "admin") == .zero)
        #expect(try await server.store.instance(name: created.name)?.status == .running, "grace period")
        #expect(try await server.store.depletedSince(namespace: "admin") == server.clock.now())
        server.clock.advance(by: 601)
        await server.meter.tick()
        await server.settle()
        let stopped = try await server.store.instance(name: created.name)!
        #expect(stopped.status == .stopped && stopped.statusReason.hasPrefix("InsufficientBalance"))
        #expect(try await server.store.nodeUsage().values.allSatisfy { $0.gpuIndices.isEmpty }, "GPUs released")
        let driver = server.fleet.driver(for: "host-cluster") as! SimulatedFleetDriver
        #expect(await driver.hasVolume(stopped.volume.name), "the data is kept")
        await #expect {
            try await server.api.powerOn(principal: admin, cluster: "host-cluster", name: created.name)
        } throws: { ($0 as? LatticeError)?.code == "InsufficientBalance" }
    }

    @Test func aTopUpDuringTheGracePeriodKeepsInstancesRunning() async throws {
        let configuration = ServerConfiguration(catalog: instantCatalog(), depletionGrace: 600)
        let server = try await TestServer(configuration: configuration, adminCredit: "5", start: start)
        let created = try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        await server.settle()
        server.clock.advance(by: 2 * 3600)
        await server.meter.tick()
        #expect(try await server.store.depletedSince(namespace: "admin") != nil)
        server.clock.advance(by: 300)
        _ = try await server.api.credit(principal: admin, namespace: "admin", body: .object(["amount": .string("100")]))
        await server.meter.tick()
        #expect(try await server.store.depletedSince(namespace: "admin") == nil, "the top-up ends the depletion")
        server.clock.advance(by: 400)
        await server.meter.tick()
        await server.settle()
        #expect(try await server.store.instance(name: created.name)?.status == .running)
    }

    @Test func theGracePeriodSurvivesARestart() async throws {
        let configuration = ServerConfiguration(catalog: instantCatalog(), depletionGrace: 600)
        let server = try await TestServer(configuration: configuration, adminCredit: "5", start: start)
        let created = try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        await server.settle()
        server.clock.advance(by: 2 * 3600)
        await server.meter.tick()
        let depleted = server.clock.now()
        server.clock.advance(by: 500)
        // A restarted server has a new meter that remembers nothing but what the store holds.
        let restarted = Meter(
            store: server.store,
            clock: server.clock,
            configuration: configuration,
            logger: Logger(label: "test")
        )
        await restarted.tick()
        #expect(try await server.store.depletedSince(namespace: "admin") == depleted)
        server.clock.advance(by: 101)
        await restarted.tick()
        await server.settle()
        let stopped = try await server.store.instance(name: created.name)!
        #expect(stopped.status == .stopped, "600 s after the wallet ran out, not 600 s after the restart")
        #expect(
            stopped.statusReason == "InsufficientBalance: the wallet ran out at \(TimeFormatter().format(depleted))"
        )
    }

    @Test func stoppedDataIsReleasedAfterRetention() async throws {
        let configuration = ServerConfiguration(catalog: instantCatalog(), retention: 15 * 86400)
        let server = try await TestServer(configuration: configuration, start: start)
        let created = try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        await server.settle()
        try await server.api.powerOff(principal: admin, cluster: "host-cluster", name: created.name, body: .object([:]))
        await server.settle()
        let stopped = try await server.api.instance(principal: admin, cluster: "host-cluster", name: created.name)
        #expect(stopped.retentionUntil == "2026-03-25T00:00:00Z")
        server.clock.advance(by: 15 * 86400 - 1)
        await server.meter.tick()
        #expect(try await server.store.instance(name: created.name)?.status == .stopped)
        server.clock.advance(by: 1)
        await server.meter.tick()
        await server.settle()
        #expect(try await server.store.instance(name: created.name) == nil)
        let driver = server.fleet.driver(for: "host-cluster") as! SimulatedFleetDriver
        #expect(await !driver.hasVolume(stopped.volumeMounts[1].PVCName))
        await server.meter.tick()
        #expect(try await server.store.unsettledSegments().isEmpty, "every segment is charged to the end")
    }

    @Test func retentionSaysWhyAndChargesTheLastDiskDayToTheSecond() async throws {
        let configuration = ServerConfiguration(catalog: instantCatalog(), retention: 2 * 86400)
        let server = try await TestServer(configuration: configuration, start: start)
        let created = try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        await server.settle()
        server.clock.advance(by: 10 * 3600)
        try await server.api.powerOff(principal: admin, cluster: "host-cluster", name: created.name, body: .object([:]))
        await server.settle()
        let stopped = try await server.api.instance(principal: admin, cluster: "host-cluster", name: created.name)
        #expect(stopped.retentionUntil == "2026-03-12T10:00:00Z", "--retention-days counts from the stop")
        server.clock.advance(by: 2 * 86400)
        await server.meter.tick()
        let expiring = try await server.store.instance(name: created.name)!
        #expect(expiring.status == .deleting)
        #expect(expiring.statusReason == "RetentionExpired: data kept 2 days after stop")
        await server.settle()
        #expect(try await server.store.instance(name: created.name) == nil)
        server.clock.advance(by: 86400)
        await server.meter.tick()
        // 10, 11 and 12 March: the disk existed on each, for the last one until 10:00 (10 hours
        // of 50 GB at 0.01/GB/day: 0.2083, so 0.21).
        let storage = try await charges(server.store, kinds: [.storage])
        #expect(
            storage.map(\.periodStart)
                == ["2026-03-10", "2026-03-11", "2026-03-12"].map { RFC3339.parse("\($0)T00:00:00Z") }
        )
        #expect(storage.map(\.amount) == [Money("0.50")!, Money("0.50")!, Money("0.21")!])
        #expect(try await server.store.unsettledSegments().isEmpty)
    }

    @Test func couponsApplyToPayAsYouGo() async throws {
        let server = try await TestServer(
            configuration: ServerConfiguration(catalog: instantCatalog()),
            adminCredit: "1",
            start: start
        )
        _ = try await server.api.createCoupon(
            principal: admin,
            body: .object([
                "id": .string("WELCOME"), "kind": .string("amount"), "value": .string("10"), "maxUses": .number(1),
            ])
        )
        _ = try await server.api.createCoupon(
            principal: admin,
            body: .object([
                "id": .string("HALF"), "kind": .string("percent"), "value": .number(50),
                "expiresAt": .string("2026-03-11T00:00:00Z"),
            ])
        )
        // 1.00 does not cover an hour at 2.50, but the 10.00 coupon does.
        _ = try await server.api.createInstance(
            principal: admin,
            cluster: "host-cluster",
            body: body(coupon: "WELCOME")
        )
        #expect(try await server.store.balance(namespace: "admin") == Money("11")!)
        await #expect {
            try await server.api.createInstance(
                principal: admin,
                cluster: "host-cluster",
                body: body(coupon: "WELCOME")
            )
        } throws: { ($0 as? LatticeError)?.code == "CouponUsedUp" }
        await #expect {
            try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body(coupon: "NOPE"))
        } throws: { ($0 as? LatticeError)?.code == "UnknownCoupon" }
        await #expect {
            try await server.api.createInstance(
                principal: admin,
                cluster: "host-cluster",
                body: body(sku: "101", costType: "4", costTime: "1D", coupon: "HALF")
            )
        } throws: { ($0 as? LatticeError)?.message.contains("Cost.CouponID") == true }
        let half = try await server.api.createInstance(
            principal: admin,
            cluster: "host-cluster",
            body: body(coupon: "HALF")
        )
        await server.settle()
        server.clock.advance(by: 3600)
        await server.meter.tick()
        let compute = try await charges(server.store, kinds: [.compute]).filter { $0.instanceName == half.name }
        #expect(compute.map(\.amount) == [Money("1.25")!])
        server.clock.advance(by: 86400)
        await #expect {
            try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body(coupon: "HALF"))
        } throws: { ($0 as? LatticeError)?.code == "CouponExpired" }
    }

    @Test func aRunningInstanceKeepsTheUnitPriceItStartedWith() async throws {
        var catalog = instantCatalog()
        let index = catalog.gpuSkus.firstIndex { $0.id == "66" }!
        let windowStart = start.addingTimeInterval(3600)
        catalog.gpuSkus[index].discount = Discount(
            id: "d",
            ratio: Ratio("0.5")!,
            start: windowStart,
            end: windowStart.addingTimeInterval(3600)
        )
        let server = try await TestServer(configuration: ServerConfiguration(catalog: catalog), start: start)
        let before = try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        await server.settle()
        server.clock.advance(by: 3600 + 60)
        // Created inside the window: 1.25 for as long as it runs, even after the window closes.
        let inside = try await server.api.createInstance(principal: admin, cluster: "host-cluster", body: body())
        await server.settle()
        server.clock.advance(by: 3 * 3600)
        await server.meter.tick()
        let lines = try await charges(server.store, kinds: [.compute])
        // The one created before the window pays the list price it started with, in and after it.
        #expect(
            lines.filter { $0.instanceName == before.name }.map(\.amount) == Array(repeating: Money("2.50")!, count: 4)
        )
        #expect(
            lines.filter { $0.instanceName == inside.name }.map(\.amount) == Array(repeating: Money("1.25")!, count: 3)
        )
    }
}
