import Foundation
import LatticeDomain

/// Everything a backend needs to run one instance.
public struct WorkloadSpec: Sendable, Equatable, Codable {
    /// The instance's name (`instance-` and 8 hex digits), which labels everything the
    /// backend holds of it.
    public var instanceName: String
    /// The seed's `pod.name`: the container's or pod's own name, new at every start.
    public var podName: String
    /// The tenant's namespace (a label, and the network it is kept apart in).
    public var namespace: String
    /// The instance's UID, the name the gateways know it by.
    public var uid: String
    /// The image reference to run (always one the backend can get without the internet).
    public var image: String
    /// The node the placement chose.
    public var node: String
    /// The node's GPUs the placement gave the instance, by index.
    public var gpuIndices: [Int]
    /// How the backend asks for GPUs (Kubernetes' `nvidia.com/gpu` or the cluster's own).
    public var gpuResourceKey: String
    /// The CPU cores and memory the SKU grants, as limits.
    public var cpuCores: Int
    /// See `cpuCores`.
    public var memoryGiB: Int
    /// The data disk's volume, kept from one start to the next until the instance is deleted.
    public var volumeName: String
    /// Where the data disk is mounted in the container (the seed's `PathInContainer`).
    public var volumePath: String
    /// The data disk's size, as the tenant chose it.
    public var volumeSizeGiB: Int
    /// The data disk's Kubernetes storage class (nil: the cluster's).
    public var volumeStorageClass: String?
    /// The data disk's access mode on Kubernetes (nil: `ReadWriteOnce`).
    public var volumeAccessMode: String?
    /// The public SSH port the gateway forwards to this instance's port 22.
    public var sshPort: Int
    /// Root password and Jupyter token, and the instance's `env` and `secretEnv`, passed to
    /// the container as environment.
    public var environment: [String: String]
    /// The names in `environment` that hold secrets (the instance's own and `secretEnv`):
    /// a snapshot must not keep them.
    public var secretNames: [String]
    /// Run as root at every start, after the image's own start; "" for none.
    public var startupScript: String
    /// The HTTP ports the gateway serves (besides Jupyter's and Tensorboard's).
    public var ports: [Int]

    /// What the backend needs of `instance` as it stands (placed: its node and GPUs set).
    public init(instance: Instance) {
        instanceName = instance.name
        podName = instance.pod?.name ?? instance.name
        namespace = instance.namespace
        uid = instance.uid
        image = instance.image
        node = instance.placement?.node ?? ""
        gpuIndices = instance.placement?.gpuIndices ?? []
        gpuResourceKey = instance.resources.gpuResourceKey
        cpuCores = instance.resources.cpuCores
        memoryGiB = instance.resources.memoryGiB
        volumeName = instance.volume.name
        volumePath = instance.volume.pathInContainer
        volumeSizeGiB = instance.volume.sizeGiB
        volumeStorageClass = instance.volume.storageClass
        volumeAccessMode = instance.volume.accessMode
        sshPort = instance.access.sshPort
        let workload = instance.workload ?? WorkloadSettings()
        // The tenant's variables first: Lattice's own names win (the API refuses them anyway).
        environment = workload.env.merging(workload.secretEnv) { $1 }.merging([
            "LATTICE_ROOT_PASSWORD": instance.access.sshPassword,
            "JUPYTER_TOKEN": instance.access.jupyterToken,
            "LATTICE_INSTANCE": instance.name,
        ]) { $1 }
        secretNames = Self.secretEnvironmentKeys + workload.secretEnv.keys.sorted()
        startupScript = workload.startupScript
        ports = workload.ports.map(\.port)
    }

    /// Decodes a spec a driver kept (the simulated fleet's state file, an engine's label),
    /// fields added since defaulting.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        instanceName = try c.decode(String.self, forKey: .instanceName)
        podName = try c.decode(String.self, forKey: .podName)
        namespace = try c.decode(String.self, forKey: .namespace)
        uid = try c.decode(String.self, forKey: .uid)
        image = try c.decode(String.self, forKey: .image)
        node = try c.decode(String.self, forKey: .node)
        gpuIndices = try c.decode([Int].self, forKey: .gpuIndices)
        gpuResourceKey = try c.decode(String.self, forKey: .gpuResourceKey)
        cpuCores = try c.decode(Int.self, forKey: .cpuCores)
        memoryGiB = try c.decode(Int.self, forKey: .memoryGiB)
        volumeName = try c.decode(String.self, forKey: .volumeName)
        volumePath = try c.decode(String.self, forKey: .volumePath)
        volumeSizeGiB = try c.decode(Int.self, forKey: .volumeSizeGiB)
        volumeStorageClass = try c.decodeIfPresent(String.self, forKey: .volumeStorageClass)
        volumeAccessMode = try c.decodeIfPresent(String.self, forKey: .volumeAccessMode)
        sshPort = try c.decode(Int.self, forKey: .sshPort)
        environment = try c.decode([String: String].self, forKey: .environment)
        // Journals written before §11 hold none of these.
        secretNames = try c.decodeIfPresent([String].self, forKey: .secretNames) ?? Self.secretEnvironmentKeys
        startupScript = try c.decodeIfPresent(String.self, forKey: .startupScript) ?? ""
        ports = try c.decodeIfPresent([Int].self, forKey: .ports) ?? []
    }

    /// The environment variables that carry the instance's secrets; a snapshot must not keep them.
    public static let secretEnvironmentKeys = ["JUPYTER_TOKEN", "LATTICE_ROOT_PASSWORD"]
}

