import AsyncHTTPClient
import Foundation
import LatticeCompute
import NIOCore

/// Calls to the Docker Engine API over a unix socket (`http+unix://`).
struct EngineAPI: Sendable {
    let socketPath: String
    let client: HTTPClient
    static let version = "v1.41"

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
        let encodedSocket = socketPath.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socketPath
        // `+` in a query means a space to the engine: encode it.
        let encodedQuery =
            components.percentEncodedQuery.map { "?" + $0.replacingOccurrences(of: "+", with: "%2B") } ?? ""
        let path = components.percentEncodedPath
        var request = HTTPClientRequest(url: "http+unix://\(encodedSocket)\(path)\(encodedQuery)")
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
            throw DriverError("engine at \(socketPath) does not answer: \(error)")
        }
    }

    /// A streaming call (`/events`): `line` gets each line of the body as it arrives, until
    /// the engine ends the stream or the task is cancelled.
    func stream(_ path: String, query: [String: String], line: (String) -> Void) async throws {
        var components = URLComponents()
        components.path = "/\(Self.version)\(path)"
        components.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        let encodedSocket = socketPath.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socketPath
        let encodedQuery = (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        var request = HTTPClientRequest(
            url: "http+unix://\(encodedSocket)\(components.percentEncodedPath)?\(encodedQuery)"
        )
        request.headers.add(name: "Host", value: "localhost")
        let response = try await client.execute(request, timeout: .hours(24 * 365))
        guard response.status == .ok else { throw DriverError("\(path): engine answered \(response.status.code)") }
        var pending = Data()
        for try await chunk in response.body {
            pending.append(contentsOf: chunk.readableBytesView)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                line(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                pending.removeSubrange(pending.startIndex...newline)
            }
        }
    }
}
