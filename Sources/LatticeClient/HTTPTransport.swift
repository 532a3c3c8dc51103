import AsyncHTTPClient
import Foundation
import NIOCore

/// One HTTP exchange, independent of the HTTP library.
struct TransportRequest: Sendable, Equatable {
    var method: String
    var url: String
    var headers: [String: String]
    var body: Data?
}

struct TransportResponse: Sendable, Equatable {
    var status: Int
    var body: Data
}

/// What the client needs from HTTP; the fake in the tests implements it too.
protocol HTTPTransport: Sendable {
    func send(_ request: TransportRequest) async throws -> TransportResponse
}

/// The real transport, on AsyncHTTPClient.
struct AsyncHTTPTransport: HTTPTransport {
    let client: HTTPClient

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = .init(rawValue: request.method)
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let body = request.body { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(outgoing, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 32 << 20)
        return TransportResponse(status: Int(response.status.code), body: Data(body.readableBytesView))
    }
}
