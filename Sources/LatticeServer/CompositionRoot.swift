import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import LatticeCompute
import LatticeComputeEngine
import LatticeComputeKubernetes
import LatticeDomain
import LatticeGateway
import LatticeStore
import LatticeStorePostgres
import LatticeStoreSQLite
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// The composition root: the one place where the store, the drivers, the API, the routes
/// and the background services are created and wired together.
public enum CompositionRoot {
    /// Builds the router alone, for socket-free tests and for `buildApplication`. Without
    /// a request logger, requests are counted in `metrics` but not logged.
    static func buildRouter(
        api: LatticeAPI,
        store: any Store,
        clock: any WallClock,
        readiness: Readiness,
        metrics: ServerMetrics = ServerMetrics(),
        requestLogger: Logger? = nil
    ) -> Router<LatticeRequestContext> {
        let router = Router(context: LatticeRequestContext.self)
        var quiet = Logger(label: "lattice.request")
        quiet.logLevel = .warning
        router.add(
            middleware: RequestObserver(
                metrics: metrics,
                logger: requestLogger ?? quiet,
                audit: AuditRecorder(store: store, clock: clock, logger: requestLogger ?? quiet)
            )
        )
        router.add(middleware: ErrorMiddleware())
        Routes(
            api: api,
            store: store,
            clock: clock,
            readiness: readiness,
            limits: RequestLimits(api.configuration.limits),
            metrics: metrics
        ).register(on: router)
        return router
    }

    /// One driver per cluster of the catalog.
    static func buildFleet(
        configuration: ServerConfiguration,
        clock: any WallClock,
        persistent: Bool
    ) throws -> ComputeFleet {
        var drivers: [String: any ComputeDriver] = [:]
        for cluster in configuration.catalog.clusters {
            switch cluster.driver {
            case .simulated:
                let scale = configuration.simulatedDelayScale
                let timing = SimulatedFleetDriver.Timing(
                    startDelay: cluster.startDelaySeconds * scale,
                    stopDelay: cluster.stopDelaySeconds * scale
                )
                let stateFile =
                    persistent ? configuration.dataDirectory.appendingPathComponent("fleet-\(cluster.name).json") : nil
                drivers[cluster.name] = SimulatedFleetDriver(
                    cluster: cluster.name,
                    nodes: cluster.nodes,
                    timing: timing,
                    clock: clock,
                    stateFile: stateFile
                )
            case .engine:
                // Every node is one host, with its own engine endpoint (validated with the catalog).
                let hosts = cluster.nodes.compactMap { node in cluster.engineEndpoint(of: node).map { (node, $0) } }
                do {
                    drivers[cluster.name] = try EngineDriver(
                        cluster: cluster.name,
                        hosts: hosts,
                        gpuRequests: EngineDriver.GPURequests(rawValue: cluster.gpuRequests ?? "docker") ?? .docker,
                        discoverGPUs: cluster.gpuRequests != "none",
                        push: cluster.pushSnapshots == true
                            ? EngineDriver.Push(
                                username: cluster.registryUsername ?? "",
                                password: cluster.registryPassword ?? ""
                            ) : nil,
                        isolation: EngineDriver.Isolation(pidsLimit: cluster.pidsLimit ?? 4096),
                        gpuProbeImage: cluster.gpuProbeImage
                    )
                } catch {
                    throw LatticeError(.badRequest, code: "InvalidCatalog", "cluster \(cluster.name): \(error)")
                }
            case .kubernetes:
                do {
                    drivers[cluster.name] = try kubernetesDriver(cluster, publicHost: configuration.publicHost)
                } catch {
                    throw LatticeError(.badRequest, code: "InvalidCatalog", "cluster \(cluster.name): \(error)")
                }
            }
        }
        return ComputeFleet(drivers: drivers)
    }

