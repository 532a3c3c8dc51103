import Foundation
import LatticeDomain
import Testing

@testable import LatticeServer

/// `lattice host init`'s pure part: what nvidia-smi says, and the catalog made from it.
@Suite(.timeLimit(.minutes(10))) struct HostCatalogTests {
    let csv = """
        name, memory.total [MiB]
        NVIDIA H100 80GB HBM3, 81559 MiB
        NVIDIA H100 80GB HBM3, 81559 MiB
        NVIDIA H100 80GB HBM3, 81559 MiB
        NVIDIA H100 80GB HBM3, 81559 MiB
        NVIDIA H100 80GB HBM3, 81559 MiB
        """

    @Test func nvidiaSmiIsReadAndModelsGetKeys() throws {
        let gpus = try HostFacts.parseGPUs(csv: csv)
        #expect(gpus.count == 5 && gpus[0] == HostFacts.GPU(name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559))
        #expect(HostFacts.modelKey("NVIDIA GeForce RTX 4090") == "RTX-4090")
        #expect(HostFacts.modelKey("NVIDIA A100-SXM4-80GB") == "A100-SXM4-80GB")
        #expect(throws: LatticeError.self) { try HostFacts.parseGPUs(csv: "name, memory.total\nbroken line") }
    }

    @Test func theCatalogSellsOneTwoAndFourOfFiveGPUsAndLatticeReadsIt() throws {
        let facts = HostFacts(
            hostname: "gpu-07",
            gpus: try HostFacts.parseGPUs(csv: csv),
            cpuCores: 100,
            memoryGiB: 1000,
            engineURL: "unix:///var/run/docker.sock",
            gpuRequests: "docker",
            prices: ["H100-80GB-HBM3": Money("4.00")!]
        )
        let text = facts.catalogYAML()
        #expect(text == facts.catalogYAML(), "the same facts, the same text")
        let catalog = try CatalogLoader.parse(text)
        #expect(catalog.gpuSkus.map(\.id) == ["h100-80gb-hbm3-1", "h100-80gb-hbm3-2", "h100-80gb-hbm3-4"])
        #expect(catalog.gpuSkus.map(\.price) == [Money("4.00")!, Money("8.00")!, Money("16.00")!])
        #expect(catalog.gpuSkus.map(\.cpuCores) == [20, 40, 80])
        #expect(catalog.gpuSkus.first?.gpuMemoryGiB == 80)
        let cluster = try #require(catalog.clusters.first)
        #expect(cluster.name == "gpu-07" && cluster.driver == .engine && cluster.nodes.first?.gpuCount == 5)
        #expect(!text.contains("PLACEHOLDER"))
        var unpriced = facts
        unpriced.prices = [:]
        #expect(unpriced.catalogYAML().contains("PLACEHOLDER PRICE"))
        #expect(try CatalogLoader.parse(unpriced.catalogYAML()).gpuSkus.first?.price == HostFacts.placeholderPrice)
    }
}