/// A backend that runs instances: the simulated fleet, a Docker/Podman engine, or
/// Kubernetes. Every call is idempotent, so the reconciler may repeat any of them after a
/// crash or a timeout.
public protocol ComputeDriver: WorkloadAccess {
    /// The cluster's nodes and whether each can take work now.
    func nodes() async throws -> [ClusterNode]
    /// Every workload this driver runs, keyed by instance name (for the resync).
    func observeAll() async throws -> [String: WorkloadObservation]
    /// One instance's workload, or nil when there is none (for one reconcile step).
    func observe(instanceName: String) async throws -> WorkloadObservation?
    /// Names of instances whose workload changed on its own or finished a transition
    /// (started, stopped, exited, vanished, failed). The reconciler works on what this
    /// publishes instead of polling; a name may come more than once. One consumer.
    func changes() -> AsyncStream<String>
    /// The driver's own long-running work (watches of its backend, event followers, the
    /// timers of transitions under way), until the task is cancelled: the server runs it
    /// once, in the reconciler's task group, so every task the driver needs is a child of
    /// a service. Until it runs, `changes()` publishes nothing (and a Kubernetes driver's
    /// caches stay empty).
    func run() async
    /// Creates the workload if absent and starts it; moves it if its placement changed.
    func start(_ spec: WorkloadSpec) async throws
    /// Stops the workload, waiting up to the grace period before killing it.
    func stop(instanceName: String, gracePeriodSeconds: Int) async throws
    /// Commits the (stopped) workload as an image and returns its size in bytes (see
    /// `commitsRunningWorkloads` for drivers that commit a running one).
    func commit(instanceName: String, imageReference: String) async throws -> Int64
    /// Removes the workload but keeps its data volume.
    func discard(instanceName: String) async throws
    /// Removes the workload and its data volume.
    func destroy(instanceName: String, volumeName: String) async throws
    /// Removes a committed snapshot image from the backend's own storage, if it keeps one
    /// (absent is fine; one still used by a workload stays).
    func removeImage(reference: String) async throws
    /// Called when this replica becomes the leader: take in what another process did to
    /// the backend since this one last looked. Drivers whose backend keeps the state (an
    /// engine, a cluster) have nothing to do.
    func adopt() async throws
    /// Whether `commit` takes the snapshot of a *running* workload and then removes it
    /// (Kubernetes: a pod cannot be stopped, only deleted, and the container must outlive
    /// the commit). The reconciler then asks for the commit instead of a stop.
    var commitsRunningWorkloads: Bool { get }
    /// The workload's log (what it printed on stdout and stderr, the startup script's
    /// output among it): the last `tail` lines, then, with `follow`, what it prints until
    /// the task is cancelled or the workload ends. False when there is no workload.
    func logs(
        instanceName: String,
        tail: Int,
        follow: Bool,
        output: @escaping @Sendable (Data) async -> Void
    )
        async throws -> Bool
    /// What the running workload uses now; nil when it is not running.
    func metrics(instanceName: String) async throws -> WorkloadMetrics?
}

extension ComputeDriver {
    /// A driver with no work of its own waits to be cancelled.
    public func run() async {
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
    }

    /// Nothing to take in: the backend keeps its own state.
    public func adopt() async throws {}
    /// A stop, then a commit of the stopped workload.
    public var commitsRunningWorkloads: Bool { false }
}

/// A driver failure: the reconciler logs it and retries with backoff; a client that asked
/// for a workload's logs, metrics or a session sees its `kind` as a status (`503` while the
/// backend does not answer, `409` when there is no workload).
public struct DriverError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, as the caller can act on it (as `NIOSSHError`'s types do).
    public enum Kind: String, Sendable, Equatable {
        /// The backend did not answer, or answered an error that may pass: try again.
        case transient
        /// The workload itself failed (a snapshot job, a session without an exit status).
        case workloadFailed
        /// The instance has no workload there (no container, no running pod).
        case notFound
        /// What the driver was given cannot work (a node outside the cluster, TLS files missing).
        case invalidSpec
    }

    /// What the caller can do about it.
    public var kind: Kind
    /// What went wrong, for the log and for the client (never a credential).
    public var message: String
    /// A failure; transient (retried with backoff) unless told otherwise.
    public init(_ message: String, kind: Kind = .transient) {
        self.kind = kind
        self.message = message
    }
    /// The message.
    public var description: String { message }
}