    /// A Kubernetes cluster's driver: in-cluster, or from the kubeconfig the catalog names.
    static func kubernetesDriver(_ cluster: Cluster, publicHost: String) throws -> KubernetesDriver {
        let settings = cluster.kubernetes ?? KubernetesSettings()
        let connection =
            try settings.kubeconfig.map { try KubeConnection.kubeconfig(path: $0, context: settings.context) }
            ?? KubeConnection.inCluster()
        var driver = KubernetesDriver.Settings(cluster: cluster.name, publicHost: publicHost)
        if let namespace = settings.namespace { driver.namespace = namespace }
        if let key = settings.gpuResourceKey { driver.gpuResourceKey = key }
        if let label = settings.gpuModelLabel { driver.gpuModelLabel = label }
        driver.storageClass = settings.storageClass
        driver.ingressClass = settings.ingressClass
        driver.registrySecret = settings.registrySecret
        driver.tolerations = settings.tolerations
        driver.runtimeClass = settings.runtimeClass
        driver.committerImage = settings.committerImage
        if let socket = settings.containerdSocket { driver.containerdSocket = socket }
        if let qps = settings.queriesPerSecond { driver.queriesPerSecond = qps }
        if let burst = settings.burst { driver.burst = Double(burst) }
        driver.sshNodePort = settings.sshNodePort ?? false
        driver.isolation = KubeObjects.Isolation(
            fromNamespaces: settings.ingressFromNamespaces ?? [],
            fromCIDRs: settings.ingressFromCIDRs ?? [],
            egressCIDRs: settings.egressCIDRs
        )
        return try KubernetesDriver(settings: driver, connection: connection)
    }

    /// The SSH gateway (always; its shared port may be off) and the HTTP gateway's parts.
    struct Gateways {
        var ssh: SSHGateway
        var hostKey: HostKey
        var directory: StoreAccessDirectory
        var httpSettings: HTTPGatewayHandler.Settings
        /// The services to run: the SSH gateway, and the HTTP gateway when it has its own port.
        var services: [any Service]
    }

    static func buildGateways(
        configuration: ServerConfiguration,
        hostKey: HostKey,
        store: any Store,
        fleet: ComputeFleet,
        clock: any WallClock,
        certificates: TLSCertificates?,
        activity: InstanceActivity,
        powerOn: @escaping @Sendable (String, String, String) async throws -> Void,
        logger: Logger
    ) throws -> Gateways {
        let settings = configuration.gateways
        let host = settings.host ?? configuration.host
        let directory = StoreAccessDirectory(
            store: store,
            fleet: fleet,
            audit: AuditRecorder(store: store, clock: clock, logger: logger),
            activity: activity,
            powerOn: powerOn
        )
        let budget = configuration.descriptorBudget
        let limits = SSHConnectionLimits(
            rule: SSHConnectionLimits.Rule(
                perAddress: configuration.limits.connectionsPerAddress,
                unauthenticated: budget?.sshUnauthenticated ?? 1024,
                sessions: budget?.sshSessions ?? 4096,
                preAuthTimeout: settings.sshPreAuthTimeout
            )
        )
        let ssh = SSHGateway(
            configuration: SSHGateway.Configuration(
                host: host,
                sharedPort: settings.sshPort,
                perInstancePorts: configuration.perInstanceSSHListeners,
                redirectPort: settings.sshRedirectPort,
                sshPorts: configuration.sshPorts
            ),
            hostKey: hostKey,
            directory: directory,
            limits: limits,
            logger: logger
        )
        let httpSettings = HTTPGatewayHandler.Settings(hosts: GatewayHosts(publicHost: configuration.publicHost))
        var services: [any Service] = [ssh]
        var tlsSource: (@Sendable () -> NIOSSLContext)?
        if let certificates { tlsSource = { certificates.context } }
        if let port = settings.httpPort, port > 0 {
            services.append(
                HTTPGateway(
                    host: host,
                    port: port,
                    settings: httpSettings,
                    directory: directory,
                    tls: tlsSource,
                    logger: logger
                )
            )
        }
        return Gateways(
            ssh: ssh,
            hostKey: hostKey,
            directory: directory,
            httpSettings: httpSettings,
            services: services
        )
    }

