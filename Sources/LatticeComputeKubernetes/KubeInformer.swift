import Foundation
import LatticeCompute
import Synchronization

/// The metadata every cached object has.
public struct ObjectMeta: Decodable, Sendable, Equatable {
    /// The object's name.
    public var name: String
    /// Its namespace (nil for cluster-wide kinds).
    public var namespace: String?
    /// Its labels (the driver's `lattice.dev/*` among them).
    public var labels: [String: String]?
    /// Its annotations.
    public var annotations: [String: String]?
    /// The version the API server gave this state of it.
    public var resourceVersion: String?
    /// Set once it is being deleted.
    public var deletionTimestamp: String?
    /// When it was created (RFC 3339).
    public var creationTimestamp: String?
}

/// An object kind the informer can cache.
public protocol KubeCached: Decodable, Sendable {
    var metadata: ObjectMeta { get }
}

/// A cache of one kind of object, fed by list + watch as client-go's informers are: it
/// lists once, then watches from the list's `resourceVersion` with bookmarks (so a watch
/// that ends resumes where it was), and lists again when the server says `410 Gone`.
/// Every change calls `onChange` with the object's old and new state. The driver's own
/// writes are put in at once (`remember`, `forget`), so a read after a write sees it; an
/// event older than what the cache holds is ignored.
final class KubeInformer<Object: KubeCached>: Sendable {
    let api: KubeAPI
    let path: String
    let labelSelector: String?
    let onChange: @Sendable (Object?, Object?) -> Void
    private struct State {
        /// The label `index` is by (the instance's), so one instance's objects are found
        /// without a scan.
        let indexLabel: String?
        var items: [String: Object] = [:]
        /// Names of the objects by the value of `indexLabel` (the instance), so one instance's
        /// objects are found without a scan.
        var index: [String: Set<String>] = [:]
        /// Resource versions of objects this driver deleted, so a late event does not bring them back.
        var tombstones: [String: Int] = [:]
        var resourceVersion = ""
        var synced = false
        var lastError = ""
        /// Since when the server has not been reached (nil while it answers).
        var failingSince: ContinuousClock.Instant?
        /// How the cache was fed, for tests and logs.
        var lists = 0
        var watches = 0
        var bookmarks = 0

        func key(_ object: Object) -> String? { indexLabel.flatMap { object.metadata.labels?[$0] } }

        /// Puts `object` in `items` and the index.
        mutating func put(_ object: Object) {
            let name = object.metadata.name
            if let old = items[name], let key = key(old) { index[key]?.remove(name) }
            items[name] = object
            if let key = key(object) { index[key, default: []].insert(name) }
        }

        /// Takes `name` out of `items` and the index.
        mutating func take(_ name: String) -> Object? {
            guard let old = items.removeValue(forKey: name) else { return nil }
            if let key = key(old) {
                index[key]?.remove(name)
                if index[key]?.isEmpty == true { index[key] = nil }
            }
            return old
        }
    }

    private let state: Mutex<State>

    init(
        api: KubeAPI,
        path: String,
        labelSelector: String?,
        indexLabel: String? = nil,
        onChange: @escaping @Sendable (Object?, Object?) -> Void
    ) {
        self.api = api
        self.path = path
        self.labelSelector = labelSelector
        self.onChange = onChange
        state = Mutex(State(indexLabel: indexLabel))
    }

    var all: [Object] { state.withLock { state in Array(state.items.values) } }
    var isSynced: Bool { state.withLock { state in state.synced } }
    var counts: (lists: Int, watches: Int, bookmarks: Int) {
        state.withLock { state in (state.lists, state.watches, state.bookmarks) }
    }
    func object(named name: String) -> Object? { state.withLock { state in state.items[name] } }

    /// The objects whose `indexLabel` is `value`.
    func objects(labelled value: String) -> [Object] {
        state.withLock { state in (state.index[value] ?? []).compactMap { state.items[$0] } }
    }

    /// Why the server has not answered for at least `limit`, if so.
    func outage(longerThan limit: Duration) -> String? {
        state.withLock { state in
            guard let since = state.failingSince, ContinuousClock.now - since >= limit else { return nil }
            return state.lastError
        }
    }

