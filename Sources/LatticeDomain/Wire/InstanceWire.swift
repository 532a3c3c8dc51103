import Foundation

/// An instance exactly as the seed's samples show it, field for field; extra fields
/// (`statusReason`, `regionID`) are Lattice's additions.
public struct InstanceWire: Codable, Sendable, Equatable {
    /// What the instance runs with, as strings (the seed's form).
    public struct Resources: Codable, Sendable, Equatable {
        /// CPU cores.
        public var cpu: String
        /// Memory, with its unit (`16Gi`).
        public var memory: String
        /// GPUs.
        public var GPUNum: String
        /// The GPU model (the SKU's `gpuModel`).
        public var GPUType: String
    }

    /// A disk: the system disk first, then the data disk.
    public struct VolumeMount: Codable, Sendable, Equatable {
        /// Where it is mounted (`/` for the system disk).
        public var PathInContainer: String
        /// The disk type (`local-filesystem` for the system disk, else the disk SKU's type).
        public var `Type`: String
        /// Its size, in GB.
        public var Size: Int
        /// The data volume's name ("" for the system disk).
        public var PVCName: String
        /// Its name as shown (the seed's Chinese labels).
        public var displayName: String
        /// `system` or `data`.
        public var filesystemType: String
    }

    /// How the instance is paid for, as the create asked.
    public struct Cost: Codable, Sendable, Equatable {
        /// `1` pay-as-you-go, `2` monthly, `3` weekly, `4` daily.
        public var CostType: String
        /// The prepaid term (`1M`, `2W`, `3D`; "" for pay-as-you-go).
        public var CostTime: String
        /// The SKU's discount in force at the create ("" for none).
        public var DiscountID: String
        /// The GPU SKU.
        public var GPUSKUID: String
        /// The disk SKU.
        public var DiskSKUID: String
        /// The coupon redeemed at the create ("" for none).
        public var CouponID: String
    }

    /// How to reach the instance over SSH.
    public struct SSH: Codable, Sendable, Equatable {
        /// The command line to connect ("" while it holds no port: Stopped or Failed).
        public var sshAddr: String
        /// The password of that login.
        public var sshPassword: String
    }

    /// A published HTTP port and where the gateway serves it.
    public struct PortLink: Codable, Sendable, Equatable {
        /// The port the workload listens on.
        public var port: Int
        /// Its name ("" for none).
        public var name: String
        /// Where the HTTP gateway serves it.
        public var url: String
        /// Whether it is reachable without the instance's token.
        public var `public`: Bool
    }

    /// Which of the applications Lattice starts are up (`running`, `starting`, `absent`).
    public struct Apps: Codable, Sendable, Equatable {
        /// JupyterLab: `running`, `starting` or `absent`.
        public var jupyterlab: String
        /// Tensorboard: `running`, `starting` or `absent`.
        public var tensorboard: String

        /// The applications' states.
        public init(jupyterlab: String, tensorboard: String) {
            self.jupyterlab = jupyterlab
            self.tensorboard = tensorboard
        }
    }

    /// Where the instance's applications and SSH are reached.
    public struct Servers: Codable, Sendable, Equatable {
        /// JupyterLab's address, its token in the query.
        public var Jupyterlab: String
        /// Tensorboard's address.
        public var Tensorboard: String
        /// The SSH address and password.
        public var SSH: SSH
        /// Lattice's additions (optional so that an older server's answer still decodes).
        public var ports: [PortLink]?
        /// Lattice's addition: which applications are up.
        public var apps: Apps?
    }

    /// A container of the pod.
    public struct Container: Codable, Sendable, Equatable {
        /// The container's name.
        public var Name: String
    }

    /// The pod (or container) that runs the instance.
    public struct Pod: Codable, Sendable, Equatable {
        /// The pod's name.
        public var Name: String
        /// Its containers.
        public var Containers: [Container]
        /// The node it was scheduled on ("" before placement).
        public var nodeScheduled: String
        /// Its address inside the cluster ("" before it runs).
        public var ip: String
    }