    /// SQLite under the data directory, or PostgreSQL when a database URL is given.
    static func buildStore(configuration: ServerConfiguration, logger: Logger) async throws -> any Store {
        let seal = try loadSeal(configuration)
        if let url = configuration.databaseURL {
            return try await PostgresStore(
                url: url,
                schedule: configuration.meterSchedule,
                defaultQuota: configuration.limits.defaultQuota,
                seal: seal,
                logger: logger
            )
        }
        return try SQLiteStore(
            path: configuration.dataDirectory.appendingPathComponent("lattice.sqlite").path,
            schedule: configuration.meterSchedule,
            defaultQuota: configuration.limits.defaultQuota,
            seal: seal
        )
    }

    /// The key instance secrets are sealed with (`SealKeySource`).
    static func loadSeal(_ configuration: ServerConfiguration) throws -> SecretSeal {
        switch configuration.sealKey {
        case .base64(let key): return try SecretSeal(base64: key)
        case .file(let path): return try SecretSeal.loadOrCreate(at: URL(fileURLWithPath: path))
        case .dataDirectory:
            return try SecretSeal.loadOrCreate(at: configuration.dataDirectory.appendingPathComponent("seal.key"))
        }
    }

    /// Builds the whole server: the store (SQLite under the data directory or PostgreSQL), the fleet, the bootstrap
    /// admin, the HTTP application and its reconciler.
    /// What SIGHUP reads again: the catalog file (`--catalog`) and the TLS certificate.
    static func hangupReloads(
        api: LatticeAPI,
        certificates: TLSCertificates?,
        logger: Logger
    ) -> [ReloadOnHangup.Reload] {
        var reloads: [ReloadOnHangup.Reload] = []
        if let path = api.configuration.catalogPath {
            reloads.append(
                ReloadOnHangup.Reload(what: "catalog \(path)") {
                    if let pending = try api.reloadCatalog(path: path) { logger.warning("SIGHUP: \(pending)") }
                }
            )
        }
        if let certificates {
            reloads.append(
                ReloadOnHangup.Reload(what: "TLS certificate \(certificates.files.certificate)") {
                    try certificates.reload()
                }
            )
        }
        return reloads
    }

    /// Everything the server is made of, wired together: what `buildApplication` serves and
    /// runs, and what the tests' servers step by hand (`TestServer`).
    struct Assembly {
        let store: any Store
        let clock: any WallClock
        let fleet: ComputeFleet
        let bootstrap: Bootstrap.Outcome
        let readiness: Readiness
        /// nil when nothing is shared (`AppDependencies.leases`): this process always leads.
        let leadership: Leadership?
        let queue: WorkQueue
        let api: LatticeAPI
        let gateways: Gateways
        let certificates: TLSCertificates?
        let boundPort: BoundPort
        let router: Router<LatticeRequestContext>
        let reconciler: Reconciler
        let follower: ChangeFollower
        let meter: Meter
        /// The background services, in start order (shut down in reverse).
        let services: [any Service]
    }

