import Foundation
import LatticeDomain
import Testing

@Suite(.timeLimit(.minutes(10))) struct MoneyTests {
    @Test func parsesAndFormatsExactly() {
        #expect(Money("12")?.description == "12.00")
        #expect(Money("2.5")?.description == "2.50")
        #expect(Money("0.0001")?.description == "0.0001")
        #expect(Money("-3.10")?.description == "-3.10")
        #expect(Money("1.23456") == nil)
        #expect(Money("abc") == nil)
        #expect(Money("") == nil)
        #expect(Money("1e5") == nil)
    }

    @Test func addsWithoutFloatingPointDrift() {
        var total = Money.zero
        for _ in 0..<10 { total = total + Money("0.1")! }
        #expect(total == Money("1")!)
    }

    @Test func appliesRatioWithRounding() {
        #expect(Money("10")!.applying(Ratio("0.48")!) == Money("4.8")!)
        #expect(Money("0.0001")!.applying(Ratio("0.5")!) == Money("0.0001")!)
        #expect(Money("2.50")!.applying(Ratio.one) == Money("2.50")!)
    }
}

@Suite(.timeLimit(.minutes(10))) struct PricingTests {
    let start = Date(timeIntervalSince1970: 1_000_000)
    let end = Date(timeIntervalSince1970: 2_000_000)

    var sku: GPUSKU {
        GPUSKU(
            id: "2",
            name: "H20",
            regionID: "r",
            clusterName: "c",
            gpuModel: "H20",
            gpuResourceKey: "k",
            gpuCount: 1,
            gpuMemoryGiB: 96,
            cpuCores: 24,
            memoryGiB: 192,
            sellingType: .payAsYouGo,
            price: Money("10")!,
            discount: Discount(id: "d", ratio: Ratio("0.48")!, start: start, end: end)
        )
    }

    @Test func discountAppliesInsideTheWindowBoundariesIncluded() {
        #expect(Pricing.effectivePrice(of: sku, at: start) == Money("4.80")!)
        #expect(Pricing.effectivePrice(of: sku, at: end) == Money("4.80")!)
        #expect(Pricing.effectivePrice(of: sku, at: start.addingTimeInterval(10)) == Money("4.80")!)
    }

    @Test func listPriceOutsideTheWindow() {
        #expect(Pricing.effectivePrice(of: sku, at: start.addingTimeInterval(-1)) == Money("10")!)
        #expect(Pricing.effectivePrice(of: sku, at: end.addingTimeInterval(1)) == Money("10")!)
        var plain = sku
        plain.discount = nil
        #expect(Pricing.effectivePrice(of: plain, at: start) == Money("10")!)
    }

    @Test(arguments: ["1D", "3D", "2W", "1M", "+3D", "12m"])
    func parsesCostTime(_ text: String) throws {
        let term = try CostTime.parse(text)
        #expect(term.count >= 1)
        #expect(term.isExtension == text.hasPrefix("+"))
    }

    @Test(arguments: ["0D", "3X", "-1D", "D", "", "1.5D", "3 D", "++3D", "1001D"])
    func rejectsBadCostTime(_ text: String) {
        #expect(throws: LatticeError.self) { try CostTime.parse(text) }
        do { _ = try CostTime.parse(text) } catch let error as LatticeError {
            #expect(error.message.contains("Cost.CostTime"))
        } catch {}
    }

    @Test func monthTermsFollowTheCalendar() throws {
        let utc = TimeZone(secondsFromGMT: 0)!
        let jan31 = RFC3339.parse("2026-01-31T10:00:00Z")!
        #expect(try CostTime.parse("1M").end(from: jan31, timeZone: utc) == RFC3339.parse("2026-02-28T10:00:00Z")!)
        let dec15 = RFC3339.parse("2026-12-15T00:00:00Z")!
        #expect(try CostTime.parse("1M").end(from: dec15, timeZone: utc) == RFC3339.parse("2027-01-15T00:00:00Z")!)
        #expect(try CostTime.parse("2W").end(from: dec15, timeZone: utc) == RFC3339.parse("2026-12-29T00:00:00Z")!)
    }
}

@Suite(.timeLimit(.minutes(10))) struct TimeFormatterTests {
    @Test func formatsWithTheConfiguredOffset() {
        let date = RFC3339.parse("2024-09-02T10:34:33Z")!
        #expect(TimeFormatter().format(date) == "2024-09-02T10:34:33Z")
        #expect(TimeFormatter(zone: "+08:00")!.format(date) == "2024-09-02T18:34:33+08:00")
        #expect(TimeFormatter(zone: "Asia/Shanghai")!.format(date) == "2024-09-02T18:34:33+08:00")
        #expect(TimeFormatter(zone: "-05:30")!.format(date) == "2024-09-02T05:04:33-05:30")
        #expect(TimeFormatter().format(nil) == "0001-01-01T00:00:00Z")
        #expect(TimeFormatter(zone: "Mars/Olympus") == nil)
    }
}
