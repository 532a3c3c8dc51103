import Foundation
import LatticeCompute
import Logging
import NIOCore
import NIOPosix
import NIOSSH
import ServiceLifecycle
import Synchronization

/// The SSH gateway (`docs/access.md`): a listener on every SSH port an instance holds, where
/// `root` means that instance (the seed's `ssh -p<port> root@<host>`), and one shared
/// listener where the login name picks the instance. Sessions run in the instance's
/// workload through its driver; `direct-tcpip` forwards reach the workload's own ports.
public final class SSHGateway: Service, Sendable {
    public struct Configuration: Sendable {
        public var host: String
        /// The shared port (`--ssh-gateway-port`); 0 = none.
        public var sharedPort: Int
        /// Listen on every port instances hold (off when the operator shows only the shared
        /// form, or redirects the range to one port).
        public var perInstancePorts: Bool
        /// `--ssh-gateway-redirect-port`: one listener for the whole SSH port range, to which
        /// the host's firewall redirects it (docs/access.md); each connection's original
        /// destination port (`SO_ORIGINAL_DST`) picks the instance. 0 = off.
        public var redirectPort: Int
        /// The ports instances are given (`--ssh-ports`): a redirected connection to one of
        /// them means that port's instance, any other the shared form.
        public var sshPorts: ClosedRange<Int>
        /// How often the per-instance listeners are compared with the ports held, besides
        /// whenever `portsChanged()` is called.
        public var resyncInterval: Duration

        public init(
            host: String,
            sharedPort: Int,
            perInstancePorts: Bool,
            redirectPort: Int = 0,
            sshPorts: ClosedRange<Int> = 30000...32767,
            resyncInterval: Duration = .seconds(5)
        ) {
            self.host = host
            self.sharedPort = sharedPort
            self.perInstancePorts = perInstancePorts && redirectPort == 0
            self.redirectPort = redirectPort
            self.sshPorts = sshPorts
            self.resyncInterval = resyncInterval
        }
    }

    let configuration: Configuration
    let hostKey: HostKey
    let directory: any AccessDirectory
    let throttles: SSHAuthenticator.Throttles
    /// What the gateway lets in at once (connections per address, signing in, signed in).
    public let limits: SSHConnectionLimits
    let logger: Logger
    let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    private struct Listeners {
        /// Per-instance listeners by port.
        var byPort: [Int: any Channel] = [:]
        /// Ports that could not be bound (warned about once each).
        var unbindable: Set<Int> = []
        /// The shared and redirect ports' listeners.
        var fixed: [any Channel] = []
    }

    private let listeners = Mutex(Listeners())
    private let wake: AsyncStream<Void>
    private let wakeSink: AsyncStream<Void>.Continuation

    public init(
        configuration: Configuration,
        hostKey: HostKey,
        directory: any AccessDirectory,
        limits: SSHConnectionLimits = SSHConnectionLimits(),
        throttle: AuthThrottle = AuthThrottle(),
        instanceThrottle: AuthThrottle = AuthThrottle(rule: .perInstance),
        logger: Logger
    ) {
        self.configuration = configuration
        self.hostKey = hostKey
        self.directory = directory
        self.limits = limits
        self.throttles = SSHAuthenticator.Throttles(address: throttle, instance: instanceThrottle)
        self.logger = logger
        (wake, wakeSink) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        wakeSink.yield()
    }

    /// Per-instance listeners open now.
    public var listenerCount: Int { listeners.withLock { $0.byPort.count } }

    /// An instance was created, started or stopped: look at the held ports again soon.
    public func portsChanged() { wakeSink.yield() }

    public func run() async throws {
        let fixedPorts: [(Int, SSHAuthenticator.Entry, String)] = [
            (configuration.sharedPort, .shared, "the shared port"),
            (configuration.redirectPort, .redirected, "the redirect port"),
        ]
        for (port, entry, what) in fixedPorts where port > 0 {
            do {
                let channel = try await bind(port: port, entry: entry)
                listeners.withLock { $0.fixed.append(channel) }
                logger.info("ssh gateway listening", metadata: ["port": "\(port)", "for": "\(what)"])
            } catch {
                // The API serves on without it; the operator reads why.
                logger.error(
                    "ssh gateway: cannot listen on \(what)",
                    metadata: ["port": "\(port)", "error": "\(error)"]
                )
            }
        }
        await withGracefulShutdownHandler {
            guard configuration.perInstancePorts else {
                try? await gracefulShutdown()
                return
            }
            await followPorts()
        } onGracefulShutdown: {
            self.wakeSink.finish()
        }
        let open = listeners.withLock { Array($0.byPort.values) + $0.fixed }
        for channel in open { try? await channel.close() }
    }

