import AsyncHTTPClient
import Foundation
import LatticeCompute
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// The Kubernetes REST API as the driver uses it: JSON requests over AsyncHTTPClient, paced
/// by `ClientRateLimit` (a `429` with `Retry-After` holds every request until then and is
/// tried again), and watch streams read line by line. No kubectl at run time.
public final class KubeAPI: Sendable {
    /// Where the API server is and how to prove who we are.
    public let connection: KubeConnection
    let client: HTTPClient
    private let pace: Mutex<ClientRateLimit>
    private let epoch = ContinuousClock.now
    /// How often a throttled request is tried again before the caller sees the `429`.
    let throttledAttempts = 6

    /// A client paced at `queriesPerSecond` with `burst`; throws when the connection's TLS material cannot be read.
    public init(connection: KubeConnection, queriesPerSecond: Double = 5, burst: Double = 10) throws {
        self.connection = connection
        pace = Mutex(ClientRateLimit(queriesPerSecond: queriesPerSecond, burst: burst, now: 0))
        var settings = HTTPClient.Configuration()
        settings.connectionPool.retryConnectionEstablishment = false
        if connection.server.hasPrefix("https://") {
            settings.tlsConfiguration = try Self.tls(connection)
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
    }

    // Never blocks: a deinit may run on an event loop.
    deinit { client.shutdown { _ in } }

    static func tls(_ connection: KubeConnection) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if connection.insecureSkipTLSVerify {
                tls.certificateVerification = .none
            } else if let ca = connection.certificateAuthorityPEM {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca)))
            }
            if let cert = connection.clientCertificatePEM, let key = connection.clientKeyPEM {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(cert)).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key), format: .pem))
            }
        } catch {
            throw DriverError("kubernetes: cannot read the connection's certificates: \(error)", kind: .invalidSpec)
        }
        return tls
    }

    /// A finished request: its status and body.
    public struct Reply: Sendable {
        /// The HTTP status.
        public var status: Int
        /// The answer's body (a Kubernetes object or `Status`).
        public var body: Data

        /// A 2xx answer.
        public var ok: Bool { (200..<300).contains(status) }
        /// The object is not there.
        public var notFound: Bool { status == 404 }

        /// The body as a JSON object (empty when it is not one).
        public var object: [String: Any] {
            (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        }

        /// The `Status` message the server gave, or the status code.
        public var message: String {
            (object["message"] as? String) ?? "HTTP \(status)"
        }
    }

    private var seconds: Double {
        let elapsed = ContinuousClock.now - epoch
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// Waits for the client's own pace.
    func waitTurn() async throws {
        let now = seconds
        let delay = pace.withLock { $0.delay(now: now) }
        if delay > 0 { try await Task.sleep(for: .milliseconds(Int(delay * 1000))) }
    }

    private func throttled(_ head: HTTPHeaders) {
        let after = ClientRateLimit.retryAfterSeconds(head.first(name: "Retry-After"), now: Date())
        let now = seconds
        pace.withLock { $0.retryAfter(after, now: now) }
    }

    func request(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String)],
        body: Data?,
        contentType: String
    ) -> HTTPClientRequest {
        var url = connection.server.hasSuffix("/") ? String(connection.server.dropLast()) : connection.server
        url += path
        if !query.isEmpty { url += "?" + Self.encode(query) }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "lattice")
        if let token = connection.bearerToken { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
    }

    /// A query string, each value percent-encoded.
    static func encode(_ query: [(String, String)]) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }
            .joined(separator: "&")
    }

    /// One request, paced, tried again while the server answers `429`.
    public func send(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String)] = [],
        json: [String: Any]? = nil,
        contentType: String = "application/json"
    ) async throws -> Reply {
        let body = try json.map { try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
        var attempt = 0
        while true {
            attempt += 1
            try await waitTurn()
            let response: HTTPClientResponse
            do {
                response = try await client.execute(
                    request(method, path, query: query, body: body, contentType: contentType),
                    timeout: .seconds(30)
                )
            } catch {
                throw DriverError("kubernetes: \(method) \(path): \(error)")
            }
            let bytes = try await response.body.collect(upTo: 64 << 20)
            let status = Int(response.status.code)
            if status == 429, attempt < throttledAttempts {
                throttled(response.headers)
                continue
            }
            return Reply(status: status, body: Data(bytes.readableBytesView))
        }
    }

    /// The same, throwing the server's message unless the answer is a success (or, with
    /// `allowNotFound`, a 404).
    @discardableResult
    public func call(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String)] = [],
        json: [String: Any]? = nil,
        contentType: String = "application/json",
        allowNotFound: Bool = false
    ) async throws -> Reply {
        let reply = try await send(method, path, query: query, json: json, contentType: contentType)
        if reply.ok || (allowNotFound && reply.notFound) { return reply }
        throw DriverError("kubernetes: \(method) \(path): \(reply.status) \(reply.message)")
    }

    /// Server-side apply of `object` at `path` (its name included), owned by `lattice`.
    @discardableResult
    public func apply(_ path: String, _ object: [String: Any]) async throws -> Reply {
        try await call(
            .PATCH,
            path,
            query: [("fieldManager", "lattice"), ("force", "true")],
            json: object,
            contentType: "application/apply-patch+yaml"
        )
    }

    /// A watch's events, one JSON line each, until the server ends the stream. A refused
    /// watch (`410 Gone`, `429`) throws `WatchRefused`.
    public func watch(_ path: String, query: [(String, String)]) async throws -> WatchLines {
        try await waitTurn()
        let response = try await client.execute(
            request(.GET, path, query: query + [("watch", "true")], body: nil, contentType: ""),
            timeout: .hours(2)
        )
        let status = Int(response.status.code)
        guard status == 200 else {
            if status == 429 { throttled(response.headers) }
            let body = try? await response.body.collect(upTo: 1 << 20)
            let reply = Reply(status: status, body: body.map { Data($0.readableBytesView) } ?? Data())
            throw WatchRefused(status: status, message: reply.message)
        }
        return WatchLines(body: response.body)
    }

    /// A watch's body cut into its lines (empty ones dropped), read as the consumer asks for
    /// them: no task runs ahead of the informer, and nothing is buffered beyond one read.
    public struct WatchLines: AsyncSequence, Sendable {
        public typealias Element = Data
        let body: HTTPClientResponse.Body

        public func makeAsyncIterator() -> Iterator { Iterator(body: body.makeAsyncIterator()) }

        public struct Iterator: AsyncIteratorProtocol {
            var body: HTTPClientResponse.Body.AsyncIterator
            var pending = Data()

            /// The next line; nil when the server ended the stream.
            public mutating func next() async throws -> Data? {
                while true {
                    if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = Data(pending[pending.startIndex..<newline])
                        pending = Data(pending[pending.index(after: newline)...])
                        if line.isEmpty { continue }
                        return line
                    }
                    guard let chunk = try await body.next() else { return nil }
                    pending.append(contentsOf: chunk.readableBytesView)
                }
            }
        }
    }

    /// A streaming GET (`pods/log?follow=true`): each part of the body as it arrives, until
    /// the server ends it or the task is cancelled.
    public func stream(_ path: String, query: [(String, String)], chunk: (Data) async -> Void) async throws {
        try await waitTurn()
        let response = try await client.execute(
            request(.GET, path, query: query, body: nil, contentType: ""),
            timeout: .hours(24)
        )
        guard response.status.code == 200 else {
            let body = try? await response.body.collect(upTo: 1 << 20)
            let reply = Reply(
                status: Int(response.status.code),
                body: body.map { Data($0.readableBytesView) } ?? Data()
            )
            throw DriverError("kubernetes: GET \(path): \(reply.status) \(reply.message)")
        }
        for try await part in response.body { await chunk(Data(part.readableBytesView)) }
    }

    /// A watch the API server answered with an error instead of a stream (`410 Gone` among them).
    public struct WatchRefused: Error, CustomStringConvertible {
        /// The HTTP status.
        public var status: Int
        /// The `Status` message.
        public var message: String
        /// Status and message, for logs and reasons.
        public var description: String { "watch refused: \(status) \(message)" }
    }
}
