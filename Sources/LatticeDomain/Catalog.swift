import Foundation

/// What an operator offers: regions, their clusters and GPU nodes, the SKUs sold on them
/// and the official images. Loaded once at start (built in, or from `--catalog FILE`).
public struct Catalog: Sendable, Codable, Equatable {
    public var regions: [Region]
    public var gpuSkus: [GPUSKU]
    public var diskSkus: [DiskSKU]
    public var images: [OfficialImage]
    /// Extra image references users may run, as glob patterns (`docker.io/library/*`).
    public var allowedImagePatterns: [String]

    public init(
        regions: [Region],
        gpuSkus: [GPUSKU],
        diskSkus: [DiskSKU],
        images: [OfficialImage],
        allowedImagePatterns: [String] = []
    ) {
        self.regions = regions
        self.gpuSkus = gpuSkus
        self.diskSkus = diskSkus
        self.images = images
        self.allowedImagePatterns = allowedImagePatterns
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        regions = try c.decode([Region].self, forKey: .regions)
        gpuSkus = try c.decode([GPUSKU].self, forKey: .gpuSkus)
        diskSkus = try c.decodeIfPresent([DiskSKU].self, forKey: .diskSkus) ?? []
        images = try c.decodeIfPresent([OfficialImage].self, forKey: .images) ?? []
        allowedImagePatterns = try c.decodeIfPresent([String].self, forKey: .allowedImagePatterns) ?? []
    }

    public var clusters: [Cluster] { regions.flatMap(\.clusters) }

    public func cluster(named name: String) -> Cluster? { clusters.first { $0.name == name } }
    public func region(ofCluster name: String) -> Region? { regions.first { $0.clusters.contains { $0.name == name } } }
    public func region(id: String) -> Region? { regions.first { $0.id == id } }
    public func gpuSku(id: String) -> GPUSKU? { gpuSkus.first { $0.id == id } }
    public func diskSku(id: String) -> DiskSKU? { diskSkus.first { $0.id == id } }

    /// Finds a region by id or by name; an empty reference means "the cluster decides".
    public func region(reference: String) -> Region? {
        regions.first { $0.id == reference || $0.name == reference }
    }

    /// Namespaces no tenant may take, because official images live under them
    /// (`<harbor>/<project>/...`): a tenant named after a project could otherwise snapshot
    /// over an official image. `library` (Docker Hub's) is always reserved.
    public var reservedNamespaces: Set<String> {
        var reserved: Set<String> = ["library"]
        for image in images {
            if let reference = try? ImageReference.parse(image.name), let project = reference.path.first {
                reserved.insert(project)
            }
        }
        return reserved
    }

    /// Whether a snapshot may be written to `reference`: never over an official image, nor
    /// over one that an operator's allow pattern admits for everybody.
    public func isSnapshotReferenceFree(_ reference: String) -> Bool {
        !images.contains { $0.name == reference }
            && !allowedImagePatterns.contains { GlobPattern.matches($0, reference) }
    }

