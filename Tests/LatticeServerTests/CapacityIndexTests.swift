import Foundation
import LatticeCompute
import LatticeDomain
import LatticeStore
import LatticeStoreSQLite
import LatticeTestSupport
import Testing

@testable import LatticeServer

@Suite(.timeLimit(.minutes(10))) struct CapacityIndexTests {
    /// The index chooses exactly what the plain best-fit policy chooses over the same nodes,
    /// whatever was reserved and released before.
    @Test func placesAsThePolicyDoes() {
        var rng = SplitMix64(state: 42)
        let nodes = (0..<40).map { i in
            ClusterNode(
                node: Node(
                    name: String(format: "n%02d", i),
                    gpuModel: i % 3 == 0 ? "H20" : "4090",
                    gpuCount: [1, 2, 4, 8][i % 4],
                    cpuCores: 64,
                    memoryGiB: 512
                ),
                cluster: i % 5 == 0 ? "other" : "main",
                healthy: i % 7 != 0
            )
        }
        var index = CapacityIndex(nodes: nodes, usage: [:])
        var held: [(GPUPlacement, Int, Int)] = []
        for _ in 0..<3000 {
            let request = PlacementRequest(
                cluster: ["main", "other"].randomElement(using: &rng)!,
                gpuModel: ["4090", "H20"].randomElement(using: &rng)!,
                gpuCount: [1, 1, 2, 4].randomElement(using: &rng)!,
                cpuCores: Int.random(in: 1...32, using: &rng),
                memoryGiB: Int.random(in: 1...128, using: &rng)
            )
            let capacities = Array(index.nodes.values)
            #expect(index.place(request) == PlacementPolicy.place(request, on: capacities))
            if Bool.random(using: &rng), let placement = index.place(request) {
                index.reserve(placement, cpuCores: request.cpuCores, memoryGiB: request.memoryGiB)
                held.append((placement, request.cpuCores, request.memoryGiB))
            } else if !held.isEmpty {
                let (placement, cpu, memory) = held.remove(at: Int.random(in: 0..<held.count, using: &rng))
                index.release(placement, cpuCores: cpu, memoryGiB: memory)
            }
            let now = Array(index.nodes.values)
            #expect(
                index.freeGPUs(model: "4090", cluster: "main")
                    == PlacementPolicy.freeGPUs(model: "4090", on: now.filter { $0.cluster == "main" })
            )
        }
    }

    /// Random creates, power operations, failures and deletes through the API and the
    /// reconciler: after every step the store's in-memory index equals one built from its
    /// reservation rows, and the rows never oversell.
    @Test(arguments: StoreKind.all)
    func theStoresIndexAlwaysMatchesItsRows(_ kind: StoreKind) async throws {
        let server = try await TestServer(
            configuration: ServerConfiguration(catalog: instantCatalog(nodes: 3)),
            store: kind
        )
        let driver = server.fleet.driver(for: "host-cluster") as! SimulatedFleetDriver
        var rng = SplitMix64(state: 7)
        var names: [String] = []
        for step in 0..<400 {
            let live = try await server.store.instances(
                namespace: "admin",
                cluster: nil,
                page: PageRequest(page: 1, pageSize: 100)
            ).items
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...3:
                if let created = try? await server.api.createInstance(
                    principal: admin,
                    cluster: "host-cluster",
                    body: body(sku: ["66", "67"].randomElement(using: &rng)!)
                ) {
                    names.append(created.name)
                }
            case 4:
                if let target = live.filter({ $0.status == .running }).randomElement(using: &rng) {
                    try await server.api.powerOff(
                        principal: admin,
                        cluster: "host-cluster",
                        name: target.name,
                        body: .object([:])
                    )
                }
            case 5...6:
                if let target = live.filter({ $0.status == .stopped || $0.status == .failed }).randomElement(
                    using: &rng
                ) {
                    _ = try? await server.api.powerOn(principal: admin, cluster: "host-cluster", name: target.name)
                }
            case 7:
                await driver.failNextStarts(1)
            case 8:
                if let target = live.randomElement(using: &rng) {
                    try await server.api.delete(principal: admin, cluster: "host-cluster", name: target.name)
                }
            default:
                await server.settle(passes: 1)
            }
            try await check(server, step: step)
        }
        await server.settle()
        try await check(server, step: -1)
        #expect(names.count > 50)
    }

    func check(_ server: TestServer, step: Int) async throws {
        // The list's kept totalCount agrees with a count of the rows.
        let page = PageRequest(page: 1, pageSize: 1)
        let kept = try await server.store.instanceVersions(namespace: "admin", cluster: "host-cluster", page: page)
            .total
        let counted = try await server.store.instances(namespace: "admin", cluster: "host-cluster", page: page).total
        #expect(kept == counted, "step \(step): totalCount \(kept), rows \(counted)")
        // The kept status counts (`/metrics`) agree with the statuses of the rows.
        let all = try await server.store.instances(
            namespace: "admin",
            cluster: "host-cluster",
            page: PageRequest(page: 1, pageSize: 100_000)
        ).items
        let byStatus = Dictionary(grouping: all, by: \.status).mapValues(\.count)
        let keptCounts = try await server.store.instanceCounts().filter { $0.value != 0 }
        #expect(keptCounts == byStatus, "step \(step): status counts drifted")
        // Free GPUs from the index agree with the rows too.
        let fleetNodes = await server.fleet.nodes()
        let free = try await server.store.freeGPUs(model: "4090", clusters: ["host-cluster"], nodes: fleetNodes)
        let usage = try await server.store.nodeUsage()
        let fromUsage = PlacementPolicy.freeGPUs(
            model: "4090",
            on: fleetNodes.map { NodeCapacity($0, usage: usage[$0.node.name]) }
        )
        #expect(free == fromUsage, "step \(step): free GPUs \(free), rows \(fromUsage)")
        // SQLite keeps its index for the store's life: it equals one built from the rows.
        guard let held = (server.store as? SQLiteStore)?.capacitySnapshot else { return }
        let nodes = await server.fleet.nodes()
        let fromRows = CapacityIndex(nodes: nodes, usage: try await server.store.nodeUsage())
        #expect(held == fromRows, "step \(step): the index drifted from the reservation rows")
        for capacity in fromRows.nodes.values {
            #expect(capacity.usedGPUIndices.count <= capacity.node.gpuCount, "step \(step): oversold")
        }
    }
}
