import NIOCore
import Synchronization

/// What the SSH gateway lets in at once, so that idle or hostile clients cannot take the
/// descriptors every tenant needs: connections per address, connections that have not
/// signed in (from everyone together), signed-in connections, and the time a connection
/// has to sign in. One instance is shared by every listener of the gateway; a connection is
/// counted from its first byte (`SSHGateway.initialize`) until it closes.
public final class SSHConnectionLimits: Sendable {
    public struct Rule: Sendable, Equatable {
        /// Connections one address may hold (the API's `--max-connections-per-address`); 0 = no cap.
        public var perAddress: Int
        /// Connections still signing in, from every address together.
        public var unauthenticated: Int
        /// Signed-in connections.
        public var sessions: Int
        /// A connection that has not signed in by then is closed.
        public var preAuthTimeout: Duration
        /// Channels (sessions and forwards) one connection may hold open (OpenSSH's `MaxSessions`).
        public var channelsPerConnection: Int

        public init(
            perAddress: Int = 256,
            unauthenticated: Int = 1024,
            sessions: Int = 4096,
            preAuthTimeout: Duration = .seconds(30),
            channelsPerConnection: Int = 10
        ) {
            self.perAddress = perAddress
            self.unauthenticated = unauthenticated
            self.sessions = sessions
            self.preAuthTimeout = preAuthTimeout
            self.channelsPerConnection = channelsPerConnection
        }
    }

    struct Counts {
        var perAddress: [String: Int] = [:]
        var unauthenticated = 0
        var sessions = 0
    }

    public let rule: Rule
    private let counts = Mutex(Counts())

    public init(rule: Rule = Rule()) { self.rule = rule }

    /// Counts a new connection from `address`; false (and not counted) when its address or
    /// the gateway is at its cap.
    func admit(_ address: String) -> Bool {
        counts.withLock { counts in
            let held = counts.perAddress[address, default: 0]
            guard rule.perAddress == 0 || held < rule.perAddress, counts.unauthenticated < rule.unauthenticated else {
                return false
            }
            counts.perAddress[address] = held + 1
            counts.unauthenticated += 1
            return true
        }
    }

    /// Moves an admitted connection to the signed-in count and marks it so; false (nothing
    /// changed) when the gateway holds as many sessions as it may.
    func signIn(_ flag: SignedIn) -> Bool {
        counts.withLock { counts in
            guard !flag.value else { return true }
            guard counts.sessions < rule.sessions else { return false }
            counts.unauthenticated -= 1
            counts.sessions += 1
            flag.set()
            return true
        }
    }

    /// Forgets a closed connection.
    func release(_ address: String, _ flag: SignedIn) {
        counts.withLock { counts in
            let held = counts.perAddress[address, default: 1] - 1
            counts.perAddress[address] = held > 0 ? held : nil
            if flag.value { counts.sessions -= 1 } else { counts.unauthenticated -= 1 }
        }
    }

    /// Connections still signing in, and signed in (`lattice_gateway_sessions`, `/readyz`).
    public var current: (unauthenticated: Int, sessions: Int) {
        counts.withLock { ($0.unauthenticated, $0.sessions) }
    }
}

/// Whether one connection has signed in: set by the limits, when the sign-in takes its place
/// among the sessions, and read when the connection closes or its deadline passes.
final class SignedIn: Sendable {
    private let state = Atomic<Bool>(false)
    var value: Bool { state.load(ordering: .acquiring) }
    fileprivate func set() { state.store(true, ordering: .releasing) }
}

/// Counts one connection's open channels.
final class ChannelCount: Sendable {
    let limit: Int
    private let open = Mutex(0)

    init(limit: Int) { self.limit = limit }

    /// Takes a place for a new channel; false at the cap.
    func take() -> Bool {
        open.withLock { open in
            guard open < limit else { return false }
            open += 1
            return true
        }
    }

    func give() { open.withLock { $0 -= 1 } }
}