    /// An IPv4 or IPv6 literal.
    public static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// Checks cross references, so a bad catalog fails at start and not at the first request.
    public func validate() throws {
        func fail(_ message: String) -> LatticeError { LatticeError(.badRequest, code: "InvalidCatalog", message) }
        guard !regions.isEmpty else { throw fail("catalog: at least one region is required") }
        for image in images {
            do {
                _ = try ImageReference.parse(image.name)
            } catch let error as LatticeError {
                throw fail("catalog: images: \(error.message)")
            }
        }
        var clusterNames = Set<String>(), nodeNames = Set<String>()
        for region in regions {
            for cluster in region.clusters {
                guard clusterNames.insert(cluster.name).inserted else {
                    throw fail("catalog: cluster '\(cluster.name)' is declared twice")
                }
                if cluster.driver == .engine {
                    guard !cluster.nodes.isEmpty else {
                        throw fail("catalog: engine cluster '\(cluster.name)' needs at least one node")
                    }
                    for node in cluster.nodes {
                        guard let endpoint = cluster.engineEndpoint(of: node) else {
                            throw fail(
                                "catalog: engine cluster '\(cluster.name)': node '\(node.name)' needs an engine "
                                    + "endpoint (engine: {url: unix:///var/run/docker.sock} or tcp://host:2376 "
                                    + "with ca, cert, key)"
                            )
                        }
                        do {
                            _ = try endpoint.address()
                        } catch let error as LatticeError {
                            throw fail("catalog: cluster '\(cluster.name)', node '\(node.name)': \(error.message)")
                        }
                    }
                    guard ["docker", "cdi", "none"].contains(cluster.gpuRequests ?? "docker") else {
                        throw fail("catalog: cluster '\(cluster.name)': gpuRequests must be docker, cdi or none")
                    }
                    guard (0...4_194_304).contains(cluster.pidsLimit ?? 0) else {
                        throw fail("catalog: cluster '\(cluster.name)': pidsLimit must be between 0 and 4194304")
                    }
                    if let address = cluster.publishAddress, !Self.isIPAddress(address) {
                        throw fail(
                            "catalog: cluster '\(cluster.name)': publishAddress must be an IP address, got '\(address)'"
                        )
                    }
                }
                if cluster.driver == .kubernetes {
                    guard cluster.nodes.isEmpty else {
                        throw fail(
                            "catalog: kubernetes cluster '\(cluster.name)': nodes come from the cluster; remove 'nodes'"
                        )
                    }
                    if let problem = cluster.kubernetes?.problem() {
                        throw fail("catalog: cluster '\(cluster.name)': \(problem)")
                    }
                }
                for node in cluster.nodes {
                    guard nodeNames.insert(node.name).inserted else {
                        throw fail("catalog: node '\(node.name)' is declared twice")
                    }
                    guard node.gpuCount >= 0 else { throw fail("catalog: node '\(node.name)' has a negative gpuCount") }
                }
            }
        }
        var skuIDs = Set<String>()
        for sku in gpuSkus {
            guard skuIDs.insert(sku.id).inserted else { throw fail("catalog: GPU SKU '\(sku.id)' is declared twice") }
            guard region(id: sku.regionID) != nil else {
                throw fail("catalog: GPU SKU '\(sku.id)' names unknown region '\(sku.regionID)'")
            }
            guard cluster(named: sku.clusterName) != nil else {
                throw fail("catalog: GPU SKU '\(sku.id)' names unknown cluster '\(sku.clusterName)'")
            }
            guard sku.gpuCount >= 1 else { throw fail("catalog: GPU SKU '\(sku.id)' needs gpuCount >= 1") }
            guard SellingType(rawValue: sku.sellingType) != nil else {
                throw fail("catalog: GPU SKU '\(sku.id)' has sellingType \(sku.sellingType); expected 1, 2, 3 or 4")
            }
        }
        var diskIDs = Set<String>()
        for disk in diskSkus {
            guard diskIDs.insert(disk.id).inserted else {
                throw fail("catalog: disk SKU '\(disk.id)' is declared twice")
            }
            if let storageClass = disk.storageClass, !KubernetesSettings.isDNSSubdomain(storageClass) {
                throw fail("catalog: disk SKU '\(disk.id)' has storageClass '\(storageClass)', not a valid name")
            }
            if let mode = disk.accessMode, !DiskSKU.accessModes.contains(mode) {
                throw fail(
                    "catalog: disk SKU '\(disk.id)' has accessMode '\(mode)'; expected ReadWriteOnce, ReadWriteMany"
                        + " or ReadWriteOncePod"
                )
            }
        }
    }
}

/// A region as `GET /regions` shows it; its clusters carry the nodes.
public struct Region: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var harborAddr: String
    public var howlerID: String
    public var createdAt: Date
    public var clusters: [Cluster]

    public init(id: String, name: String, harborAddr: String, howlerID: String, createdAt: Date, clusters: [Cluster]) {
        self.id = id
        self.name = name
        self.harborAddr = harborAddr
        self.howlerID = howlerID
        self.createdAt = createdAt
        self.clusters = clusters
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        name = try c.decode(String.self, forKey: .name)
        harborAddr = try c.decodeIfPresent(String.self, forKey: .harborAddr) ?? "images.lattice.local"
        howlerID = try c.decodeIfPresent(String.self, forKey: .howlerID) ?? ""
        createdAt = try c.decodeIfPresent(Date.self, forKey: .createdAt) ?? Date(timeIntervalSince1970: 1_721_016_023)
        clusters = try c.decode([Cluster].self, forKey: .clusters)
    }
}

