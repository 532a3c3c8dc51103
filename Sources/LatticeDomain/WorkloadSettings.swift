import Foundation

/// What runs in an instance beyond its image (SPEC §11): environment, secret environment,
/// a startup script and the HTTP ports the gateway serves. Chosen at create (or filled in
/// from a template) and kept for every start.
public struct WorkloadSettings: Sendable, Codable, Equatable {
    /// Shown back in the instance as `env`.
    public var env: [String: String]
    /// Never shown back (only the names, `secretEnvNames`); sealed at rest like the
    /// instance's other secrets.
    public var secretEnv: [String: String]
    /// Run as root at every start, after the image's own start; "" for none.
    public var startupScript: String
    public var ports: [PublishedPort]

    public init(
        env: [String: String] = [:],
        secretEnv: [String: String] = [:],
        startupScript: String = "",
        ports: [PublishedPort] = []
    ) {
        self.env = env
        self.secretEnv = secretEnv
        self.startupScript = startupScript
        self.ports = ports
    }

    public var isEmpty: Bool { env.isEmpty && secretEnv.isEmpty && startupScript.isEmpty && ports.isEmpty }

    /// The most variables one of `env` or `secretEnv` may hold, and their size in all
    /// (names and values, in UTF-8 bytes).
    public static let maximumVariables = 64
    public static let maximumEnvironmentBytes = 32 * 1024
    public static let maximumScriptBytes = 64 * 1024
    public static let maximumPorts = 10

    /// Names Lattice itself gives the workload: a tenant cannot override them.
    public static func isReservedName(_ name: String) -> Bool {
        name.hasPrefix("LATTICE_") || name == "JUPYTER_TOKEN"
    }

    /// Whether `name` is a shell variable name: `[A-Za-z_][A-Za-z0-9_]*`.
    public static func isVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_" else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" }
    }
}

/// An HTTP port of the workload, served by the HTTP gateway at `<uid>-<port>.<public-host>`.
public struct PublishedPort: Sendable, Codable, Equatable {
    public var port: Int
    public var name: String
    /// Reached without the instance's token.
    public var isPublic: Bool

    public init(port: Int, name: String = "", isPublic: Bool = false) {
        self.port = port
        self.name = name
        self.isPublic = isPublic
    }

    enum CodingKeys: String, CodingKey {
        case port, name
        case isPublic = "public"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        port = try container.decode(Int.self, forKey: .port)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
        isPublic = try container.decodeIfPresent(Bool.self, forKey: .isPublic) ?? false
    }

    /// Ports Lattice serves itself: SSH. Jupyter (8888) and Tensorboard (6006) have their
    /// own paths, but a workload may publish them too.
    public static let reserved: Set<Int> = [22]
}

/// Which of the applications Lattice starts are up in a Running workload.
public struct WorkloadApps: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable, Equatable {
        case running, starting, absent
    }
    public var jupyterlab: State
    public var tensorboard: State

    public init(jupyterlab: State, tensorboard: State) {
        self.jupyterlab = jupyterlab
        self.tensorboard = tensorboard
    }

    public static let absent = WorkloadApps(jupyterlab: .absent, tensorboard: .absent)
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

// MARK: Reading them from a request

extension WorkloadSettings {
    /// The §11 fields of a create body (or a template's): each checked, every error naming
    /// its field.
    public init(fields body: JSONFields) throws {
        let env = try Self.variables(body, "env")
        let secretEnv = try Self.variables(body, "secretEnv")
        self.env = env
        self.secretEnv = secretEnv
        if let both = env.keys.filter({ secretEnv[$0] != nil }).sorted().first {
            throw LatticeError.invalidField(body.name("secretEnv"), "'\(both)' is in env as well; give it once")
        }
        let script: String
        switch body.fields["startupScript"] {
        case nil, .null?: script = ""
        case .string(let text)?: script = text
        case let other?:
            throw LatticeError.invalidField(body.name("startupScript"), "must be a string, got \(other.typeName)")
        }
        guard script.utf8.count <= Self.maximumScriptBytes else {
            throw LatticeError.invalidField(
                body.name("startupScript"),
                "must be at most \(Self.maximumScriptBytes / 1024) KiB, got \(script.utf8.count) bytes"
            )
        }
        guard !script.contains("\u{0}") else {
            throw LatticeError.invalidField(body.name("startupScript"), "must not contain NUL characters")
        }
        startupScript = script
        ports = try Self.ports(body)
    }

    static func variables(_ body: JSONFields, _ key: String) throws -> [String: String] {
        guard let object = try body.object(key) else { return [:] }
        guard object.fields.count <= maximumVariables else {
            throw LatticeError.invalidField(
                body.name(key),
                "must hold at most \(maximumVariables) variables, got \(object.fields.count)"
            )
        }
        var result: [String: String] = [:]
        var bytes = 0
        for name in object.fields.keys.sorted() {
            guard isVariableName(name) else {
                throw LatticeError.invalidField(
                    object.name(name),
                    "is not a variable name: use letters, digits and _, not starting with a digit"
                )
            }
            guard !isReservedName(name) else {
                throw LatticeError.invalidField(
                    object.name(name),
                    "is set by Lattice itself (JUPYTER_TOKEN and LATTICE_* are reserved)"
                )
            }
            guard case .string(let value) = object.fields[name] ?? .null else {
                throw LatticeError.invalidField(
                    object.name(name),
                    "must be a string, got \((object.fields[name] ?? .null).typeName)"
                )
            }
            guard !value.contains("\u{0}") else {
                throw LatticeError.invalidField(object.name(name), "must not contain NUL characters")
            }
            bytes += name.utf8.count + value.utf8.count
            result[name] = value
        }
        guard bytes <= maximumEnvironmentBytes else {
            throw LatticeError.invalidField(
                body.name(key),
                "must be at most \(maximumEnvironmentBytes / 1024) KiB in all (names and values), got \(bytes) bytes"
            )
        }
        return result
    }

    static func ports(_ body: JSONFields) throws -> [PublishedPort] {
        guard let value = body.fields["ports"], value != .null else { return [] }
        guard case .array(let items) = value else {
            throw LatticeError.invalidField(body.name("ports"), "must be an array of {\"port\", \"name\"}")
        }
        guard items.count <= maximumPorts else {
            throw LatticeError.invalidField(
                body.name("ports"),
                "must hold at most \(maximumPorts) ports, got \(items.count)"
            )
        }
        var result: [PublishedPort] = []
        for (index, item) in items.enumerated() {
            let entry = try JSONFields(item, path: "\(body.name("ports"))[\(index)]")
            guard let port = try entry.integer("port") else { throw LatticeError.missingField(entry.name("port")) }
            guard (1...65535).contains(port) else {
                throw LatticeError.invalidField(entry.name("port"), "must be between 1 and 65535, got \(port)")
            }
            guard !PublishedPort.reserved.contains(port) else {
                throw LatticeError.invalidField(
                    entry.name("port"),
                    "22 is the instance's SSH, reached through the SSH gateway"
                )
            }
            guard !result.contains(where: { $0.port == port }) else {
                throw LatticeError.invalidField(entry.name("port"), "\(port) is listed twice")
            }
            let name = try entry.string("name") ?? ""
            guard name.count <= 64, name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
                throw LatticeError.invalidField(entry.name("name"), "must be at most 64 printable characters")
            }
            result.append(PublishedPort(port: port, name: name, isPublic: try entry.boolean("public") ?? false))
        }
        return result
    }
}