    /// Keeps one listener on each held port: binds the new, closes the released; on every
    /// `portsChanged()` and every `resyncInterval`.
    func followPorts() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.configuration.resyncInterval)
                    self.wakeSink.yield()
                }
            }
            group.addTask {
                repeat {
                    do {
                        try await self.syncListeners(held: try await self.directory.heldSSHPorts())
                    } catch {
                        self.logger.warning("ssh gateway: cannot read the held ports", metadata: ["error": "\(error)"])
                    }
                } while await self.nextWake()
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Waits for the next wake; false once shutting down.
    private func nextWake() async -> Bool {
        for await _ in wake { return true }
        return false
    }

    func syncListeners(held: Set<Int>) async throws {
        let current = listeners.withLock { $0.byPort }
        for (port, channel) in current where !held.contains(port) {
            listeners.withLock { _ = $0.byPort.removeValue(forKey: port) }
            try? await channel.close()
        }
        for port in held.subtracting(current.keys).sorted() {
            do {
                let channel = try await bind(port: port, entry: .instancePort(port))
                listeners.withLock {
                    $0.byPort[port] = channel
                    _ = $0.unbindable.remove(port)
                }
            } catch {
                // Said once per port, not at every resync (another replica on this host
                // may hold it); tried again at every resync.
                if listeners.withLock({ $0.unbindable.insert(port).inserted }) {
                    logger.warning(
                        "ssh gateway: cannot listen on an instance's port",
                        metadata: ["port": "\(port)", "error": "\(error)"]
                    )
                }
            }
        }
        listeners.withLock { $0.unbindable.formIntersection(held) }
    }

    func bind(port: Int, entry: SSHAuthenticator.Entry) async throws -> any Channel {
        let logger = logger
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                // Before NIO's accept backoff, which pauses accepting for a second on EMFILE
                // and ENFILE but says nothing: the operator reads why.
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptErrorLog(logger: logger, port: port))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in self.initialize(channel, entry: entry) }
            .bind(host: configuration.host, port: port)
            .get()
    }

    /// Sets up one accepted connection: counts it (`SSHConnectionLimits`, closed at once over
    /// a cap, and at the sign-in deadline), finds which instance its port means and that
    /// instance's host key, then speaks SSH.
    func initialize(_ channel: any Channel, entry: SSHAuthenticator.Entry) -> EventLoopFuture<Void> {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        guard limits.admit(address) else {
            return channel.eventLoop.makeFailedFuture(GatewayError.refused("over the gateway's connection limits"))
        }
        let signedIn = SignedIn()
        let limits = limits
        let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(limits.rule.preAuthTimeout)) {
            if !signedIn.value { channel.close(promise: nil) }
        }
        channel.closeFuture.whenComplete { _ in
            deadline.cancel()
            limits.release(address, signedIn)
        }
        return Self.arrival(channel, entry: entry, sshPorts: configuration.sshPorts).flatMap { entry in
            channel.eventLoop.makeFutureWithTask { (entry, await self.hostKey(for: entry)) }
        }.flatMapThrowing { entry, key in
            let authenticator = SSHAuthenticator(
                entry: entry,
                directory: self.directory,
                throttles: self.throttles,
                address: address,
                signIn: { limits.signIn(signedIn) },
                logger: self.logger
            )
            try self.speakSSH(channel, hostKey: key, authenticator: authenticator)
        }
    }

    /// Where a connection arrived: a redirected one by its original destination port.
    static func arrival(
        _ channel: any Channel,
        entry: SSHAuthenticator.Entry,
        sshPorts: ClosedRange<Int>
    ) -> EventLoopFuture<SSHAuthenticator.Entry> {
        guard entry == .redirected else { return channel.eventLoop.makeSucceededFuture(entry) }
        return OriginalDestination.port(of: channel).map { port in
            guard let port, sshPorts.contains(port) else { return .shared }
            return .instancePort(port)
        }
    }

    /// An instance's own port presents the instance's own key; the shared port the master key.
    func hostKey(for entry: SSHAuthenticator.Entry) async -> HostKey {
        guard case .instancePort(let port) = entry,
            let target = try? await directory.target(sshPort: port)
        else { return hostKey }
        return hostKey.derived(forInstance: target.uid)
    }

    func speakSSH(_ channel: any Channel, hostKey: HostKey, authenticator: SSHAuthenticator) throws {
        let directory = directory
        let channels = ChannelCount(limit: limits.rule.channelsPerConnection)
        let handler = NIOSSHHandler(
            role: .server(.init(hostKeys: [hostKey.sshKey], userAuthDelegate: authenticator)),
            allocator: channel.allocator,
            inboundChildChannelInitializer: { child, type in
                guard let target = authenticator.target else {
                    return child.eventLoop.makeFailedFuture(GatewayError.notAuthenticated)
                }
                guard channels.take() else {
                    return child.eventLoop.makeFailedFuture(GatewayError.refused("too many channels on one connection"))
                }
                child.closeFuture.whenComplete { _ in channels.give() }
                switch type {
                case .session:
                    return child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(
                            SSHSessionHandler(target: target, directory: directory)
                        )
                    }
                case .directTCPIP(let forward):
                    return PortForward.open(child, to: forward, target: target, directory: directory)
                case .forwardedTCPIP:
                    return child.eventLoop.makeFailedFuture(GatewayError.refused("remote forwards are not offered"))
                }
            }
        )
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addHandler(CloseOnError())
    }
}

