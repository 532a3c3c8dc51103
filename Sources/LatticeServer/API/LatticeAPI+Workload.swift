import Foundation
import LatticeCompute
import LatticeDomain

/// `?tail=N&follow=true` of `.../logs`.
public struct LogsRequest: Sendable, Equatable {
    public static let defaultTail = 100
    public static let maximumTail = 10_000
    public var tail: Int
    public var follow: Bool

    public init(tail: String?, follow: String?) throws {
        if let tail, !tail.isEmpty {
            guard let number = Int(tail), (0...Self.maximumTail).contains(number) else {
                throw LatticeError.invalidField("tail", "must be a whole number from 0 to \(Self.maximumTail)")
            }
            self.tail = number
        } else {
            self.tail = Self.defaultTail
        }
        switch follow {
        case nil, "", "false", "0": self.follow = false
        case "true", "1": self.follow = true
        default: throw LatticeError.invalidField("follow", "must be true or false")
        }
    }
}

extension LatticeAPI {
    // MARK: What runs in an instance (SPEC §11)

    /// The caller's instance in `cluster` and the driver that runs it.
    func workload(principal: Principal, cluster: String, name: String) async throws -> (Instance, any ComputeDriver) {
        _ = try requireCluster(cluster)
        guard let instance = try await store.instance(namespace: principal.namespace, name: name),
            instance.cluster == cluster
        else { throw LatticeError.notFound("instance '\(name)' in cluster \(cluster)") }
        guard let driver = fleet.driver(for: cluster) else {
            throw LatticeError(.unavailable, code: "Unavailable", "cluster \(cluster) has no driver in this server")
        }
        return (instance, driver)
    }

    /// The workload's log: its last lines, then (following) what it prints, handed to
    /// `output` until the workload ends or the client goes.
    public func instanceLogs(
        principal: Principal,
        cluster: String,
        name: String,
        request: LogsRequest,
        output: @escaping @Sendable (Data) async -> Void
    ) async throws {
        let (instance, driver) = try await workload(principal: principal, cluster: cluster, name: name)
        let found = try await Self.fromDriver {
            try await driver.logs(
                instanceName: instance.name,
                tail: request.tail,
                follow: request.follow,
                output: output
            )
        }
        guard found else {
            throw LatticeError.invalidState(
                "instance '\(name)' is \(instance.status.rawValue) and has no workload, so no log; power it on first"
            )
        }
    }

    /// Whether the instance has a workload with a log, checked before a followed answer
    /// starts (after that, errors cannot become a status code).
    public func checkLogs(principal: Principal, cluster: String, name: String) async throws {
        let (instance, driver) = try await workload(principal: principal, cluster: cluster, name: name)
        let found = try await Self.fromDriver {
            try await driver.logs(instanceName: instance.name, tail: 0, follow: false, output: { _ in })
        }
        guard found else {
            throw LatticeError.invalidState(
                "instance '\(name)' is \(instance.status.rawValue) and has no workload, so no log; power it on first"
            )
        }
    }

    /// A driver call whose failure the client sees by its kind: no workload is `409`, the
    /// rest `503` with the backend's words.
    static func fromDriver<T>(_ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let error as DriverError {
            switch error.kind {
            case .notFound:
                throw LatticeError.invalidState("the instance has no workload now (\(error)); power it on first")
            case .workloadFailed:
                throw LatticeError(.unavailable, code: "Unavailable", "the instance's workload failed: \(error)")
            case .transient, .invalidSpec:
                throw LatticeError(
                    .unavailable,
                    code: "Unavailable",
                    "the instance's backend does not answer: \(error)"
                )
            }
        }
    }

    public func instanceMetrics(principal: Principal, cluster: String, name: String) async throws -> MetricsWire {
        let (instance, driver) = try await workload(principal: principal, cluster: cluster, name: name)
        let metrics =
            instance.status == .running
            ? try await Self.fromDriver { try await driver.metrics(instanceName: instance.name) } : nil
        guard let metrics else {
            throw LatticeError.invalidState(
                "instance '\(name)' is \(instance.status.rawValue), not Running: it has no figures to show"
            )
        }
        return MetricsWire(metrics, time: wire.time)
    }
}

extension LatticeAPI {
    /// The busiest GPU's utilisation (percent) of a Running instance now, or nil where the
    /// driver does not measure it: what an idle policy's `gpuUtilizationBelow` is held to.
    func peakGPUUtilization(of instance: Instance) async throws -> Double? {
        guard instance.status == .running, let driver = fleet.driver(for: instance.cluster) else { return nil }
        let metrics = try await driver.metrics(instanceName: instance.name)
        return metrics?.gpus.map(\.utilization).max()
    }
}
