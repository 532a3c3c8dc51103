import Foundation
import GRDB
import LatticeDomain
import LatticeStore
import Synchronization

/// What a write transaction changed in the in-memory indexes; applied once it commits, so
/// a transaction that fails leaves them as they were.
struct IndexChanges {
    var reserved: [(GPUPlacement, cpu: Int, memory: Int)] = []
    var released: [(GPUPlacement, cpu: Int, memory: Int)] = []
    var portsTaken: [Int] = []
    var portsFreed: [Int] = []
    var portsGivenBack: [(Int, PortRelease)] = []
    /// Instances written (their new version) or purged (nil).
    var versions: [(String, InstanceVersion?)] = []
    /// What goes out on the change feed once the transaction commits.
    var notices: [StoreChange] = []

    mutating func wrote(_ instance: Instance) {
        versions.append(
            (
                instance.name,
                InstanceVersion(
                    name: instance.name,
                    namespace: instance.namespace,
                    cluster: instance.cluster,
                    generation: instance.generation
                )
            )
        )
    }
}

/// The store's in-memory view of free capacity and free SSH ports, built from its rows on
/// first use and then changed only by committed writes. Every write runs on GRDB's one
/// writer, so reads inside a write see exactly what the rows say.
final class PlacementCache: Sendable {
    private struct State {
        var index: CapacityIndex?
        var usedPorts: Set<Int>?
        /// Ports given back in the last day (`SSHPortRule.quarantine`), loaded with `usedPorts`.
        var releases: [Int: PortRelease] = [:]
        /// No port below this one is free (a hint that makes the next choice O(1) amortised).
        var lowestFree = Int.min
        /// The node list each cluster's driver reported last.
        var lastNodes: [String: [ClusterNode]] = [:]
        /// Owner and generation of every instance, loaded on first use and then kept by the
        /// writes, so an authenticated GET answered from the rendered cache reads no row.
        var versions: [String: InstanceVersion]?
    }

    private let state = Mutex(State())

    /// Places inside a write: builds the index on first use, takes in what the driver now
    /// says about its nodes, then asks it.
    func place(_ request: PlacementRequest, on nodes: [ClusterNode], _ db: Database) throws -> GPUPlacement {
        let index = try withIndex(nodes, db)
        guard let placement = index.place(request) else {
            let free = index.freeGPUs(model: request.gpuModel, cluster: request.cluster)
            throw LatticeError.insufficientCapacity(request.refusal(freeInCluster: free))
        }
        return placement
    }

    private func withIndex(_ nodes: [ClusterNode], _ db: Database) throws -> CapacityIndex {
        // A driver that reports the same array as last time changed nothing (O(1) for an
        // unchanged array: equal buffers compare without looking at the elements).
        let cluster = nodes.first?.cluster ?? ""
        if let index = state.withLock({ state in state.lastNodes[cluster] == nodes ? state.index : nil }) {
            return index
        }
        let known = state.withLock { state -> CapacityIndex? in
            state.lastNodes[cluster] = nodes
            return state.index
        }
        if let index = known, nodes.allSatisfy({ index.nodes[$0.node.name] != nil }) {
            var changed = index
            var dirty = false
            for node in nodes
            where changed.nodes[node.node.name].map({ $0.node != node.node || $0.healthy != node.healthy }) ?? true {
                changed.refresh(node)
                dirty = true
            }
            // A node the driver no longer reports (gone from a Kubernetes cluster) takes no work;
            // what it held is still counted until its instances let go.
            let reported = Set(nodes.map(\.node.name))
            for known in index.nodes.values where known.cluster == cluster && known.healthy {
                guard !reported.contains(known.node.name) else { continue }
                changed.refresh(ClusterNode(node: known.node, cluster: cluster, healthy: false))
                dirty = true
            }
            if dirty { state.withLock { state in state.index = changed } }
            return dirty ? changed : index
        }
        // First use, or nodes the index has never seen (another cluster, a new host): build it
        // from every cluster's nodes and the reservation rows, which may already name them.
        let all = state.withLock { state in state.lastNodes.values.flatMap { $0 } }
        let built = CapacityIndex(nodes: all, usage: try SQLiteStore.fetch(StoreQueries.nodeUsage(), db))
        state.withLock { state in state.index = built }
        return built
    }

