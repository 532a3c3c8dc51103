import Foundation

/// An admin's change of a GPU SKU's price while serving (SPEC §9): the list price and the
/// discount the SKU has from `at` on. It prices what is created or powered on afterwards;
/// a running instance keeps the `unit-price` it started with until it stops. Every change
/// is kept, and the catalog file's prices are the starting point they apply to, in order.
public struct PriceChange: Sendable, Codable, Equatable {
    public var skuID: String
    public var price: Money
    public var discount: Discount?
    public var at: Date
    /// The admin namespace that made it.
    public var actor: String

    public init(skuID: String, price: Money, discount: Discount?, at: Date, actor: String) {
        self.skuID = skuID
        self.price = price
        self.discount = discount
        self.at = at
        self.actor = actor
    }
}

/// `PUT /admin/skus/computings/{skuId}`: any of `price`, `ratio`, `discountStartTime`,
/// `discountEndTime`; what is absent keeps its value. A ratio needs a window (given, or the
/// SKU's own); `"ratio": 1` with no window given ends the discount.
public struct PriceChangeRequest: Sendable, Equatable {
    public var price: Money?
    public var ratio: Ratio?
    public var discountStart: Date?
    public var discountEnd: Date?

    public init(json: JSONValue) throws {
        let body = try JSONFields(json)
        price = try MoneyField.read(body, "price")
        if let price {
            guard price > .zero else { throw LatticeError.invalidField("price", "must be greater than 0") }
            try MoneyField.bounded(price, "price")
        }
        ratio = try Self.ratio(body)
        discountStart = try Self.time(body, "discountStartTime")
        discountEnd = try Self.time(body, "discountEndTime")
        guard price != nil || ratio != nil || discountStart != nil || discountEnd != nil else {
            throw LatticeError.invalidField(
                "price",
                "give at least one of price, ratio, discountStartTime, discountEndTime"
            )
        }
    }

    static func ratio(_ body: JSONFields) throws -> Ratio? {
        guard let value = body.present("ratio") else { return nil }
        let refused = LatticeError.invalidField(
            "ratio",
            "must be a number above 0 and at most 1, with up to 4 decimals"
        )
        let ratio: Ratio
        switch value {
        case .number(let n):
            // A JSON number is binary: 0.3 arrives as 0.29999…; to the nearest ten-thousandth,
            // if it is one.
            let scaled = n * Double(Ratio.scale)
            guard scaled.isFinite, abs(scaled - scaled.rounded()) < 1e-6, abs(scaled) <= 1e9 else { throw refused }
            ratio = Ratio(units: Int64(scaled.rounded()))
        case .string(let text):
            guard let parsed = Ratio(text) else { throw refused }
            ratio = parsed
        default: throw refused
        }
        guard ratio.units > 0, ratio.units <= Ratio.scale else { throw refused }
        return ratio
    }

    static func time(_ body: JSONFields, _ key: String) throws -> Date? {
        guard let value = body.present(key) else { return nil }
        guard case .string(let text) = value, let date = RFC3339.parse(text) else {
            throw LatticeError.invalidField(key, "must be an RFC 3339 time such as 2026-12-24T00:00:00+08:00")
        }
        return date
    }

    /// The change this request makes to `sku` at `at`, or why it cannot.
    public func change(of sku: GPUSKU, at: Date, actor: String) throws -> PriceChange {
        var discount = sku.discount
        if let ratio, ratio == .one, discountStart == nil, discountEnd == nil {
            discount = nil
        } else if ratio != nil || discountStart != nil || discountEnd != nil {
            guard let ratio = ratio ?? discount?.ratio else {
                throw LatticeError.invalidField(
                    "ratio",
                    "SKU '\(sku.id)' has no discount: give a ratio with its window"
                )
            }
            guard let start = discountStart ?? discount?.start, let end = discountEnd ?? discount?.end else {
                throw LatticeError.invalidField(
                    "discountStartTime",
                    "a discount needs discountStartTime and discountEndTime"
                )
            }
            guard start < end else {
                throw LatticeError.invalidField("discountEndTime", "must be after discountStartTime")
            }
            discount = Discount(id: discount?.id ?? "price-\(sku.id)", ratio: ratio, start: start, end: end)
        }
        return PriceChange(skuID: sku.id, price: price ?? sku.price, discount: discount, at: at, actor: actor)
    }
}

extension Catalog {
    /// The catalog with `changes` applied in order; a change for a SKU the catalog no
    /// longer has is skipped.
    public func applying(_ changes: [PriceChange]) -> Catalog {
        guard !changes.isEmpty else { return self }
        var catalog = self
        var index: [String: Int] = [:]
        for (position, sku) in catalog.gpuSkus.enumerated() { index[sku.id] = position }
        for change in changes {
            guard let position = index[change.skuID] else { continue }
            catalog.gpuSkus[position].price = change.price
            catalog.gpuSkus[position].discount = change.discount
        }
        return catalog
    }
}
