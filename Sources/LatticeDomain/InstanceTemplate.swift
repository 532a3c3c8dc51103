import Foundation

/// A starting point for instances (SPEC §11): an image with its environment, ports, startup
/// script and disk size. A create that names one gets every field it leaves out from it.
/// Official templates come from the catalog; a namespace keeps its own; admins publish
/// public ones, seen by every namespace.
public struct InstanceTemplate: Sendable, Codable, Equatable {
    /// The template's id (`tpl-...` for a namespace's own; the catalog's id for an official one).
    public var id: String
    /// The namespace that made it; "" for the catalog's official templates.
    public var namespace: String
    /// Its name as listed.
    public var name: String
    /// The image its instances run.
    public var image: String
    /// Environment variables set in the workload.
    public var env: [String: String]
    /// Ports the workload serves, each reached through the HTTP gateway.
    public var ports: [PublishedPort]
    /// A script run once the workload starts ("" for none).
    public var startupScript: String
    /// The data disk's size; nil leaves the disk SKU's default.
    public var diskSizeGB: Int?
    /// What it is for, as listed.
    public var description: String
    /// Whether every namespace sees it (admins publish public templates).
    public var isPublic: Bool
    /// When it was made (nil for the catalog's official templates).
    public var createdAt: Date?

    /// A template of these fields.
    public init(
        id: String,
        namespace: String,
        name: String,
        image: String,
        env: [String: String] = [:],
        ports: [PublishedPort] = [],
        startupScript: String = "",
        diskSizeGB: Int? = nil,
        description: String = "",
        isPublic: Bool = false,
        createdAt: Date? = nil
    ) {
        self.id = id
        self.namespace = namespace
        self.name = name
        self.image = image
        self.env = env
        self.ports = ports
        self.startupScript = startupScript
        self.diskSizeGB = diskSizeGB
        self.description = description
        self.isPublic = isPublic
        self.createdAt = createdAt
    }

    /// The most templates one namespace keeps.
    public static let limitPerNamespace = 100

    /// Whether a namespace that keeps `count` templates may make another (the stores ask).
    public static func checkRoom(count: Int) throws {
        guard count < limitPerNamespace else {
            throw LatticeError(
                .conflict,
                code: "QuotaExceeded",
                "a namespace may keep at most \(limitPerNamespace) templates; delete one first"
            )
        }
    }

    /// Whether it is one of the catalog's (which nobody deletes through the API).
    public var isOfficial: Bool { namespace.isEmpty }

    /// A `POST /templates` body, checked for shape (the image is checked against the
    /// catalog by the caller).
    public init(fields body: JSONFields, id: String, namespace: String, createdAt: Date) throws {
        self.id = id
        self.namespace = namespace
        self.createdAt = createdAt
        name = try body.requiredString("name").trimmingCharacters(in: .whitespaces)
        guard name.count <= 128 else {
            throw LatticeError.invalidField("name", "must be 1 to 128 characters, got \(name.count)")
        }
        image = try body.requiredString("image").trimmingCharacters(in: .whitespaces)
        _ = try ImageReference.parse(image)
        if body.fields["secretEnv"].map({ $0 != .null }) == true {
            throw LatticeError.invalidField(
                "secretEnv",
                "a template holds no secrets (every namespace that uses it would see them); give secretEnv at create"
            )
        }
        let settings = try WorkloadSettings(fields: body)
        env = settings.env
        ports = settings.ports
        startupScript = settings.startupScript
        diskSizeGB = try body.integer("diskSizeGB")
        if let size = diskSizeGB, !(1...CreateInstanceRequest.maximumSizeGiB).contains(size) {
            throw LatticeError.invalidField(
                "diskSizeGB",
                "must be between 1 and \(CreateInstanceRequest.maximumSizeGiB), got \(size)"
            )
        }
        description = try body.string("description") ?? ""
        guard description.count <= 1024 else {
            throw LatticeError.invalidField("description", "must be at most 1024 characters")
        }
        isPublic = try body.boolean("public") ?? false
    }

