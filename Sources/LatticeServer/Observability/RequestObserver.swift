import Foundation
import HTTPTypes
import Hummingbird
import LatticeDomain
import Logging
import Synchronization

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
            if let audit, AuditRule.mayChangeState(method: request.method.rawValue) {
                await audit.record(
                    method: request.method.rawValue,
                    route: context.endpointPath ?? "",
                    path: request.uri.path,
                    query: request.uri.queryParameters.get("name"),
                    status: response.status.code,
                    trace: context.trace,
                    remoteAddress: context.remoteAddress
                )
            }
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
        guard logger.logLevel <= .info else { return }
        logger.info(
            "request",
            metadata: [
                "requestId": "\(context.trace.id)",
                "method": "\(request.method.rawValue)",
                "route": "\(route)",
                "status": "\(status)",
                "durationMs": "\(Self.milliseconds(duration))",
                "namespace": "\(context.trace.namespace ?? "")",
                "remoteAddress": "\(context.remoteAddress)",
            ]
        )
    }

    /// `12.345`: milliseconds with three decimals, without Foundation's formatter.
    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let micros = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        let fraction = String(micros % 1000)
        return "\(micros / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    /// The client's id when it is 1...128 printable ASCII characters, else a new one.
    static func requestID(_ given: String?) -> String {
        if let given, (1...128).contains(given.utf8.count), given.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) {
            return given
        }
        return RequestIDs.shared.next()
    }
}

/// New request ids without a system call each: a random prefix drawn once per process
/// and a counter, 32 hex digits in all, unique within the process and across restarts.
final class RequestIDs: Sendable {
    static let shared = RequestIDs()
    private let prefix: String
    private let counter = Atomic<UInt64>(0)

    init() {
        var generator = SystemRandomNumberGenerator()
        prefix = Self.hex(generator.next())
    }

    func next() -> String { prefix + Self.hex(counter.add(1, ordering: .relaxed).newValue) }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
}
