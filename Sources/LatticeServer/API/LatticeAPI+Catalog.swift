import Foundation
import LatticeDomain

extension LatticeAPI {
    /// `GET /regions`: one entry per cluster, as the seed shows (a bare array).
    public func regions() -> [RegionWire] {
        catalog.regions.flatMap { region in region.clusters.map { RegionWire(region, cluster: $0, context: wire) } }
    }

    func requireRegion(_ id: String?) throws -> Region? {
        guard let id, !id.isEmpty else { return nil }
        guard let region = catalog.region(reference: id) else { throw LatticeError.notFound("region_id '\(id)'") }
        return region
    }

    /// `GET /skus/computings`: every SKU (of one region with `region_id`) with its live
    /// `remainGPUCount`: free GPUs of its model on the healthy nodes of its region.
    public func gpuSkus(regionID: String?) async throws -> [GPUSKUWire] {
        let region = try requireRegion(regionID)
        let skus = catalog.gpuSkus.filter { region == nil || $0.regionID == region!.id }
        let usage = try await store.nodeUsage()
        let nodes = await fleet.nodes()
        let now = clock.now()
        return skus.map { sku in
            let regionClusters = Set(catalog.region(id: sku.regionID)?.clusters.map(\.name) ?? [])
            let capacities = nodes.filter { regionClusters.contains($0.cluster) }.map {
                NodeCapacity($0, usage: usage[$0.node.name])
            }
            let free = PlacementPolicy.freeGPUs(model: sku.gpuModel, on: capacities)
            return GPUSKUWire(
                sku,
                regionName: catalog.region(id: sku.regionID)?.name ?? "",
                remainGPUCount: free,
                now: now,
                context: wire
            )
        }
    }

    /// `GET /skus/disks`.
    public func diskSkus(regionID: String?, page: PageRequest) throws -> Page<DiskSKUWire> {
        let region = try requireRegion(regionID)
        let disks = catalog.diskSkus.filter { region == nil || $0.regionID.isEmpty || $0.regionID == region!.id }
        return Self.page(disks.map(DiskSKUWire.init), page)
    }

    /// `GET /images`: official images, then the caller's snapshots.
    public func images(principal: Principal, page: PageRequest) async throws -> Page<ImageWire> {
        let official = catalog.images.map {
            ImageWire(
                official: $0,
                createdAt: catalog.regions.first?.createdAt ?? Date(timeIntervalSince1970: 0),
                context: wire
            )
        }
        let own = try await store.images(namespace: principal.namespace).map { ImageWire(snapshot: $0, context: wire) }
        return Self.page(official + own, page)
    }
}
