import Foundation

/// The state of a fake Kubernetes cluster, for tests only (never linked into `lattice`):
/// objects with resource versions, a history that watches replay, label selectors,
/// server-side apply, `generateName`, `409 Conflict`, injected faults (`429` with
/// `Retry-After`, `410 Gone`, dropped watches), a kubelet that moves pods Pending → Running
/// (and fails pulls of images it does not know) and a Job controller for the snapshot
/// committer. `FakeKubeServer` puts it on HTTP.
public final class FakeCluster: @unchecked Sendable {
    /// Where an object lives: its resource (`pods`, `nodes`, …), namespace ("" for nodes), name.
    public struct Key: Hashable, Sendable {
        /// The plural resource name of the URL.
        public var resource: String
        /// The namespace; "" for cluster-wide kinds.
        public var namespace: String
        /// The object's name.
        public var name: String

        /// The key of `name` of `resource` in `namespace`.
        public init(resource: String, namespace: String, name: String) {
            self.resource = resource
            self.namespace = namespace
            self.name = name
        }
    }

    /// One recorded change, replayed to watches that start from an older version.
    struct Change {
        var version: Int
        var key: Key
        var type: String
        var object: [String: Any]
    }

    /// A running watch.
    struct Watcher {
        var resource: String
        var namespace: String?
        var selector: LabelSelector
        var send: @Sendable (Data) -> Void
        var end: @Sendable () -> Void
    }

    /// A fake answer to an HTTP request.
    public struct Answer {
        /// The HTTP status.
        public var status: Int
        /// The body: an object, a list or a `Status`.
        public var object: [String: Any]
        /// Extra headers (`Retry-After` on a 429).
        public var headers: [String: String] = [:]
    }

    let lock = NSLock()
    var objects: [Key: [String: Any]] = [:]
    /// What each pod's container printed (`pods/log`), as a test wrote it (`/fake/pods/.../log`).
    var podLogs: [Key: [String]] = [:]
    var version = 1
    var history: [Change] = []
    /// Watches from a version below this get `410 Gone`.
    var oldestVersion = 0
    var watchers: [UUID: Watcher] = [:]
    var throttle: (count: Int, retryAfter: Int) = (0, 0)
    var random = SystemRandomNumberGenerator()
    /// Images the kubelet can pull (snapshots the committer pushed join them).
    var images: Set<String>
    /// Pushes the committer refuses (a reference containing one of these fails).
    public var refusedPushes: [String] = ["refused"]
    var requests = 0

    /// Appends a line to a pod's log.
    public func appendLog(namespace: String, pod: String, _ line: String) {
        lock.withLock { podLogs[Key(resource: "pods", namespace: namespace, name: pod), default: []].append(line) }
    }

    /// Whether the pod exists, is not being deleted and runs (a followed log ends otherwise).
    public func podRuns(namespace: String, pod: String) -> Bool {
        lock.withLock {
            guard let object = objects[Key(resource: "pods", namespace: namespace, name: pod)] else { return false }
            let deleting = (object["metadata"] as? [String: Any])?["deletionTimestamp"] != nil
            return !deleting && (object["status"] as? [String: Any])?["phase"] as? String == "Running"
        }
    }

    /// `GET .../pods/{name}/log` as the API server answers it: the running container's
    /// output (the last `tailLines`), `400` while it waits to start, `404` without the pod.
    public func log(
        namespace: String,
        pod: String,
        tailLines: Int?
    ) -> (status: Int, text: String?, object: [String: Any]) {
        let key = Key(resource: "pods", namespace: namespace, name: pod)
        return lock.withLock {
            guard let object = objects[key] else {
                return (404, nil, Self.status(404, "NotFound", "pods \"\(pod)\" not found"))
            }
            let phase = (object["status"] as? [String: Any])?["phase"] as? String
            guard phase == "Running" || phase == "Succeeded" || phase == "Failed" else {
                let message = "container \"main\" in pod \"\(pod)\" is waiting to start: ContainerCreating"
                return (400, nil, Self.status(400, "BadRequest", message))
            }
            let spec = (object["spec"] as? [String: Any])?["containers"] as? [[String: Any]]
            let image = spec?.first?["image"] as? String ?? ""
            let lines = ["Started container main (image \(image))"] + (podLogs[key] ?? [])
            let kept = tailLines.map { Array(lines.suffix(max(0, $0))) } ?? lines
            return (200, kept.map { $0 + "\n" }.joined(), [:])
        }
    }
    var throttled = 0
    var watchesOpened = 0

