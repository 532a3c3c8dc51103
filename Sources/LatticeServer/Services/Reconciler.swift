import Foundation
import LatticeCompute
import LatticeDomain
import LatticeStore
import Logging
import ServiceLifecycle
import Synchronization

/// Converges every driver towards the store's desired state (SPEC §5, DESIGN "work in
/// proportion to change"), in the shape of Kubernetes' sample-controller: a keyed work
/// queue fed by API writes (after they commit), by each driver's change stream and by a
/// slow full resync; workers take one instance name at a time, read that instance and its
/// workload, ask the pure `ReconcilePlanner` for one step and take it.
///
/// A failed step is retried with exponential backoff (0.5 s doubling to 30 s) for its key
/// alone; the queue never hands one key to two workers; a driver that does not answer
/// within `observeTimeout` leaves its instances in their last known state.
public final class Reconciler: Service, Sendable {
    let store: any Store
    let fleet: ComputeFleet
    let clock: any WallClock
    let logger: Logger
    let readiness: Readiness
    let queue: WorkQueue
    let resyncInterval: Duration
    let workers: Int
    let observeTimeout: Duration
    /// With replicas: only the lease holder reconciles (nil: this process always does).
    let leadership: Leadership?
    /// Each step's duration goes to `lattice_reconcile_duration_seconds`.
    let metrics: ServerMetrics