    /// The instance's name (`instance-` and 8 hex digits).
    public var name: String
    /// The namespace that owns it.
    public var namespace: String
    /// The cluster it runs on (the seed calls it `Region`).
    public var Region: String
    /// The name the user gave it.
    public var displayName: String
    /// The user's description.
    public var description: String
    /// The seed's annotations (cost, SKUs, display name, GPU machine, unit price), under the operator's domain.
    public var annotations: [String: String]
    /// The instance's uid (its HTTP gateway host name).
    public var uid: String
    /// Where its applications and SSH are reached.
    public var servers: Servers
    /// The image it runs.
    public var image: String
    /// 1 while it is meant to run, else 0.
    public var replicas: Int
    /// Its CPU, memory and GPUs.
    public var resources: Resources
    /// Its system and data disks.
    public var volumeMounts: [VolumeMount]
    /// When it was created (RFC 3339).
    public var creationTimestamp: String
    /// When it last changed (RFC 3339).
    public var updateTimestamp: String
    /// When it powers off (or is deleted) on its own; the zero time with no schedule.
    public var ScheduleStopTimestamp: String
    /// Its lifecycle status (`Creating`, `Running`, `Stopping`, `Stopped`, `Failed`, ...).
    public var status: String
    /// Lattice's addition: why it is in that status (`Reason: detail`; "" when nothing to say).
    public var statusReason: String
    /// When a Stopped instance's data will be released; the zero time otherwise.
    public var retentionUntil: String
    /// Lattice's addition: the region's id.
    public var regionID: String
    /// How it is paid for.
    public var cost: Cost
    /// Its pod, when it has one.
    public var Pods: [Pod]
    /// SPEC §11: the workload's environment, the names of its secret variables (never
    /// their values) and its startup script.
    public var env: [String: String]?
    /// The names of its secret variables (never their values).
    public var secretEnvNames: [String]?
    /// Its startup script ("" for none).
    public var startupScript: String?
    /// SPEC §12: what `ScheduleStopTimestamp` does (`power_off`, `delete`); "" with none.
    public var scheduleStopAction: String?
    /// SPEC §12: the idle policy (absent with none), its clock (`since`, `stopsAt`: the zero
    /// time while it does not run), and whether a connection wakes the instance.
    public var idleStop: IdleStopPolicy?
    /// The idle clock (absent without an idle policy).
    public var idle: Idle?
    /// Whether a connection to a stopped instance powers it on.
    public var wakeOnConnect: Bool?

    /// The idle clock.
    public struct Idle: Codable, Sendable, Equatable {
        /// Since when the instance has been idle (the zero time while it is not).
        public var since: String
        /// When it powers off if it stays idle (the zero time while the clock does not run).
        public var stopsAt: String
    }

