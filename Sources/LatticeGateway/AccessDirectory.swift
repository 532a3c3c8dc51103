import LatticeCompute

/// One instance as the gateways see it.
public struct AccessTarget: Sendable, Equatable {
    public var name: String
    public var uid: String
    public var namespace: String
    public var cluster: String
    public var sshPassword: String
    /// The instance's status (`Running`, `Stopped`, ...); sessions run only when Running.
    public var status: String
    /// The instance's web token (Jupyter's, and the HTTP gateway's for Tensorboard).
    public var jupyterToken: String
    /// The HTTP ports the instance publishes, each with whether it is public (reached
    /// without the token).
    public var publishedPorts: [Int: Bool]
    /// Whether the instance has an idle policy, so its use through a gateway is recorded.
    public var tracksIdle: Bool
    /// Whether a connection through a gateway powers the instance on when it is Stopped.
    public var wakeOnConnect: Bool

    public init(
        name: String,
        uid: String,
        namespace: String,
        cluster: String,
        sshPassword: String,
        status: String,
        jupyterToken: String = "",
        publishedPorts: [Int: Bool] = [:],
        tracksIdle: Bool = false,
        wakeOnConnect: Bool = false
    ) {
        self.tracksIdle = tracksIdle
        self.wakeOnConnect = wakeOnConnect
        self.jupyterToken = jupyterToken
        self.publishedPorts = publishedPorts
        self.name = name
        self.uid = uid
        self.namespace = namespace
        self.cluster = cluster
        self.sshPassword = sshPassword
        self.status = status
    }

    public var isRunning: Bool { status == "Running" }

    /// Whether a connection should wake the instance: it asks for it and is Stopped (or
    /// already on its way up).
    public var wakes: Bool { wakeOnConnect && ["Stopped", "Starting", "Creating"].contains(status) }
}

/// A use of an instance through a gateway, which restarts its idle clock (SPEC §12).
public enum GatewayUse: Sendable, Equatable {
    /// An SSH or web-terminal session, or a connection proxied by the HTTP gateway, began.
    case sessionOpened
    case sessionClosed
}

/// What waking a Stopped instance came to.
public enum WakeAnswer: Sendable, Equatable {
    /// Powered on (or already on its way up): wait for Running.
    case starting
    /// It stays as it is, and why (no free GPUs, no money, ...), in words for the client.
    case refused(String)
}

/// What the gateways ask of the rest of the server: which instance a login, a port or a
/// host name means, the keys a namespace registered, and the driver that runs it.
public protocol AccessDirectory: Sendable {
    func target(instanceName: String) async throws -> AccessTarget?
    func target(sshPort: Int) async throws -> AccessTarget?
    func target(uid: String) async throws -> AccessTarget?
    /// The namespace's registered public keys, as OpenSSH lines.
    func authorizedKeys(namespace: String) async throws -> [String]
    /// The SSH ports instances hold now (the per-instance listeners).
    func heldSSHPorts() async throws -> Set<Int>
    func workloads(cluster: String) -> (any WorkloadAccess)?
    /// A sign-in to `target` through the SSH gateway, accepted or refused, with its method
    /// (`password`, `publickey`): the audit log's `ssh.login`.
    func signInAttempted(to target: AccessTarget, address: String, method: String, accepted: Bool) async
    /// The instance used through a gateway (cheap and synchronous: called on event loops).
    func used(_ target: AccessTarget, _ use: GatewayUse)
    /// Powers a Stopped instance with `wakeOnConnect` on, as its owner would.
    func wake(_ target: AccessTarget) async -> WakeAnswer
}

extension AccessDirectory {
    /// Directories that keep no audit log (tests' fakes) let sign-ins pass unrecorded.
    public func signInAttempted(to target: AccessTarget, address: String, method: String, accepted: Bool) async {}
}
