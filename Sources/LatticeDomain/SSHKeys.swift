import Foundation

/// An SSH public key in OpenSSH's one-line form (`ssh-ed25519 AAAA… comment`), checked
/// enough that what is stored is a key the gateway can compare: the algorithm is one of
/// ed25519, ECDSA (P-256, P-384, P-521) or RSA (2048 bits or more), and the base64 blob is
/// that algorithm's wire encoding (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709).
public struct SSHPublicKey: Sendable, Equatable {
    /// The key types accepted, by their OpenSSH names.
    public enum Algorithm: String, Sendable, CaseIterable {
        case ed25519 = "ssh-ed25519"
        case ecdsaP256 = "ecdsa-sha2-nistp256"
        case ecdsaP384 = "ecdsa-sha2-nistp384"
        case ecdsaP521 = "ecdsa-sha2-nistp521"
        case rsa = "ssh-rsa"
    }

    /// The key's type.
    public var algorithm: Algorithm
    /// The key's wire encoding (what the fingerprint hashes and the gateway compares).
    public var blob: Data
    /// What followed the key on its line ("" if nothing).
    public var comment: String

    /// The canonical line, without the comment: what is stored and shown.
    public var openSSH: String { "\(algorithm.rawValue) \(blob.base64EncodedString())" }

    /// Reads and checks one OpenSSH line; the refusal says what is wrong with it.
    public init(openSSH line: String) throws {
        let fields = line.trimmingCharacters(in: .whitespacesAndNewlines).split(
            separator: " ",
            maxSplits: 2,
            omittingEmptySubsequences: true
        )
        guard fields.count >= 2 else {
            throw LatticeError.invalidField(
                "publicKey",
                "must be one line in OpenSSH form: '<type> <base64> [comment]'"
            )
        }
        guard let algorithm = Algorithm(rawValue: String(fields[0])) else {
            let known = Algorithm.allCases.map(\.rawValue).joined(separator: ", ")
            throw LatticeError.invalidField("publicKey", "key type '\(fields[0].prefix(40))' is not one of \(known)")
        }
        guard let blob = Data(base64Encoded: String(fields[1])) else {
            throw LatticeError.invalidField("publicKey", "the key's second field is not base64")
        }
        try Self.check(blob, algorithm)
        self.algorithm = algorithm
        self.blob = blob
        comment = fields.count > 2 ? String(fields[2]) : ""
    }

    /// The blob must be the algorithm's own encoding, with nothing after it.
    static func check(_ blob: Data, _ algorithm: Algorithm) throws {
        var reader = WireReader(blob)
        func refuse(_ why: String) -> LatticeError { .invalidField("publicKey", why) }
        guard let name = reader.string(), name == Data(algorithm.rawValue.utf8) else {
            throw refuse("the key's encoded type does not match '\(algorithm.rawValue)'")
        }
        switch algorithm {
        case .ed25519:
            guard reader.string()?.count == 32 else { throw refuse("an ed25519 key is 32 bytes") }
        case .ecdsaP256, .ecdsaP384, .ecdsaP521:
            let curve = algorithm.rawValue.replacingOccurrences(of: "ecdsa-sha2-", with: "")
            guard reader.string() == Data(curve.utf8) else { throw refuse("the ECDSA key's curve is not \(curve)") }
            guard let point = reader.string(), point.first == 4 else {
                throw refuse("the ECDSA key's point is not uncompressed")
            }
        case .rsa:
            guard reader.string() != nil, let modulus = reader.string() else {
                throw refuse("an RSA key needs an exponent and a modulus")
            }
            let bits = (modulus.drop { $0 == 0 }.count) * 8
            guard bits >= 2048 else { throw refuse("RSA keys shorter than 2048 bits are refused (got \(bits))") }
        }
        guard reader.isAtEnd else { throw refuse("the key has bytes after its end") }
    }

