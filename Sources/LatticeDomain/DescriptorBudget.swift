/// How a server's open-file limit is shared out, so that no kind of work can take the
/// descriptors another needs (a burst of creates, idle clients at the SSH gateway, API
/// clients). Every listener and every connection is a descriptor; past the limit `accept`,
/// `socket` and `open` fail everywhere at once, so each kind gets a share and is refused
/// (with a reason) before it reaches the limit.
///
/// The reserve covers what the server itself keeps open: the database (SQLite's files or
/// PostgreSQL's pool), engine and Kubernetes connections, event loops, logs. The rest goes
/// 3/8 to SSH listeners (one per instance port), 1/8 to SSH connections that have not
/// signed in, 1/4 to signed-in SSH sessions and 1/4 to API connections.
public struct DescriptorBudget: Sendable, Equatable {
    /// `RLIMIT_NOFILE` in force.
    public var openFileLimit: Int

    public init(openFileLimit: Int) { self.openFileLimit = max(0, openFileLimit) }

    /// Descriptors the server keeps for itself.
    public var reserve: Int { min(256, openFileLimit / 4) }

    var shared: Int { max(0, openFileLimit - reserve) }

    /// The most per-instance SSH listeners (held SSH ports) the gateway may open.
    public var sshListeners: Int { shared * 3 / 8 }
    /// The most SSH connections that have not yet signed in, from every address together.
    public var sshUnauthenticated: Int { max(1, shared / 8) }
    /// The most signed-in SSH connections.
    public var sshSessions: Int { max(1, shared / 4) }
    /// The most open API (and shared-port HTTP gateway) connections.
    public var apiConnections: Int { max(1, shared / 4) }

    /// The part of `range` that instances may be given: its lowest `sshListeners` ports
    /// when per-instance listeners are on (ports are handed out lowest first, so at most
    /// that many are ever held), the whole range otherwise.
    public func allocatableSSHPorts(_ range: ClosedRange<Int>, perInstanceListeners: Bool) -> ClosedRange<Int>? {
        guard perInstanceListeners else { return range }
        guard sshListeners > 0 else { return nil }
        return range.lowerBound...min(range.upperBound, range.lowerBound + sshListeners - 1)
    }

    /// The answer to a create or power_on that would need one listener more than the budget.
    public func listenersExhausted(range: ClosedRange<Int>) -> LatticeError {
        LatticeError(
            .unavailable,
            code: "OpenFileLimitReached",
            "the SSH gateway listens on one port per instance and may open at most \(sshListeners) under this "
                + "server's open-file limit of \(openFileLimit) (all in use; --ssh-ports \(range.lowerBound)-"
                + "\(range.upperBound)); raise the limit (LimitNOFILE= in lattice.service, or ulimit -n) and "
                + "restart, or show the shared form (--ssh-gateway-shared-form) or redirect the range to one "
                + "port (--ssh-gateway-redirect-port, docs/access.md)",
            retryAfter: 60
        )
    }
}

/// The SSH gateway's use of its descriptor budget, as `/readyz` and `GET /admin/nodes` show it.
public struct SSHListenerReport: Codable, Sendable, Equatable {
    /// `RLIMIT_NOFILE` in force.
    public var openFileLimit: Int
    /// The most per-instance listeners the gateway may open (0 when it opens none: shared
    /// form or redirect mode).
    public var budget: Int
    /// Per-instance listeners open now.
    public var listening: Int
    /// True when no create or power_on can get an SSH port for lack of descriptors.
    public var full: Bool
    /// Connections signing in, and signed in.
    public var signingIn: Int
    public var sessions: Int

    public init(openFileLimit: Int, budget: Int, listening: Int, full: Bool, signingIn: Int, sessions: Int) {
        self.openFileLimit = openFileLimit
        self.budget = budget
        self.listening = listening
        self.full = full
        self.signingIn = signingIn
        self.sessions = sessions
    }
}
