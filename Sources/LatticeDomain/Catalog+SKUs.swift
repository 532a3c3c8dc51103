import Foundation

/// How a SKU is sold (the seed's `sellingType`).
public enum SellingType: Int, Sendable, Codable, Equatable {
    case payAsYouGo = 1, monthly = 2, weekly = 3, daily = 4

    /// The `CostTime` unit a prepaid term of this type is counted in.
    public var termUnit: CostTime.Unit? {
        switch self {
        case .payAsYouGo: nil
        case .monthly: .month
        case .weekly: .week
        case .daily: .day
        }
    }
}

/// A discount: `ratio` applies to the price between `start` and `end`, both included.
public struct Discount: Sendable, Codable, Equatable {
    public var id: String
    public var ratio: Ratio
    public var start: Date
    public var end: Date

    public init(id: String, ratio: Ratio, start: Date, end: Date) {
        self.id = id
        self.ratio = ratio
        self.start = start
        self.end = end
    }
}

/// A GPU SKU: a machine shape sold per hour (or per prepaid term).
public struct GPUSKU: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var regionID: String
    public var clusterName: String
    public var gpuModel: String
    public var gpuResourceKey: String
    public var gpuCount: Int
    public var gpuMemoryGiB: Int
    public var cpuArch: String
    public var cpuSeries: String
    public var cpuVendor: String
    public var cpuCores: Int
    public var memoryGiB: Int
    public var systemStorageGiB: Int
    public var dataStorageGiB: Int
    public var sellingType: Int
    /// List price per hour for pay-as-you-go, per term unit (day, week, month) for prepaid.
    public var price: Money
    public var discount: Discount?

    public init(
        id: String,
        name: String,
        regionID: String,
        clusterName: String,
        gpuModel: String,
        gpuResourceKey: String,
        gpuCount: Int,
        gpuMemoryGiB: Int,
        cpuArch: String = "x86-64",
        cpuSeries: String = "Intel Xeon",
        cpuVendor: String = "Intel",
        cpuCores: Int,
        memoryGiB: Int,
        systemStorageGiB: Int = 30,
        dataStorageGiB: Int = 50,
        sellingType: SellingType,
        price: Money,
        discount: Discount? = nil
    ) {
        self.id = id
        self.name = name
        self.regionID = regionID
        self.clusterName = clusterName
        self.gpuModel = gpuModel
        self.gpuResourceKey = gpuResourceKey
        self.gpuCount = gpuCount
        self.gpuMemoryGiB = gpuMemoryGiB
        self.cpuArch = cpuArch
        self.cpuSeries = cpuSeries
        self.cpuVendor = cpuVendor
        self.cpuCores = cpuCores
        self.memoryGiB = memoryGiB
        self.systemStorageGiB = systemStorageGiB
        self.dataStorageGiB = dataStorageGiB
        self.sellingType = sellingType.rawValue
        self.price = price
        self.discount = discount
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        name = try c.decode(String.self, forKey: .name)
        regionID = try c.decode(String.self, forKey: .regionID)
        clusterName = try c.decode(String.self, forKey: .clusterName)
        gpuModel = try c.decodeIfPresent(String.self, forKey: .gpuModel) ?? name
        gpuResourceKey = try c.decodeIfPresent(String.self, forKey: .gpuResourceKey) ?? "nvidia.com/gpu"
        gpuCount = try c.decodeIfPresent(Int.self, forKey: .gpuCount) ?? 1
        gpuMemoryGiB = try c.decodeIfPresent(Int.self, forKey: .gpuMemoryGiB) ?? 0
        cpuArch = try c.decodeIfPresent(String.self, forKey: .cpuArch) ?? "x86-64"
        cpuSeries = try c.decodeIfPresent(String.self, forKey: .cpuSeries) ?? ""
        cpuVendor = try c.decodeIfPresent(String.self, forKey: .cpuVendor) ?? ""
        cpuCores = try c.decode(Int.self, forKey: .cpuCores)
        memoryGiB = try c.decode(Int.self, forKey: .memoryGiB)
        systemStorageGiB = try c.decodeIfPresent(Int.self, forKey: .systemStorageGiB) ?? 30
        dataStorageGiB = try c.decodeIfPresent(Int.self, forKey: .dataStorageGiB) ?? 50
        sellingType = try c.decodeIfPresent(Int.self, forKey: .sellingType) ?? 1
        price = try c.decode(Money.self, forKey: .price)
        discount = try c.decodeIfPresent(Discount.self, forKey: .discount)
    }

    public var selling: SellingType { SellingType(rawValue: sellingType) ?? .payAsYouGo }
}

