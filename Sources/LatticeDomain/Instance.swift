import Foundation

/// The lifecycle states of SPEC §5, spelled as on the wire.
public enum InstanceStatus: String, Sendable, Codable, Equatable, CaseIterable {
    case creating = "Creating"
    case running = "Running"
    case stopping = "Stopping"
    case saving = "Saving"
    case stopped = "Stopped"
    case starting = "Starting"
    case failed = "Failed"
    case deleting = "Deleting"

    /// States in which the instance holds its GPUs (and, for billing, is metered).
    public var holdsGPUs: Bool {
        switch self {
        case .creating, .running, .stopping, .saving, .starting: true
        case .stopped, .failed, .deleting: false
        }
    }
}

/// What the user asked for; the reconciler drives the backend towards it.
public struct DesiredState: Sendable, Codable, Equatable {
    /// Whether the workload should run.
    public enum Power: String, Sendable, Codable, Equatable { case on, off }
    /// On from the create and `power_on`, off from `power_off` and a scheduled or idle stop.
    public var power: Power
    /// Set by `DELETE`: the reconciler removes the workload and its disk, then the row.
    public var deleted: Bool
    /// Set by `power_off` with `needSnapshot`; cleared once the image is committed.
    public var snapshot: SnapshotRequest?
    /// How long a stop waits for the workload to end before it is killed.
    public var gracePeriodSeconds: Int

    /// Running, not deleted, no snapshot asked for, stopped with 10 s of grace.
    public init(
        power: Power = .on,
        deleted: Bool = false,
        snapshot: SnapshotRequest? = nil,
        gracePeriodSeconds: Int = 10
    ) {
        self.power = power
        self.deleted = deleted
        self.snapshot = snapshot
        self.gracePeriodSeconds = gracePeriodSeconds
    }
}

/// A request to commit the container as `<harborAddr>/<namespace>/<imageName>:<tag>`.
public struct SnapshotRequest: Sendable, Codable, Equatable {
    /// The image to commit to.
    public var imageReference: String
    /// A commit to `imageReference`.
    public init(imageReference: String) { self.imageReference = imageReference }
}

/// The billing choices made at create time (the wire's `cost` object).
public struct CostSelection: Sendable, Codable, Equatable {
    /// The seed's `CostType`: the SKU's `sellingType` (`SellingType`: 1 pay-as-you-go, 2
    /// monthly, 3 weekly, 4 daily).
    public var costType: Int
    /// A prepaid term (`3D`, `2W`, `1M`); "" for pay-as-you-go.
    public var costTime: String
    /// The coupon redeemed at create; "" for none.
    public var couponID: String
    /// The seed's `DiscountID`, echoed as given.
    public var discountID: String
    /// The GPU SKU the instance was made from.
    public var gpuSkuID: String
    /// The disk SKU of its data disk.
    public var diskSkuID: String
    /// The order the create placed.
    public var orderID: String
    /// The effective price per hour (or per term unit) when the instance was created.
    public var unitPrice: Money
    /// Percent off every pay-as-you-go charge, from a percentage coupon.
    public var percentOff: Int?
    /// The data disk's price per GB-day at creation.
    public var diskPricePerGBDay: Money?

    /// The choices as the create made them.
    public init(
        costType: Int,
        costTime: String,
        couponID: String,
        discountID: String,
        gpuSkuID: String,
        diskSkuID: String,
        orderID: String,
        unitPrice: Money
    ) {
        self.costType = costType
        self.costTime = costTime
        self.couponID = couponID
        self.discountID = discountID
        self.gpuSkuID = gpuSkuID
        self.diskSkuID = diskSkuID
        self.orderID = orderID
        self.unitPrice = unitPrice
    }
}

/// The machine shape, copied from the SKU at create time so catalog edits never change
/// a running instance.
public struct InstanceResources: Sendable, Codable, Equatable {
    /// CPU cores, a limit on the workload.
    public var cpuCores: Int
    /// Memory in GiB, a limit on the workload.
    public var memoryGiB: Int
    /// GPUs, all of one node.
    public var gpuCount: Int
    /// The GPU model (`4090`, `A100`), which the placement matches against the nodes'.
    public var gpuModel: String
    /// How the backend asks for GPUs (Kubernetes' resource name).
    public var gpuResourceKey: String
    /// The system disk, in GiB, reported as the first of `volumeMounts` (`系统盘`).
    public var systemDiskGiB: Int

