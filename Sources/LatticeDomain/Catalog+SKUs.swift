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
    /// The discount's id, as the SKU's `discount` shows it.
    public var id: String
    /// The share of the price paid while it runs (0.8: 20 % off).
    public var ratio: Ratio
    /// The first moment it applies.
    public var start: Date
    /// The last moment it applies.
    public var end: Date

    /// A discount of `ratio` from `start` to `end`.
    public init(id: String, ratio: Ratio, start: Date, end: Date) {
        self.id = id
        self.ratio = ratio
        self.start = start
        self.end = end
    }
}

/// A GPU SKU: a machine shape sold per hour (or per prepaid term).
public struct GPUSKU: Sendable, Codable, Equatable {
    /// The SKU's id (`GpuSkuID` of a create).
    public var id: String
    /// Its name as the catalog lists it (the GPU's marketing name).
    public var name: String
    /// The region it is sold in.
    public var regionID: String
    /// The cluster its instances run on.
    public var clusterName: String
    /// The GPU model its instances are placed on (`Node.gpuModel`; the name, if not given).
    public var gpuModel: String
    /// The resource a Kubernetes pod asks for (`nvidia.com/gpu` by default).
    public var gpuResourceKey: String
    /// GPUs per instance.
    public var gpuCount: Int
    /// Memory per GPU, in GiB.
    public var gpuMemoryGiB: Int
    /// The CPU architecture shown (`x86-64`).
    public var cpuArch: String
    /// The CPU series shown.
    public var cpuSeries: String
    /// The CPU vendor shown.
    public var cpuVendor: String
    /// CPU cores per instance.
    public var cpuCores: Int
    /// Memory per instance, in GiB.
    public var memoryGiB: Int
    /// The system disk's size, in GiB.
    public var systemStorageGiB: Int
    /// The data disk size included, in GiB.
    public var dataStorageGiB: Int
    /// How it is sold, as the seed numbers it (`SellingType`).
    public var sellingType: Int
    /// List price per hour for pay-as-you-go, per term unit (day, week, month) for prepaid.
    public var price: Money
    /// The discount, if any (applied only between its dates).
    public var discount: Discount?

    /// A SKU as the built-in catalog and tests write one.
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

    /// Decodes a catalog's SKU; everything but the id, name, region, cluster, CPU, memory and price has a default.
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

    /// `sellingType` as a `SellingType` (pay-as-you-go when unknown).
    public var selling: SellingType { SellingType(rawValue: sellingType) ?? .payAsYouGo }
}

/// A data disk SKU.
public struct DiskSKU: Sendable, Codable, Equatable {
    /// The disk SKU's id (`Cost.DiskSKUID` of a create).
    public var id: String
    /// Its name as listed.
    public var name: String
    /// The region it is sold in.
    public var regionID: String
    /// The disk type a create may name (`VolumeMount[0].Type`).
    public var type: String
    /// Price per GB per day.
    public var pricePerGBDay: Money
    /// The smallest size sold, in GB.
    public var minSizeGiB: Int
    /// The largest size sold, in GB.
    public var maxSizeGiB: Int
    /// The size when a create names none, in GB.
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

    /// A disk SKU as the built-in catalog and tests write one.
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

    /// Decodes a catalog's disk SKU; everything but the id has a default.
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
