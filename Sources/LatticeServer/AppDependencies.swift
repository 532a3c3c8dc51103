import Foundation
import LatticeCompute
import LatticeDomain
import LatticeGateway
import LatticeStore
import LatticeStoreSQLite
import Logging

/// What the composition root takes from outside rather than making itself: the store, the
/// clock and the drivers. `lattice serve` passes `.live`; the tests' servers pass `.inMemory`
/// (or their own clock or store), and both go through the same `buildApplication`, so a test
/// runs the services, routes and wiring that production runs.
public struct AppDependencies: Sendable {
    /// Opens the store the configuration names.
    public var store: @Sendable (ServerConfiguration, Logger) async throws -> any Store
    /// The one clock every part reads.
    public var clock: any WallClock
    /// One driver per cluster of the configuration's catalog.
    public var fleet: @Sendable (ServerConfiguration, any WallClock) throws -> ComputeFleet
    /// The SSH gateway's host key.
    public var hostKey: @Sendable (ServerConfiguration) throws -> HostKey
    /// Whether this process takes the leader lease before it reconciles and meters (a store
    /// that other processes can open); false: it always leads, and nothing is fenced.
    public var leases: Bool

    public init(
        store: @escaping @Sendable (ServerConfiguration, Logger) async throws -> any Store,
        clock: any WallClock,
        fleet: @escaping @Sendable (ServerConfiguration, any WallClock) throws -> ComputeFleet,
        hostKey: @escaping @Sendable (ServerConfiguration) throws -> HostKey,
        leases: Bool
    ) {
        self.store = store
        self.clock = clock
        self.fleet = fleet
        self.hostKey = hostKey
        self.leases = leases
    }

    /// SQLite under the data directory or PostgreSQL at `--database-url`, the system clock,
    /// drivers that keep their state (the simulated fleet's) and the host key under the data
    /// directory (or `--ssh-host-key`), and the leader lease.
    public static let live = AppDependencies(
        store: { configuration, logger in
            try await CompositionRoot.buildStore(configuration: configuration, logger: logger)
        },
        clock: SystemWallClock(),
        fleet: { configuration, clock in
            try CompositionRoot.buildFleet(configuration: configuration, clock: clock, persistent: true)
        },
        hostKey: { configuration in
            try HostKey.loadOrCreate(
                at: configuration.gateways.hostKeyPath.map { URL(fileURLWithPath: $0) }
                    ?? configuration.dataDirectory.appendingPathComponent("ssh_host_ed25519_key")
            )
        },
        leases: true
    )

    /// A fresh in-memory SQLite store (`store` instead, to share one with the test), drivers
    /// that keep nothing on disk, a new host key, and no lease (no other process can share
    /// the store, so this one always leads).
    public static func inMemory(clock: any WallClock = SystemWallClock(), store: (any Store)? = nil) -> AppDependencies
    {
        AppDependencies(
            store: { configuration, _ in
                if let store { return store }
                return try SQLiteStore(
                    schedule: configuration.meterSchedule,
                    defaultQuota: configuration.limits.defaultQuota,
                    seal: try CompositionRoot.loadSeal(configuration)
                )
            },
            clock: clock,
            fleet: { configuration, clock in
                try CompositionRoot.buildFleet(configuration: configuration, clock: clock, persistent: false)
            },
            hostKey: { _ in HostKey.generated() },
            leases: false
        )
    }
}