    /// A shape as the SKU gives it.
    public init(
        cpuCores: Int,
        memoryGiB: Int,
        gpuCount: Int,
        gpuModel: String,
        gpuResourceKey: String,
        systemDiskGiB: Int
    ) {
        self.cpuCores = cpuCores
        self.memoryGiB = memoryGiB
        self.gpuCount = gpuCount
        self.gpuModel = gpuModel
        self.gpuResourceKey = gpuResourceKey
        self.systemDiskGiB = systemDiskGiB
    }
}

/// The data disk, kept across power cycles and removed with the instance.
public struct DataVolume: Sendable, Codable, Equatable {
    /// The backend's volume name (`volume-` and 8 random hex digits).
    public var name: String
    /// Where the workload sees it (the seed's `PathInContainer`, `/root/data` by default).
    public var pathInContainer: String
    /// Its size as the tenant chose it (`VolumeMount[].Size`).
    public var sizeGiB: Int
    /// The disk SKU's type (`shared-filesystem`).
    public var type: String
    /// True where the volume lives on one node's disk (engine clusters, node-local storage
    /// classes on Kubernetes: `DiskSKU.isHostLocal(on:)`): it stays there, so
    /// power_on must come back to that node.
    public var hostLocal: Bool?
    /// The node the volume lives on, once the workload first ran (host-local volumes only).
    public var node: String?
    /// Its Kubernetes storage class, chosen at create (`DiskSKU.storageClass(on:)`); nil:
    /// the cluster's.
    public var storageClass: String?
    /// Its PVC's access mode, from the disk SKU at create; nil: `ReadWriteOnce`.
    public var accessMode: String?

    /// A data disk as the create chose it.
    public init(
        name: String,
        pathInContainer: String,
        sizeGiB: Int,
        type: String,
        hostLocal: Bool? = nil,
        storageClass: String? = nil,
        accessMode: String? = nil
    ) {
        self.name = name
        self.pathInContainer = pathInContainer
        self.sizeGiB = sizeGiB
        self.type = type
        self.hostLocal = hostLocal
        self.storageClass = storageClass
        self.accessMode = accessMode
    }
}

/// Credentials and ports that make up the instance's `servers`.
public struct AccessSecrets: Sendable, Codable, Equatable {
    /// JupyterLab's token; sealed at rest.
    public var jupyterToken: String
    /// The root password for SSH; sealed at rest.
    public var sshPassword: String
    /// The public SSH port the gateway holds for the instance; 0 while it holds none.
    public var sshPort: Int
    /// Whether Jupyter and Tensorboard are published on host ports (engine clusters):
    /// the SSH port minus 10000 and minus 6000, so that with the default SSH ports
    /// (30000-32767) all three stay below Linux's ephemeral range (32768 and up).
    public var publishesPorts: Bool?

    /// The secrets and the port a create gives.
    public init(jupyterToken: String, sshPassword: String, sshPort: Int, publishesPorts: Bool? = nil) {
        self.jupyterToken = jupyterToken
        self.sshPassword = sshPassword
        self.sshPort = sshPort
        self.publishesPorts = publishesPorts
    }

    /// JupyterLab's published host port (see `publishesPorts`).
    public var jupyterPort: Int { sshPort - 10000 }
    /// Tensorboard's published host port (see `publishesPorts`).
    public var tensorboardPort: Int { sshPort - 6000 }
}

/// Where the instance's GPUs are reserved: one node, specific device indices.
public struct GPUPlacement: Sendable, Codable, Equatable {
    /// The node's name.
    public var node: String
    /// The device indices on that node.
    public var gpuIndices: [Int]

    /// A placement on `node`.
    public init(node: String, gpuIndices: [Int]) {
        self.node = node
        self.gpuIndices = gpuIndices
    }
}

/// The workload as last observed on the backend.
public struct PodInfo: Sendable, Codable, Equatable {
    /// The seed's `pod.name`, new at every start.
    public var name: String
    /// The node it runs on ("" until seen).
    public var node: String
    /// Its address inside the cluster ("" until seen).
    public var ip: String

    /// A workload as named or seen.
    public init(name: String, node: String, ip: String) {
        self.name = name
        self.node = node
        self.ip = ip
    }
}