    private let resyncRequests = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))

    /// Instances this replica marked `NodeUnreachable`: the resync looks at them again once
    /// their workload is seen (the summary alone would call a Running one settled).
    private let unseen = Mutex(Set<String>())

    init(
        store: any Store,
        fleet: ComputeFleet,
        clock: any WallClock,
        metrics: ServerMetrics = ServerMetrics(),
        queue: WorkQueue = WorkQueue(),
        resyncInterval: Duration = .seconds(60),
        workers: Int = 8,
        logger: Logger,
        readiness: Readiness,
        observeTimeout: Duration = .seconds(15),
        leadership: Leadership? = nil
    ) {
        self.leadership = leadership
        self.metrics = metrics
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self.queue = queue
        self.resyncInterval = resyncInterval
        self.workers = workers
        self.logger = logger
        self.readiness = readiness
        self.observeTimeout = observeTimeout
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskCancellationHandler {
                await withDiscardingTaskGroup { group in
                    group.addTask { await self.resyncLoop() }
                    group.addTask { await self.queue.runRetries(clock: self.clock) }
                    group.addTask {
                        for await _ in self.resyncRequests.stream where self.leads {
                            await self.resync()
                            self.readiness.markReady()
                        }
                    }
                    if let leadership = self.leadership {
                        // A replica that becomes the leader catches up at once.
                        group.addTask {
                            for await _ in leadership.gained {
                                await self.fleet.adoptAll(logger: self.logger)
                                self.requestResync()
                            }
                        }
                    }
                    for driver in self.fleet.drivers.values {
                        // The driver's own watchers, followers and timers, then what they report.
                        group.addTask { await driver.run() }
                        group.addTask {
                            for await name in driver.changes() { self.queue.add(name) }
                        }
                    }
                    for _ in 0..<self.workers {
                        group.addTask {
                            while let key = await self.queue.next() {
                                await self.process(key)
                                self.queue.done(key)
                            }
                        }
                    }
                }
            } onCancel: {
                self.resyncRequests.continuation.finish()
                self.queue.shutDown()
            }
        }
    }

    var leads: Bool { leadership?.isLeader ?? true }

    /// Asks for a full resync soon (changes may have been missed), without waiting for the
    /// next regular one; requests that arrive while one is pending are one request.
    func requestResync() { resyncRequests.continuation.yield() }

    func resyncLoop() async {
        while !Task.isCancelled {
            if leads {
                await resync()
                readiness.markReady()
            }
            do { try await Task.sleep(for: resyncInterval) } catch { return }
        }
    }

    // MARK: Resync, the safety net

    /// Lists every instance (name and status only) and every driver's workloads, queues the
    /// instances that are not at rest and removes workloads no instance owns.
    func resync() async {
        let summaries: [InstanceSummary]
        do {
            summaries = try await store.instanceSummaries()
        } catch {
            logger.warning("reconciler cannot read the store", metadata: ["error": "\(error)"])
            return
        }
        let observed = await observeAll()
        var known: Set<String> = []
        known.reserveCapacity(summaries.count)
        for summary in summaries {
            known.insert(summary.name)
            // A cluster whose driver did not answer keeps its instances as they are.
            guard let workloads = observed[summary.cluster] else { continue }
            let seenAgain = workloads[summary.name] != nil && unseen.withLock { $0.contains(summary.name) }
            if seenAgain || !ReconcilePlanner.isSettled(summary, observed: workloads[summary.name]?.phase) {
                queue.add(summary.name)
            }
        }
        for (cluster, workloads) in observed {
            guard let driver = fleet.driver(for: cluster) else { continue }
            for name in workloads.keys where !known.contains(name) {
                // Created (and started) after the list was read, or the store cannot tell
                // now: not an orphan, or not yet.
                do {
                    if try await store.instanceVersion(name: name) != nil { continue }
                } catch {
                    continue
                }
                logger.info("removing orphaned workload", metadata: ["instance": "\(name)", "cluster": "\(cluster)"])
                do {
                    try await driver.discard(instanceName: name)
                } catch {
                    logger.warning("cannot remove orphan", metadata: ["instance": "\(name)", "error": "\(error)"])
                }
            }
        }
    }

    /// Asks every driver at once what it runs. A driver that fails or does not answer within
    /// `observeTimeout` is left out: its instances keep their last known state, and it
    /// never holds up the other clusters.
    func observeAll() async -> [String: [String: WorkloadObservation]] {
        await withTaskGroup(of: (String, [String: WorkloadObservation]?).self) { group in
            for (cluster, driver) in fleet.drivers {
                group.addTask {
                    do {
                        return (
                            cluster, try await withDeadline(self.observeTimeout) { try await driver.observeAll() }
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

    // MARK: One key

    /// Syncs one instance and decides what becomes of its key: done, queued again at once
    /// (a step that only wrote the store, so the next one can follow), or queued again
    /// after its backoff.
    /// False when the key waits out a backoff (its delayed retry is on its way).
    @discardableResult
    func process(_ name: String) async -> Bool {
        // Another replica leads: it has the key too (every write notifies it), and this
        // replica resyncs everything if it takes over.
        guard leads else { return true }
        let now = clock.now()
        if let retryAt = queue.retryAt(name), retryAt > now { return false }
        let started = ContinuousClock.now
        defer { metrics.reconcileStep(ContinuousClock.now - started) }
        do {
            let again = try await sync(name)
            queue.succeeded(name)
            if again { queue.add(name) }
            return true
        } catch {
            let (failures, _) = queue.failed(name, at: now)
            logger.warning(
                "reconcile step failed; will retry",
                metadata: ["instance": "\(name)", "failures": "\(failures)", "error": "\(error)"]
            )
            return true
        }
    }

    /// Works off every queued key, one at a time, until none is left (or `limit` keys were
    /// taken); for tests, which step the reconciler by hand. Answers the keys worked on.
    @discardableResult
    func drain(limit: Int = 10_000) async -> [String] {
        var worked: [String] = []
        var taken = 0
        while taken < limit, let key = queue.tryNext() {
            taken += 1
            if await process(key) { worked.append(key) }
            queue.done(key)
        }
        return worked
    }

    /// Whether `name` waits out a backoff at `now`.
    func isBackingOff(_ name: String, at now: Date) -> Bool {
        queue.retryAt(name).map { $0 > now } ?? false
    }

    /// One step for one instance: one primary-key read, one look at its workload, at most
    /// one driver call and one write. True when the step wrote only the store.
    func sync(_ name: String) async throws -> Bool {
        guard let instance = try await store.instance(name: name) else {
            try await removeOrphan(name)
            return false
        }
        guard let driver = fleet.driver(for: instance.cluster) else { return false }
        let observed = try await withDeadline(observeTimeout) { try await driver.observe(instanceName: name) }
        let unreachable = observed == nil ? await unreachableReason(of: instance) : nil
        if observed != nil, instance.statusReason.isEmpty { unseen.withLock { _ = $0.remove(name) } }
        guard
            let step = ReconcilePlanner.plan(
                instance,
                observed: observed,
                unreachable: unreachable,
                commitsRunning: driver.commitsRunningWorkloads
            )
        else {
            return false
        }
        try await execute(step, for: instance, on: driver)
        switch step {
        case .record, .commitThenStop: return true
        case .start, .stop, .discard, .destroyThenPurge: return false  // the driver reports when it is done
        }
    }

    /// Why the instance's node does not answer, if its driver says it does not (a host that
    /// may come back, so its workloads are unseen rather than lost).
    func unreachableReason(of instance: Instance) async -> String? {
        guard let node = instance.pod?.node ?? instance.placement?.node, !node.isEmpty else { return nil }
        let nodes = await fleet.nodes(clusters: [instance.cluster])
        guard let found = nodes.first(where: { $0.node.name == node }), found.unreachable else { return nil }
        return found.reason
    }

    /// A workload that no instance owns (its key came from a driver's event) is removed.
    func removeOrphan(_ name: String) async throws {
        for (cluster, driver) in fleet.drivers {
            guard try await withDeadline(observeTimeout, { try await driver.observe(instanceName: name) }) != nil
            else { continue }
            logger.info("removing orphaned workload", metadata: ["instance": "\(name)", "cluster": "\(cluster)"])
            try await driver.discard(instanceName: name)
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
            try await store.saveImage(image, at: clock.now())
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
            switch transition {
            case .unreachable: unseen.withLock { _ = $0.insert(instance.name) }
            default: unseen.withLock { _ = $0.remove(instance.name) }
            }
        }
    }

    func record(_ transition: ObservedTransition, for instance: Instance) async throws {
        let next = ReconcilePlanner.apply(transition, to: instance, now: clock.now())
        if try await !store.recordObservation(next, expectedGeneration: instance.generation) {
            logger.debug(
                "instance changed while reconciling; its key is queued again",
                metadata: ["instance": "\(instance.name)"]
            )
        }
    }
}