    /// Waits until the first list has arrived (up to `limit`).
    func waitUntilSynced(limit: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + limit
        while !isSynced {
            guard ContinuousClock.now < deadline else {
                throw DriverError(
                    "kubernetes: \(path) has not been listed yet: \(state.withLock { state in state.lastError })"
                )
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func version(_ object: Object) -> Int { object.metadata.resourceVersion.flatMap(Int.init) ?? 0 }

    /// Takes in `object` unless the cache already holds a newer state of it.
    func remember(_ object: Object) {
        let name = object.metadata.name
        let (changed, old): (Bool, Object?) = state.withLock { state in
            if let gone = state.tombstones[name], Self.version(object) <= gone { return (false, nil) }
            let old = state.items[name]
            if let old, Self.version(old) >= Self.version(object) { return (false, nil) }
            state.put(object)
            state.tombstones[name] = nil
            return (true, old)
        }
        if changed { onChange(old, object) }
    }

    /// Drops `name`, found gone by the server (`404`): events up to the newest version seen
    /// are old news; an object made again under the name later comes with a newer one.
    func forgetGone(_ name: String) {
        let seen = state.withLock { state in Int(state.resourceVersion) ?? 0 }
        forget(name, version: seen)
    }

    /// Drops `name`, deleted at `version`.
    func forget(_ name: String, version: Int) {
        let old: Object? = state.withLock { state in
            state.tombstones[name] = max(state.tombstones[name] ?? 0, version)
            return state.take(name)
        }
        if let old { onChange(old, nil) }
    }

    private var query: [(String, String)] {
        labelSelector.map { [("labelSelector", $0)] } ?? []
    }

    /// Replaces the cache with a full list.
    func list() async throws {
        let reply = try await api.call(.GET, path, query: query)
        let page = try JSONDecoder().decode(ListPage.self, from: reply.body)
        var changes: [(Object?, Object?)] = []
        state.withLock { state in
            var fresh: [String: Object] = [:]
            for item in page.items { fresh[item.metadata.name] = item }
            for (name, old) in state.items where fresh[name] == nil { changes.append((old, nil)) }
            for (name, new) in fresh where state.items[name].map(Self.version) != Self.version(new) {
                changes.append((state.items[name], new))
            }
            state.items = [:]
            state.index = [:]
            for object in fresh.values { state.put(object) }
            state.tombstones = [:]
            state.resourceVersion = page.metadata.resourceVersion ?? ""
            state.synced = true
            state.lists += 1
        }
        for (old, new) in changes { onChange(old, new) }
    }

    struct ListPage: Decodable {
        struct Meta: Decodable { var resourceVersion: String? }
        var metadata: Meta
        var items: [Object]
    }

    struct Event: Decodable {
        var type: String
    }
    struct ObjectEvent: Decodable {
        var object: Object
    }
    struct StatusEvent: Decodable {
        struct Status: Decodable {
            var code: Int?
            var message: String?
        }
        var object: Status
    }
    struct BookmarkEvent: Decodable {
        struct Bookmark: Decodable {
            struct Meta: Decodable { var resourceVersion: String? }
            var metadata: Meta
        }
        var object: Bookmark
    }

    /// Lists and watches until cancelled.
    func run() async {
        var needsList = true
        var failures = 0
        while !Task.isCancelled {
            do {
                if needsList {
                    try await list()
                    needsList = false
                }
                let since = state.withLock { state in state.resourceVersion }
                let stream = try await api.watch(
                    path,
                    query: query + [
                        ("resourceVersion", since), ("allowWatchBookmarks", "true"), ("timeoutSeconds", "300"),
                    ]
                )
                state.withLock { state in
                    state.watches += 1
                    state.failingSince = nil
                }
                failures = 0
                for try await line in stream {
                    if try handle(line) == .gone {
                        needsList = true
                        break
                    }
                }
            } catch let refused as KubeAPI.WatchRefused where refused.status == 410 {
                needsList = true
            } catch {
                state.withLock { state in
                    state.lastError = "\(error)"
                    if state.failingSince == nil { state.failingSince = .now }
                }
                failures += 1
                try? await Task.sleep(for: .milliseconds(min(5000, 200 * (1 << min(failures, 5)))))
            }
        }
    }

    enum Outcome { case applied, gone }

    /// One watch event.
    func handle(_ line: Data) throws -> Outcome {
        let decoder = JSONDecoder()
        let type = try decoder.decode(Event.self, from: line).type
        switch type {
        case "ADDED", "MODIFIED":
            let object = try decoder.decode(ObjectEvent.self, from: line).object
            remember(object)
            advance(to: object.metadata.resourceVersion)
        case "DELETED":
            let object = try decoder.decode(ObjectEvent.self, from: line).object
            forget(object.metadata.name, version: Self.version(object))
            advance(to: object.metadata.resourceVersion)
        case "BOOKMARK":
            advance(to: try decoder.decode(BookmarkEvent.self, from: line).object.metadata.resourceVersion)
            state.withLock { state in state.bookmarks += 1 }
        case "ERROR":
            let status = try decoder.decode(StatusEvent.self, from: line).object
            if status.code == 410 { return .gone }
            throw DriverError("kubernetes: watch of \(path): \(status.message ?? "error \(status.code ?? 0)")")
        default:
            break
        }
        return .applied
    }

    private func advance(to version: String?) {
        guard let version, !version.isEmpty else { return }
        state.withLock { state in state.resourceVersion = version }
    }
}