    /// Reads SSH wire `string`s (a 32-bit big-endian length, then that many bytes).
    struct WireReader {
        var data: Data
        var offset: Int

        init(_ data: Data) {
            self.data = data
            offset = data.startIndex
        }

        var isAtEnd: Bool { offset == data.endIndex }

        mutating func string() -> Data? {
            guard data.endIndex - offset >= 4 else { return nil }
            let length = data[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            guard length <= data.endIndex - offset - 4 else { return nil }
            defer { offset += 4 + length }
            return data[(offset + 4)..<(offset + 4 + length)]
        }
    }
}

/// A public key a namespace registered: the SSH gateway lets it into the namespace's
/// instances.
public struct SSHKeyRecord: Sendable, Equatable, Codable {
    /// The key's id.
    public var id: String
    /// The namespace that registered it.
    public var namespace: String
    /// Its name (the line's comment when none was given).
    public var name: String
    /// The canonical OpenSSH line (type and base64, no comment).
    public var publicKey: String
    /// `SHA256:<base64 without padding>` of the key's blob, as `ssh-keygen -l` prints it.
    public var fingerprint: String
    /// When it was registered.
    public var createdAt: Date

    /// A key as registered.
    public init(id: String, namespace: String, name: String, publicKey: String, fingerprint: String, createdAt: Date) {
        self.id = id
        self.namespace = namespace
        self.name = name
        self.publicKey = publicKey
        self.fingerprint = fingerprint
        self.createdAt = createdAt
    }

    /// The keys one namespace may register.
    public static let limitPerNamespace = 100
}

/// `POST /ssh-keys`.
public struct CreateSSHKeyRequest: Sendable, Equatable {
    /// The name given, else the line's comment, else the algorithm's name.
    public var name: String
    /// The key, checked.
    public var key: SSHPublicKey

    /// Reads and checks a body (`publicKey`, optional `name`); every refusal names its field.
    public init(json: JSONValue) throws {
        let body = try JSONFields(json)
        let text = try body.requiredString("publicKey")
        guard text.utf8.count <= 16384 else {
            throw LatticeError.invalidField("publicKey", "must be at most 16384 bytes")
        }
        key = try SSHPublicKey(openSSH: text)
        let given = try body.string("name") ?? key.comment
        name = given.isEmpty ? key.algorithm.rawValue : given
        guard (1...64).contains(name.count), !TextRules.isBlank(name), !TextRules.hasControlCharacters(name) else {
            throw LatticeError.invalidField(
                "name",
                "must be 1 to 64 characters, not all spaces, without control characters"
            )
        }
    }
}

/// A key as listed.
public struct SSHKeyWire: Codable, Sendable, Equatable {
    /// The key's id.
    public var id: String
    /// Its name.
    public var name: String
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    public var fingerprint: String
    /// The canonical OpenSSH line.
    public var publicKey: String
    /// When it was registered (RFC 3339).
    public var createdAt: String

    /// A key as listed.
    public init(id: String, name: String, fingerprint: String, publicKey: String, createdAt: String) {
        self.id = id
        self.name = name
        self.fingerprint = fingerprint
        self.publicKey = publicKey
        self.createdAt = createdAt
    }
}

/// What decides whether a namespace may register another key (the stores ask).
public enum SSHKeyRules {
    /// Refuses (409 `QuotaExceeded`) a key past the namespace's limit, given the keys it has.
    public static func checkRoom(count: Int) throws {
        guard count < SSHKeyRecord.limitPerNamespace else {
            throw LatticeError(
                .conflict,
                code: "QuotaExceeded",
                "a namespace may register at most \(SSHKeyRecord.limitPerNamespace) SSH keys; delete one first"
            )
        }
    }

    /// The refusal (409 `Conflict`) of a key the namespace already registered.
    public static func duplicate(_ fingerprint: String) -> LatticeError {
        LatticeError(.conflict, code: "Conflict", "an SSH key with fingerprint \(fingerprint) is already registered")
    }
}
