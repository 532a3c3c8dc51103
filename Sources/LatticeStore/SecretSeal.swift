import Crypto
import Foundation
import LatticeDomain

/// Seals the secrets an instance's row holds (its SSH password and Jupyter token) with
/// AES-256-GCM, so that a copy of the database (a backup, a dump, a stolen disk) holds no
/// usable login. The store seals on every write and opens on every read: above the store,
/// an `Instance` always holds its secrets in the clear.
///
/// A sealed value is `sealed:v1:<key id>:<base64 nonce+ciphertext+tag>`. A value without
/// that prefix is from before sealing and reads as it is (and is sealed on the next write,
/// or at once by `sealClearSecrets`).
public struct SecretSeal: Sendable {
    /// The key's 32 bytes (`SymmetricKey` is not `Sendable`; one is made per use).
    private let keyBytes: Data
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }
    /// The first 8 bytes of the key's SHA-256, in hex: names the key without giving it away.
    public let keyID: String

    static let prefix = "sealed:v1:"
    static let header = "lattice secret seal key (aes-256-gcm, base64)"

    /// A key of 32 bytes.
    public init(key: Data) throws {
        guard key.count == 32 else { throw SealError.badKey("a seal key is 32 bytes; this one is \(key.count)") }
        keyBytes = key
        keyID = SHA256.hash(data: key).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// A key given as base64 (the form `LATTICE_SEAL_KEY` and the key file hold).
    public init(base64: String) throws {
        guard let data = Data(base64Encoded: base64.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw SealError.badKey("a seal key is 32 bytes in base64")
        }
        try self.init(key: data)
    }

    /// Reads the key file at `path`, or makes one there (mode 0600 from the start). Servers
    /// starting together on one data directory agree: the file appears whole or not at all
    /// (written beside it, then linked into place), and the one that loses the race reads
    /// the winner's key.
    public static func loadOrCreate(at path: URL) throws -> SecretSeal {
        if let text = try? String(contentsOf: path, encoding: .utf8) { return try parse(text, path: path) }
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let draft = path.path + ".\(UUID().uuidString).tmp"
        guard
            FileManager.default.createFile(
                atPath: draft,
                contents: Data("\(header)\n\(key.base64EncodedString())\n".utf8),
                attributes: [.posixPermissions: 0o600]
            )
        else { throw SealError.badKey("the seal key file \(path.path) cannot be written") }
        defer { unlink(draft) }
        if link(draft, path.path) != 0 {
            guard errno == EEXIST, let text = try? String(contentsOf: path, encoding: .utf8) else {
                throw SealError.badKey("the seal key file \(path.path) cannot be written")
            }
            return try parse(text, path: path)
        }
        return try SecretSeal(key: key)
    }

    private static func parse(_ text: String, path: URL) throws -> SecretSeal {
        let lines = text.split(separator: "\n")
        guard lines.count >= 2, lines[0] == header else {
            throw SealError.badKey("the seal key file \(path.path) is not one Lattice wrote")
        }
        return try SecretSeal(base64: String(lines[1]))
    }

    public static func isSealed(_ value: String) -> Bool { value.hasPrefix(prefix) }

    /// A SQL `LIKE` pattern that an instance row whose SSH password is sealed matches (its
    /// document is written with sorted keys): rows that do not match are the only ones
    /// `sealClearSecrets` needs to decode at start.
    public static let sealedRowPattern = "%\"sshPassword\":\"" + prefix + "%"

    public func seal(_ plain: String) throws -> String {
        guard !plain.isEmpty, !Self.isSealed(plain) else { return plain }
        guard let combined = try AES.GCM.seal(Data(plain.utf8), using: key).combined else {
            throw SealError.cannotOpen("AES-GCM gave no sealed box")
        }
        return Self.prefix + keyID + ":" + combined.base64EncodedString()
    }

    public func open(_ value: String) throws -> String {
        guard Self.isSealed(value) else { return value }
        let rest = value.dropFirst(Self.prefix.count)
        guard let colon = rest.firstIndex(of: ":") else { throw SealError.cannotOpen("a sealed value has no key id") }
        let id = String(rest[..<colon])
        guard id == keyID else {
            throw SealError.wrongKey(sealedWith: id, have: keyID)
        }
        guard let data = Data(base64Encoded: String(rest[rest.index(after: colon)...])),
            let plain = try? AES.GCM.open(AES.GCM.SealedBox(combined: data), using: key)
        else { throw SealError.cannotOpen("a sealed value does not open with key \(keyID)") }
        return String(decoding: plain, as: UTF8.self)
    }

    /// The instance as its row keeps it: its secrets sealed.
    public func sealing(_ instance: Instance) throws -> Instance {
        var sealed = instance
        sealed.access.sshPassword = try seal(instance.access.sshPassword)
        sealed.access.jupyterToken = try seal(instance.access.jupyterToken)
        if let secrets = instance.workload?.secretEnv, !secrets.isEmpty {
            sealed.workload?.secretEnv = try secrets.mapValues { try seal($0) }
        }
        return sealed
    }

    /// The instance as the rest of Lattice sees it: its secrets in the clear.
    public func opening(_ instance: Instance) throws -> Instance {
        var opened = instance
        opened.access.sshPassword = try open(instance.access.sshPassword)
        opened.access.jupyterToken = try open(instance.access.jupyterToken)
        if let secrets = instance.workload?.secretEnv, !secrets.isEmpty {
            opened.workload?.secretEnv = try secrets.mapValues { try open($0) }
        }
        return opened
    }

    /// Whether a row still holds a secret in the clear.
    public static func holdsClearSecrets(_ instance: Instance) -> Bool {
        ([instance.access.sshPassword, instance.access.jupyterToken]
            + (instance.workload?.secretEnv.values.map { $0 } ?? []))
            .contains { !$0.isEmpty && !isSealed($0) }
    }
}

public enum SealError: Error, CustomStringConvertible, Equatable {
    case badKey(String)
    case wrongKey(sealedWith: String, have: String)
    case cannotOpen(String)

    public var description: String {
        switch self {
        case .badKey(let why): return why
        case .wrongKey(let sealed, let have):
            return
                "the database's secrets are sealed with key \(sealed), and this server has key \(have): give every "
                + "replica the same key (--seal-key-file, or LATTICE_SEAL_KEY)"
        case .cannotOpen(let why): return why
        }
    }
}

/// How a store handles instance documents: sealed with a key, or (tests, `lattice db copy`)
/// as they are.
public struct InstanceDocuments: Sendable {
    let seal: SecretSeal?

    public init(seal: SecretSeal?) { self.seal = seal }

    public func encode(_ instance: Instance) throws -> String {
        try Documents.encode(try seal?.sealing(instance) ?? instance)
    }

    public func decode(_ text: String) throws -> Instance {
        let instance = try Documents.decode(Instance.self, text)
        return try seal?.opening(instance) ?? instance
    }

    /// Another secret the store keeps (a webhook's), sealed like an instance's.
    public func sealSecret(_ plain: String) throws -> String { try seal?.seal(plain) ?? plain }

    public func openSecret(_ value: String) throws -> String {
        guard let seal, SecretSeal.isSealed(value) else { return value }
        return try seal.open(value)
    }
}