    /// The instance as the API shows it, addresses from `context`.
    public init(_ instance: Instance, context: WireContext) {
        let domain = context.annotationDomain
        let gpuMachine = instance.resources.gpuModel
        name = instance.name
        namespace = instance.namespace
        Region = instance.cluster
        displayName = instance.displayName
        description = instance.description
        annotations = [
            "\(domain)/cost-coupon-id": instance.cost.couponID,
            "\(domain)/cost-discount-id": instance.cost.discountID,
            "\(domain)/cost-disk-sku-id": instance.cost.diskSkuID,
            "\(domain)/cost-gpu-sku-id": instance.cost.gpuSkuID,
            "\(domain)/cost-order-id": instance.cost.orderID,
            "\(domain)/cost-time": instance.cost.costTime,
            "\(domain)/cost-type": String(instance.cost.costType),
            "\(domain)/description": instance.description,
            "\(domain)/display-name": instance.displayName,
            "\(domain)/gpu.machine": gpuMachine,
            "\(domain)/gpu.resource.key": instance.resources.gpuResourceKey,
            "\(domain)/region": instance.cluster,
            "\(domain)/saveDataEnabled": "false",
            "\(domain)/unit-price": instance.cost.unitPrice.description,
        ]
        uid = instance.uid
        let host = context.publicHost
        // A Stopped or Failed instance holds no port: its addresses are empty until power_on.
        let holdsPort = instance.access.sshPort > 0
        let address =
            context.sshSharedPort.map { "ssh -p\($0) \(instance.name)@\(host)" }
            ?? "ssh -p\(instance.access.sshPort) root@\(host)"
        let ssh = SSH(sshAddr: holdsPort ? address : "", sshPassword: instance.access.sshPassword)
        // The HTTP gateway's addresses for this instance: `<uid>.<host>`, and `<uid>-<port>.<host>`
        // for each published port.
        let scheme = context.gatewayScheme
        let standard = scheme == "https" ? 443 : 80
        let gatewayPort = context.httpGatewayPort.map { $0 == standard ? "" : ":\($0)" } ?? ""
        let ports = (instance.workload?.ports ?? []).map {
            PortLink(
                port: $0.port,
                name: $0.name,
                url: "\(scheme)://\(instance.uid)-\($0.port).\(host)\(gatewayPort)/",
                public: $0.isPublic
            )
        }
        let observed = instance.status == .running ? instance.apps ?? .absent : .absent
        let apps = Apps(jupyterlab: observed.jupyterlab.rawValue, tensorboard: observed.tensorboard.rawValue)
        if instance.access.publishesPorts == true, !holdsPort {
            servers = Servers(Jupyterlab: "", Tensorboard: "", SSH: ssh, ports: ports, apps: apps)
        } else if instance.access.publishesPorts == true {
            servers = Servers(
                Jupyterlab: "http://\(host):\(instance.access.jupyterPort)/?token=\(instance.access.jupyterToken)",
                Tensorboard: "http://\(host):\(instance.access.tensorboardPort)/",
                SSH: ssh,
                ports: ports,
                apps: apps
            )
        } else {
            let base = "\(scheme)://\(instance.uid).\(host)\(gatewayPort)"
            servers = Servers(
                Jupyterlab: "\(base)/jupyter?token=\(instance.access.jupyterToken)",
                Tensorboard: "\(base)/monitor?token=\(instance.access.jupyterToken)",
                SSH: ssh,
                ports: ports,
                apps: apps
            )
        }
        image = instance.image
        replicas = instance.desired.power == .on && !instance.desired.deleted ? 1 : 0
        resources = Resources(
            cpu: String(instance.resources.cpuCores),
            memory: "\(instance.resources.memoryGiB)Gi",
            GPUNum: String(instance.resources.gpuCount),
            GPUType: gpuMachine
        )
        volumeMounts = [
            VolumeMount(
                PathInContainer: "/",
                Type: "local-filesystem",
                Size: instance.resources.systemDiskGiB,
                PVCName: "",
                displayName: "系统盘",
                filesystemType: "system"
            ),
            VolumeMount(
                PathInContainer: instance.volume.pathInContainer,
                Type: instance.volume.type,
                Size: instance.volume.sizeGiB,
                PVCName: instance.volume.name,
                displayName: "磁盘-\(instance.volume.name)",
                filesystemType: "data"
            ),
        ]
        creationTimestamp = context.time.format(instance.createdAt)
        updateTimestamp = context.time.format(instance.updatedAt)
        ScheduleStopTimestamp = context.time.format(instance.scheduleStopAt)
        status = instance.status.rawValue
        statusReason = instance.statusReason
        retentionUntil = context.time.format(
            instance.status == .stopped ? instance.stoppedAt?.addingTimeInterval(context.retention) : nil
        )
        regionID = instance.regionID
        cost = Cost(
            CostType: String(instance.cost.costType),
            CostTime: instance.cost.costTime,
            DiscountID: instance.cost.discountID,
            GPUSKUID: instance.cost.gpuSkuID,
            DiskSKUID: instance.cost.diskSkuID,
            CouponID: instance.cost.couponID
        )
        if let pod = instance.pod {
            Pods = [Pod(Name: pod.name, Containers: [Container(Name: "worker")], nodeScheduled: pod.node, ip: pod.ip)]
        } else {
            Pods = []
        }
        env = instance.workload?.env ?? [:]
        secretEnvNames = (instance.workload?.secretEnv.keys).map { $0.sorted() } ?? []
        startupScript = instance.workload?.startupScript ?? ""
        scheduleStopAction =
            instance.scheduleStopAt == nil ? "" : (instance.scheduleStopAction ?? .powerOff).rawValue
        idleStop = instance.idleStop
        let stopsAt = IdleRule.stopsAt(instance)
        idle = Idle(
            since: context.time.format(stopsAt == nil ? nil : instance.idleSince),
            stopsAt: context.time.format(stopsAt)
        )
        wakeOnConnect = instance.wakeOnConnect == true
    }
}