    /// The create body with every field it leaves out taken from this template: `image`,
    /// `env`, `ports`, `startupScript`, `description` and the data disk's `Size` (a body
    /// without `VolumeMount` gets one at the default path).
    public func fill(_ body: JSONValue) -> JSONValue {
        guard case .object(var fields) = body else { return body }
        func missing(_ key: String) -> Bool {
            switch fields[key] {
            case nil, .null?: true
            case .string(let text)?: text.trimmingCharacters(in: .whitespaces).isEmpty
            default: false
            }
        }
        if missing("image") { fields["image"] = .string(image) }
        if missing("description"), !description.isEmpty { fields["description"] = .string(description) }
        if missing("startupScript"), !startupScript.isEmpty { fields["startupScript"] = .string(startupScript) }
        if fields["env"] == nil || fields["env"] == .null, !env.isEmpty {
            fields["env"] = .object(env.mapValues { .string($0) })
        }
        if fields["ports"] == nil || fields["ports"] == .null, !ports.isEmpty {
            fields["ports"] = .array(
                ports.map {
                    .object(["port": .number(Double($0.port)), "name": .string($0.name), "public": .bool($0.isPublic)])
                }
            )
        }
        if let size = diskSizeGB {
            switch fields["VolumeMount"] {
            case nil, .null?:
                fields["VolumeMount"] = .array([.object(["Size": .number(Double(size))])])
            case .array(var mounts)? where !mounts.isEmpty:
                if case .object(var mount) = mounts[0], Self.isAbsent(mount["Size"]) {
                    mount["Size"] = .number(Double(size))
                    mounts[0] = .object(mount)
                    fields["VolumeMount"] = .array(mounts)
                }
            case .object(var mount)? where Self.isAbsent(mount["Size"]):
                mount["Size"] = .number(Double(size))
                fields["VolumeMount"] = .object(mount)
            default:
                break
            }
        } else if fields["VolumeMount"] == nil || fields["VolumeMount"] == .null {
            fields["VolumeMount"] = .array([.object([:])])
        }
        return .object(fields)
    }

    static func isAbsent(_ value: JSONValue?) -> Bool {
        switch value {
        case nil, .null?: true
        case .string(let text)?: text.trimmingCharacters(in: .whitespaces).isEmpty
        default: false
        }
    }

    /// The catalog's official templates when it lists none: one per official image, named
    /// after its repository, with the environment those images are usually run with.
    public static func official(images: [OfficialImage]) -> [InstanceTemplate] {
        var seen: Set<String> = []
        return images.compactMap { image in
            let (repository, tag) = ImageReference.split(image.name)
            let base = repository.split(separator: "/").last.map(String.init) ?? repository
            var id = "official-" + base
            if seen.contains(id) { id += "-" + tag.filter { $0.isLetter || $0.isNumber || $0 == "." } }
            guard seen.insert(id).inserted else { return nil }
            let framework = ["tensorflow": "TensorFlow", "pytorch": "PyTorch"][base]
            return InstanceTemplate(
                id: id,
                namespace: "",
                name: "\(framework ?? base.capitalized) \(tag)",
                image: image.name,
                env: framework == nil ? [:] : ["PYTHONUNBUFFERED": "1"],
                ports: [],
                startupScript: "",
                diskSizeGB: nil,
                description: framework.map { "\($0) with JupyterLab and Tensorboard, CUDA and cuDNN" }
                    ?? "The base image: CUDA on \(tag)",
                isPublic: true
            )
        }
    }
}

/// A template as the API shows it.
public struct TemplateWire: Codable, Sendable, Equatable {
    /// A port as shown.
    public struct Port: Codable, Sendable, Equatable {
        /// The port the workload listens on.
        public var port: Int
        /// Its name ("" for none).
        public var name: String
        /// Whether it is reachable without the instance's token.
        public var `public`: Bool
    }
    /// The template's id.
    public var id: String
    /// Its name.
    public var name: String
    /// The image.
    public var image: String
    /// Environment variables.
    public var env: [String: String]
    /// Ports the workload serves.
    public var ports: [Port]
    /// The startup script.
    public var startupScript: String
    /// The data disk's size (nil: the disk SKU's default).
    public var diskSizeGB: Int?
    /// What it is for.
    public var description: String
    /// Whether every namespace sees it.
    public var `public`: Bool
    /// Whether it is one of the catalog's official templates.
    public var official: Bool

    /// The template as shown.
    public init(_ template: InstanceTemplate) {
        id = template.id
        name = template.name
        image = template.image
        env = template.env
        ports = template.ports.map { Port(port: $0.port, name: $0.name, public: $0.isPublic) }
        startupScript = template.startupScript
        diskSizeGB = template.diskSizeGB
        description = template.description
        `public` = template.isPublic
        official = template.isOfficial
    }

    enum CodingKeys: String, CodingKey {
        case id, name, image, env, ports, startupScript, diskSizeGB, description, `public`, official
    }

    /// Every field always present (`diskSizeGB: null` for the disk SKU's default).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(image, forKey: .image)
        try c.encode(env, forKey: .env)
        try c.encode(ports, forKey: .ports)
        try c.encode(startupScript, forKey: .startupScript)
        try c.encode(diskSizeGB, forKey: .diskSizeGB)
        try c.encode(description, forKey: .description)
        try c.encode(`public`, forKey: .public)
        try c.encode(official, forKey: .official)
    }
}
