import Foundation

/// What a wire rendering needs besides the record: how the operator configured names,
/// times and hosts.
public struct WireContext: Sendable {
    public var annotationDomain: String
    public var time: TimeFormatter
    public var publicHost: String
    /// How long a Stopped instance keeps its data.
    public var retention: TimeInterval
    /// The port in Jupyter and Tensorboard URLs (`http://<uid>.<public-host>:<port>/jupyter`);
    /// nil when the HTTP gateway is reached on port 80 (a front proxy, an Ingress).
    public var httpGatewayPort: Int?
    /// Set when the operator shows the SSH gateway's shared form: `ssh -p<port> <instance>@<host>`.
    public var sshSharedPort: Int?
    /// `https` when the gateway is reached over TLS (its own certificate, or a front proxy's).
    public var gatewayScheme: String

    public init(
        annotationDomain: String = "lattice.local",
        time: TimeFormatter = TimeFormatter(),
        publicHost: String = "localhost",
        retention: TimeInterval = 15 * 86400,
        httpGatewayPort: Int? = nil,
        sshSharedPort: Int? = nil,
        gatewayScheme: String = "http"
    ) {
        self.gatewayScheme = gatewayScheme
        self.annotationDomain = annotationDomain
        self.time = time
        self.publicHost = publicHost
        self.retention = retention
        self.httpGatewayPort = httpGatewayPort
        self.sshSharedPort = sshSharedPort
    }
}

/// The seed's list shape: `{"hasNextPage", "nodes", "totalCount"}`.
public struct Page<Node: Codable & Sendable>: Codable, Sendable {
    public var hasNextPage: Bool
    public var nodes: [Node]
    public var totalCount: Int

    public init(hasNextPage: Bool, nodes: [Node], totalCount: Int) {
        self.hasNextPage = hasNextPage
        self.nodes = nodes
        self.totalCount = totalCount
    }
}

/// `page` and `pageSize` (SPEC §3): 1-based, default 1 and 20, size clamped to 100. `page`
/// is at most `maximumPage`, so `offset` can never overflow.
public struct PageRequest: Sendable, Equatable {
    public static let maximumPage = 10_000_000

    public var page: Int
    public var pageSize: Int

    public init(page: Int = 1, pageSize: Int = 20) {
        self.page = page
        self.pageSize = pageSize
    }

    public init(page: String?, pageSize: String?) throws {
        self.page = try Self.read(page, "page") ?? 1
        // Any page size past 100 is 100, however many digits it has (the schema sets no maximum).
        self.pageSize = min(try Self.read(pageSize, "pageSize", saturating: true) ?? 20, 100)
        guard self.page <= Self.maximumPage else {
            throw LatticeError.invalidField("page", "must be at most \(Self.maximumPage), got \(self.page)")
        }
    }

    static func read(_ text: String?, _ field: String, saturating: Bool = false) throws -> Int? {
        guard let text, !text.isEmpty else { return nil }
        guard let value = Int(text) else {
            let digits = text.drop(while: { $0 == "+" || $0 == "-" })
            if !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) {
                if saturating, !text.hasPrefix("-") { return Int.max }
                throw LatticeError.invalidField(field, "is out of range, got \(text.prefix(40))")
            }
            throw LatticeError.invalidField(field, "must be a whole number, got \"\(text.prefix(40))\"")
        }
        guard value >= 1 else { throw LatticeError.invalidField(field, "must be at least 1, got \(value)") }
        return value
    }

    /// Rows to skip; saturates instead of trapping for pages built in code.
    public var offset: Int {
        let (product, overflow) = (max(page, 1) - 1).multipliedReportingOverflow(by: max(pageSize, 0))
        return overflow ? Int.max : product
    }
}

/// `GET /regions` entries.
public struct RegionWire: Codable, Sendable, Equatable {
    public var id: String
    public var region: String
    public var clusterName: String
    public var harborAddr: String
    public var howlerID: String
    public var createdAt: String
    public var updatedAt: String

    public init(_ region: Region, cluster: Cluster, context: WireContext) {
        id = region.id
        self.region = region.name
        clusterName = cluster.name
        harborAddr = region.harborAddr
        howlerID = region.howlerID
        createdAt = context.time.format(region.createdAt)
        updatedAt = context.time.format(region.createdAt)
    }
}

