import Foundation
import LatticeDomain

/// What `lattice host init` asks an engine before it writes a catalog naming it: does it
/// answer, and is it Docker or Podman.
public enum EngineProbe {
    public struct Answer: Sendable, Equatable {
        /// `Docker` or `Podman`, from `GET /version`.
        public var product: String
        public var version: String
    }

    /// The engine's product and version, or a `DriverError` saying why it does not answer.
    public static func probe(_ endpoint: EngineEndpoint) async throws -> Answer {
        let api = try EngineAPI(endpoint: endpoint)
        let ping = try await api.call("GET", "/_ping", timeout: .seconds(5))
        try ping.expect(200, "GET /_ping")
        let answer = try await api.call("GET", "/version", timeout: .seconds(5))
        try answer.expect(200, "GET /version")
        struct Version: Decodable {
            struct Component: Decodable { var Name: String }
            struct Platform: Decodable { var Name: String }
            var Version: String?
            var Platform: Platform?
            var Components: [Component]?
        }
        let version = try answer.json(Version.self)
        let names = [version.Platform?.Name ?? ""] + (version.Components ?? []).map(\.Name)
        let podman = names.contains { $0.localizedCaseInsensitiveContains("podman") }
        return Answer(product: podman ? "Podman" : "Docker", version: version.Version ?? "")
    }
}
