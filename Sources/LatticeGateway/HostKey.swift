import Crypto
import Foundation
import NIOSSH

/// The SSH gateway's ed25519 host key: made on first start, kept in the data directory
/// (mode 0600), never changed, so clients' `known_hosts` stay valid across restarts.
public struct HostKey: Sendable {
    /// The key's 32-byte seed (what the file keeps).
    let seed: Data

    init(seed: Data) { self.seed = seed }

    var privateKey: Curve25519.Signing.PrivateKey {
        // The seed was checked when read or made: it is always 32 bytes.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: seed)
    }

    public var sshKey: NIOSSHPrivateKey { NIOSSHPrivateKey(ed25519Key: privateKey) }

    /// The public key's wire encoding (RFC 8709).
    public var publicBlob: Data {
        func string(_ bytes: Data) -> Data {
            var length = UInt32(bytes.count).bigEndian
            return Data(bytes: &length, count: 4) + bytes
        }
        return string(Data("ssh-ed25519".utf8)) + string(privateKey.publicKey.rawRepresentation)
    }

    /// `ssh-ed25519 AAAA…`, for `known_hosts`.
    public var openSSHPublicKey: String { "ssh-ed25519 " + publicBlob.base64EncodedString() }

    /// `SHA256:…`, as `ssh` shows it on first connection.
    public var fingerprint: String {
        "SHA256:" + Data(SHA256.hash(data: publicBlob)).base64EncodedString().trimmingCharacters(in: ["="])
    }

    static let header = "lattice ssh gateway host key (ed25519, base64 seed)"

    /// The host key one instance's own SSH port presents: derived from this (master) key and
    /// the instance's uid (HKDF-SHA256), so it is the same on every replica and after every
    /// restart, and different for every instance. A port that passes to another instance
    /// then shows another key, and `known_hosts` warns before a saved login goes in.
    public func derived(forInstance uid: String) -> HostKey {
        let seed = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: seed),
            salt: Data("lattice ssh instance host key v1".utf8),
            info: Data(uid.utf8),
            outputByteCount: 32
        )
        return HostKey(seed: seed.withUnsafeBytes { Data($0) })
    }

    /// Reads the key at `path`, or makes one there (and `<path>.pub` beside it).
    /// A new key kept nowhere (a test's server).
    public static func generated() -> HostKey {
        HostKey(seed: Curve25519.Signing.PrivateKey().rawRepresentation)
    }

    public static func loadOrCreate(at path: URL) throws -> HostKey {
        if let text = try? String(contentsOf: path, encoding: .utf8) {
            let lines = text.split(separator: "\n")
            guard lines.count >= 2, lines[0] == header, let seed = Data(base64Encoded: String(lines[1])),
                (try? Curve25519.Signing.PrivateKey(rawRepresentation: seed)) != nil
            else { throw HostKeyError(path: path.path) }
            return HostKey(seed: seed)
        }
        let key = HostKey(seed: Curve25519.Signing.PrivateKey().rawRepresentation)
        let contents = "\(header)\n\(key.seed.base64EncodedString())\n"
        // Created with mode 0600 from the start: the seed is never readable by others.
        guard
            FileManager.default.createFile(
                atPath: path.path,
                contents: Data(contents.utf8),
                attributes: [.posixPermissions: 0o600]
            )
        else { throw HostKeyError(path: path.path) }
        try Data((key.openSSHPublicKey + " lattice-gateway\n").utf8).write(
            to: path.appendingPathExtension("pub")
        )
        return key
    }
}

public struct HostKeyError: Error, CustomStringConvertible {
    public var path: String
    public var description: String { "the SSH gateway's host key at \(path) cannot be read or written" }
}
