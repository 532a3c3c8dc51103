import Hummingbird
import LatticeDomain

/// Who is calling, as established by `AuthMiddleware`.
/// An admin's token naming another namespace in the `namespace` header acts in that
/// namespace (SPEC §9): `namespace` is the one acted in, `actor` the admin's own.
public struct Principal: Sendable, Equatable {
    public var namespace: String
    public var tokenID: String
    public var isAdmin: Bool
    public var actor: String

    public init(namespace: String, tokenID: String, isAdmin: Bool, actor: String? = nil) {
        self.namespace = namespace
        self.tokenID = tokenID
        self.isAdmin = isAdmin
        self.actor = actor ?? namespace
    }

    /// Whether an admin acts for another namespace.
    public var actsForAnother: Bool { actor != namespace }
}

/// The per-request context: Hummingbird's core storage plus the authenticated principal.
public struct LatticeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal?
    /// The client's IP address, for per-address limits ("unknown" when the transport has none).
    public let remoteAddress: String
    /// What the request log line says of this request, filled in on the way through.
    public let trace = RequestTrace()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        principal = nil
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Bodies over 1 MiB are refused with 413 (SPEC §4).
    public var maxUploadSize: Int { 1 << 20 }

    /// The principal of an authenticated route; the auth middleware guarantees it.
    func requirePrincipal() throws -> Principal {
        guard let principal else { throw LatticeError.unauthorized("authentication required") }
        return principal
    }
}
