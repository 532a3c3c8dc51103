import Foundation

/// Which backend runs a cluster's instances.
public enum DriverKind: String, Sendable, Codable, Equatable {
    case simulated, engine, kubernetes
}

/// A cluster: a set of nodes run by one compute driver.
public struct Cluster: Sendable, Codable, Equatable {
    /// The cluster's name (`{cluster}` in instance paths).
    public var name: String
    /// The backend that runs its instances.
    public var driver: DriverKind
    /// Its GPU nodes (a Kubernetes cluster's come from its API server instead).
    public var nodes: [Node]
    /// Simulated fleet timings, in seconds.
    public var startDelaySeconds: Double
    /// How long a simulated stop takes, in seconds.
    public var stopDelaySeconds: Double
    /// Engine clusters: the Docker Engine API socket (Docker or `podman system service`).
    public var socket: String?
    /// Engine clusters: how GPUs are requested: `docker` (DeviceRequests), `cdi` (Podman CDI names) or `none`.
    public var gpuRequests: String?
    /// Engine clusters: push committed snapshots to the region's `harborAddr`.
    public var pushSnapshots: Bool?
    /// Engine clusters: credentials for that registry, if it needs them.
    public var registryUsername: String?
    /// The registry password, with `registryUsername`.
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

    /// A cluster of `nodes` run by `driver`, with the simulated fleet's timings.
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

    /// Decodes a catalog's cluster; all but the name has a default (a simulated cluster, no nodes).
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
    /// The node label that names the GPU model (see above).
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
    /// Requests allowed at once above that pace.
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

    /// Settings with a kubeconfig and a namespace, the rest default.
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
    /// The node's name (the Kubernetes node's, or the engine host's in the catalog).
    public var name: String
    /// Its GPU model, matched by a SKU's `gpuModel`.
    public var gpuModel: String
    /// Its GPUs.
    public var gpuCount: Int
    /// Its CPU cores.
    public var cpuCores: Int
    /// Its memory, in GiB.
    public var memoryGiB: Int
    /// Engine clusters: where this host's Docker Engine API answers.
    public var engine: EngineEndpoint?

    /// A node of these resources, reached at `engine` on engine clusters.
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
    /// `unix:///path` or `tcp://host:port`.
    public var url: String
    /// The CA certificate that signed the engine's (a PEM file), for TLS.
    public var ca: String?
    /// The client certificate Lattice presents (a PEM file), for TLS.
    public var cert: String?
    /// The client certificate's private key (a PEM file), for TLS.
    public var key: String?
    /// Plain TCP without TLS, when true (for tests and trusted networks only).
    public var insecure: Bool?

    /// An endpoint at `url`, with TLS files when given.
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

    /// Where to connect: a Unix socket, or TCP with or without TLS.
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
