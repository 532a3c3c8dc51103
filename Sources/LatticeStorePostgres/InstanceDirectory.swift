import Foundation
import LatticeDomain
import LatticeStore
import Synchronization

/// Every instance's owner, cluster, generation and creation time, in memory, so that the
/// `GET` of one instance and a list page need no round trip. It is trusted only while a
/// change feed of this store listens (`PostgresStore.changes()`): each committed instance
/// write, on any replica, sends its row's new version (`DirectoryChange`) with its
/// notification, and this replica's own writes apply theirs once committed, before they
/// answer. After a listener connects the directory is loaded once from the table; a lost
/// listener empties it (notifications may have been missed) until the next load.
///
/// Changes may arrive twice and out of order (this replica's write and its notification,
/// the load and the notifications during it): a version only ever replaces an older
/// generation, and a purged name stays purged, so the order never matters.
final class InstanceDirectory: Sendable {
    /// Where an instance sorts in its list: the list's order is newest first, then by name.
    struct Position: Comparable, Hashable, Sendable {
        var createdAt: Double
        var name: String

        /// Ascending means oldest first, and by name descending within one instant, so that
        /// the array read from its end is the list's order.
        static func < (a: Position, b: Position) -> Bool {
            a.createdAt != b.createdAt ? a.createdAt < b.createdAt : a.name > b.name
        }
    }

    struct Entry: Sendable {
        var version: InstanceVersion
        var createdAt: Double
    }

    private struct ListKey: Hashable {
        var namespace: String
        var cluster: String
    }

    private struct State {
        var listeners = 0
        var complete = false
        var loading = false
        /// Raised whenever what is kept may have missed a change: a load that started before
        /// is thrown away.
        var epoch: UInt64 = 0
        var entries: [String: Entry] = [:]
        /// Purged names, with the purged instance's creation time: a later instance may
        /// come to have the same name.
        var purged: [String: Double] = [:]
        var lists: [ListKey: [Position]] = [:]
    }

    private let state = Mutex(State())
    private static let maxPurged = 100_000

    // MARK: Reads

    enum Answer<Value> {
        case known(Value)
        /// Not loaded (or not listening): ask the database.
        case unknown
    }

    func version(_ name: String) -> Answer<InstanceVersion?> {
        state.withLock { state in
            guard state.complete else { return .unknown }
            return .known(state.entries[name]?.version)
        }
    }

    /// A list page (newest first) and the list's length.
    func page(namespace: String, cluster: String, page: PageRequest) -> Answer<(items: [InstanceVersion], total: Int)> {
        state.withLock { state in
            guard state.complete else { return .unknown }
            let list = state.lists[ListKey(namespace: namespace, cluster: cluster)] ?? []
            let newest = list.count - 1 - page.offset
            var items: [InstanceVersion] = []
            var index = newest
            while index >= 0, items.count < page.pageSize {
                if let entry = state.entries[list[index].name] { items.append(entry.version) }
                index -= 1
            }
            return .known((items, list.count))
        }
    }

    // MARK: The feed

    /// A listener connected: every change from now on is heard, but what was kept may have
    /// missed some, so the directory waits for its next load.
    func listening() {
        state.withLock { state in
            state.listeners += 1
            Self.reset(&state)
        }
    }

    /// A listener lost its connection (or stopped).
    func deaf() {
        state.withLock { state in
            state.listeners = max(0, state.listeners - 1)
            Self.reset(&state)
        }
    }

    /// A load running now finds the epoch raised and is thrown away.
    private static func reset(_ state: inout State) {
        state.epoch &+= 1
        state.complete = false
        state.entries.removeAll()
        state.purged.removeAll()
        state.lists.removeAll()
    }

    /// Whether a load should start now (a listener listens, nothing is loaded or loading);
    /// the epoch goes back to `install`.
    func startLoad() -> UInt64? {
        state.withLock { state in
            guard state.listeners > 0, !state.complete, !state.loading else { return nil }
            state.loading = true
            return state.epoch
        }
    }

    /// The table as a load read it (every row committed before the load's statement).
    func install(_ rows: [Entry], epoch: UInt64) {
        state.withLock { state in
            state.loading = false
            guard state.epoch == epoch, state.listeners > 0 else { return }
            for row in rows { Self.apply(.kept(row), to: &state) }
            state.complete = true
        }
    }

    func loadFailed() { state.withLock { $0.loading = false } }

