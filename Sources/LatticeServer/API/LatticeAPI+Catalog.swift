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
        let nodes = try await placeableNodes()
        let now = clock.now()
        var answer: [GPUSKUWire] = []
        for sku in skus {
            let regionClusters = Set(catalog.region(id: sku.regionID)?.clusters.map(\.name) ?? [])
            let free = try await store.freeGPUs(model: sku.gpuModel, clusters: regionClusters, nodes: nodes)
            answer.append(
                GPUSKUWire(
                    sku,
                    regionName: catalog.region(id: sku.regionID)?.name ?? "",
                    remainGPUCount: free,
                    now: now,
                    context: wire
                )
            )
        }
        return answer
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

    /// `DELETE /images?name=<reference>`: forgets one of the caller's snapshots and removes
    /// it from every engine that keeps images. Official images and snapshots being saved
    /// cannot be deleted; another namespace's answers 404 like a missing one.
    public func deleteImage(principal: Principal, reference: String?) async throws {
        guard let reference, !reference.isEmpty else { throw LatticeError.missingField("name") }
        if catalog.images.contains(where: { $0.name == reference }) {
            throw LatticeError.forbidden("name: '\(reference)' is an official image; only snapshots can be deleted")
        }
        guard
            let image = try await store.images(namespace: principal.namespace).first(where: {
                $0.reference == reference
            })
        else { throw LatticeError.notFound("image '\(reference)'") }
        guard image.status != .saving else {
            throw LatticeError(.conflict, code: "InvalidState", "image '\(reference)' is still being saved")
        }
        _ = try await store.deleteImage(namespace: principal.namespace, reference: reference)
        for (cluster, driver) in fleet.drivers {
            do {
                try await driver.removeImage(reference: reference)
            } catch {
                logger.warning(
                    "snapshot forgotten but not removed from the engine",
                    metadata: ["cluster": "\(cluster)", "image": "\(reference)", "error": "\(error)"]
                )
            }
        }
    }
}
