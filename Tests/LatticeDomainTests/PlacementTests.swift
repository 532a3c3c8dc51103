import Foundation
import LatticeDomain
import Testing

@Suite(.timeLimit(.minutes(10))) struct PlacementTests {
    func node(_ name: String, gpus: Int = 8, model: String = "4090") -> Node {
        Node(name: name, gpuModel: model, gpuCount: gpus, cpuCores: 128, memoryGiB: 768)
    }

    func request(_ gpus: Int, model: String = "4090", cpu: Int = 16, memory: Int = 96) -> PlacementRequest {
        PlacementRequest(cluster: "c", gpuModel: model, gpuCount: gpus, cpuCores: cpu, memoryGiB: memory)
    }

    @Test func picksTheTightestFitAndLowestIndices() {
        let nodes = [
            NodeCapacity(node: node("a"), cluster: "c", usedGPUIndices: [0]),
            NodeCapacity(node: node("b"), cluster: "c", usedGPUIndices: [0, 1, 2, 3, 5]),
        ]
        let placement = PlacementPolicy.place(request(2), on: nodes)
        #expect(placement == GPUPlacement(node: "b", gpuIndices: [4, 6]))
    }

    @Test func skipsUnhealthyWrongModelOtherClusterAndFullNodes() {
        let nodes = [
            NodeCapacity(node: node("lost"), cluster: "c", healthy: false),
            NodeCapacity(node: node("h20", model: "H20"), cluster: "c"),
            NodeCapacity(node: node("elsewhere"), cluster: "other"),
            NodeCapacity(node: node("full", gpus: 2), cluster: "c", usedGPUIndices: [0, 1]),
            NodeCapacity(node: node("cpu-bound"), cluster: "c", usedCPUCores: 120),
        ]
        #expect(PlacementPolicy.place(request(1), on: nodes) == nil)
        #expect(PlacementPolicy.freeGPUs(model: "4090", on: nodes) == 8 + 8)
    }

    @Test func ties_are_broken_by_name() {
        let nodes = [NodeCapacity(node: node("b"), cluster: "c"), NodeCapacity(node: node("a"), cluster: "c")]
        #expect(PlacementPolicy.place(request(1), on: nodes)?.node == "a")
    }

    @Test func neverPlacesMoreThanANodeHasWhateverTheOrder() {
        var rng = SystemRandomNumberGenerator()
        var nodes = (0..<5).map { NodeCapacity(node: node("n\($0)", gpus: 4), cluster: "c") }
        var placed = 0
        for _ in 0..<100 {
            let want = Int.random(in: 1...3, using: &rng)
            guard let p = PlacementPolicy.place(request(want, cpu: 1, memory: 1), on: nodes) else { continue }
            let i = nodes.firstIndex { $0.node.name == p.node }!
            #expect(nodes[i].usedGPUIndices.isDisjoint(with: p.gpuIndices))
            nodes[i].usedGPUIndices.formUnion(p.gpuIndices)
            nodes[i].usedCPUCores += 1
            nodes[i].usedMemoryGiB += 1
            #expect(nodes[i].usedGPUIndices.count <= 4)
            placed += want
        }
        #expect(placed <= 20)
    }
}

@Suite(.timeLimit(.minutes(10))) struct SSHPortRuleTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func choose(
        _ range: ClosedRange<Int>,
        from: Int = 0,
        for namespace: String = "alice",
        taken: Set<Int> = [],
        releases: [Int: PortRelease] = [:]
    ) -> SSHPortRule.Choice {
        SSHPortRule.choose(
            in: range,
            from: from,
            for: namespace,
            now: now,
            isTaken: taken.contains,
            release: { releases[$0] }
        )
    }

    @Test func lowestFreeAtOrAboveTheHint() {
        let taken: Set<Int> = [30000, 30001, 30003]
        #expect(choose(30000...30010, taken: taken).port == 30002)
        #expect(choose(30000...30010, from: 30003, taken: taken).port == 30004)
        #expect(choose(30000...30001, taken: taken).port == nil)
        #expect(choose(30000...30010, from: 30011, taken: taken).port == nil)
    }

    @Test func aPortGivenBackIsKeptFromOthersForADay() {
        let releases = [
            30000: PortRelease(namespace: "bob", at: now.addingTimeInterval(-60)),
            30001: PortRelease(namespace: "bob", at: now.addingTimeInterval(-SSHPortRule.quarantine)),
            30003: PortRelease(namespace: "carol", at: now.addingTimeInterval(-120)),
        ]
        let alice = choose(30000...30010, releases: releases)
        #expect(alice.port == 30001, "a day after it was given back, the port is anyone's")
        #expect(alice.lowestUntaken == 30000, "the quarantined port stays the scan's start")
        #expect(choose(30000...30010, for: "bob", releases: releases).port == 30000)
        let full = choose(30000...30003, taken: [30001, 30002], releases: releases)
        #expect(full.port == 30003, "with nothing else left, the port given back longest ago goes")
        #expect(choose(30000...30003, taken: [30000, 30001, 30002, 30003], releases: releases).port == nil)
    }
}

@Suite(.timeLimit(.minutes(10))) struct NodeHealthTests {
    let node = ClusterNode(
        node: Node(name: "n1", gpuModel: "H20", gpuCount: 8, cpuCores: 8, memoryGiB: 64),
        cluster: "c",
        healthy: true
    )

    @Test func aDrainWinsOverWhatTheDriverSays() {
        #expect(NodeHealth.of(node, drainedSince: nil) == (.healthy, ""))
        #expect(NodeHealth.of(node, drainedSince: "2026-11-29T00:00:00Z").0 == .draining)
        var lost = node
        lost.healthy = false
        lost.reason = "NodeLost: gone"
        #expect(NodeHealth.of(lost, drainedSince: nil) == (.unhealthy, "NodeLost: gone"))
        #expect(NodeHealth.of(lost, drainedSince: "x").0 == .draining)
    }

    @Test func drainedNodesTakeNoNewWork() {
        let other = ClusterNode(
            node: Node(name: "n2", gpuModel: "H20", gpuCount: 8, cpuCores: 8, memoryGiB: 64),
            cluster: "c",
            healthy: true
        )
        let placeable = NodeHealth.placeable([node, other], drained: ["n1"])
        #expect(placeable.map(\.healthy) == [false, true])
        #expect(NodeHealth.placeable([node], drained: []) == [node])
    }
}
