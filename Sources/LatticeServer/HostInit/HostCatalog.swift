import Crypto
import Foundation
import LatticeDomain

/// What `lattice host init` found on one GPU server, and the catalog it writes from that
/// (pure: the same facts always give the same text, so a second run changes nothing).
public struct HostFacts: Sendable, Equatable {
    public struct GPU: Sendable, Equatable {
        /// As `nvidia-smi` names it (`NVIDIA GeForce RTX 4090`).
        public var name: String
        public var memoryMiB: Int

        public init(name: String, memoryMiB: Int) {
            self.name = name
            self.memoryMiB = memoryMiB
        }
    }

    public var hostname: String
    public var gpus: [GPU]
    public var cpuCores: Int
    public var memoryGiB: Int
    /// The engine's endpoint (`unix:///var/run/docker.sock`).
    public var engineURL: String
    /// `docker` (the NVIDIA container runtime) or `cdi` (Podman with a CDI spec).
    public var gpuRequests: String
    /// Price per GPU and hour by model key (`RTX-4090`); a model without one gets a
    /// placeholder, marked as such in the file.
    public var prices: [String: Money]
    public var region: String

    public init(
        hostname: String,
        gpus: [GPU],
        cpuCores: Int,
        memoryGiB: Int,
        engineURL: String,
        gpuRequests: String,
        prices: [String: Money] = [:],
        region: String = "local"
    ) {
        self.hostname = hostname
        self.gpus = gpus
        self.cpuCores = cpuCores
        self.memoryGiB = memoryGiB
        self.engineURL = engineURL
        self.gpuRequests = gpuRequests
        self.prices = prices
        self.region = region
    }

    /// `nvidia-smi --query-gpu=name,memory.total --format=csv` (header line, then
    /// `NVIDIA GeForce RTX 4090, 24564 MiB` per GPU).
    public static func parseGPUs(csv: String) throws -> [GPU] {
        var gpus: [GPU] = []
        for line in csv.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) })
        where !line.isEmpty && !line.lowercased().hasPrefix("name") {
            let parts = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count >= 2, !parts[0].isEmpty,
                let mib = Int(parts[1].split(separator: " ").first.map(String.init) ?? "")
            else {
                throw LatticeError(
                    .badRequest,
                    code: "BadRequest",
                    "nvidia-smi printed a line Lattice cannot read: \(line)"
                )
            }
            gpus.append(GPU(name: parts[0], memoryMiB: mib))
        }
        return gpus
    }

    /// The model key a catalog uses for an `nvidia-smi` name: vendor words dropped, spaces
    /// as dashes (`NVIDIA GeForce RTX 4090` → `RTX-4090`, `NVIDIA H100 80GB HBM3` →
    /// `H100-80GB-HBM3`).
    public static func modelKey(_ name: String) -> String {
        let words = name.split(separator: " ").filter { !["NVIDIA", "GeForce", "Tesla"].contains($0) }
        let key = words.joined(separator: "-").filter { $0.isLetter || $0.isNumber || $0 == "-" }
        return key.isEmpty ? "GPU" : key
    }

    /// The placeholder price of a model no `--price` names.
    public static let placeholderPrice = Money(units: 10_000)

    /// The GPUs grouped by model, in the order `nvidia-smi` listed them.
    var models: [(key: String, count: Int, memoryGiB: Int)] {
        var order: [String] = []
        var counts: [String: (Int, Int)] = [:]
        for gpu in gpus {
            let key = Self.modelKey(gpu.name)
            if counts[key] == nil { order.append(key) }
            let (count, memory) = counts[key] ?? (0, 0)
            counts[key] = (count + 1, max(memory, Int((Double(gpu.memoryMiB) / 1024).rounded())))
        }
        return order.map { ($0, counts[$0]!.0, counts[$0]!.1) }
    }

    /// A stable region id for this host (a UUID made from its name and region).
    var regionID: String {
        var bytes = Array(SHA256.hash(data: Data("lattice-region:\(region):\(hostname)".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = Array(bytes.map { String(format: "%02x", $0) }.joined())
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(hex[$0]) }.joined(separator: "-")
    }

    /// The catalog: one region, an engine cluster whose one node is this host, a SKU per
    /// GPU model for 1, 2, 4 and 8 GPUs (as many as the host has), a disk SKU. CPU and
    /// memory are shared out per GPU.
    public func catalogYAML() -> String {
        let node = Self.yamlName(hostname)
        let gpuCount = max(1, gpus.count)
        var lines = [
            "# Written by `lattice host init` for \(hostname); edit freely (docs/catalog.md), then",
            "# `systemctl restart lattice`. Running `lattice host init` again rewrites it only if what",
            "# it finds changed (or with --force).",
            "regions:",
            "  - id: \(regionID)",
            "    name: \(Self.yamlName(region))",
            "    harborAddr: \"\"",
            "    howlerID: \"\"",
            "    createdAt: 2026-01-01T00:00:00Z",
            "    clusters:",
            "      - name: \(node)",
            "        driver: engine",
            "        gpuRequests: \(gpuRequests)",
            "        nodes:",
        ]
        if let model = models.first {
            lines.append(
                "          - {name: \(node), gpuModel: \(model.key), gpuCount: \(model.count), cpuCores: \(cpuCores),"
                    + " memoryGiB: \(memoryGiB),"
            )
            lines.append("             engine: {url: \"\(engineURL)\"}}")
        }
        lines.append("")
        lines.append("gpuSkus:")
        // One node has one model: a host with several models gets SKUs for the first, and
        // `lattice host init` says so.
        for model in models.prefix(1) {
            let price = prices[model.key]
            for count in [1, 2, 4, 8] where count <= model.count {
                let perGPU = price ?? Self.placeholderPrice
                if price == nil {
                    lines.append(
                        "  # PLACEHOLDER PRICE: set it here or with"
                            + " `lattice host init --price \(model.key)=<per GPU-hour>`"
                    )
                }
                lines += [
                    "  - id: \"\(model.key.lowercased())-\(count)\"",
                    "    name: \(model.key)",
                    "    regionID: \(regionID)",
                    "    clusterName: \(node)",
                    "    gpuModel: \(model.key)",
                    "    gpuCount: \(count)",
                    "    gpuMemoryGiB: \(model.memoryGiB)",
                    "    cpuCores: \(max(1, cpuCores * count / gpuCount))",
                    "    memoryGiB: \(max(1, memoryGiB * count / gpuCount))",
                    "    systemStorageGiB: 30",
                    "    dataStorageGiB: 50",
                    "    sellingType: 1",
                    "    price: \"\(Money(units: perGPU.units * Int64(count)))\"",
                ]
            }
        }
        lines += [
            "",
            "diskSkus:",
            "  - id: \"1\"",
            "    name: shared-filesystem",
            "    regionID: \(regionID)",
            "    type: shared-filesystem",
            "    pricePerGBDay: \"0.01\"",
            "    minSizeGiB: 1",
            "    maxSizeGiB: 2048",
            "    defaultSizeGiB: 50",
            "",
            "# Images tenants may run: the engine must have them (or be able to pull them).",
            "images: []",
            "allowedImagePatterns:",
            "  - \"*\"",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// A YAML-safe name (host names are already; anything else is quoted).
    static func yamlName(_ text: String) -> String {
        text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" } && !text.isEmpty
            ? text : "\"" + text.replacingOccurrences(of: "\"", with: "") + "\""
    }
}
