import AsyncHTTPClient
import Foundation
import LatticeCompute
import LatticeDomain
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Calls to one host's Docker Engine API: over a unix socket (`http+unix://`), or over TCP
/// with mutual TLS (`https://`, Docker's `tcp://host:2376` with CA, certificate and key),
/// or plain TCP when the catalog marks it insecure.
struct EngineAPI: Sendable {
    let endpoint: EngineEndpoint
    let address: EngineEndpoint.Address
    let client: HTTPClient
    /// The TLS context for raw connections (exec streams), when the endpoint uses TLS.
    let tls: NIOSSLContext?
    static let version = "v1.41"

    /// A unix socket through the shared client (the single-host form and the tests).
    init(socketPath: String, client: HTTPClient) {
        endpoint = EngineEndpoint(url: "unix://" + socketPath)
        address = .unix(path: socketPath)
        self.client = client
        tls = nil
    }

    /// Any endpoint. A TLS endpoint gets a client of its own, kept for the process's life.
    init(endpoint: EngineEndpoint, client: HTTPClient = EngineClients.plain) throws {
        self.endpoint = endpoint
        address = try endpoint.address()
        if case .tcp(_, _, true) = address {
            let configuration = try Self.tlsConfiguration(endpoint)
            tls = try NIOSSLContext(configuration: configuration)
            self.client = EngineClients.client(for: endpoint, configuration: configuration)
        } else {
            tls = nil
            self.client = client
        }
    }

    static func tlsConfiguration(_ endpoint: EngineEndpoint) throws -> TLSConfiguration {
        guard let ca = endpoint.ca, let cert = endpoint.cert, let key = endpoint.key else {
            throw DriverError("\(endpoint.url): mutual TLS needs ca, cert and key", kind: .invalidSpec)
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        do {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        } catch {
            throw DriverError(
                "\(endpoint.url): cannot read its TLS files (\(ca), \(cert), \(key)): \(error)",
                kind: .invalidSpec
            )
        }
        return configuration
    }

    /// Where requests go: `http+unix://<socket>`, `https://host:port` or `http://host:port`.
    var base: String {
        switch address {
        case .unix(let path):
            "http+unix://" + (path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? path)
        case .tcp(let host, let port, let tls):
            "\(tls ? "https" : "http")://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        }
    }

    /// Opens a raw connection to the engine (for hijacked exec streams).
    func connect<Output: Sendable>(
        _ initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Output>
    ) async throws -> Output {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(.seconds(10))
        switch address {
        case .unix(let path):
            return try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: initializer)
        case .tcp(let host, let port, _):
            let tls = tls
            return try await bootstrap.connect(host: host, port: port) { channel in
                guard let tls else { return initializer(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    let hostname = EngineEndpoint.isHostName(host) ? host : nil
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: tls, serverHostname: hostname)
                    )
                }.flatMap { initializer(channel) }
            }
        }
    }

    struct Answer: Sendable {
        var status: Int
        var body: Data

        /// The engine's `{"message": ...}`, or the raw body.
        var message: String {
            if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
                let message = object["message"] as? String
            {
                return message
            }
            return String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func json<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(type, from: body) }

        func expect(_ code: Int, _ what: String) throws {
            guard status == code else { throw failure(what) }
        }

        func failure(_ what: String) -> DriverError { DriverError("\(what): engine answered \(status): \(message)") }
    }

    func call(
        _ method: String,
        _ path: String,
        query: [String: String] = [:],
        repeatedQuery: [URLQueryItem] = [],
        body: Data? = nil,
        headers: [String: String] = [:],
        timeout: TimeAmount = .seconds(60)
    ) async throws -> Answer {
        var components = URLComponents()
        // Podman's own API (`/libpod/...`) has its own version prefix.
        components.path = path.hasPrefix("/libpod/") ? "/v4.0.0\(path)" : "/\(Self.version)\(path)"
        let items = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) } + repeatedQuery
        if !items.isEmpty { components.queryItems = items }
        // `+` in a query means a space to the engine: encode it.
        let encodedQuery =
            components.percentEncodedQuery.map { "?" + $0.replacingOccurrences(of: "+", with: "%2B") } ?? ""
        let path = components.percentEncodedPath
        var request = HTTPClientRequest(url: "\(base)\(path)\(encodedQuery)")
        request.method = .init(rawValue: method)
        request.headers.add(name: "Host", value: "localhost")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await client.execute(request, timeout: timeout)
            let collected = try await response.body.collect(upTo: 64 << 20)
            return Answer(status: Int(response.status.code), body: Data(collected.readableBytesView))
        } catch {
            throw DriverError("engine at \(endpoint.url) does not answer: \(error)")
        }
    }

    /// A streaming call (`/events`): `line` gets each line of the body as it arrives, until
    /// the engine ends the stream or the task is cancelled.
    func stream(
        _ path: String,
        query: [String: String],
        connected: () -> Void = {},
        line: (String) -> Void
    ) async throws {
        var pending = Data()
        try await stream(path, query: query, connected: connected) { chunk in
            pending.append(chunk)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                line(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                pending.removeSubrange(pending.startIndex...newline)
            }
        }
    }

    /// A streaming call whose body is handed on as it arrives (`/containers/{id}/logs?follow=`).
    func stream(
        _ path: String,
        query: [String: String],
        connected: () -> Void = {},
        chunk: (Data) async throws -> Void
    ) async throws {
        var components = URLComponents()
        components.path = "/\(Self.version)\(path)"
        components.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        let encodedQuery = (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        var request = HTTPClientRequest(url: "\(base)\(components.percentEncodedPath)?\(encodedQuery)")
        request.headers.add(name: "Host", value: "localhost")
        let response = try await client.execute(request, timeout: .hours(24 * 365))
        guard response.status == .ok else { throw DriverError("\(path): engine answered \(response.status.code)") }
        connected()
        for try await part in response.body {
            try await chunk(Data(part.readableBytesView))
        }
    }
}

/// The HTTP clients engine calls go through, made once and kept (a client must be shut
/// down before it is released, and these live as long as the process). A failed
/// connection fails the call at once instead of being retried with growing backoff until
/// the call's deadline: an engine that is down is seen as down, and one that is back
/// answers the next call (the drivers' own loops do the retrying).
public enum EngineClients {
    private static let clients = Mutex([String: HTTPClient]())

    static func configuration(tls: TLSConfiguration? = nil) -> HTTPClient.Configuration {
        var settings = HTTPClient.Configuration()
        settings.tlsConfiguration = tls
        settings.connectionPool.retryConnectionEstablishment = false
        return settings
    }

    /// For unix sockets and plain TCP.
    public static let plain = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration())

    /// One per TLS endpoint (its own certificates).
    static func client(for endpoint: EngineEndpoint, configuration tls: TLSConfiguration) -> HTTPClient {
        let key = [endpoint.url, endpoint.ca ?? "", endpoint.cert ?? "", endpoint.key ?? ""].joined(separator: "|")
        return clients.withLock { clients in
            if let existing = clients[key] { return existing }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration(tls: tls))
            clients[key] = client
            return client
        }
    }
}
