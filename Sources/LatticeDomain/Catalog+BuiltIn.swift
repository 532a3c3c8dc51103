import Foundation

extension Catalog {
    /// The seed's own identifiers, so its Python examples run against `lattice serve`
    /// with only host, user id and token substituted (SPEC §8).
    public static let builtInRegionID = "14c5a9e3-0d09-4aa0-99d3-c096b80cceaa"

    /// The default catalog: one region `北京一区`, one simulated cluster `host-cluster`
    /// with H20 and 4090 nodes, pay-as-you-go and prepaid SKUs, disk SKU `1`.
    public static var builtIn: Catalog {
        let region = builtInRegionID
        let cluster = "host-cluster"
        let seedDiscountStart = RFC3339.parse("2024-08-15T15:26:38+08:00")!
        let seedDiscountEnd = RFC3339.parse("2024-10-01T00:05:00+08:00")!
        let launchStart = RFC3339.parse("2026-01-01T00:00:00+08:00")!
        let launchEnd = RFC3339.parse("2027-12-31T23:59:59+08:00")!

        var nodes: [Node] = []
        for i in 1...2 {
            nodes.append(Node(name: "gpu-h20-0\(i)", gpuModel: "H20", gpuCount: 8, cpuCores: 192, memoryGiB: 1536))
        }
        for i in 1...4 {
            nodes.append(Node(name: "gpu-4090-0\(i)", gpuModel: "4090", gpuCount: 8, cpuCores: 128, memoryGiB: 768))
        }

        func h20(_ id: String, gpus: Int, selling: SellingType, price: String, discount: Discount?) -> GPUSKU {
            GPUSKU(
                id: id,
                name: "H20",
                regionID: region,
                clusterName: cluster,
                gpuModel: "H20",
                gpuResourceKey: "nvidia.com/gpu-h20",
                gpuCount: gpus,
                gpuMemoryGiB: 96,
                cpuArch: "x86-64",
                cpuSeries: "Intel Xeon",
                cpuVendor: "Intel",
                cpuCores: 24 * gpus,
                memoryGiB: 192 * gpus,
                systemStorageGiB: 30,
                dataStorageGiB: 50,
                sellingType: selling,
                price: Money(price)!,
                discount: discount
            )
        }
        func rtx4090(_ id: String, gpus: Int, selling: SellingType, price: String, discount: Discount?) -> GPUSKU {
            GPUSKU(
                id: id,
                name: "4090",
                regionID: region,
                clusterName: cluster,
                gpuModel: "4090",
                gpuResourceKey: "nvidia.com/gpu-4090",
                gpuCount: gpus,
                gpuMemoryGiB: 24,
                cpuArch: "x86-64",
                cpuSeries: "Intel Xeon",
                cpuVendor: "Intel",
                cpuCores: 16 * gpus,
                memoryGiB: 96 * gpus,
                systemStorageGiB: 30,
                dataStorageGiB: 50,
                sellingType: selling,
                price: Money(price)!,
                discount: discount
            )
        }
        let launch = Discount(id: "10001", ratio: Ratio("0.8")!, start: launchStart, end: launchEnd)
        let gpuSkus = [
            h20(
                "2",
                gpus: 1,
                selling: .payAsYouGo,
                price: "10",
                discount: Discount(id: "10000", ratio: Ratio("0.48")!, start: seedDiscountStart, end: seedDiscountEnd)
            ),
            rtx4090("66", gpus: 1, selling: .payAsYouGo, price: "2.50", discount: nil),
            rtx4090("67", gpus: 4, selling: .payAsYouGo, price: "10", discount: nil),
            h20("3", gpus: 8, selling: .payAsYouGo, price: "80", discount: launch),
            rtx4090("101", gpus: 1, selling: .daily, price: "50", discount: nil),
            rtx4090("102", gpus: 1, selling: .weekly, price: "300", discount: nil),
            h20("103", gpus: 1, selling: .monthly, price: "5000", discount: nil),
        ]
        let harbor = "images.neolink-ai.com"
        return Catalog(
            regions: [
                Region(
                    id: region,
                    name: "北京一区",
                    harborAddr: harbor,
                    howlerID: "69e377a7-99d1-cca0-ef58-cfce14a336b2",
                    createdAt: RFC3339.parse("2024-07-15T12:00:23.227+08:00")!,
                    clusters: [Cluster(name: cluster, driver: .simulated, nodes: nodes)]
                )
            ],
            gpuSkus: gpuSkus,
            diskSkus: [
                DiskSKU(
                    id: "1",
                    name: "shared-filesystem",
                    regionID: region,
                    type: "shared-filesystem",
                    pricePerGBDay: Money("0.01")!
                )
            ],
            images: [
                OfficialImage(
                    name: "\(harbor)/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04",
                    sizeBytes: 9_876_543_210
                ),
                OfficialImage(
                    name: "\(harbor)/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04",
                    sizeBytes: 10_234_567_890
                ),
                OfficialImage(name: "\(harbor)/matrixdc/ubuntu:22.04-cuda12.1.0", sizeBytes: 3_456_789_012),
            ]
        )
    }
}
