import Foundation
import LatticeCompute

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
final class KubeInformer<Object: KubeCached>: @unchecked Sendable {
    let api: KubeAPI
    let path: String
    let labelSelector: String?
    let onChange: @Sendable (Object?, Object?) -> Void
    private let lock = NSLock()
    private var items: [String: Object] = [:]
    /// Names of the objects by the value of `indexLabel` (the instance), so one instance's
    /// objects are found without a scan.
    let indexLabel: String?
    private var index: [String: Set<String>] = [:]
    /// Resource versions of objects this driver deleted, so a late event does not bring them back.
    private var tombstones: [String: Int] = [:]
    private var resourceVersion = ""
    private var synced = false
    private var lastError = ""
    /// Since when the server has not been reached (nil while it answers).
    private var failingSince: ContinuousClock.Instant?
    /// How the cache was fed, for tests and logs.
    private(set) var lists = 0
    private(set) var watches = 0
    private(set) var bookmarks = 0

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
        self.indexLabel = indexLabel
        self.onChange = onChange
    }

    var all: [Object] { lock.withLock { Array(items.values) } }
    var isSynced: Bool { lock.withLock { synced } }
    var counts: (lists: Int, watches: Int, bookmarks: Int) { lock.withLock { (lists, watches, bookmarks) } }
    func object(named name: String) -> Object? { lock.withLock { items[name] } }

    /// The objects whose `indexLabel` is `value`.
    func objects(labelled value: String) -> [Object] {
        lock.withLock { (index[value] ?? []).compactMap { items[$0] } }
    }

    private func key(_ object: Object) -> String? { indexLabel.flatMap { object.metadata.labels?[$0] } }

    /// Puts `object` in `items` and the index (under the lock).
    private func put(_ object: Object) {
        let name = object.metadata.name
        if let old = items[name], let key = key(old) { index[key]?.remove(name) }
        items[name] = object
        if let key = key(object) { index[key, default: []].insert(name) }
    }

    /// Takes `name` out of `items` and the index (under the lock).
    private func take(_ name: String) -> Object? {
        guard let old = items.removeValue(forKey: name) else { return nil }
        if let key = key(old) {
            index[key]?.remove(name)
            if index[key]?.isEmpty == true { index[key] = nil }
        }
        return old
    }

    /// Why the server has not answered for at least `limit`, if so.
    func outage(longerThan limit: Duration) -> String? {
        lock.withLock {
            guard let since = failingSince, ContinuousClock.now - since >= limit else { return nil }
            return lastError
        }
    }

    /// Waits until the first list has arrived (up to `limit`).
    func waitUntilSynced(limit: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + limit
        while !isSynced {
            guard ContinuousClock.now < deadline else {
                throw DriverError("kubernetes: \(path) has not been listed yet: \(lock.withLock { lastError })")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func version(_ object: Object) -> Int { object.metadata.resourceVersion.flatMap(Int.init) ?? 0 }

    /// Takes in `object` unless the cache already holds a newer state of it.
    func remember(_ object: Object) {
        let name = object.metadata.name
        let (changed, old): (Bool, Object?) = lock.withLock {
            if let gone = tombstones[name], Self.version(object) <= gone { return (false, nil) }
            let old = items[name]
            if let old, Self.version(old) >= Self.version(object) { return (false, nil) }
            put(object)
            tombstones[name] = nil
            return (true, old)
        }
        if changed { onChange(old, object) }
    }

    /// Drops `name`, found gone by the server (`404`): events up to the newest version seen
    /// are old news; an object made again under the name later comes with a newer one.
    func forgetGone(_ name: String) {
        let seen = lock.withLock { Int(resourceVersion) ?? 0 }
        forget(name, version: seen)
    }

    /// Drops `name`, deleted at `version`.
    func forget(_ name: String, version: Int) {
        let old: Object? = lock.withLock {
            tombstones[name] = max(tombstones[name] ?? 0, version)
            return take(name)
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
        lock.withLock {
            var fresh: [String: Object] = [:]
            for item in page.items { fresh[item.metadata.name] = item }
            for (name, old) in items where fresh[name] == nil { changes.append((old, nil)) }
            for (name, new) in fresh where items[name].map(Self.version) != Self.version(new) {
                changes.append((items[name], new))
            }
            items = [:]
            index = [:]
            for object in fresh.values { put(object) }
            tombstones = [:]
            resourceVersion = page.metadata.resourceVersion ?? ""
            synced = true
            lists += 1
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
                let since = lock.withLock { resourceVersion }
                let stream = try await api.watch(
                    path,
                    query: query + [
                        ("resourceVersion", since), ("allowWatchBookmarks", "true"), ("timeoutSeconds", "300"),
                    ]
                )
                lock.withLock {
                    watches += 1
                    failingSince = nil
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
                lock.withLock {
                    lastError = "\(error)"
                    if failingSince == nil { failingSince = .now }
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
            lock.withLock { bookmarks += 1 }
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
        lock.withLock { resourceVersion = version }
    }
}