/// A compute instance: desired state (what the user asked for) and observed state
/// (what the reconciler last saw), kept apart.
public struct Instance: Sendable, Codable, Equatable {
    /// `instance-` and 8 hex digits: the name in every URL, never given twice.
    public var name: String
    /// A UUID, the name the HTTP gateway knows the instance by.
    public var uid: String
    /// The tenant's namespace.
    public var namespace: String
    /// The cluster it runs in.
    public var cluster: String
    /// The cluster's region.
    public var regionID: String
    /// The tenant's name for it.
    public var displayName: String
    /// The tenant's note on it.
    public var description: String
    /// The image it runs (a snapshot after a saving power_off, never a registry the
    /// machine cannot reach).
    public var image: String
    /// How it is billed.
    public var cost: CostSelection
    /// Its shape, copied from the SKU.
    public var resources: InstanceResources
    /// Its data disk.
    public var volume: DataVolume
    /// Its secrets and ports.
    public var access: AccessSecrets
    /// What the tenant asked for.
    public var desired: DesiredState
    /// What the reconciler last saw (SPEC §5).
    public var status: InstanceStatus
    /// Why the status is what it is, for Failed in particular.
    public var statusReason: String
    /// Non-nil exactly while the instance holds GPUs.
    public var placement: GPUPlacement?
    /// The pod name is chosen when the instance is placed; node and ip are filled in as observed.
    public var pod: PodInfo?
    /// When the create was accepted.
    public var createdAt: Date
    /// The last change made to it (the seed's `updateTimestamp`); nil before the first.
    public var updatedAt: Date?
    /// When it stops (or is deleted, `scheduleStopAction`) of itself; nil for never.
    public var scheduleStopAt: Date?
    /// What a pay-as-you-go instance's `scheduleStopAt` does (SPEC §12); nil: power off. A
    /// prepaid instance's is its term's end, which always powers off.
    public var scheduleStopAction: ScheduledStopAction?
    /// When the instance last reached Stopped; its data is kept until this plus the retention period.
    public var stoppedAt: Date?
    /// Bumped by every write; the reconciler's writes are conditional on it.
    public var generation: Int
    /// Environment, startup script and ports (SPEC §11); nil for an instance made without.
    public var workload: WorkloadSettings?
    /// Which of JupyterLab and Tensorboard the Running workload serves, as last observed.
    public var apps: WorkloadApps?
    /// `idleStop` (SPEC §12): powered off once unused this long; nil for never.
    public var idleStop: IdleStopPolicy?
    /// When the instance was last used (or reached Running): its idle clock's start, while
    /// `idleStop` is set (`IdleRule`).
    public var idleSince: Date?
    /// `wakeOnConnect` (SPEC §12): a connection through a gateway powers a Stopped instance on.
    public var wakeOnConnect: Bool?

    /// An instance as a create drafts it (the rest is set by the decisions that follow).
    public init(
        name: String,
        uid: String,
        namespace: String,
        cluster: String,
        regionID: String,
        displayName: String,
        description: String = "",
        image: String,
        cost: CostSelection,
        resources: InstanceResources,
        volume: DataVolume,
        access: AccessSecrets,
        desired: DesiredState = DesiredState(),
        status: InstanceStatus = .creating,
        statusReason: String = "",
        placement: GPUPlacement? = nil,
        pod: PodInfo? = nil,
        createdAt: Date,
        updatedAt: Date? = nil,
        scheduleStopAt: Date? = nil,
        generation: Int = 1
    ) {
        self.name = name
        self.uid = uid
        self.namespace = namespace
        self.cluster = cluster
        self.regionID = regionID
        self.displayName = displayName
        self.description = description
        self.image = image
        self.cost = cost
        self.resources = resources
        self.volume = volume
        self.access = access
        self.desired = desired
        self.status = status
        self.statusReason = statusReason
        self.placement = placement
        self.pod = pod
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.scheduleStopAt = scheduleStopAt
        self.generation = generation
    }
}

/// What happens at an instance's scheduled stop time.
public enum ScheduledStopAction: String, Sendable, Codable, Equatable {
    /// The instance is powered off; its disk stays.
    case powerOff = "power_off"
    /// The instance is deleted with its disk.
    case delete
}

/// A committed image of a tenant's container.
public struct SnapshotImage: Sendable, Codable, Equatable {
    /// Saving while the commit runs, then Ready or Failed.
    public enum Status: String, Sendable, Codable, Equatable {
        case saving = "Saving", ready = "Ready", failed = "Failed"
    }
    /// `<harborAddr>/<namespace>/<imageName>:<tag>`.
    public var reference: String
    /// Whose it is: only that namespace lists it, runs it or deletes it.
    public var namespace: String
    /// The instance it was committed from.
    public var sourceInstance: String
    /// Where the commit stands.
    public var status: Status
    /// Its size once committed (0 before).
    public var sizeBytes: Int64
    /// When the commit was asked for.
    public var createdAt: Date

    /// A snapshot as recorded.
    public init(
        reference: String,
        namespace: String,
        sourceInstance: String,
        status: Status,
        sizeBytes: Int64 = 0,
        createdAt: Date
    ) {
        self.reference = reference
        self.namespace = namespace
        self.sourceInstance = sourceInstance
        self.status = status
        self.sizeBytes = sizeBytes
        self.createdAt = createdAt
    }
}
