import ArgumentParser
import Foundation
import LatticeClient

/// `~/.config/lattice/config.json` (mode 0600): named profiles of URL, namespace and token.
struct ConfigFile: Codable, Equatable {
    struct Profile: Codable, Equatable {
        var url: String
        var namespace: String
        var token: String
    }
    var current: String
    var profiles: [String: Profile]

    /// `$LATTICE_CONFIG`, else `$XDG_CONFIG_HOME/lattice/config.json`, else
    /// `$HOME/.config/lattice/config.json` (the account's home only when `HOME` is unset).
    static var path: URL {
        let env = ProcessInfo.processInfo.environment
        func given(_ name: String) -> URL? { env[name].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) } }
        if let explicit = given("LATTICE_CONFIG") { return explicit }
        let base =
            given("XDG_CONFIG_HOME")
            ?? (given("HOME") ?? FileManager.default.homeDirectoryForCurrentUser).appendingPathComponent(".config")
        return base.appendingPathComponent("lattice/config.json")
    }

    static func load() -> ConfigFile {
        guard let data = FileManager.default.contents(atPath: path.path),
            let file = try? JSONDecoder().decode(ConfigFile.self, from: data)
        else {
            return ConfigFile(current: "default", profiles: [:])
        }
        return file
    }

    func save() throws {
        let directory = Self.path.deletingLastPathComponent()
        try FileManager.default.createDirectory(
            at: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let temporary = directory.appendingPathComponent(".config.json.tmp")
        guard Self.writePrivately(try encoder.encode(self), to: temporary.path),
            rename(temporary.path, Self.path.path) == 0
        else {
            throw UsageError("cannot write \(Self.path.path)")
        }
    }

    /// Writes a new file that is mode 0600 from its first byte (the token is in it).
    static func writePrivately(_ data: Data, to path: String) -> Bool {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                guard written > 0 else { return false }
                offset += written
            }
            return true
        }
    }
}

/// Options every client verb takes.
struct ClientOptions: ParsableArgumentsWithClient {
    @Option(name: .long, help: "Profile of ~/.config/lattice/config.json to use.") var profile: String?
    @Option(
        name: .long,
        help: "Act in this namespace (default: the profile's; an admin's token may name any)."
    ) var namespace: String?

    /// The client for the chosen profile, with `LATTICE_URL`, `LATTICE_NAMESPACE` and
    /// `LATTICE_TOKEN` taking precedence (and `--namespace` over them all).
    func client() throws -> LatticeClient {
        let env = ProcessInfo.processInfo.environment
        let file = ConfigFile.load()
        let name = profile ?? env["LATTICE_PROFILE"] ?? file.current
        let saved = file.profiles[name]
        if let profile, saved == nil, env["LATTICE_URL"] == nil {
            throw UsageError(
                "no profile '\(profile)' in \(ConfigFile.path.path); run 'lattice login --profile \(profile)'"
            )
        }
        guard let url = env["LATTICE_URL"] ?? saved?.url, let token = env["LATTICE_TOKEN"] ?? saved?.token else {
            throw UsageError(
                "not logged in: run 'lattice login --url URL --token TOKEN', or set LATTICE_URL and LATTICE_TOKEN"
            )
        }
        guard let base = URL(string: url), base.scheme == "http" || base.scheme == "https" else {
            throw UsageError("'\(url)' is not an http(s) URL")
        }
        return LatticeClient(
            baseURL: base,
            namespace: namespace ?? env["LATTICE_NAMESPACE"] ?? saved?.namespace,
            token: token
        )
    }
}

/// Marker so option groups read clearly where they are used.
protocol ParsableArgumentsWithClient: ParsableArguments {}