/// Which backend runs a cluster's instances.
public enum DriverKind: String, Sendable, Codable, Equatable {
    case simulated, engine, kubernetes
}

/// A cluster: a set of nodes run by one compute driver.
public struct Cluster: Sendable, Codable, Equatable {
    public var name: String
    public var driver: DriverKind
    public var nodes: [Node]
    /// Simulated fleet timings, in seconds.
    public var startDelaySeconds: Double
    public var stopDelaySeconds: Double
    /// Engine clusters: the Docker Engine API socket (Docker or `podman system service`).
    public var socket: String?
    /// Engine clusters: how GPUs are requested: `docker` (DeviceRequests), `cdi` (Podman CDI names) or `none`.
    public var gpuRequests: String?
    /// Engine clusters: push committed snapshots to the region's `harborAddr`.
    public var pushSnapshots: Bool?
    /// Engine clusters: credentials for that registry, if it needs them.
    public var registryUsername: String?
    public var registryPassword: String?
    /// Engine clusters, obsolete: containers no longer publish ports on the host (the SSH
    /// and HTTP gateways reach them). Still read, and checked, so older catalogs load.
    public var publishAddress: String?
    /// Engine clusters: the most processes one container may run (default 4096; 0 = the
    /// engine's default).
    public var pidsLimit: Int?
    /// Engine clusters: an image with `nvidia-smi`; each host's GPUs are counted by running
    /// it there, with every GPU requested, at start and whenever the host comes back.
    public var gpuProbeImage: String?
    /// Kubernetes clusters: how to reach the API server and how instances map onto it
    /// (docs/kubernetes.md). Nil: the defaults.
    public var kubernetes: KubernetesSettings?

    public init(
        name: String,
        driver: DriverKind = .simulated,
        nodes: [Node],
        startDelaySeconds: Double = 2,
        stopDelaySeconds: Double = 2
    ) {
        self.name = name
        self.driver = driver
        self.nodes = nodes
        self.startDelaySeconds = startDelaySeconds
        self.stopDelaySeconds = stopDelaySeconds
    }

    /// Engine clusters: where a node's engine answers: its own `engine`, else (a cluster of
    /// one host) the cluster's `socket`.
    public func engineEndpoint(of node: Node) -> EngineEndpoint? {
        if let own = node.engine { return own }
        guard nodes.count == 1, let socket, !socket.isEmpty else { return nil }
        return EngineEndpoint(url: "unix://" + socket)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        driver = try c.decodeIfPresent(DriverKind.self, forKey: .driver) ?? .simulated
        nodes = try c.decodeIfPresent([Node].self, forKey: .nodes) ?? []
        startDelaySeconds = try c.decodeIfPresent(Double.self, forKey: .startDelaySeconds) ?? 2
        stopDelaySeconds = try c.decodeIfPresent(Double.self, forKey: .stopDelaySeconds) ?? 2
        socket = try c.decodeIfPresent(String.self, forKey: .socket)
        gpuRequests = try c.decodeIfPresent(String.self, forKey: .gpuRequests)
        pushSnapshots = try c.decodeIfPresent(Bool.self, forKey: .pushSnapshots)
        registryUsername = try c.decodeIfPresent(String.self, forKey: .registryUsername)
        registryPassword = try c.decodeIfPresent(String.self, forKey: .registryPassword)
        publishAddress = try c.decodeIfPresent(String.self, forKey: .publishAddress)
        pidsLimit = try c.decodeIfPresent(Int.self, forKey: .pidsLimit)
        gpuProbeImage = try c.decodeIfPresent(String.self, forKey: .gpuProbeImage)
        kubernetes = try c.decodeIfPresent(KubernetesSettings.self, forKey: .kubernetes)
    }
}

