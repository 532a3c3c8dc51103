import Foundation
import LatticeDomain
import Synchronization

/// The capacity index this replica keeps per cluster, with the database's placement
/// version it is exact at. Every write that changes a GPU reservation raises that version
/// (in its transaction), so an index whose version still matches has missed nothing, on
/// any replica; one that does not is rebuilt from the rows. A replica that makes most of
/// the placements keeps its index current and places in O(log n).
final class PlacementMemo: Sendable {
    private struct Entry {
        var nodes: [ClusterNode]
        var index: CapacityIndex
        var version: Int64
    }
    private struct State {
        var entries: [String: Entry] = [:]
        /// No SSH port below this one is free, at this placement version (ports are taken and
        /// given back only by writes that raise it).
        var port: (version: Int64, lowestFree: Int)?
        /// Versions a write of this replica placed at and has not handed over yet: it may have
        /// committed, and the next placement (which waited for its row lock) waits for it here.
        var committing: Set<Int64> = []
    }

    private let state = Mutex(State())

    /// The kept index, if it is exact at `version` for these very nodes.
    func index(cluster: String, nodes: [ClusterNode], version: Int64) -> CapacityIndex? {
        state.withLock { state in
            guard let entry = state.entries[cluster], entry.version == version, entry.nodes == nodes else { return nil }
            return entry.index
        }
    }

    /// The kept index, if exact, taken out of the memo: the caller then holds its only copy
    /// and reserves in place (a shared one would be copied whole, O(nodes), on the first
    /// change). A placement that commits hands it back (`PendingMemo.apply`).
    func take(cluster: String, nodes: [ClusterNode], version: Int64) -> CapacityIndex? {
        state.withLock { state in
            guard let entry = state.entries[cluster], entry.version == version, entry.nodes == nodes else { return nil }
            state.entries.removeValue(forKey: cluster)
            return entry.index
        }
    }

    func keep(cluster: String, nodes: [ClusterNode], index: CapacityIndex, version: Int64) {
        state.withLock { state in state.entries[cluster] = Entry(nodes: nodes, index: index, version: version) }
    }

    func forget() {
        state.withLock { state in
            state.entries.removeAll()
            state.port = nil
        }
    }

    func markCommitting(_ version: Int64) { _ = state.withLock { state in state.committing.insert(version) } }

    func isCommitting(_ version: Int64) -> Bool { state.withLock { state in state.committing.contains(version) } }

    func settled(_ version: Int64) { _ = state.withLock { state in state.committing.remove(version) } }

    /// The kept index at `version`, taken (`take`), waiting up to about 20 ms for a write of
    /// this replica that placed at `version` and is handing its index over (it committed just
    /// before ours took the row lock); nil if it is not there by then (the caller rebuilds
    /// from the rows).
    func awaitIndex(cluster: String, nodes: [ClusterNode], version: Int64) async -> CapacityIndex? {
        for _ in 0..<100 {
            if let index = take(cluster: cluster, nodes: nodes, version: version) { return index }
            guard isCommitting(version) else { return nil }
            try? await Task.sleep(for: .microseconds(200))
        }
        return take(cluster: cluster, nodes: nodes, version: version)
    }

    func lowestFreePort(at version: Int64) -> Int? {
        state.withLock { state in state.port.flatMap { $0.version == version ? $0.lowestFree : nil } }
    }

    /// The lowest port last known free, at whichever version: where a create reads its first
    /// window of ports from before it knows the version (`freePort` checks it covers the hint).
    var latestFreePort: Int? { state.withLock { state in state.port?.lowestFree } }

    func keepPort(_ lowestFree: Int, at version: Int64) {
        state.withLock { state in state.port = (version, lowestFree) }
    }
}

/// What one transaction's placement would make of the memo, kept only once it committed.
final class PendingMemo: Sendable {
    private struct State {
        var pending: (cluster: String, nodes: [ClusterNode], index: CapacityIndex, version: Int64)?
        /// No port below this one is untaken once this transaction commits.
        var port: Int?
        var _exactFrom: Int64?
    }

    private let state = Mutex(State())
    /// The placement version this transaction's placement started from, when its own
    /// change was the only one since (so what the memo knew at it still holds).
    var exactFrom: Int64? { state.withLock { state in state._exactFrom } }

    func set(cluster: String, nodes: [ClusterNode], index: CapacityIndex, version: Int64) {
        state.withLock { state in
            state.pending = (cluster, nodes, index, version)
            state._exactFrom = version - 1
        }
    }

    /// The port this transaction took, and the lowest port it saw no instance hold.
    func took(port: Int, lowestUntaken: Int) {
        state.withLock { state in state.port = lowestUntaken == port ? port + 1 : lowestUntaken }
    }

    /// After the commit: the memo takes the index and the port hint.
    func apply(to memo: PlacementMemo) {
        // Moved out, so the memo holds the index's only copy and the next placement reserves in place.
        let handed = state.withLock { state in
            defer { state.pending = nil }
            return state.pending.map { ($0, state.port) }
        }
        guard let (pending, port) = handed else { return }
        memo.keep(cluster: pending.cluster, nodes: pending.nodes, index: pending.index, version: pending.version)
        if let port { memo.keepPort(port, at: pending.version) }
        memo.settled(pending.version)
    }

    /// After a failed write: nothing to hand over.
    func abandon(_ memo: PlacementMemo) {
        if let version = state.withLock({ state in state.pending?.version }) { memo.settled(version) }
    }
}
