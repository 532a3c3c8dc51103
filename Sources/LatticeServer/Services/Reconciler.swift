import Foundation
import LatticeCompute
import LatticeDomain
import LatticeStore
import Logging
import ServiceLifecycle

/// Converges every driver towards the store's desired state (SPEC §5, DESIGN "desired vs
/// observed"). Each pass reads all instances and all observations, asks the pure
/// `ReconcilePlanner` for one step per instance, and runs the steps concurrently, at most
/// one per instance. A failed step is retried with exponential backoff; a driver that does
/// not answer leaves its instances in their last known state.
public final class Reconciler: Service, @unchecked Sendable {
    let store: any Store
    let fleet: ComputeFleet
    let clock: any WallClock
    let interval: Duration
    let logger: Logger
    let readiness: Readiness
    let observeTimeout: Duration

    private let lock = NSLock()
    private var inFlight: Set<String> = []
    private var backoff: [String: (failures: Int, retryAt: Date)] = [:]

    init(
        store: any Store,
        fleet: ComputeFleet,
        clock: any WallClock,
        interval: Duration,
        logger: Logger,
        readiness: Readiness,
        observeTimeout: Duration = .seconds(15)
    ) {
        self.observeTimeout = observeTimeout
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self.interval = interval
        self.logger = logger
        self.readiness = readiness
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                while !Task.isCancelled {
                    await self.pass { key, work in
                        group.addTask { await self.perform(key: key, work) }
                    }
                    self.readiness.markReady()
                    do { try await Task.sleep(for: self.interval) } catch { break }
                }
            }
        }
    }

    /// One reconcile pass; `spawn` runs each step's work concurrently.
    func pass(spawn: (String, @escaping @Sendable () async throws -> Void) -> Void) async {
        let instances: [Instance]
        do {
            instances = try await store.allInstances()
        } catch {
            logger.warning("reconciler cannot read the store", metadata: ["error": "\(error)"])
            return
        }
        let observed = await observeAll()
        let now = clock.now()
        for instance in instances {
            guard let driver = fleet.driver(for: instance.cluster), let seen = observed[instance.cluster],
                let step = ReconcilePlanner.plan(instance, observed: seen[instance.name])
            else { continue }
            guard claim(instance.name, now: now) else { continue }
            spawn(instance.name) { try await self.execute(step, for: instance, on: driver) }
        }
        let known = Set(instances.map(\.name))
        for (cluster, workloads) in observed {
            guard let driver = fleet.driver(for: cluster) else { continue }
            for name in workloads.keys where !known.contains(name) {
                guard claim(name, now: now) else { continue }
                logger.info("removing orphaned workload", metadata: ["instance": "\(name)", "cluster": "\(cluster)"])
                spawn(name) { try await driver.discard(instanceName: name) }
            }
        }
    }

    /// Asks every driver at once what it runs. A driver that fails or does not answer within
    /// `observeTimeout` is left out of this pass: its instances keep their last known
    /// state, and it never holds up the other clusters.
    func observeAll() async -> [String: [String: WorkloadObservation]] {
        await withTaskGroup(of: (String, [String: WorkloadObservation]?).self) { group in
            for (cluster, driver) in fleet.drivers {
                group.addTask {
                    do {
                        return (
                            cluster, try await Self.withDeadline(self.observeTimeout) { try await driver.observeAll() }
                        )
                    } catch {
                        self.logger.warning(
                            "driver does not answer; keeping last known state",
                            metadata: ["cluster": "\(cluster)", "error": "\(error)"]
                        )
                        return (cluster, nil)
                    }
                }
            }
            var observed: [String: [String: WorkloadObservation]] = [:]
            for await (cluster, workloads) in group { observed[cluster] = workloads }
            return observed
        }
    }

    /// Runs `work`, or throws once `limit` has passed (and cancels it).
    static func withDeadline<T: Sendable>(
        _ limit: Duration,
        _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await work() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw DriverError("no answer within \(limit)")
            }
            return value
        }
    }

    func claim(_ name: String, now: Date) -> Bool {
        lock.withLock {
            if inFlight.contains(name) { return false }
            if let wait = backoff[name], wait.retryAt > now { return false }
            inFlight.insert(name)
            return true
        }
    }

    func perform(key: String, _ work: @Sendable () async throws -> Void) async {
        do {
            try await work()
            lock.withLock {
                _ = backoff.removeValue(forKey: key); _ = inFlight.remove(key)
            }
        } catch {
            let now = clock.now()
            let failures = lock.withLock { () -> Int in
                let failures = (backoff[key]?.failures ?? 0) + 1
                let delay = min(30, 0.5 * pow(2, Double(failures - 1)))
                backoff[key] = (failures, now.addingTimeInterval(delay))
                inFlight.remove(key)
                return failures
            }
            logger.warning(
                "reconcile step failed; will retry",
                metadata: ["instance": "\(key)", "failures": "\(failures)", "error": "\(error)"]
            )
        }
    }

    func execute(_ step: ReconcileStep, for instance: Instance, on driver: any ComputeDriver) async throws {
        switch step {
        case .start:
            try await driver.start(WorkloadSpec(instance: instance))
        case .stop(let grace):
            try await driver.stop(instanceName: instance.name, gracePeriodSeconds: grace)
        case .discard:
            try await driver.discard(instanceName: instance.name)
        case .destroyThenPurge:
            try await driver.destroy(instanceName: instance.name, volumeName: instance.volume.name)
            _ = try await store.purgeInstance(
                name: instance.name,
                expectedGeneration: instance.generation,
                at: clock.now()
            )
        case .commitThenStop(let request):
            var image = SnapshotImage(
                reference: request.imageReference,
                namespace: instance.namespace,
                sourceInstance: instance.name,
                status: .ready,
                createdAt: clock.now()
            )
            var reason = ""
            do {
                image.sizeBytes = try await driver.commit(
                    instanceName: instance.name,
                    imageReference: request.imageReference
                )
            } catch {
                image.status = .failed
                reason = "SnapshotFailed: \(error)"
            }
            try await store.saveImage(image)
            try await record(.stopped(reason: reason), for: instance)
        case .record(let transition):
            if case .saving = transition, let request = instance.desired.snapshot {
                try await store.saveImage(
                    SnapshotImage(
                        reference: request.imageReference,
                        namespace: instance.namespace,
                        sourceInstance: instance.name,
                        status: .saving,
                        createdAt: clock.now()
                    )
                )
            }
            try await record(transition, for: instance)
        }
    }

    func record(_ transition: ObservedTransition, for instance: Instance) async throws {
        let next = ReconcilePlanner.apply(transition, to: instance, now: clock.now())
        if try await !store.recordObservation(next, expectedGeneration: instance.generation) {
            logger.debug(
                "instance changed while reconciling; next pass will re-plan",
                metadata: ["instance": "\(instance.name)"]
            )
        }
    }
}