    /// A committed change, heard from the feed or applied by the write that made it.
    func apply(_ change: DirectoryChange) {
        state.withLock { state in Self.apply(change, to: &state) }
    }

    private static func apply(_ change: DirectoryChange, to state: inout State) {
        switch change {
        case .kept(let entry):
            let name = entry.version.name
            if let purgedCreatedAt = state.purged[name] {
                guard entry.createdAt > purgedCreatedAt else { return }
                state.purged.removeValue(forKey: name)
            }
            if let old = state.entries[name] {
                guard old.version.generation < entry.version.generation else { return }
                state.entries[name] = entry
                return
            }
            state.entries[name] = entry
            let key = ListKey(namespace: entry.version.namespace, cluster: entry.version.cluster)
            let position = Position(createdAt: entry.createdAt, name: name)
            var list = state.lists.removeValue(forKey: key) ?? []
            // Almost always the newest, so almost always appended.
            if list.last.map({ $0 < position }) ?? true {
                list.append(position)
            } else {
                list.insert(position, at: Self.insertionIndex(of: position, in: list))
            }
            state.lists[key] = list
        case .purged(let name, let createdAt):
            if state.purged.count >= maxPurged {
                // Kept only against changes that arrive out of order; past this many, start afresh.
                reset(&state)
                return
            }
            state.purged[name] = max(createdAt, state.purged[name] ?? -.infinity)
            guard let old = state.entries[name], old.createdAt <= createdAt else { return }
            state.entries.removeValue(forKey: name)
            let key = ListKey(namespace: old.version.namespace, cluster: old.version.cluster)
            let position = Position(createdAt: old.createdAt, name: name)
            guard var list = state.lists.removeValue(forKey: key) else { return }
            let index = Self.insertionIndex(of: position, in: list)
            if index < list.count, list[index] == position { list.remove(at: index) }
            if !list.isEmpty { state.lists[key] = list }
        }
    }

    /// The first index whose position is not before `position` (binary search).
    private static func insertionIndex(of position: Position, in list: [Position]) -> Int {
        var low = 0
        var high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle] < position { low = middle + 1 } else { high = middle }
        }
        return low
    }

    var isComplete: Bool { state.withLock { $0.complete } }
}

/// What one committed instance write did to the directory's view of it.
enum DirectoryChange: Sendable, Equatable {
    case kept(InstanceDirectory.Entry)
    case purged(String, createdAt: Double)

    /// The change of a write set's own row, if it has one.
    init?(_ row: WriteSet.InstanceRow?) {
        switch row {
        case .insert(let instance), .update(let instance):
            self = .kept(
                InstanceDirectory.Entry(
                    version: InstanceVersion(
                        name: instance.name,
                        namespace: instance.namespace,
                        cluster: instance.cluster,
                        generation: instance.generation
                    ),
                    createdAt: instance.createdAt.timeIntervalSince1970
                )
            )
        case .delete(let name, let createdAt): self = .purged(name, createdAt: createdAt.timeIntervalSince1970)
        case nil: return nil
        }
    }

    /// As a notification's payload: `v:` then the fields, split by U+001F (the prefix is
    /// one an older replica ignores).
    var payload: String {
        switch self {
        case .kept(let entry):
            let version = entry.version
            return [
                "v:" + version.name, version.namespace, version.cluster, "\(version.generation)", "\(entry.createdAt)",
            ]
            .joined(separator: Self.separator)
        case .purged(let name, let createdAt): return ["v:" + name, "\(createdAt)"].joined(separator: Self.separator)
        }
    }

    init?(payload: String) {
        guard payload.hasPrefix("v:") else { return nil }
        let fields = payload.dropFirst(2).split(separator: Self.separator, omittingEmptySubsequences: false)
        if fields.count == 2, let createdAt = Double(fields[1]) {
            self = .purged(String(fields[0]), createdAt: createdAt)
            return
        }
        guard fields.count == 5, let generation = Int(fields[3]), let createdAt = Double(fields[4]) else { return nil }
        self = .kept(
            InstanceDirectory.Entry(
                version: InstanceVersion(
                    name: String(fields[0]),
                    namespace: String(fields[1]),
                    cluster: String(fields[2]),
                    generation: generation
                ),
                createdAt: createdAt
            )
        )
    }

    private static let separator = "\u{1F}"
}

extension InstanceDirectory.Entry: Equatable {}