enum GatewayError: Error, CustomStringConvertible {
    case notAuthenticated
    case refused(String)

    var description: String {
        switch self {
        case .notAuthenticated: "not authenticated"
        case .refused(let why): why
        }
    }
}

/// Logs a listener's accept errors (out of descriptors, above all), at most once in 10 s,
/// and passes them on to NIO's accept backoff.
final class AcceptErrorLog: ChannelInboundHandler {
    typealias InboundIn = Any
    let logger: Logger
    let port: Int
    private var lastLogged: NIODeadline?

    init(logger: Logger, port: Int) {
        self.logger = logger
        self.port = port
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let now = NIODeadline.now()
        if lastLogged.map({ now - $0 > .seconds(10) }) ?? true {
            lastLogged = now
            logger.warning(
                "ssh gateway: cannot accept a connection; pausing accepts for a second",
                metadata: ["port": "\(port)", "error": "\(error)"]
            )
        }
        context.fireErrorCaught(error)
    }
}

/// Closes a connection whose pipeline failed (a protocol error, a dropped peer).
final class CloseOnError: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// `direct-tcpip` (`ssh -L`): to a port of the instance's own workload, nothing else.
enum PortForward {
    /// Host names that mean "the instance itself" in a forward request.
    static func meansInstance(_ host: String, _ target: AccessTarget) -> Bool {
        ["localhost", "127.0.0.1", "::1", "0.0.0.0", target.name].contains(host.lowercased())
    }

    static func open(
        _ child: any Channel,
        to forward: SSHChannelType.DirectTCPIP,
        target: AccessTarget,
        directory: any AccessDirectory
    ) -> EventLoopFuture<Void> {
        guard meansInstance(forward.targetHost, target), (1...65535).contains(forward.targetPort) else {
            return child.eventLoop.makeFailedFuture(
                GatewayError.refused("forwards reach the instance's own ports only")
            )
        }
        let port = forward.targetPort
        return child.eventLoop.makeFutureWithTask {
            guard let current = try await directory.target(instanceName: target.name), current.isRunning,
                let driver = directory.workloads(cluster: current.cluster),
                let endpoint = try await driver.endpoint(instanceName: current.name, port: port)
            else { throw GatewayError.refused("\(target.name) has nothing to forward to on port \(port)") }
            return endpoint
        }.flatMap { endpoint in
            // Both channels run on the child's event loop, so the two halves may hold each other.
            let (inner, outer) = SpliceHandler.pair()
            let innerBound = NIOLoopBound(inner, eventLoop: child.eventLoop)
            let outerBound = NIOLoopBound(outer, eventLoop: child.eventLoop)
            return ClientBootstrap(group: child.eventLoop)
                .connectTimeout(.seconds(10))
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelInitializer { upstream in
                    upstream.eventLoop.makeCompletedFuture {
                        try upstream.pipeline.syncOperations.addHandler(outerBound.value)
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port)
                .flatMap { upstream in
                    // A forward is a session for the idle clock while it is open.
                    directory.used(target, .sessionOpened)
                    upstream.closeFuture.whenComplete { _ in directory.used(target, .sessionClosed) }
                    return child.setOption(.allowRemoteHalfClosure, value: true).flatMapThrowing {
                        try child.pipeline.syncOperations.addHandlers([SSHDataCodec(), innerBound.value])
                    }
                }
        }
    }
}
