import Foundation
import LatticeDomain
import Testing

/// SPEC §9's price changes, decided in the domain: what a request changes, and what it refuses.
@Suite(.timeLimit(.minutes(10))) struct PriceChangeTests {
    let at = RFC3339.parse("2026-06-01T00:00:00Z")!
    let windowStart = RFC3339.parse("2026-01-01T00:00:00Z")!
    let windowEnd = RFC3339.parse("2027-01-01T00:00:00Z")!

    var sku: GPUSKU { Catalog.builtIn.gpuSku(id: "66")! }

    func change(_ body: [String: JSONValue], of sku: GPUSKU? = nil) throws -> PriceChange {
        try PriceChangeRequest(json: .object(body)).change(of: sku ?? self.sku, at: at, actor: "admin")
    }

    @Test func aPriceAloneKeepsTheDiscount() throws {
        var discounted = sku
        discounted.discount = Discount(id: "d", ratio: Ratio("0.8")!, start: windowStart, end: windowEnd)
        let next = try change(["price": .string("3.00")], of: discounted)
        #expect(next.price == Money("3")! && next.discount == discounted.discount)
        #expect(next.at == at && next.actor == "admin" && next.skuID == "66")
    }

    @Test func aRatioNeedsAWindowAndRatioOneEndsTheDiscount() throws {
        let opened = try change([
            "ratio": .number(0.3), "discountStartTime": .string("2026-01-01T00:00:00Z"),
            "discountEndTime": .string("2027-01-01T00:00:00Z"),
        ])
        #expect(opened.discount == Discount(id: "price-66", ratio: Ratio("0.3")!, start: windowStart, end: windowEnd))
        var discounted = sku
        discounted.discount = opened.discount
        #expect(try change(["ratio": .string("0.5")], of: discounted).discount?.ratio == Ratio("0.5")!)
        #expect(try change(["ratio": .number(1)], of: discounted).discount == nil)
        #expect(throws: LatticeError.self) { try change(["ratio": .number(0.5)]) }
    }

    @Test func badInputNamesItsField() {
        let cases: [([String: JSONValue], String)] = [
            ([:], "price"),
            (["price": .string("0")], "price"),
            (["price": .string("-2")], "price"),
            (["ratio": .number(0)], "ratio"),
            (["ratio": .number(1.0001)], "ratio"),
            (["ratio": .number(0.12345)], "ratio"),
            (["ratio": .bool(true)], "ratio"),
            (["discountStartTime": .string("soon")], "discountStartTime"),
            (
                [
                    "ratio": .number(0.5), "discountStartTime": .string("2027-01-01T00:00:00Z"),
                    "discountEndTime": .string("2026-01-01T00:00:00Z"),
                ], "discountEndTime"
            ),
        ]
        for (body, field) in cases {
            do {
                _ = try change(body)
                Issue.record("accepted \(body)")
            } catch let error as LatticeError {
                #expect(error.message.contains(field), "\(body): \(error.message)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test func changesApplyInOrderAndSkipSKUsTheCatalogNoLongerHas() {
        let catalog = Catalog.builtIn
        let first = PriceChange(skuID: "66", price: Money("3")!, discount: nil, at: at, actor: "admin")
        let second = PriceChange(skuID: "66", price: Money("4")!, discount: nil, at: at, actor: "admin")
        let gone = PriceChange(skuID: "no-such-sku", price: Money("1")!, discount: nil, at: at, actor: "admin")
        let applied = catalog.applying([first, gone, second])
        #expect(applied.gpuSku(id: "66")?.price == Money("4")!)
        #expect(applied.gpuSkus.count == catalog.gpuSkus.count)
        #expect(applied.gpuSku(id: "67") == catalog.gpuSku(id: "67"))
    }
}