    /// The store, the drivers, the API, the routes and every background service, wired;
    /// nothing listens yet.
    static func assemble(
        configuration: ServerConfiguration,
        dependencies: AppDependencies,
        logger: Logger
    ) async throws -> Assembly {
        let store = try await dependencies.store(configuration, logger)
        let clock = dependencies.clock
        let fleet = try dependencies.fleet(configuration, clock)
        let bootstrap = try await Bootstrap.run(store: store, configuration: configuration, clock: clock)
        let readiness = Readiness()
        // SQLite belongs to one process, which keeps one name across restarts (so it leads
        // again at once after a crash); replicas on PostgreSQL each have their own.
        // A store no other process can open (in memory) has nobody to lead.
        let leadership =
            dependencies.leases
            ? Leadership(
                store: store,
                holder: configuration.databaseURL == nil ? "embedded" : Leadership.replicaName(),
                clock: clock,
                logger: logger
            ) : nil
        readiness.leadership = leadership
        let queue = WorkQueue()
        let certificates = try configuration.tls.map(TLSCertificates.init(files:))
        let boundPort = BoundPort()
        let api = LatticeAPI(
            store: store,
            fleet: fleet,
            clock: clock,
            configuration: configuration,
            boundPort: boundPort
        )
        try await api.loadPrices()
        let activity = InstanceActivity(now: { clock.now() })
        let gateways = try buildGateways(
            configuration: configuration,
            hostKey: try dependencies.hostKey(configuration),
            store: store,
            fleet: fleet,
            clock: clock,
            certificates: certificates,
            activity: activity,
            powerOn: { namespace, cluster, name in
                try await api.powerOn(
                    principal: Principal(namespace: namespace, tokenID: "", isAdmin: false, actor: "gateway:wake"),
                    cluster: cluster,
                    name: name
                )
            },
            logger: logger
        )
        if let budget = configuration.descriptorBudget {
            let ssh = gateways.ssh
            let perInstance = configuration.perInstanceSSHListeners
            let allowed = configuration.allocatableSSHPorts.map(\.count) ?? 0
            readiness.sshListeners = {
                let listening = ssh.listenerCount
                let connections = ssh.limits.current
                return SSHListenerReport(
                    openFileLimit: budget.openFileLimit,
                    budget: perInstance ? budget.sshListeners : 0,
                    listening: listening,
                    full: perInstance && listening >= allowed,
                    signingIn: connections.unauthenticated,
                    sessions: connections.sessions
                )
            }
        }
        var sources = ServerMetrics.Sources()
        sources.queueDepth = { queue.depth }
        let ssh = gateways.ssh
        sources.sshSessions = { ssh.limits.current.sessions }
        let httpSessions = gateways.httpSettings.sessions
        sources.httpSessions = { httpSessions.current }
        let metrics = ServerMetrics(sources: sources)
        let router = buildRouter(
            api: api,
            store: store,
            clock: clock,
            readiness: readiness,
            metrics: metrics,
            requestLogger: logger
        )
        let reconciler = Reconciler(
            store: store,
            fleet: fleet,
            clock: clock,
            metrics: metrics,
            queue: queue,
            resyncInterval: configuration.resyncInterval,
            logger: logger,
            readiness: readiness,
            leadership: leadership
        )
        let follower = ChangeFollower(
            store: store,
            tokenCache: api.tokenCache,
            enqueue: queue.add,
            portsChanged: gateways.ssh.portsChanged,
            resync: reconciler.requestResync,
            claimLease: { leadership?.claimSoon() },
            pricesChanged: { await api.reloadPrices() },
            eventsCommitted: { [events = api.events] namespace in
                if let namespace { events.committed(namespace) } else { events.ringAll() }
            }
        )
        let meter = Meter(
            store: store,
            clock: clock,
            configuration: configuration,
            logger: logger,
            leadership: leadership,
            idle: Meter.IdleInputs(
                lastUse: { activity.lastUse(of: $0) },
                gpuUtilization: { try await api.peakGPUUtilization(of: $0) }
            )
        )
        // Shut down in reverse: the meter and the reconciler stop before the lease is handed back.
        var services: [any Service] = gateways.services
        services.append(
            ReloadOnHangup(
                reloads: hangupReloads(api: api, certificates: certificates, logger: logger),
                logger: logger
            )
        )
        if let leadership { services.append(leadership) }
        services += [
            reconciler,
            follower,
            NodeWatcher(
                store: store,
                fleet: fleet,
                clock: clock,
                leadership: leadership,
                interval: configuration.meterInterval,
                logger: logger
            ),
            EventHeartbeat(hub: api.events, interval: configuration.eventHeartbeat),
            WebhookSender(
                store: store,
                hub: api.events,
                clock: clock,
                leadership: leadership,
                allowPrivate: configuration.webhookAllowPrivate,
                format: configuration.time.format,
                logger: logger
            ),
            ActivityReporter(
                activity: activity,
                store: store,
                interval: configuration.activityReportInterval,
                logger: logger
            ),
            meter,
        ]
        return Assembly(
            store: store,
            clock: clock,
            fleet: fleet,
            bootstrap: bootstrap,
            readiness: readiness,
            leadership: leadership,
            queue: queue,
            api: api,
            gateways: gateways,
            certificates: certificates,
            boundPort: boundPort,
            router: router,
            reconciler: reconciler,
            follower: follower,
            meter: meter,
            services: services
        )
    }

