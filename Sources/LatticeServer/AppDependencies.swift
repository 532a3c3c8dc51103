import Foundation
import LatticeCompute
import LatticeDomain
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

    public init(
        store: @escaping @Sendable (ServerConfiguration, Logger) async throws -> any Store,
        clock: any WallClock,
        fleet: @escaping @Sendable (ServerConfiguration, any WallClock) throws -> ComputeFleet
    ) {
        self.store = store
        self.clock = clock
        self.fleet = fleet
    }

    /// SQLite under the data directory or PostgreSQL at `--database-url`, the system clock,
    /// drivers that keep their state (the simulated fleet's) under the data directory.
    public static let live = AppDependencies(
        store: { configuration, logger in
            try await LatticeServer.buildStore(configuration: configuration, logger: logger)
        },
        clock: SystemWallClock(),
        fleet: { configuration, clock in
            try LatticeServer.buildFleet(configuration: configuration, clock: clock, persistent: true)
        }
    )

    /// A fresh in-memory SQLite store (`store` instead, to share one with the test) and
    /// drivers that keep nothing on disk.
    public static func inMemory(clock: any WallClock = SystemWallClock(), store: (any Store)? = nil) -> AppDependencies
    {
        AppDependencies(
            store: { configuration, _ in
                if let store { return store }
                return try SQLiteStore(
                    schedule: configuration.meterSchedule,
                    defaultQuota: configuration.limits.defaultQuota,
                    seal: try LatticeServer.loadSeal(configuration)
                )
            },
            clock: clock,
            fleet: { configuration, clock in
                try LatticeServer.buildFleet(configuration: configuration, clock: clock, persistent: false)
            }
        )
    }
}
