import Foundation
import GRDB
import LatticeDomain
import LatticeStore

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
final class PlacementCache: @unchecked Sendable {
    private let lock = NSLock()
    private var index: CapacityIndex?
    private var usedPorts: Set<Int>?
    /// Ports given back in the last day (`SSHPortRule.quarantine`), loaded with `usedPorts`.
    private var releases: [Int: PortRelease] = [:]
    /// No port below this one is free (a hint that makes the next choice O(1) amortised).
    private var lowestFree = Int.min
    /// The node list each cluster's driver reported last.
    private var lastNodes: [String: [ClusterNode]] = [:]

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
        if let index = lock.withLock({ lastNodes[cluster] == nodes ? self.index : nil }) { return index }
        let known = lock.withLock { () -> CapacityIndex? in
            lastNodes[cluster] = nodes
            return index
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
            if dirty { lock.withLock { self.index = changed } }
            return dirty ? changed : index
        }
        // First use, or nodes the index has never seen (another cluster, a new host): build it
        // from every cluster's nodes and the reservation rows, which may already name them.
        let all = lock.withLock { lastNodes.values.flatMap { $0 } }
        let built = CapacityIndex(nodes: all, usage: try SQLiteStore.fetch(StoreQueries.nodeUsage(), db))
        lock.withLock { index = built }
        return built
    }

    /// Free GPUs of `model` in `clusters`, from the index, if it is built and knows exactly
    /// these nodes as they are now; nil otherwise (the caller counts from the rows).
    func freeGPUs(model: String, clusters: Set<String>, nodes: [ClusterNode]) -> Int? {
        lock.withLock {
            guard let index else { return nil }
            for node in nodes where clusters.contains(node.cluster) {
                guard let known = index.nodes[node.node.name], known.node == node.node, known.healthy == node.healthy
                else { return nil }
            }
            return clusters.reduce(0) { $0 + index.freeGPUs(model: model, cluster: $1) }
        }
    }

    /// The port `SSHPortRule` gives `namespace` in `range` at `now`, inside a write.
    func freePort(in range: ClosedRange<Int>, for namespace: String, now: Date, _ db: Database) throws -> Int? {
        if lock.withLock({ usedPorts == nil }) {
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
            lock.withLock {
                usedPorts = used
                releases = released
            }
        }
        return lock.withLock {
            let choice = SSHPortRule.choose(
                in: range,
                from: lowestFree,
                for: namespace,
                now: now,
                isTaken: usedPorts!.contains,
                release: { releases[$0] }
            )
            if let untaken = choice.lowestUntaken { lowestFree = untaken }
            return choice.port
        }
    }

    /// Applies a committed transaction's changes.
    func apply(_ changes: IndexChanges) {
        lock.withLock {
            for (placement, cpu, memory) in changes.released {
                index?.release(placement, cpuCores: cpu, memoryGiB: memory)
            }
            for (placement, cpu, memory) in changes.reserved {
                index?.reserve(placement, cpuCores: cpu, memoryGiB: memory)
            }
            for port in changes.portsTaken { usedPorts?.insert(port) }
            for port in changes.portsFreed {
                usedPorts?.remove(port)
                lowestFree = min(lowestFree, port)
            }
            if usedPorts != nil {
                for (port, release) in changes.portsGivenBack { releases[port] = release }
            }
            if versions != nil {
                for (name, version) in changes.versions { versions?[name] = version }
            }
        }
    }

    /// Owner and generation of every instance, loaded on first use and then kept by the
    /// writes, so an authenticated GET answered from the rendered cache reads no row.
    private var versions: [String: InstanceVersion]?

    var versionsLoaded: Bool { lock.withLock { versions != nil } }

    /// The version of `name`, or `.none` while the map is not loaded yet.
    func version(_ name: String) -> InstanceVersion?? {
        lock.withLock { versions.map { $0[name] } }
    }

    /// Installs the map; called on the writer, so no write lands between the read and this.
    func installVersions(_ all: [InstanceVersion]) {
        lock.withLock {
            if versions == nil { versions = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a }) }
        }
    }

    /// Free GPUs of a model (`remainGPUCount`), once the index exists.
    func freeGPUs(model: String, cluster: String?) -> Int? {
        lock.withLock { index?.freeGPUs(model: model, cluster: cluster) }
    }

    /// The index as it stands, for tests that hold it against the rows.
    var snapshot: CapacityIndex? { lock.withLock { index } }
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
