import AsyncHTTPClient
import Foundation
import LatticeDomain
import NIOCore

/// A typed client for the Lattice API (the seed's Computing API and Lattice's own
/// endpoints).
///
/// ```swift
/// let client = LatticeClient(baseURL: URL(string: "http://127.0.0.1:8080")!, namespace: "alice", token: token)
/// let skus = try await client.gpuSkus()
/// let request = CreateInstanceOptions(gpuSkuID: "66", displayName: "train", image: image)
/// let instance = try await client.createInstance(cluster: "host-cluster", request)
/// ```
///
/// Server errors are thrown as ``LatticeAPIError`` (with the server's `code` and
/// `message`). Calls that are safe to repeat (reads and deletes) are retried on connection
/// failures and `503` with exponential backoff, as configured by ``RetryPolicy``.
public struct LatticeClient: Sendable {
    /// How reads and deletes are retried.
    public struct RetryPolicy: Sendable {
        /// Attempts in all, the first included.
        public var maxAttempts: Int
        /// Delay before the second attempt; doubled for each further one.
        public var initialDelay: Duration

        public init(maxAttempts: Int = 4, initialDelay: Duration = .milliseconds(200)) {
            self.maxAttempts = max(1, maxAttempts)
            self.initialDelay = initialDelay
        }

        /// No retries.
        public static let none = RetryPolicy(maxAttempts: 1)
    }

    public let baseURL: URL
    /// Sent as the `namespace` header; nil lets the server use the token's own.
    public let namespace: String?
    let token: String
    let transport: any HTTPTransport
    let retry: RetryPolicy

    /// A client on the shared `HTTPClient`.
    public init(baseURL: URL, namespace: String?, token: String, retry: RetryPolicy = RetryPolicy()) {
        self.init(
            baseURL: baseURL,
            namespace: namespace,
            token: token,
            retry: retry,
            transport: AsyncHTTPTransport(client: .shared)
        )
    }

    /// A client over any transport; tests pass a fake.
    init(baseURL: URL, namespace: String?, token: String, retry: RetryPolicy, transport: any HTTPTransport) {
        self.baseURL = baseURL
        self.namespace = namespace
        self.token = token
        self.retry = retry
        self.transport = transport
    }

    // MARK: Plumbing

    func send(
        _ method: String,
        _ path: String,
        query: [String: String] = [:],
        body: (any Encodable & Sendable)? = nil,
        idempotent: Bool,
        idempotencyKey: String? = nil
    ) async throws -> Data {
        var components = URLComponents(url: baseURL.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        if !query.isEmpty {
            components.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        var headers = ["Authorization": "bearer \(token)", "Accept": "application/json"]
        if let namespace { headers["namespace"] = namespace }
        // With a key the server answers a repeat with the first answer, so a create may be
        // retried after a lost answer without making a second one.
        // Every POST carries one (a fresh key per call, kept across its retries), which also
        // makes it safe to retry.
        let key = idempotencyKey ?? (method == "POST" ? Self.newIdempotencyKey() : nil)
        if let key { headers["Idempotency-Key"] = key }
        let idempotent = idempotent || key != nil
        var payload: Data?
        if let body {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            payload = try encoder.encode(body)
            headers["Content-Type"] = "application/json"
        }
        let request = TransportRequest(
            method: method,
            url: components.url!.absoluteString,
            headers: headers,
            body: payload
        )
        var attempt = 1
        var delay = retry.initialDelay
        while true {
            do {
                let response = try await transport.send(request)
                if (200..<300).contains(response.status) { return response.body }
                let error = LatticeAPIError(status: response.status, body: response.body)
                if response.status == 503, idempotent, attempt < retry.maxAttempts {
                    throw RetryableFailure.status(error)
                }
                throw error
            } catch let failure as RetryableFailure {
                guard case .status(let error) = failure else { throw failure }
                if attempt >= retry.maxAttempts { throw error }
            } catch let error as LatticeAPIError {
                throw error
            } catch {
                guard idempotent, attempt < retry.maxAttempts else {
                    throw LatticeClientError.transport(String(describing: error))
                }
            }
            try await Task.sleep(for: delay)
            delay *= 2
            attempt += 1
        }
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw LatticeClientError.unexpectedResponse("\(T.self): \(error)")
        }
    }

    func get<T: Decodable>(_ type: T.Type, _ path: String, query: [String: String] = [:]) async throws -> T {
        try decode(type, try await send("GET", path, query: query, idempotent: true))
    }

    static func pageQuery(_ page: PageRequest) -> [String: String] {
        ["page": String(page.page), "pageSize": String(page.pageSize)]
    }

    static let v1 = "/mdc/api/v1"

    /// A fresh `Idempotency-Key` for one create (and its retries).
    static func newIdempotencyKey() -> String { UUID().uuidString.lowercased() }
}

enum RetryableFailure: Error {
    case status(LatticeAPIError)
}

/// An error answer of the server: its HTTP status, `code` and `message` (SPEC §4).
public struct LatticeAPIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    init(status: Int, body: Data) {
        if let wire = try? JSONDecoder().decode(ErrorWire.self, from: body) {
            self.init(status: status, code: wire.code, message: wire.message)
        } else {
            self.init(status: status, code: "HTTP\(status)", message: String(decoding: body.prefix(500), as: UTF8.self))
        }
    }

    public var description: String { "\(code): \(message)" }
}

/// A failure before any answer arrived, or an answer the client could not read.
public enum LatticeClientError: Error, Sendable, Equatable, CustomStringConvertible {
    case transport(String)
    case unexpectedResponse(String)

    public var description: String {
        switch self {
        case .transport(let why): "cannot reach the server: \(why)"
        case .unexpectedResponse(let why): "unexpected response: \(why)"
        }
    }
}