    /// Free GPUs of `model` in `clusters`, from the index, if it is built and knows exactly
    /// these nodes as they are now; nil otherwise (the caller counts from the rows).
    func freeGPUs(model: String, clusters: Set<String>, nodes: [ClusterNode]) -> Int? {
        state.withLock { state in
            guard let index = state.index else { return nil }
            for node in nodes where clusters.contains(node.cluster) {
                guard let known = index.nodes[node.node.name], known.node == node.node, known.healthy == node.healthy
                else { return nil }
            }
            return clusters.reduce(0) { $0 + index.freeGPUs(model: model, cluster: $1) }
        }
    }

    /// The port `SSHPortRule` gives `namespace` in `range` at `now`, inside a write.
    func freePort(in range: ClosedRange<Int>, for namespace: String, now: Date, _ db: Database) throws -> Int? {
        if state.withLock({ state in state.usedPorts == nil }) {
            let used = Set(
                try Int.fetchAll(
                    try db.cachedStatement(sql: "SELECT ssh_port FROM instances WHERE ssh_port IS NOT NULL")
                )
            )
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT port, namespace, released_at FROM ssh_port_releases WHERE released_at > ?",
                arguments: [now.addingTimeInterval(-SSHPortRule.quarantine).timeIntervalSince1970]
            )
            let released = Dictionary(
                rows.map { row in
                    (
                        row["port"] as Int,
                        PortRelease(namespace: row["namespace"], at: Date(timeIntervalSince1970: row["released_at"]))
                    )
                },
                uniquingKeysWith: { a, _ in a }
            )
            state.withLock { state in
                state.usedPorts = used
                state.releases = released
            }
        }
        return state.withLock { state in
            let choice = SSHPortRule.choose(
                in: range,
                from: state.lowestFree,
                for: namespace,
                now: now,
                isTaken: state.usedPorts!.contains,
                release: { state.releases[$0] }
            )
            if let untaken = choice.lowestUntaken { state.lowestFree = untaken }
            return choice.port
        }
    }

    /// Applies a committed transaction's changes.
    func apply(_ changes: IndexChanges) {
        state.withLock { state in
            for (placement, cpu, memory) in changes.released {
                state.index?.release(placement, cpuCores: cpu, memoryGiB: memory)
            }
            for (placement, cpu, memory) in changes.reserved {
                state.index?.reserve(placement, cpuCores: cpu, memoryGiB: memory)
            }
            for port in changes.portsTaken { state.usedPorts?.insert(port) }
            for port in changes.portsFreed {
                state.usedPorts?.remove(port)
                state.lowestFree = min(state.lowestFree, port)
            }
            if state.usedPorts != nil {
                for (port, release) in changes.portsGivenBack { state.releases[port] = release }
            }
            if state.versions != nil {
                for (name, version) in changes.versions { state.versions?[name] = version }
            }
        }
    }

    var versionsLoaded: Bool { state.withLock { state in state.versions != nil } }

    /// The version of `name`, or `.none` while the map is not loaded yet.
    func version(_ name: String) -> InstanceVersion?? {
        state.withLock { state in state.versions.map { $0[name] } }
    }

    /// Installs the map; called on the writer, so no write lands between the read and this.
    func installVersions(_ all: [InstanceVersion]) {
        state.withLock { state in
            if state.versions == nil {
                state.versions = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            }
        }
    }

    /// Free GPUs of a model (`remainGPUCount`), once the index exists.
    func freeGPUs(model: String, cluster: String?) -> Int? {
        state.withLock { state in state.index?.freeGPUs(model: model, cluster: cluster) }
    }

    /// The index as it stands, for tests that hold it against the rows.
    var snapshot: CapacityIndex? { state.withLock { state in state.index } }
}

extension SQLiteStore {
    /// A write transaction whose index changes are applied once it has committed, and
    /// whose instances then go out on the change feed.
    func indexedWrite<T: Sendable>(
        _ body: @Sendable (Database, inout IndexChanges) throws -> T
    ) async throws
        -> T
    {
        let pending = IdempotencyScope.pending
        return try await writer.writeWithoutTransaction { db in
            var changes = IndexChanges()
            var result: T?
            try db.inTransaction {
                result = try body(db, &changes)
                if let record = StoreQueries.record(pending) { try Self.run(record, db) }
                return .commit
            }
            self.placement.apply(changes)
            self.feed.publish(changes.notices)
            return result!
        }
    }

    /// The capacity index as the store holds it (nil before the first placement).
    public var capacitySnapshot: CapacityIndex? { placement.snapshot }
}
