/// An error the API answers with: an HTTP status, a PascalCase code and a message that
/// names the field or resource at fault (SPEC §4).
///
/// Storage and driver failures are never shown to clients as they are; they are mapped
/// to one of these first.
public struct LatticeError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case badRequest, unauthorized, forbidden, notFound, paymentRequired
        case conflict, payloadTooLarge, unprocessable, tooManyRequests, unavailable, internalError
        case methodNotAllowed

        /// The HTTP status code.
        public var status: Int {
            switch self {
            case .badRequest: 400
            case .unauthorized: 401
            case .paymentRequired: 402
            case .forbidden: 403
            case .notFound: 404
            case .methodNotAllowed: 405
            case .conflict: 409
            case .payloadTooLarge: 413
            case .unprocessable: 422
            case .tooManyRequests: 429
            case .internalError: 500
            case .unavailable: 503
            }
        }
    }

    public var kind: Kind
    public var code: String
    public var message: String
    /// Seconds a client should wait before retrying (`Retry-After` on 429 and 503).
    public var retryAfter: Int?

    public init(_ kind: Kind, code: String, _ message: String, retryAfter: Int? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public static func rateLimited(_ what: String, retryAfter: Int) -> LatticeError {
        LatticeError(
            .tooManyRequests,
            code: "RateLimited",
            "too many requests \(what); retry in \(retryAfter) s",
            retryAfter: retryAfter
        )
    }

    public var description: String { "\(code): \(message)" }

    public static func invalidField(_ field: String, _ why: String) -> LatticeError {
        LatticeError(.badRequest, code: "InvalidField", "\(field): \(why)")
    }
    public static func missingField(_ field: String) -> LatticeError {
        LatticeError(.badRequest, code: "MissingField", "\(field): required field is missing")
    }
    public static func malformedJSON(_ why: String) -> LatticeError {
        LatticeError(.badRequest, code: "MalformedJSON", "request body is not valid JSON: \(why)")
    }
    public static func notFound(_ what: String) -> LatticeError {
        LatticeError(.notFound, code: "NotFound", "\(what) not found")
    }
    public static func invalidState(_ message: String) -> LatticeError {
        LatticeError(.conflict, code: "InvalidState", message)
    }
    public static func insufficientCapacity(_ message: String) -> LatticeError {
        LatticeError(.conflict, code: "InsufficientCapacity", message)
    }
    public static func unprocessable(_ code: String, _ message: String) -> LatticeError {
        LatticeError(.unprocessable, code: code, message)
    }
    public static func unauthorized(_ message: String) -> LatticeError {
        LatticeError(.unauthorized, code: "Unauthorized", message)
    }
    public static func forbidden(_ message: String) -> LatticeError {
        LatticeError(.forbidden, code: "Forbidden", message)
    }
}
