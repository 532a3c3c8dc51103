import Foundation
import LatticeDomain
import LatticeStore

/// Prices that change while serving (SPEC §9), and the catalog file read again on SIGHUP.
extension LatticeAPI {
    /// Reads every price change from the store and applies them over the catalog file's.
    func loadPrices() async throws {
        live.setChanges(try await store.priceChanges(skuID: nil))
    }

    /// `loadPrices`, for the change feed: a failure is logged and the prices in force stay.
    func reloadPrices() async {
        do {
            try await loadPrices()
        } catch {
            logger.warning("cannot read the price changes; the prices in force stay", metadata: ["error": "\(error)"])
        }
    }

    /// `PUT /admin/skus/computings/{skuId}`: the SKU as `GET /skus/computings` shows it after
    /// the change.
    public func changePrice(principal: Principal, skuID: String, body: JSONValue) async throws -> GPUSKUWire {
        try requireAdmin(principal)
        guard let sku = catalog.gpuSku(id: skuID) else { throw LatticeError.notFound("GPU SKU '\(skuID.prefix(80))'") }
        let request = try PriceChangeRequest(json: body)
        let change = try request.change(of: sku, at: clock.now(), actor: principal.actor)
        try await store.appendPriceChange(change)
        try await loadPrices()
        return try await gpuSkuWire(skuID)
    }

    /// `GET /admin/skus/computings/{skuId}/prices`: every change of the SKU's price, newest
    /// first, after the catalog file's own (the last entry, `actor` "catalog").
    public func priceHistory(principal: Principal, skuID: String, page: PageRequest) async throws -> Page<PriceWire> {
        try requireAdmin(principal)
        guard let fileSKU = live.file.gpuSku(id: skuID) ?? catalog.gpuSku(id: skuID) else {
            throw LatticeError.notFound("GPU SKU '\(skuID.prefix(80))'")
        }
        let time = wire.time
        let changes = try await store.priceChanges(skuID: skuID).reversed().map { PriceWire($0, time: time) }
        let start = PriceChange(
            skuID: skuID,
            price: fileSKU.price,
            discount: fileSKU.discount,
            at: live.loadedAt,
            actor: "catalog"
        )
        return Self.page(changes + [PriceWire(start, time: time)], page)
    }

    func gpuSkuWire(_ skuID: String) async throws -> GPUSKUWire {
        guard let answer = try await gpuSkus(regionID: nil).first(where: { $0.skusID == skuID }) else {
            throw LatticeError.notFound("GPU SKU '\(skuID.prefix(80))'")
        }
        return answer
    }

    /// SIGHUP: the catalog file read and validated again. SKUs, prices, images and regions
    /// change at once (the admins' price changes still apply over it); clusters and nodes
    /// are the compute drivers', made at start, so a change to them is logged and waits for
    /// a restart. A file that does not load is refused, and the catalog in force stays.
    func reloadCatalog(path: String) throws -> String? {
        let next = try CatalogLoader.load(path: path)
        let current = live.file
        live.replaceFile(next, at: clock.now())
        guard next.clusters != current.clusters else { return nil }
        return "clusters or nodes changed in \(path): they take effect at the next restart"
    }
}

/// One price of a SKU in `GET /admin/skus/computings/{skuId}/prices`.
public struct PriceWire: Codable, Sendable, Equatable {
    public var skuId: String
    public var price: String
    public var ratio: String
    public var discountStartTime: String
    public var discountEndTime: String
    public var changedAt: String
    /// The admin namespace that made the change, or `catalog` for the catalog file's price.
    public var actor: String

    init(_ change: PriceChange, time: TimeFormatter) {
        skuId = change.skuID
        price = change.price.description
        ratio = change.discount?.ratio.description ?? "1"
        discountStartTime = time.format(change.discount?.start)
        discountEndTime = time.format(change.discount?.end)
        changedAt = time.format(change.at)
        actor = change.actor
    }
}
