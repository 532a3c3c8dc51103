import Foundation

/// What an operator offers: regions, their clusters and GPU nodes, the SKUs sold on them
/// and the official images. Loaded once at start (built in, or from `--catalog FILE`).
public struct Catalog: Sendable, Codable, Equatable {
    /// The regions, each with its clusters and their nodes.
    public var regions: [Region]
    /// The GPU SKUs sold, each on one cluster.
    public var gpuSkus: [GPUSKU]
    /// The data disk SKUs sold.
    public var diskSkus: [DiskSKU]
    /// The official images every tenant may run.
    public var images: [OfficialImage]
    /// Extra image references users may run, as glob patterns (`docker.io/library/*`).
    public var allowedImagePatterns: [String]

    /// A catalog of these parts.
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

    /// Decodes a catalog file; the disk SKUs, images and allowed patterns may be left out.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        regions = try c.decode([Region].self, forKey: .regions)
        gpuSkus = try c.decode([GPUSKU].self, forKey: .gpuSkus)
        diskSkus = try c.decodeIfPresent([DiskSKU].self, forKey: .diskSkus) ?? []
        images = try c.decodeIfPresent([OfficialImage].self, forKey: .images) ?? []
        allowedImagePatterns = try c.decodeIfPresent([String].self, forKey: .allowedImagePatterns) ?? []
    }

    /// Every cluster of every region.
    public var clusters: [Cluster] { regions.flatMap(\.clusters) }

    /// The cluster called `name`, if any.
    public func cluster(named name: String) -> Cluster? { clusters.first { $0.name == name } }
    /// The region `name` belongs to, if any.
    public func region(ofCluster name: String) -> Region? { regions.first { $0.clusters.contains { $0.name == name } } }
    /// The region with this id, if any.
    public func region(id: String) -> Region? { regions.first { $0.id == id } }
    /// The GPU SKU with this id, if any.
    public func gpuSku(id: String) -> GPUSKU? { gpuSkus.first { $0.id == id } }
    /// The disk SKU with this id, if any.
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
    /// The region's id (`RegionID` in the seed's answers).
    public var id: String
    /// Its name as listed.
    public var name: String
    /// The registry host its images are named under.
    public var harborAddr: String
    /// The seed's `HowlerID`, shown as given.
    public var howlerID: String
    /// When it was created, as listed.
    public var createdAt: Date
    /// Its clusters.
    public var clusters: [Cluster]

    /// A region of these clusters.
    public init(id: String, name: String, harborAddr: String, howlerID: String, createdAt: Date, clusters: [Cluster]) {
        self.id = id
        self.name = name
        self.harborAddr = harborAddr
        self.howlerID = howlerID
        self.createdAt = createdAt
        self.clusters = clusters
    }

    /// Decodes a catalog's region; all but the id, name and clusters have defaults.
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

/// An image every tenant may run.
public struct OfficialImage: Sendable, Codable, Equatable {
    /// The full reference, `<harborAddr>/<project>/<repository>:<tag>`.
    public var name: String
    /// Its size as listed (0 when unknown).
    public var sizeBytes: Int64

    /// An official image.
    public init(name: String, sizeBytes: Int64 = 0) {
        self.name = name
        self.sizeBytes = sizeBytes
    }

    /// Decodes a catalog's image; the size may be left out.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        sizeBytes = try c.decodeIfPresent(Int64.self, forKey: .sizeBytes) ?? 0
    }
}

/// Matches `*` (any run of characters) and `?` (one character) glob patterns.
public enum GlobPattern {
    /// Whether `text` matches `pattern` as a whole.
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