    /// The server `lattice serve` runs, and the tests' servers too (with `.inMemory`).
    public static func buildApplication(
        configuration: ServerConfiguration,
        dependencies: AppDependencies = .live,
        logger: Logger
    ) async throws -> some ApplicationProtocol {
        // Refuse to start before anything is created or printed: a bad bootstrap token, or a
        // port another process already serves.
        if let given = configuration.bootstrapToken, !given.isEmpty { try Bootstrap.validate(given) }
        try await PortProbe.ensureFree(host: configuration.host, port: configuration.port)
        let dataDirectory = configuration.dataDirectory
        try FileManager.default.createDirectory(
            at: dataDirectory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let parts = try await assemble(configuration: configuration, dependencies: dependencies, logger: logger)
        let (api, store, clock, gateways, certificates) = (
            parts.api, parts.store, parts.clock, parts.gateways, parts.certificates
        )
        let (bootstrap, boundPort) = (parts.bootstrap, parts.boundPort)
        let limits = configuration.limits
        let connections = ConnectionCounter(
            perAddress: limits.connectionsPerAddress,
            total: configuration.descriptorBudget?.apiConnections ?? 0
        )
        // The HTTP gateway shares the API's port unless it has one of its own (or is off);
        // sharing, the connection cap is applied before the first request decides.
        let shared = configuration.gateways.httpPort == nil
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [
                ConnectionGuard(counter: shared ? nil : connections, headerTimeout: TimeAmount(limits.headerTimeout))
            ],
            idleTimeout: TimeAmount(limits.idleTimeout)
        )
        // One connection's channel: the API's HTTP/1 (or the gateway, when they share the
        // port, by the first request's Host), behind TLS when the operator gave a certificate.
        // The API's HTTP/1, which upgrades the console's terminal sockets to WebSockets.
        let terminal = ConsoleRoutes.terminalUpgrade(
            console: ConsoleRoutes(
                api: api,
                store: store,
                clock: clock,
                sessions: ConsoleSessions(store: store),
                limits: RequestLimits(configuration.limits)
            ),
            directory: gateways.directory
        )
        let server = HTTPServerBuilder { responder in
            let http = HTTP1WebSocketUpgradeChannel(
                responder: responder,
                configuration: .init(http1: http1, ws: .init(maxFrameSize: 1 << 16)),
                shouldUpgrade: terminal
            )
            let channel: any ServerChildChannel =
                shared
                ? APIOrGatewayChannel(
                    http1: http,
                    settings: gateways.httpSettings,
                    directory: gateways.directory,
                    headerTimeout: TimeAmount(limits.headerTimeout),
                    connections: connections
                ) : http
            return certificates.map { channel.behindTLS($0) } ?? channel
        }
        let scheme = configuration.tls == nil ? "http" : "https"
        return Application(
            router: parts.router,
            server: server,
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "lattice"
            ),
            services: parts.services,
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                boundPort.set(port)
                let url = "\(scheme)://\(configuration.host):\(port)"
                // The file first: whoever waits for the line may read it at once.
                do {
                    try Bootstrap.writeFile(bootstrap, url: url, dataDirectory: dataDirectory)
                } catch {
                    logger.error("cannot write bootstrap.json", metadata: ["error": "\(error)"])
                }
                Console.line("listening on \(url)")
                Console.line("ssh gateway host key \(gateways.hostKey.fingerprint) (ED25519)")
                do {
                    try await store.warmUp()
                } catch {
                    logger.warning("warming the read caches failed", metadata: ["error": "\(error)"])
                }
            },
            logger: logger
        )
    }
}
