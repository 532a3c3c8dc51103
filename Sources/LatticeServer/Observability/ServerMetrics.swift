import CoreMetrics
import Foundation
import LatticeDomain
import Prometheus
import Synchronization

/// The server's metrics (SPEC §10), recorded through swift-metrics' API into a Prometheus
/// registry of this server's own (never the process-wide `MetricsSystem`: tests run many
/// servers in one process) and rendered at `/metrics`. Counters and histograms are
/// recorded as things happen; gauges are read when Prometheus scrapes.
public final class ServerMetrics: Sendable {
    /// What the gauges read at each scrape; the composition root names where each lives.
    public struct Sources: Sendable {
        /// Instances waiting in the reconciler's queue.
        public var queueDepth: @Sendable () -> Int = { 0 }
        /// SSH sessions signed in through the SSH gateway.
        public var sshSessions: @Sendable () -> Int = { 0 }
        /// Connections the HTTP gateway is passing through.
        public var httpSessions: @Sendable () -> Int = { 0 }

        public init() {}
    }

    static let requestBuckets: [Duration] = [
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10),
    ]
    static let reconcileBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
        .milliseconds(500), .seconds(1), .seconds(5), .seconds(15), .seconds(60),
    ]

    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    let sources: Sources
    /// The handles of each series once made: making one (the factory's registry lookup)
    /// costs more than recording into it, and a route has few series.
    private let requestSeries = Mutex<[RequestKey: RequestSeries]>([:])

    struct RequestKey: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    struct RequestSeries {
        var count: CoreMetrics.Counter
        var duration: CoreMetrics.Timer
    }
    /// Made at once, so the series is there (at zero) before the first step.
    let reconcile: CoreMetrics.Timer

    public init(sources: Sources = Sources()) {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            "lattice_http_request_duration_seconds": Self.requestBuckets,
            "lattice_reconcile_duration_seconds": Self.reconcileBuckets,
        ]
        self.factory = factory
        self.sources = sources
        reconcile = CoreMetrics.Timer(label: "lattice_reconcile_duration_seconds", dimensions: [], factory: factory)
        Gauge(label: "lattice_build_info", dimensions: [("version", LatticeVersion.current)], factory: factory)
            .record(1)
    }

    /// One answered API request: `route` is the route's template, never the raw path.
    func request(method: String, route: String, status: Int, duration: Duration) {
        let key = RequestKey(method: method, route: route, status: status)
        let series = requestSeries.withLock { known in
            if let series = known[key] { return series }
            let made = RequestSeries(
                count: CoreMetrics.Counter(
                    label: "lattice_http_requests_total",
                    dimensions: [("method", method), ("route", route), ("status", String(status))],
                    factory: factory
                ),
                duration: CoreMetrics.Timer(
                    label: "lattice_http_request_duration_seconds",
                    dimensions: [("route", route)],
                    factory: factory
                )
            )
            known[key] = made
            return made
        }
        series.count.increment()
        series.duration.record(duration: duration)
    }

    /// One step of the reconciler for one instance, whatever it did.
    func reconcileStep(_ duration: Duration) {
        reconcile.record(duration: duration)
    }

    /// GPUs of one model in one cluster, free and used.
    struct GPUCount: Equatable {
        var cluster: String
        var model: String
        var free: Int
        var used: Int
    }

    /// The text Prometheus scrapes, with every gauge read now.
    func render(
        instances: [InstanceStatus: Int],
        gpus: [GPUCount],
        skuRemaining: [(sku: String, model: String, Int)]
    )
        -> String
    {
        func gauge(_ label: String, _ dimensions: [(String, String)], _ value: Int) {
            Gauge(label: label, dimensions: dimensions, factory: factory).record(value)
        }
        for status in InstanceStatus.allCases {
            gauge("lattice_instances", [("status", status.rawValue)], instances[status] ?? 0)
        }
        for count in gpus {
            gauge("lattice_gpus", [("cluster", count.cluster), ("model", count.model), ("state", "free")], count.free)
            gauge("lattice_gpus", [("cluster", count.cluster), ("model", count.model), ("state", "used")], count.used)
        }
        for (sku, model, remaining) in skuRemaining {
            gauge("lattice_sku_remaining_gpus", [("sku", sku), ("model", model)], remaining)
        }
        gauge("lattice_reconcile_queue_depth", [], sources.queueDepth())
        gauge("lattice_gateway_sessions", [("kind", "ssh")], sources.sshSessions())
        gauge("lattice_gateway_sessions", [("kind", "http")], sources.httpSessions())
        return registry.emitToString()
    }
}

extension CoreMetrics.Timer {
    fileprivate func record(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
