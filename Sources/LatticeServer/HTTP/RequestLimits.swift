import Foundation
import LatticeDomain

/// The rate limiters of one server, built once from `ServerLimits`.
struct RequestLimits: Sendable {
    let perToken: RateLimiter
    /// Unauthenticated endpoints, by address.
    let perAddress: RateLimiter
    /// API calls with a missing or wrong token, by address (same limit as `perAddress`).
    let failedAuth: RateLimiter
    let signIn: RateLimiter

    init(_ limits: ServerLimits) {
        perToken = RateLimiter(limits.perToken, what: "with this token")
        perAddress = RateLimiter(limits.perAddress, what: "from this address")
        failedAuth = RateLimiter(limits.perAddress, what: "without a valid token from this address")
        signIn = RateLimiter(limits.signIn, what: "signing in from this address")
    }
}