/// A Kubernetes cluster's settings in the catalog (`kubernetes:` under the cluster). Nodes
/// come from the cluster itself, not from the catalog.
public struct KubernetesSettings: Sendable, Codable, Equatable {
    /// A kubeconfig file; nil: in-cluster (the pod's service account).
    public var kubeconfig: String?
    /// The kubeconfig's context; nil: its `current-context`.
    public var context: String?
    /// The namespace instances' objects live in (default `lattice-instances`).
    public var namespace: String?
    /// The node resource that counts GPUs (default `nvidia.com/gpu`) and the node label
    /// that names their model (default `nvidia.com/gpu.product`).
    public var gpuResourceKey: String?
    public var gpuModelLabel: String?
    /// The data disks' storage class (default: the cluster's default class).
    public var storageClass: String?
    /// The Ingress class for `<uid>.<public-host>` (default: the cluster's default).
    public var ingressClass: String?
    /// A `kubernetes.io/dockerconfigjson` Secret in the namespace: instance pods pull with
    /// it (snapshots in a private project) and the snapshot Job pushes with it.
    public var registrySecret: String?
    /// Taint keys instance pods tolerate (any value and effect); nodes with another
    /// `NoSchedule`/`NoExecute` taint take no work. Default: the GPU resource key's.
    public var tolerations: [String]?
    /// The instance pods' RuntimeClass (`nvidia` where that is not the default, as on k3s).
    public var runtimeClass: String?
    /// The image of the snapshot Job (commits through the node's containerd and pushes).
    public var committerImage: String?
    /// The containerd socket on the nodes (default `/run/containerd/containerd.sock`).
    public var containerdSocket: String?
    /// The driver's pace towards the API server (defaults 5 and 10).
    public var queriesPerSecond: Double?
    public var burst: Int?
    /// Give each instance a NodePort Service to the image's own sshd (default false: SSH
    /// goes through Lattice's gateway, which needs none).
    public var sshNodePort: Bool?
    /// Namespaces whose pods may reach instance pods besides Lattice's own (an ingress
    /// controller's, say); the NetworkPolicy lets nothing else in.
    public var ingressFromNamespaces: [String]?
    /// Address ranges that may reach instance pods (Lattice running outside the cluster).
    public var ingressFromCIDRs: [String]?
    /// Where instance pods may connect, besides DNS (default: the internet, not private or
    /// link-local addresses).
    public var egressCIDRs: [String]?

    public init(kubeconfig: String? = nil, namespace: String? = nil) {
        self.kubeconfig = kubeconfig
        self.namespace = namespace
    }

    /// An IPv4 or IPv6 address range (`address/bits`).
    static func isCIDR(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bits = Int(parts[1]), Catalog.isIPAddress(String(parts[0])) else { return false }
        return (0...(parts[0].contains(":") ? 128 : 32)).contains(bits)
    }

    /// Why the settings cannot work, if they cannot.
    public func problem() -> String? {
        if let namespace, !Self.isDNSLabel(namespace) {
            return "kubernetes.namespace '\(namespace)' is not a valid namespace name"
        }
        if let registrySecret, !Self.isDNSSubdomain(registrySecret) {
            return "kubernetes.registrySecret '\(registrySecret)' is not a valid Secret name"
        }
        if let runtimeClass, !Self.isDNSSubdomain(runtimeClass) {
            return "kubernetes.runtimeClass '\(runtimeClass)' is not a valid RuntimeClass name"
        }
        if let bad = ((ingressFromCIDRs ?? []) + (egressCIDRs ?? [])).first(where: { !Self.isCIDR($0) }) {
            return "kubernetes: '\(bad)' is not an address range such as 10.0.0.0/8"
        }
        if let bad = ingressFromNamespaces?.first(where: { !Self.isDNSLabel($0) }) {
            return "kubernetes.ingressFromNamespaces: '\(bad)' is not a valid namespace name"
        }
        if let bad = tolerations?.first(where: { !Self.isTaintKey($0) }) {
            return "kubernetes.tolerations: '\(bad)' is not a taint key ([prefix/]name)"
        }
        if let queriesPerSecond, !(queriesPerSecond > 0 && queriesPerSecond <= 10_000) {
            return "kubernetes.queriesPerSecond must be between 0 and 10000"
        }
        if let burst, !(1...10_000).contains(burst) { return "kubernetes.burst must be between 1 and 10000" }
        return nil
    }

