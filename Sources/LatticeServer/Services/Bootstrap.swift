import Foundation
import LatticeDomain
import LatticeStore

/// First start on an empty store: the admin namespace and its token (SPEC §7).
enum Bootstrap {
    struct Outcome: Sendable {
        /// The token in clear; only known on the start that created it.
        var token: String?
    }

    static func run(store: any Store, configuration: ServerConfiguration, clock: any WallClock) async throws -> Outcome
    {
        let secret: String
        if let given = configuration.bootstrapToken, !given.isEmpty {
            try validate(given)
            secret = given
        } else {
            secret = TokenSecrets.generate()
        }
        let now = clock.now()
        var rng = SystemRandomNumberGenerator()
        let created = try await store.bootstrap(
            admin: User(namespace: "admin", isAdmin: true, createdAt: now),
            token: TokenRecord(
                id: Identifiers.uuid(using: &rng),
                namespace: "admin",
                name: "bootstrap",
                secretHash: TokenSecrets.hash(secret),
                createdAt: now,
                expiresAt: now.addingTimeInterval(3650 * 86400)
            )
        )
        guard created else { return Outcome(token: nil) }
        Console.line("created admin namespace 'admin'; its token (shown once): \(secret)")
        return Outcome(token: secret)
    }

    /// A given token is taken as given (SPEC §8), but one that looks like a generated token
    /// must be one: the API refuses a `lat_` token with a wrong checksum on every request.
    static func validate(_ given: String) throws {
        guard given.count >= 16 else {
            throw LatticeError(
                .badRequest,
                code: "InvalidBootstrapToken",
                "LATTICE_BOOTSTRAP_TOKEN must be at least 16 characters"
            )
        }
        if given.hasPrefix(APITokenFormat.prefix), !APITokenFormat.isWellFormed(given) {
            throw LatticeError(
                .badRequest,
                code: "InvalidBootstrapToken",
                "LATTICE_BOOTSTRAP_TOKEN starts with '\(APITokenFormat.prefix)' but is not a well-formed Lattice token "
                    + "(its checksum is wrong); use a token printed by Lattice or one without that prefix"
            )
        }
    }

    /// Writes `bootstrap.json` (mode 0600) once the URL is known. On later starts the file,
    /// if still there, gets the new URL and keeps its token.
    static func writeFile(_ outcome: Outcome, url: String, dataDirectory: URL) throws {
        let file = dataDirectory.appendingPathComponent("bootstrap.json")
        var token = outcome.token
        if token == nil {
            guard let data = FileManager.default.contents(atPath: file.path),
                let existing = try? JSONDecoder().decode([String: String].self, from: data)
            else { return }
            token = existing["token"]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(["namespace": "admin", "token": token ?? "", "url": url])
        let temporary = dataDirectory.appendingPathComponent("bootstrap.json.tmp")
        _ = FileManager.default.createFile(
            atPath: temporary.path,
            contents: data,
            attributes: [.posixPermissions: 0o600]
        )
        // rename(2) replaces the file atomically: a reader sees the old or the new one, whole.
        guard rename(temporary.path, file.path) == 0 else {
            throw LatticeError(.internalError, code: "BootstrapFile", "cannot write \(file.path): errno \(errno)")
        }
    }
}
