import Foundation
import HTTPTypes
import Hummingbird
import LatticeDomain
import LatticeStore

/// Authenticates `/mdc/api/v1/...` (SPEC §2): a bearer token (scheme word in any case),
/// the optional `namespace` header that must match the token's (an admin's may name any
/// namespace there is, to act in it), and the admin flag.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = LatticeRequestContext
    let store: any Store
    let clock: any WallClock
    let cache: TokenCache
    let limits: RequestLimits

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let principal: Principal
        do {
            principal = try await authenticate(request, context)
        } catch let error as LatticeError where error.kind == .unauthorized {
            // Only failing tokens count, and only they are refused once an address has
            // failed too often (429): a valid token from the same address (a NAT, an
            // office) is always let in.
            try limits.failedAuth.take(context.remoteAddress)
            throw error
        }
        context.trace.identify(principal)
        try limits.perToken.take(principal.tokenID)
        var context = context
        context.principal = principal
        return try await next(request, context)
    }

    func authenticate(_ request: Request, _ context: Context) async throws -> Principal {
        guard let header = request.headers[.authorization] else {
            throw LatticeError.unauthorized("missing Authorization header; send 'Authorization: bearer <token>'")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw LatticeError.unauthorized("Authorization header must be 'bearer <token>'")
        }
        let secret = parts[1].trimmingCharacters(in: .whitespaces)
        if secret.hasPrefix(APITokenFormat.prefix), !APITokenFormat.isWellFormed(secret) {
            throw LatticeError.unauthorized("token is malformed (bad checksum)")
        }
        let digest = TokenSecrets.hash(secret)
        let now = clock.now()
        var entry = cache.lookup(secretHash: digest, now: now)
        if entry == nil {
            let epoch = cache.epoch
            guard let token = try await store.token(secretHash: digest),
                TokenSecrets.constantTimeEquals(token.secretHash, digest)
            else {
                throw LatticeError.unauthorized("unknown or revoked token")
            }
            let user = try await store.user(namespace: token.namespace)
            entry = TokenCache.Entry(token: token, isAdmin: user?.isAdmin ?? false, cachedAt: now)
            cache.store(entry!, epoch: epoch)
        }
        guard let entry else { throw LatticeError.unauthorized("unknown or revoked token") }
        let token = entry.token
        guard token.expiresAt > now else { throw LatticeError.unauthorized("token '\(token.name)' expired") }
        var actingIn: String?
        if let claimed = request.headers[.namespace], !claimed.isEmpty, claimed != token.namespace {
            // An admin acts in any namespace it names (SPEC §9); anyone else names only its own.
            guard entry.isAdmin else {
                throw LatticeError.forbidden("namespace header '\(claimed)' does not match the token's namespace")
            }
            guard try await store.user(namespace: claimed) != nil else {
                throw LatticeError.notFound("namespace '\(claimed.prefix(80))'")
            }
            actingIn = claimed
        }
        if token.lastUsedAt.map({ now.timeIntervalSince($0) > 60 }) ?? true {
            try await store.touchToken(id: token.id, at: now)
            var touched = token
            touched.lastUsedAt = now
            cache.update(touched)
        }
        return Principal(
            namespace: actingIn ?? token.namespace,
            tokenID: token.id,
            isAdmin: entry.isAdmin,
            actor: token.namespace
        )
    }
}

extension HTTPField.Name {
    static let namespace = Self("namespace")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let lastEventID = Self("Last-Event-ID")!
    static let accelBuffering = Self("X-Accel-Buffering")!
}