    /// Counters, for tests: requests served, answered 429, watches opened.
    public var stats: (requests: Int, throttled: Int, watches: Int) {
        lock.withLock { (requests, throttled, watchesOpened) }
    }

    /// Makes `image` pullable.
    public func allowImage(_ image: String) {
        lock.withLock { _ = images.insert(image) }
    }
    /// Every object a client sent (creates and applies), for validation.
    public var receivedSink: (@Sendable (Key, [String: Any]) -> Void)?
    /// Seconds a pod stays Pending.
    public var startDelay: TimeInterval = 0.3
    /// Seconds a deleted pod stays Terminating (at most its grace period).
    public var stopDelay: TimeInterval = 0.2

    /// An empty cluster whose kubelet can pull `images`.
    public init(images: Set<String> = []) {
        self.images = images
    }

    // MARK: - Time and names

    static func timestamp(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    func suffix(_ length: Int) -> String {
        let letters = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<length).map { _ in letters[Int.random(in: 0..<letters.count, using: &random)] })
    }

    // MARK: - Faults

    /// The next `count` requests get `429 Too Many Requests` with `Retry-After`.
    public func throttleNext(_ count: Int, retryAfter: Int) {
        lock.withLock { throttle = (count, retryAfter) }
    }

    /// Forgets the history: open watches end with `410 Gone`, as do watches from an older version.
    public func expireHistory() {
        let ending: [Watcher] = lock.withLock {
            oldestVersion = version + 1
            history.removeAll()
            let all = Array(watchers.values)
            watchers.removeAll()
            return all
        }
        let gone = Self.line(["type": "ERROR", "object": Self.status(410, "Expired", "too old resource version")])
        for watcher in ending {
            watcher.send(gone)
            watcher.end()
        }
    }

    /// Ends every watch connection, as a restarting API server or a proxy would.
    public func dropWatches() {
        let ending: [Watcher] = lock.withLock {
            let all = Array(watchers.values)
            watchers.removeAll()
            return all
        }
        for watcher in ending { watcher.end() }
    }

    // MARK: - Nodes

    /// Adds (or replaces) a Ready GPU node; its `kubernetes.io/hostname` label is its name
    /// unless `hostname` says otherwise (as on clouds that name nodes after their address).
    public func addNode(
        _ name: String,
        gpus: Int,
        model: String = "NVIDIA-A100",
        hostname: String? = nil,
        cpu: Int = 64,
        memoryGiB: Int = 512
    ) {
        let labels = ["kubernetes.io/hostname": hostname ?? name, "nvidia.com/gpu.product": model]
        let node: [String: Any] = [
            "apiVersion": "v1", "kind": "Node",
            "metadata": ["name": name, "labels": labels],
            "spec": [String: Any](),
            "status": [
                "allocatable": ["nvidia.com/gpu": String(gpus), "cpu": String(cpu), "memory": "\(memoryGiB)Gi"],
                "conditions": [["type": "Ready", "status": "True", "reason": "KubeletReady"]],
            ],
        ]
        lock.withLock { _ = store(Key(resource: "nodes", namespace: "", name: name), node, type: nil) }
    }

    /// The node leaves the cluster (its Node object is deleted; its pods stay until collected).
    public func loseNode(_ name: String) {
        lock.withLock { _ = remove(Key(resource: "nodes", namespace: "", name: name)) }
    }

    /// Whether node `name` exists and reports Ready (the lock is held).
    func nodeIsReady(_ name: String) -> Bool {
        guard let node = objects[Key(resource: "nodes", namespace: "", name: name)] else { return false }
        let conditions = (node["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
        return conditions.contains { $0["type"] as? String == "Ready" && $0["status"] as? String == "True" }
    }

    /// Marks a node Ready or NotReady (its kubelet stopped reporting).
    public func setReady(_ name: String, _ ready: Bool) {
        lock.withLock {
            let key = Key(resource: "nodes", namespace: "", name: name)
            guard var node = objects[key] else { return }
            var status = node["status"] as? [String: Any] ?? [:]
            status["conditions"] = [
                ready
                    ? ["type": "Ready", "status": "True", "reason": "KubeletReady"]
                    : [
                        "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                        "message": "Kubelet stopped posting node status.",
                    ]
            ]
            node["status"] = status
            store(key, node, type: nil)
        }
    }

    /// Marks a node cordoned or not.
    public func cordon(_ name: String, _ cordoned: Bool) {
        lock.withLock {
            let key = Key(resource: "nodes", namespace: "", name: name)
            guard var node = objects[key] else { return }
            var spec = node["spec"] as? [String: Any] ?? [:]
            spec["unschedulable"] = cordoned
            node["spec"] = spec
            store(key, node, type: nil)
        }
    }

    /// Taints a node with `key=value:effect`, or (effect nil) takes the key's taint away.
    public func taint(_ name: String, key taintKey: String, value: String?, effect: String?) {
        lock.withLock {
            let key = Key(resource: "nodes", namespace: "", name: name)
            guard var node = objects[key] else { return }
            var spec = node["spec"] as? [String: Any] ?? [:]
            var taints = (spec["taints"] as? [[String: String]] ?? []).filter { $0["key"] != taintKey }
            if let effect {
                var taint = ["key": taintKey, "effect": effect]
                if let value { taint["value"] = value }
                taints.append(taint)
            }
            spec["taints"] = taints
            node["spec"] = spec
            store(key, node, type: nil)
        }
    }

    // MARK: - Reading

    /// The object at `key`, as stored.
    public func object(_ key: Key) -> [String: Any]? { lock.withLock { objects[key] } }

    /// The objects of `resource` in `namespace` (nil: every one) whose labels match.
    public func list(_ resource: String, namespace: String?, selector: LabelSelector = .everything) -> [[String: Any]] {
        lock.withLock { matching(resource, namespace, selector).map(\.value) }
    }

    func matching(
        _ resource: String,
        _ namespace: String?,
        _ selector: LabelSelector
    ) -> [(
        key: Key, value: [String: Any]
    )] {
        objects.filter { key, object in
            key.resource == resource && (namespace == nil || key.namespace == namespace)
                && selector.matches(Self.labels(object))
        }
        .sorted { $0.key.name < $1.key.name }
        .map { ($0.key, $0.value) }
    }

    static func labels(_ object: [String: Any]) -> [String: String] {
        (object["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
    }

    // MARK: - Writing (under the lock)

    /// Stores `object` at `key` with a new resource version and records the change.
    @discardableResult
    func store(_ key: Key, _ object: [String: Any], type: String?) -> [String: Any] {
        version += 1
        var object = object
        var meta = object["metadata"] as? [String: Any] ?? [:]
        let existed = objects[key] != nil
        meta["name"] = key.name
        if !key.namespace.isEmpty { meta["namespace"] = key.namespace }
        meta["resourceVersion"] = String(version)
        if meta["uid"] == nil { meta["uid"] = UUID().uuidString.lowercased() }
        if meta["creationTimestamp"] == nil { meta["creationTimestamp"] = Self.timestamp() }
        object["metadata"] = meta
        objects[key] = object
        record(key, type ?? (existed ? "MODIFIED" : "ADDED"), object)
        return object
    }

    func remove(_ key: Key) -> [String: Any]? {
        guard var object = objects.removeValue(forKey: key) else { return nil }
        version += 1
        var meta = object["metadata"] as? [String: Any] ?? [:]
        meta["resourceVersion"] = String(version)
        object["metadata"] = meta
        record(key, "DELETED", object)
        return object
    }

    func record(_ key: Key, _ type: String, _ object: [String: Any]) {
        history.append(Change(version: version, key: key, type: type, object: object))
        if history.count > 10_000 {
            history.removeFirst(5_000)
            oldestVersion = history.first?.version ?? version
        }
        let line = Self.line(["type": type, "object": object])
        for watcher in watchers.values
        where watcher.resource == key.resource && (watcher.namespace == nil || watcher.namespace == key.namespace)
            && watcher.selector.matches(Self.labels(object))
        {
            watcher.send(line)
        }
    }

    static func line(_ object: [String: Any]) -> Data {
        var data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// A Kubernetes `Status` object, as error answers carry.
    public static func status(_ code: Int, _ reason: String, _ message: String) -> [String: Any] {
        ["kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message]
    }

    // MARK: - The API

    /// Counts a request and answers `429` when throttling is due.
    func admit() -> Answer? {
        lock.withLock {
            requests += 1
            guard throttle.count > 0 else { return nil }
            throttle.count -= 1
            throttled += 1
            return Answer(
                status: 429,
                object: Self.status(429, "TooManyRequests", "slow down"),
                headers: ["Retry-After": String(throttle.retryAfter)]
            )
        }
    }

    func answerList(_ resource: String, _ namespace: String?, _ selector: LabelSelector) -> Answer {
        lock.withLock {
            let items = matching(resource, namespace, selector).map(\.value)
            return Answer(
                status: 200,
                object: [
                    "kind": "List", "apiVersion": "v1", "metadata": ["resourceVersion": String(version)],
                    "items": items,
                ]
            )
        }
    }

    func get(_ key: Key) -> Answer {
        lock.withLock {
            guard let object = objects[key] else { return notFound(key) }
            return Answer(status: 200, object: object)
        }
    }

    func notFound(_ key: Key) -> Answer {
        Answer(status: 404, object: Self.status(404, "NotFound", "\(key.resource) \"\(key.name)\" not found"))
    }

    /// POST: create, with `generateName`; `409` when the name is taken.
    func create(_ resource: String, _ namespace: String, _ body: [String: Any]) -> Answer {
        let meta = body["metadata"] as? [String: Any] ?? [:]
        return lock.withLock {
            var name = meta["name"] as? String ?? ""
            if name.isEmpty, let prefix = meta["generateName"] as? String { name = prefix + suffix(5) }
            guard !name.isEmpty else {
                return Answer(status: 422, object: Self.status(422, "Invalid", "metadata.name: Required value"))
            }
            let key = Key(resource: resource, namespace: namespace, name: name)
            guard objects[key] == nil else {
                return Answer(
                    status: 409,
                    object: Self.status(409, "AlreadyExists", "\(resource) \"\(name)\" already exists")
                )
            }
            var object = body
            var newMeta = meta
            newMeta.removeValue(forKey: "generateName")
            object["metadata"] = newMeta
            receivedSink?(key, body)
            return Answer(status: 201, object: store(key, object, type: nil))
        }
    }

    /// PUT: replace, only at the version the client read (`409 Conflict` otherwise).
    func replace(_ key: Key, _ body: [String: Any]) -> Answer {
        lock.withLock {
            guard let current = objects[key] else { return notFound(key) }
            let sent = (body["metadata"] as? [String: Any])?["resourceVersion"] as? String
            let have = (current["metadata"] as? [String: Any])?["resourceVersion"] as? String
            guard sent == have else {
                return Answer(
                    status: 409,
                    object: Self.status(
                        409,
                        "Conflict",
                        "Operation cannot be fulfilled on \(key.resource) \"\(key.name)\": the object has been modified"
                    )
                )
            }
            var object = body
            object["status"] = current["status"]
            return Answer(status: 200, object: store(key, object, type: nil))
        }
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply. Creates the object or
    /// merges the fields sent into it; another field manager's object conflicts unless forced;
    /// a pod's spec cannot change.
    func apply(_ key: Key, _ body: [String: Any], manager: String?, force: Bool) -> Answer {
        guard let manager, !manager.isEmpty else {
            return Answer(status: 400, object: Self.status(400, "BadRequest", "fieldManager is required for apply"))
        }
        let meta = body["metadata"] as? [String: Any] ?? [:]
        guard meta["name"] as? String == key.name else {
            return Answer(
                status: 400,
                object: Self.status(400, "BadRequest", "the name in the body must match the URL")
            )
        }
        return lock.withLock {
            receivedSink?(key, body)
            guard let current = objects[key] else {
                var object = body
                var newMeta = meta
                newMeta["annotations"] = (meta["annotations"] as? [String: String] ?? [:])
                    .merging(["fake.lattice.dev/manager": manager]) { own, _ in own }
                object["metadata"] = newMeta
                return Answer(status: 201, object: store(key, object, type: nil))
            }
            let currentMeta = current["metadata"] as? [String: Any] ?? [:]
            let owner = (currentMeta["annotations"] as? [String: String])?["fake.lattice.dev/manager"]
            if owner != manager, !force {
                return Answer(
                    status: 409,
                    object: Self.status(
                        409,
                        "Conflict",
                        "Apply failed with 1 conflict: conflict with \"\(owner ?? "")\""
                    )
                )
            }
            if key.resource == "pods" || key.resource == "jobs",
                let sent = body["spec"] as? [String: Any],
                !NSDictionary(dictionary: sent).isEqual(to: current["spec"] as? [String: Any] ?? [:])
            {
                return Answer(
                    status: 422,
                    object: Self.status(
                        422,
                        "Invalid",
                        "\(key.resource) \"\(key.name)\": spec: Forbidden: field is immutable"
                    )
                )
            }
            var merged = Self.merge(current, body)
            merged["status"] = current["status"]
            if NSDictionary(dictionary: merged).isEqual(to: current) { return Answer(status: 200, object: current) }
            return Answer(status: 200, object: store(key, merged, type: nil))
        }
    }

    static func merge(_ base: [String: Any], _ patch: [String: Any]) -> [String: Any] {
        var result = base
        for (key, value) in patch {
            if let inner = value as? [String: Any], let existing = base[key] as? [String: Any] {
                result[key] = merge(existing, inner)
            } else {
                result[key] = value
            }
        }
        return result
    }

    /// DELETE: a pod is marked and goes after its grace period (the kubelet); a Job takes its
    /// pods with it; anything else goes at once.
    func delete(_ key: Key, grace: Int?) -> Answer {
        lock.withLock {
            guard var object = objects[key] else { return notFound(key) }
            if key.resource == "pods" {
                // A forced delete (grace 0) removes the pod at once, as the API server does.
                if grace == 0 {
                    _ = remove(key)
                    return Answer(status: 200, object: object)
                }
                var meta = object["metadata"] as? [String: Any] ?? [:]
                if meta["deletionTimestamp"] == nil {
                    let seconds = min(Double(grace ?? 30), stopDelay)
                    meta["deletionTimestamp"] = Self.timestamp(Date().addingTimeInterval(seconds))
                    meta["deletionGracePeriodSeconds"] = grace ?? 30
                    object["metadata"] = meta
                    object = store(key, object, type: nil)
                }
                return Answer(status: 200, object: object)
            }
            if key.resource == "jobs" {
                for (podKey, pod) in matching("pods", key.namespace, LabelSelector(["job-name": key.name])) {
                    _ = pod
                    _ = remove(podKey)
                }
            }
            return Answer(status: 200, object: remove(key) ?? object)
        }
    }

    /// Opens a watch: replays changes after `since`, then streams new ones; bookmarks every
    /// `bookmarkInterval` when asked for. Nil with an answer when the version is too old.
    func watch(
        _ resource: String,
        _ namespace: String?,
        _ selector: LabelSelector,
        since: Int?,
        send: @escaping @Sendable (Data) -> Void,
        end: @escaping @Sendable () -> Void
    ) -> (id: UUID?, refusal: Answer?) {
        lock.withLock {
            watchesOpened += 1
            let from = since ?? version
            if from < oldestVersion - 1 {
                send(
                    Self.line([
                        "type": "ERROR", "object": Self.status(410, "Expired", "too old resource version: \(from)"),
                    ])
                )
                end()
                return (nil, nil)
            }
            for change in history
            where change.version > from && change.key.resource == resource
                && (namespace == nil || change.key.namespace == namespace)
                && selector.matches(Self.labels(change.object))
            {
                send(Self.line(["type": change.type, "object": change.object]))
            }
            let id = UUID()
            watchers[id] = Watcher(resource: resource, namespace: namespace, selector: selector, send: send, end: end)
            return (id, nil)
        }
    }

    func endWatch(_ id: UUID) {
        lock.withLock { _ = watchers.removeValue(forKey: id) }
    }

    /// The bookmark a watch of `resource` gets now.
    func bookmark(_ resource: String) -> Data {
        let kind = resource == "nodes" ? "Node" : resource == "pods" ? "Pod" : "Secret"
        return lock.withLock {
            Self.line([
                "type": "BOOKMARK",
                "object": ["kind": kind, "apiVersion": "v1", "metadata": ["resourceVersion": String(version)]],
            ])
        }
    }
}
