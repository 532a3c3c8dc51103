import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The outermost middleware (SPEC §10): gives every request its id (the client's own
/// `X-Request-Id` if it is 1 to 128 printable characters, else a new one) and answers with
/// it, writes one log line per request (id, method, route template, status, duration,
/// namespace, remote address; never a header, a token or a body) and counts the request
/// in the metrics, and has a state-changing call audited.
struct RequestObserver: RouterMiddleware {
    typealias Context = LatticeRequestContext
    let metrics: ServerMetrics
    let logger: Logger
    /// Audits state-changing calls (nil: none are, as in router tests that need no store).
    let audit: AuditRecorder?

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let id = Self.requestID(request.headers[.requestID])
        context.trace.id = id
        let start = ContinuousClock.now
        do {
            var response = try await next(request, context)
            response.headers[.requestID] = id
            finish(request, context, status: response.status.code, since: start)
            await audit?.record(
                method: request.method.rawValue,
                route: context.endpointPath ?? "",
                path: request.uri.path,
                query: request.uri.queryParameters.get("name"),
                status: response.status.code,
                trace: context.trace,
                remoteAddress: context.remoteAddress
            )
            return response
        } catch {
            // ErrorMiddleware answers every error; what still comes here is the server's own
            // (a cancelled request) and is answered by Hummingbird as a 500.
            finish(request, context, status: 500, since: start)
            throw error
        }
    }

    func finish(_ request: Request, _ context: Context, status: Int, since start: ContinuousClock.Instant) {
        let duration = ContinuousClock.now - start
        let route = context.endpointPath ?? "NotFound"
        metrics.request(method: request.method.rawValue, route: route, status: status, duration: duration)
        let (seconds, attoseconds) = duration.components
        let milliseconds = Double(seconds) * 1000 + Double(attoseconds) / 1e15
        logger.info(
            "request",
            metadata: [
                "requestId": "\(context.trace.id)",
                "method": "\(request.method.rawValue)",
                "route": "\(route)",
                "status": "\(status)",
                "durationMs": "\(String(format: "%.3f", milliseconds))",
                "namespace": "\(context.trace.namespace ?? "")",
                "remoteAddress": "\(context.remoteAddress)",
            ]
        )
    }

    /// The client's id when it is 1...128 printable ASCII characters, else a new one.
    static func requestID(_ given: String?) -> String {
        if let given, (1...128).contains(given.utf8.count), given.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) {
            return given
        }
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
}