/// A data disk SKU.
public struct DiskSKU: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var regionID: String
    public var type: String
    /// Price per GB per day.
    public var pricePerGBDay: Money
    public var minSizeGiB: Int
    public var maxSizeGiB: Int
    public var defaultSizeGiB: Int
    /// The Kubernetes storage class of this SKU's data disks (on `kubernetes` clusters);
    /// nil: the cluster's `kubernetes.storageClass`, else the cluster's default class.
    public var storageClass: String?
    /// Kubernetes clusters: the storage class binds each volume to one node (local-path,
    /// TopoLVM, local PVs), so power_on must come back to the node it first ran on, as on
    /// engine clusters.
    public var nodeLocal: Bool?
    /// Kubernetes clusters: the PVC's access mode (`ReadWriteOnce`, the default, which
    /// every storage class offers and one pod per instance needs; `ReadWriteMany` or
    /// `ReadWriteOncePod`).
    public var accessMode: String?

    /// The access modes a disk SKU may name.
    public static let accessModes: Set<String> = ["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"]

    public init(
        id: String,
        name: String,
        regionID: String,
        type: String,
        pricePerGBDay: Money,
        minSizeGiB: Int = 1,
        maxSizeGiB: Int = 2048,
        defaultSizeGiB: Int = 50,
        storageClass: String? = nil,
        nodeLocal: Bool? = nil,
        accessMode: String? = nil
    ) {
        self.id = id
        self.name = name
        self.regionID = regionID
        self.type = type
        self.pricePerGBDay = pricePerGBDay
        self.minSizeGiB = minSizeGiB
        self.maxSizeGiB = maxSizeGiB
        self.defaultSizeGiB = defaultSizeGiB
        self.storageClass = storageClass
        self.nodeLocal = nodeLocal
        self.accessMode = accessMode
    }

    /// The storage class a new data disk of this SKU gets on `cluster`: only Kubernetes
    /// clusters have one. Kept with the volume, as a PVC's class cannot change.
    public func storageClass(on cluster: Cluster) -> String? {
        guard cluster.driver == .kubernetes else { return nil }
        return storageClass ?? cluster.kubernetes?.storageClass
    }

    /// Whether a new data disk of this SKU stays on the node it first ran on: always on
    /// engine clusters (a host's directory), on Kubernetes when the SKU says its storage
    /// class is node-local. Nil: it follows the instance.
    public func isHostLocal(on cluster: Cluster) -> Bool? {
        switch cluster.driver {
        case .engine: true
        case .kubernetes: nodeLocal == true ? true : nil
        case .simulated: nil
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? "data disk"
        regionID = try c.decodeIfPresent(String.self, forKey: .regionID) ?? ""
        type = try c.decodeIfPresent(String.self, forKey: .type) ?? "shared-filesystem"
        pricePerGBDay = try c.decodeIfPresent(Money.self, forKey: .pricePerGBDay) ?? Money("0.01")!
        minSizeGiB = try c.decodeIfPresent(Int.self, forKey: .minSizeGiB) ?? 1
        maxSizeGiB = try c.decodeIfPresent(Int.self, forKey: .maxSizeGiB) ?? 2048
        defaultSizeGiB = try c.decodeIfPresent(Int.self, forKey: .defaultSizeGiB) ?? 50
        storageClass = try c.decodeIfPresent(String.self, forKey: .storageClass)
        nodeLocal = try c.decodeIfPresent(Bool.self, forKey: .nodeLocal)
        accessMode = try c.decodeIfPresent(String.self, forKey: .accessMode)
    }
}
