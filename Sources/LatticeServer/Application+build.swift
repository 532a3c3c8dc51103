import Foundation
import Hummingbird
import LatticeCompute
import LatticeComputeEngine
import LatticeDomain
import LatticeStore
import LatticeStorePostgres
import Logging
import NIOCore

/// The composition root: the one place where the store, the drivers, the API, the routes
/// and the background services are created and wired together.
public enum LatticeServer {
    /// Builds the router alone, for socket-free tests and for `buildApplication`.
    static func buildRouter(
        api: LatticeAPI,
        store: any Store,
        clock: any WallClock,
        readiness: Readiness
    ) -> Router<LatticeRequestContext> {
        let router = Router(context: LatticeRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        Routes(
            api: api,
            store: store,
            clock: clock,
            readiness: readiness,
            limits: RequestLimits(api.configuration.limits)
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
                drivers[cluster.name] = EngineDriver(
                    cluster: cluster.name,
                    node: cluster.nodes[0],
                    socketPath: cluster.socket ?? "",
                    gpuRequests: EngineDriver.GPURequests(rawValue: cluster.gpuRequests ?? "docker") ?? .docker,
                    discoverGPUs: cluster.gpuRequests != "none",
                    push: cluster.pushSnapshots == true
                        ? EngineDriver.Push(
                            username: cluster.registryUsername ?? "",
                            password: cluster.registryPassword ?? ""
                        ) : nil,
                    isolation: EngineDriver.Isolation(pidsLimit: cluster.pidsLimit ?? 4096)
                )
            case .kubernetes:
                throw LatticeError(
                    .badRequest,
                    code: "InvalidCatalog",
                    "cluster \(cluster.name): driver 'kubernetes' is not available in this build; "
                        + "use 'simulated' or 'engine'"
                )
            }
        }
        return ComputeFleet(drivers: drivers)
    }

    /// SQLite under the data directory, or PostgreSQL when a database URL is given.
    static func buildStore(configuration: ServerConfiguration, logger: Logger) async throws -> any Store {
        if let url = configuration.databaseURL {
            return try await PostgresStore(
                url: url,
                schedule: configuration.meterSchedule,
                defaultQuota: configuration.limits.defaultQuota,
                logger: logger
            )
        }
        return try SQLiteStore(
            path: configuration.dataDirectory.appendingPathComponent("lattice.sqlite").path,
            schedule: configuration.meterSchedule,
            defaultQuota: configuration.limits.defaultQuota
        )
    }

    /// Builds the whole server: the store (SQLite under the data directory or PostgreSQL), the fleet, the bootstrap
    /// admin, the HTTP application and its reconciler.
    public static func buildApplication(
        configuration: ServerConfiguration,
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
        let store = try await buildStore(configuration: configuration, logger: logger)
        let clock = SystemWallClock()
        let fleet = try buildFleet(configuration: configuration, clock: clock, persistent: true)
        let bootstrap = try await Bootstrap.run(store: store, configuration: configuration, clock: clock)
        let readiness = Readiness()
        // SQLite belongs to one process, which keeps one name across restarts (so it leads
        // again at once after a crash); replicas on PostgreSQL each have their own.
        let leadership = Leadership(
            store: store,
            holder: configuration.databaseURL == nil ? "embedded" : Leadership.replicaName(),
            clock: clock,
            logger: logger
        )
        readiness.leadership = leadership
        let queue = WorkQueue()
        let api = LatticeAPI(store: store, fleet: fleet, clock: clock, configuration: configuration, changed: queue.add)
        let router = buildRouter(api: api, store: store, clock: clock, readiness: readiness)
        let reconciler = Reconciler(
            store: store,
            fleet: fleet,
            clock: clock,
            queue: queue,
            resyncInterval: configuration.resyncInterval,
            logger: logger,
            readiness: readiness,
            leadership: leadership
        )
        let limits = configuration.limits
        let connections = ConnectionCounter(perAddress: limits.connectionsPerAddress)
        return Application(
            router: router,
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [
                        ConnectionGuard(counter: connections, headerTimeout: TimeAmount(limits.headerTimeout))
                    ],
                    idleTimeout: TimeAmount(limits.idleTimeout)
                )
            ),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "lattice"
            ),
            // Shut down in reverse: the meter and the reconciler stop before the lease is handed back.
            services: [
                leadership,
                reconciler,
                ChangeFollower(
                    store: store,
                    tokenCache: api.tokenCache,
                    enqueue: queue.add,
                    resync: reconciler.requestResync,
                    claimLease: leadership.claimSoon
                ),
                Meter(
                    store: store,
                    catalog: configuration.catalog,
                    clock: clock,
                    configuration: configuration,
                    logger: logger,
                    changed: queue.add,
                    leadership: leadership
                ),
            ],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                let url = "http://\(configuration.host):\(port)"
                // The file first: whoever waits for the line may read it at once.
                do {
                    try Bootstrap.writeFile(bootstrap, url: url, dataDirectory: dataDirectory)
                } catch {
                    logger.error("cannot write bootstrap.json", metadata: ["error": "\(error)"])
                }
                Console.line("listening on \(url)")
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