/// `GET /skus/computings` entries, spelled exactly as the seed spells them.
public struct GPUSKUWire: Codable, Sendable, Equatable {
    public var name: String
    public var regionID: String
    public var cpuArch: String
    public var cpuSeries: String
    public var cpucores: Int
    public var memoryCount: Int
    public var cpuVendor: String
    public var gpuSeries: String
    public var gpuProduct: String
    public var gpuResourceKey: String
    public var gpuCounts: Int
    public var gpuMemory: Int
    public var systemstorage: Int
    public var datastorage: Int
    public var skusID: String
    public var regionName: String
    public var clusterName: String
    public var sellingType: String
    public var ratio: Double
    public var discountID: String
    public var discountStartTime: String
    public var discountEndTime: String
    public var price: Double
    public var remainGPUCount: Int
    /// Lattice's addition: the price that applies right now, as exact decimal text.
    public var effectivePrice: String

    public init(_ sku: GPUSKU, regionName: String, remainGPUCount: Int, now: Date, context: WireContext) {
        name = sku.name
        regionID = sku.regionID
        cpuArch = sku.cpuArch
        cpuSeries = sku.cpuSeries
        cpucores = sku.cpuCores
        memoryCount = sku.memoryGiB
        cpuVendor = sku.cpuVendor
        gpuSeries = sku.gpuModel
        gpuProduct = sku.gpuModel
        gpuResourceKey = sku.gpuResourceKey
        gpuCounts = sku.gpuCount
        gpuMemory = sku.gpuMemoryGiB
        systemstorage = sku.systemStorageGiB
        datastorage = sku.dataStorageGiB
        skusID = sku.id
        self.regionName = regionName
        clusterName = sku.clusterName
        sellingType = String(sku.sellingType)
        ratio = sku.discount?.ratio.jsonNumber ?? 1
        discountID = sku.discount?.id ?? ""
        discountStartTime = context.time.format(sku.discount?.start)
        discountEndTime = context.time.format(sku.discount?.end)
        price = sku.price.jsonNumber
        self.remainGPUCount = remainGPUCount
        effectivePrice = Pricing.effectivePrice(of: sku, at: now).description
    }
}

/// `GET /skus/disks` entries.
public struct DiskSKUWire: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var regionID: String
    public var type: String
    public var pricePerGBDay: String
    public var minSize: Int
    public var maxSize: Int
    public var defaultSize: Int

    public init(_ sku: DiskSKU) {
        id = sku.id
        name = sku.name
        regionID = sku.regionID
        type = sku.type
        pricePerGBDay = sku.pricePerGBDay.description
        minSize = sku.minSizeGiB
        maxSize = sku.maxSizeGiB
        defaultSize = sku.defaultSizeGiB
    }
}

/// `GET /images` entries (SPEC §8).
public struct ImageWire: Codable, Sendable, Equatable {
    public var name: String
    public var repository: String
    public var tag: String
    public var kind: String
    public var status: String
    public var sizeBytes: Int64
    public var createdAt: String

    public init(official: OfficialImage, createdAt: Date, context: WireContext) {
        name = official.name
        (repository, tag) = ImageReference.split(official.name)
        kind = "official"
        status = "Ready"
        sizeBytes = official.sizeBytes
        self.createdAt = context.time.format(createdAt)
    }

    public init(snapshot: SnapshotImage, context: WireContext) {
        name = snapshot.reference
        (repository, tag) = ImageReference.split(snapshot.reference)
        kind = "snapshot"
        status = snapshot.status.rawValue
        sizeBytes = snapshot.sizeBytes
        createdAt = context.time.format(snapshot.createdAt)
    }
}

/// A token as listed (never with its secret).
public struct TokenWire: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var createdAt: String
    public var expiresAt: String
    public var lastUsedAt: String
    /// Only set in the answer to create and regenerate.
    public var token: String?

    public init(
        id: String,
        name: String,
        createdAt: String,
        expiresAt: String,
        lastUsedAt: String,
        token: String? = nil
    ) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
        self.token = token
    }
}

/// `{"code", "message"}` (SPEC §4).
public struct ErrorWire: Codable, Sendable, Equatable {
    public var code: String
    public var message: String
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}
