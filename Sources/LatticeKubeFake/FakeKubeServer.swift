import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore

/// `FakeCluster` over real HTTP, speaking the parts of the Kubernetes REST API the driver
/// uses, plus `/fake/…` endpoints that inject faults (for the black-box tests, which run
/// it as `lattice-kube-fake`). For tests only.
public struct FakeKubeServer: Sendable {
    /// The cluster it serves.
    public let cluster: FakeCluster
    /// How often an open watch gets a bookmark.
    public var bookmarkInterval: Duration = .seconds(1)
    /// A bearer token every API request must carry (`401` otherwise); nil: none checked.
    public var token: String?

    /// A server for `cluster`, checking no token.
    public init(cluster: FakeCluster) {
        self.cluster = cluster
    }

    /// Serves on `host:port` (0: any free port, reported to `onListening`) until cancelled;
    /// the kubelet ticks every 100 ms meanwhile.
    public func run(
        host: String = "127.0.0.1",
        port: Int = 0,
        onListening: @escaping @Sendable (Int) -> Void
    ) async throws {
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            try await respond(to: request)
        }
        let cluster = self.cluster
        let protocolName = HTTPField.Name("Sec-WebSocket-Protocol")!
        let app = Application(
            responder: responder,
            server: .http1WebSocketUpgrade { request, _, _ in
                guard authorized(request.headerFields[.authorization]),
                    let argv = FakeExec.command(request, cluster: cluster)
                else { return .dontUpgrade }
                return .upgrade([protocolName: "v5.channel.k8s.io"]) { inbound, outbound, _ in
                    try await FakeExec.run(argv, inbound: inbound, outbound: outbound)
                }
            },
            configuration: ApplicationConfiguration(address: .hostname(host, port: port)),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) },
            logger: {
                var logger = Logger(label: "lattice-kube-fake")
                logger.logLevel = .warning
                return logger
            }()
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    cluster.tick()
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            try await group.next()
            group.cancelAll()
        }
    }

    static func json(_ status: Int, _ object: [String: Any], headers extra: [String: String] = [:]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        for (name, value) in extra {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(
            status: HTTPResponse.Status(code: status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    /// Where a path points: resource, namespace (nil: every one, or a cluster-wide kind), name.
    struct Target {
        var resource: String
        var namespace: String?
        var name: String?
    }

    static func target(_ path: String) -> Target? {
        var parts = path.split(separator: "/").map(String.init)
        if parts.first == "api", parts.count >= 3 {
            parts.removeFirst(2)
        } else if parts.first == "apis", parts.count >= 4 {
            parts.removeFirst(3)
        } else {
            return nil
        }
        if parts.first == "namespaces", parts.count >= 3 {
            return Target(resource: parts[2], namespace: parts[1], name: parts.count >= 4 ? parts[3] : nil)
        }
        guard !parts.isEmpty, parts.count <= 2 else { return nil }
        let clusterWide = parts[0] == "nodes"
        return Target(resource: parts[0], namespace: clusterWide ? "" : nil, name: parts.count == 2 ? parts[1] : nil)
    }

    func respond(to request: Request) async throws -> Response {
        let path = request.uri.path
        let query = request.uri.queryParameters
        func parameter(_ name: String) -> String? { query[Substring(name)].map(String.init) }
        if path.hasPrefix("/fake/") { return try await control(path, request) }
        guard authorized(request.headers[.authorization]) else {
            return Self.json(401, FakeCluster.status(401, "Unauthorized", "Unauthorized"))
        }
        if let refusal = cluster.admit() { return Self.json(refusal.status, refusal.object, headers: refusal.headers) }
        let parts = path.split(separator: "/").map(String.init)
        if request.method == .get, parts.count == 7, parts[0] == "api", parts[2] == "namespaces", parts[4] == "pods",
            parts[6] == "log"
        {
            let answer = cluster.log(
                namespace: parts[3],
                pod: parts[5],
                tailLines: parameter("tailLines").flatMap(Int.init)
            )
            guard let text = answer.text else { return Self.json(answer.status, answer.object) }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain"
            guard parameter("follow") == "true" else {
                return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
            }
            return Response(status: .ok, headers: headers, body: followLog(namespace: parts[3], pod: parts[5], text))
        }
        guard let target = Self.target(path) else {
            return Self.json(
                404,
                FakeCluster.status(404, "NotFound", "the server could not find the requested resource")
            )
        }
        guard let selector = LabelSelector(parsing: parameter("labelSelector") ?? "") else {
            return Self.json(400, FakeCluster.status(400, "BadRequest", "unable to parse requirement"))
        }
        let body = try await request.body.collect(upTo: 8 << 20)
        let sent = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        let key = { (name: String) in
            FakeCluster.Key(resource: target.resource, namespace: target.namespace ?? "", name: name)
        }
        switch (request.method, target.name) {
        case (.get, nil):
            if parameter("watch") == "true" || parameter("watch") == "1" {
                return watch(target, selector, since: parameter("resourceVersion").flatMap(Int.init), query: parameter)
            }
            let answer = cluster.answerList(target.resource, target.namespace, selector)
            return Self.json(answer.status, answer.object)
        case (.get, let name?):
            let answer = cluster.get(key(name))
            return Self.json(answer.status, answer.object)
        case (.post, nil):
            guard let sent, let namespace = target.namespace else { return badBody() }
            let answer = cluster.create(target.resource, namespace, sent)
            return Self.json(answer.status, answer.object)
        case (.put, let name?):
            guard let sent else { return badBody() }
            let answer = cluster.replace(key(name), sent)
            return Self.json(answer.status, answer.object)
        case (.patch, let name?):
            guard request.headers[.contentType]?.hasPrefix("application/apply-patch+yaml") == true else {
                return Self.json(
                    415,
                    FakeCluster.status(415, "UnsupportedMediaType", "only server-side apply is served")
                )
            }
            guard let sent else { return badBody() }
            let answer = cluster.apply(
                key(name),
                sent,
                manager: parameter("fieldManager"),
                force: parameter("force") == "true"
            )
            return Self.json(answer.status, answer.object)
        case (.delete, let name?):
            let grace =
                parameter("gracePeriodSeconds").flatMap(Int.init) ?? (sent?["gracePeriodSeconds"] as? Int)
            let answer = cluster.delete(key(name), grace: grace)
            return Self.json(answer.status, answer.object)
        default:
            return Self.json(405, FakeCluster.status(405, "MethodNotAllowed", "\(request.method) is not served here"))
        }
    }

    func authorized(_ header: String?) -> Bool {
        guard let token else { return true }
        return header == "Bearer \(token)"
    }

    func badBody() -> Response {
        Self.json(400, FakeCluster.status(400, "BadRequest", "the body is not a JSON object"))
    }

    /// `pods/log?follow=true` as the API server streams it: what is there, then each line as
    /// it is written, until the pod is gone or no longer runs.
    func followLog(namespace: String, pod: String, _ first: String) -> ResponseBody {
        ResponseBody { [cluster] writer in
            try await writer.write(ByteBuffer(string: first))
            var sent = cluster.log(namespace: namespace, pod: pod, tailLines: nil).text?.count ?? 0
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(100))
                let now = cluster.log(namespace: namespace, pod: pod, tailLines: nil)
                guard let text = now.text, cluster.podRuns(namespace: namespace, pod: pod) else { break }
                if text.count > sent {
                    try await writer.write(ByteBuffer(string: String(text.dropFirst(sent))))
                    sent = text.count
                }
            }
            try await writer.finish(nil)
        }
    }

    /// A watch as a chunked stream of JSON lines.
    func watch(_ target: Target, _ selector: LabelSelector, since: Int?, query: (String) -> String?) -> Response {
        let (stream, sink) = AsyncStream.makeStream(of: ByteBuffer.self)
        let opened = cluster.watch(
            target.resource,
            target.namespace,
            selector,
            since: since,
            send: { sink.yield(ByteBuffer(bytes: $0)) },
            end: { sink.finish() }
        )
        if let id = opened.id {
            let cluster = self.cluster
            let bookmarks = query("allowWatchBookmarks") == "true"
            let timeout = query("timeoutSeconds").flatMap(Int.init) ?? 1800
            let interval = bookmarkInterval
            let ticker = Task {
                let deadline = ContinuousClock.now + .seconds(timeout)
                while !Task.isCancelled, ContinuousClock.now < deadline {
                    try? await Task.sleep(for: interval)
                    if bookmarks { sink.yield(ByteBuffer(bytes: cluster.bookmark(target.resource))) }
                }
                sink.finish()
            }
            sink.onTermination = { _ in
                ticker.cancel()
                cluster.endWatch(id)
            }
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: stream))
    }

    /// `/fake/throttle?count=N&retryAfter=S`, `/fake/expire`, `/fake/drop-watches`,
    /// `/fake/nodes/<name>?gpus=N&model=M&hostname=H` (add), `/fake/nodes/<name>/lose`,
    /// `/fake/nodes/<name>/cordon?value=true|false`, `/fake/nodes/<name>/taint?key=K&value=V&effect=E`
    /// (no effect: untaint), `/fake/images?name=I` (make pullable),
    /// `/fake/pods/<namespace>/<pod>/log?line=L` (append to its log), `/fake/stats`.
    func control(_ path: String, _ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        func parameter(_ name: String) -> String? { query[Substring(name)].map(String.init) }
        let parts = path.split(separator: "/").map(String.init)
        switch parts.dropFirst().first {
        case "throttle":
            cluster.throttleNext(
                Int(parameter("count") ?? "1") ?? 1,
                retryAfter: Int(parameter("retryAfter") ?? "1") ?? 1
            )
        case "expire":
            cluster.expireHistory()
        case "drop-watches":
            cluster.dropWatches()
        case "images":
            cluster.allowImage(parameter("name") ?? "")
        case "nodes" where parts.count == 3:
            cluster.addNode(
                parts[2],
                gpus: Int(parameter("gpus") ?? "8") ?? 8,
                model: parameter("model") ?? "NVIDIA-A100",
                hostname: parameter("hostname")
            )
        case "nodes" where parts.count == 4 && parts[3] == "lose":
            cluster.loseNode(parts[2])
        case "nodes" where parts.count == 4 && parts[3] == "ready":
            cluster.setReady(parts[2], parameter("value") != "false")
        case "nodes" where parts.count == 4 && parts[3] == "cordon":
            cluster.cordon(parts[2], parameter("value") != "false")
        case "nodes" where parts.count == 4 && parts[3] == "taint":
            cluster.taint(parts[2], key: parameter("key") ?? "", value: parameter("value"), effect: parameter("effect"))
        case "pods" where parts.count == 5 && parts[4] == "log":
            cluster.appendLog(namespace: parts[2], pod: parts[3], parameter("line") ?? "")
        case "stats":
            let stats = cluster.stats
            return Self.json(200, ["requests": stats.requests, "throttled": stats.throttled, "watches": stats.watches])
        default:
            return Self.json(404, FakeCluster.status(404, "NotFound", "no such fake control"))
        }
        return Self.json(200, ["ok": true])
    }
}

/// A fake API server running on a free loopback port, for a test.
public struct RunningFakeKube: Sendable {
    /// The cluster behind it, to inspect and to inject faults.
    public let cluster: FakeCluster
    /// `http://127.0.0.1:<port>`.
    public let url: String
    /// Cancel it to take the server away.
    public let server: Task<Void, any Error>

    /// Starts one with GPU nodes (8 each) and pullable images; every object a client sends
    /// is written to `$LATTICE_K8S_OBJECTS_DIR` when that is set (scripts/test.sh validates them).
    public static func start(nodes: [String], images: Set<String>) async throws -> RunningFakeKube {
        let cluster = FakeCluster(images: images)
        for node in nodes { cluster.addNode(node, gpus: 8) }
        if let directory = ProcessInfo.processInfo.environment["LATTICE_K8S_OBJECTS_DIR"] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            cluster.receivedSink = FakeObjectWriter(directory: directory).write
        }
        let (ports, sink) = AsyncStream.makeStream(of: Int.self)
        let server = Task { try await FakeKubeServer(cluster: cluster).run { sink.yield($0) } }
        for await port in ports {
            return RunningFakeKube(cluster: cluster, url: "http://127.0.0.1:\(port)", server: server)
        }
        throw CancellationError()
    }
}
