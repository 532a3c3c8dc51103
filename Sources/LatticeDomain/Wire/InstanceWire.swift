import Foundation

/// An instance exactly as the seed's samples show it, field for field; extra fields
/// (`statusReason`, `regionID`) are Lattice's additions.
public struct InstanceWire: Codable, Sendable, Equatable {
    public struct Resources: Codable, Sendable, Equatable {
        public var cpu: String
        public var memory: String
        public var GPUNum: String
        public var GPUType: String
    }

    public struct VolumeMount: Codable, Sendable, Equatable {
        public var PathInContainer: String
        public var `Type`: String
        public var Size: Int
        public var PVCName: String
        public var displayName: String
        public var filesystemType: String
    }

    public struct Cost: Codable, Sendable, Equatable {
        public var CostType: String
        public var CostTime: String
        public var DiscountID: String
        public var GPUSKUID: String
        public var DiskSKUID: String
        public var CouponID: String
    }

    public struct SSH: Codable, Sendable, Equatable {
        public var sshAddr: String
        public var sshPassword: String
    }

    /// A published HTTP port and where the gateway serves it.
    public struct PortLink: Codable, Sendable, Equatable {
        public var port: Int
        public var name: String
        public var url: String
        public var `public`: Bool
    }

    /// Which of the applications Lattice starts are up (`running`, `starting`, `absent`).
    public struct Apps: Codable, Sendable, Equatable {
        public var jupyterlab: String
        public var tensorboard: String

        public init(jupyterlab: String, tensorboard: String) {
            self.jupyterlab = jupyterlab
            self.tensorboard = tensorboard
        }
    }

    public struct Servers: Codable, Sendable, Equatable {
        public var Jupyterlab: String
        public var Tensorboard: String
        public var SSH: SSH
        /// Lattice's additions (optional so that an older server's answer still decodes).
        public var ports: [PortLink]?
        public var apps: Apps?
    }

    public struct Container: Codable, Sendable, Equatable {
        public var Name: String
    }

    public struct Pod: Codable, Sendable, Equatable {
        public var Name: String
        public var Containers: [Container]
        public var nodeScheduled: String
        public var ip: String
    }

    public var name: String
    public var namespace: String
    public var Region: String
    public var displayName: String
    public var description: String
    public var annotations: [String: String]
    public var uid: String
    public var servers: Servers
    public var image: String
    public var replicas: Int
    public var resources: Resources
    public var volumeMounts: [VolumeMount]
    public var creationTimestamp: String
    public var updateTimestamp: String
    public var ScheduleStopTimestamp: String
    public var status: String
    public var statusReason: String
    /// When a Stopped instance's data will be released; the zero time otherwise.
    public var retentionUntil: String
    public var regionID: String
    public var cost: Cost
    public var Pods: [Pod]
    /// SPEC §11: the workload's environment, the names of its secret variables (never
    /// their values) and its startup script.
    public var env: [String: String]?
    public var secretEnvNames: [String]?
    public var startupScript: String?
    /// SPEC §12: what `ScheduleStopTimestamp` does (`power_off`, `delete`); "" with none.
    public var scheduleStopAction: String?
    /// SPEC §12: the idle policy (absent with none), its clock (`since`, `stopsAt`: the zero
    /// time while it does not run), and whether a connection wakes the instance.
    public var idleStop: IdleStopPolicy?
    public var idle: Idle?
    public var wakeOnConnect: Bool?

    public struct Idle: Codable, Sendable, Equatable {
        public var since: String
        public var stopsAt: String
    }

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