    /// A taint key: an optional DNS-subdomain prefix and '/', then a name of 1 to 63
    /// letters, digits, '-', '_' and '.', starting and ending alphanumeric.
    public static func isTaintKey(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let name = parts.last else { return false }
        if parts.count == 2, !isDNSSubdomain(String(parts[0])) { return false }
        guard (1...63).contains(name.count), let first = name.first, let last = name.last,
            first.isASCII && (first.isLetter || first.isNumber), last.isASCII && (last.isLetter || last.isNumber)
        else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// A DNS-1123 subdomain (an object's name): DNS labels joined by '.', up to 253 characters.
    public static func isDNSSubdomain(_ text: String) -> Bool {
        text.count <= 253
            && text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy {
                isDNSLabel(String($0))
            }
    }

    /// A DNS-1123 label: lower-case letters, digits and '-', 1 to 63, starting and ending alphanumeric.
    public static func isDNSLabel(_ text: String) -> Bool {
        guard (1...63).contains(text.count), let first = text.first, let last = text.last,
            first.isLetter || first.isNumber, last.isLetter || last.isNumber
        else { return false }
        return text.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
    }
}

/// A GPU server: how many GPUs of which model, and its CPU and memory.
public struct Node: Sendable, Codable, Equatable {
    public var name: String
    public var gpuModel: String
    public var gpuCount: Int
    public var cpuCores: Int
    public var memoryGiB: Int
    /// Engine clusters: where this host's Docker Engine API answers.
    public var engine: EngineEndpoint?

    public init(
        name: String,
        gpuModel: String,
        gpuCount: Int,
        cpuCores: Int,
        memoryGiB: Int,
        engine: EngineEndpoint? = nil
    ) {
        self.name = name
        self.gpuModel = gpuModel
        self.gpuCount = gpuCount
        self.cpuCores = cpuCores
        self.memoryGiB = memoryGiB
        self.engine = engine
    }
}

/// A Docker Engine API endpoint: `unix:///var/run/docker.sock`, or `tcp://host:2376` with
/// mutual TLS as Docker documents it (CA, client certificate and key, PEM files), or plain
/// TCP only when marked `insecure`.
public struct EngineEndpoint: Sendable, Codable, Equatable {
    public var url: String
    public var ca: String?
    public var cert: String?
    public var key: String?
    public var insecure: Bool?

    public init(url: String, ca: String? = nil, cert: String? = nil, key: String? = nil, insecure: Bool? = nil) {
        self.url = url
        self.ca = ca
        self.cert = cert
        self.key = key
        self.insecure = insecure
    }

    /// A name to check the server's certificate against (an IP address is checked by the
    /// certificate's IP SANs instead).
    public static func isHostName(_ host: String) -> Bool { !Catalog.isIPAddress(host) }

    public enum Address: Sendable, Equatable {
        case unix(path: String)
        case tcp(host: String, port: Int, tls: Bool)
    }

    /// The parsed address, or why it is wrong.
    public func address() throws -> Address {
        func fail(_ why: String) -> LatticeError {
            LatticeError(.badRequest, code: "InvalidCatalog", "engine endpoint '\(url)': \(why)")
        }
        if url.hasPrefix("unix://") {
            let path = String(url.dropFirst("unix://".count))
            guard path.hasPrefix("/") else { throw fail("a unix socket needs an absolute path") }
            return .unix(path: path)
        }
        guard url.hasPrefix("tcp://") else { throw fail("expected unix:///path or tcp://host:port") }
        let rest = String(url.dropFirst("tcp://".count))
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
            (1...65535).contains(port), colon > rest.startIndex
        else { throw fail("expected tcp://host:port") }
        let host = String(rest[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let tls = ca != nil || cert != nil || key != nil
        if tls {
            guard ca != nil, cert != nil, key != nil else { throw fail("mutual TLS needs ca, cert and key") }
        } else if insecure != true {
            throw fail(
                "plain TCP gives the host away to anyone on the network: give ca, cert and key, or insecure: true"
            )
        }
        return .tcp(host: host, port: port, tls: tls)
    }
}

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

/// An image every tenant may run.
public struct OfficialImage: Sendable, Codable, Equatable {
    /// The full reference, `<harborAddr>/<project>/<repository>:<tag>`.
    public var name: String
    public var sizeBytes: Int64

    public init(name: String, sizeBytes: Int64 = 0) {
        self.name = name
        self.sizeBytes = sizeBytes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        sizeBytes = try c.decodeIfPresent(Int64.self, forKey: .sizeBytes) ?? 0
    }
}

/// Matches `*` (any run of characters) and `?` (one character) glob patterns.
public enum GlobPattern {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                pi += 1; ti += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
