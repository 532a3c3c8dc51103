import Foundation
import LatticeDomain
import Yams

/// How to reach a Kubernetes API server: from inside a pod (the service account's token
/// and CA, `KUBERNETES_SERVICE_HOST`) or from a kubeconfig file (its `current-context` or
/// a named one; a bearer token or a client certificate and key; the CA as data or file;
/// `insecure-skip-tls-verify` only when the file says so).
public struct KubeConnection: Sendable, Equatable {
    /// The API server's URL (`https://host:port`).
    public var server: String
    /// The CA that signs the server's certificate; nil: the system's roots.
    public var certificateAuthorityPEM: Data?
    /// Only when the kubeconfig says so: no certificate check at all.
    public var insecureSkipTLSVerify: Bool
    /// A bearer token (service account, kubeconfig `token` or `tokenFile`).
    public var bearerToken: String?
    /// A client certificate and its key, for clusters that authenticate by certificate.
    public var clientCertificatePEM: Data?
    /// The client certificate's private key.
    public var clientKeyPEM: Data?
    /// The namespace the context names (in-cluster: the pod's own), if any.
    public var namespace: String?

    /// A connection as given; `namespace` is the service account's, when in the cluster.
    public init(
        server: String,
        certificateAuthorityPEM: Data? = nil,
        insecureSkipTLSVerify: Bool = false,
        bearerToken: String? = nil,
        clientCertificatePEM: Data? = nil,
        clientKeyPEM: Data? = nil,
        namespace: String? = nil
    ) {
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.bearerToken = bearerToken
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.namespace = namespace
    }

    /// A kubeconfig or service account that cannot be used, saying why.
    public struct Failure: Error, Equatable, CustomStringConvertible {
        /// What is wrong, naming the file and field.
        public var description: String
        /// A failure saying `description`.
        public init(description: String) { self.description = description }
        init(_ description: String) { self.description = description }
    }

    /// The service account's files, as a pod sees them.
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// In-cluster: `KUBERNETES_SERVICE_HOST`/`_PORT` and the service account's `token`,
    /// `ca.crt` and `namespace` under `directory`.
    public static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        directory: String = serviceAccountDirectory
    ) throws -> KubeConnection {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty else {
            throw Failure("not in a cluster: KUBERNETES_SERVICE_HOST is not set")
        }
        let port = environment["KUBERNETES_SERVICE_PORT"] ?? "443"
        let server = "https://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        func read(_ name: String) throws -> Data {
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(name)") else {
                throw Failure("cannot read the service account's \(name) in \(directory)")
            }
            return data
        }
        let token = String(decoding: try read("token"), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let namespace = (try? read("namespace")).map {
            String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return KubeConnection(
            server: server,
            certificateAuthorityPEM: try read("ca.crt"),
            bearerToken: token,
            namespace: namespace
        )
    }

    /// A kubeconfig file's context (`context`, else its `current-context`). Relative file
    /// paths in it are relative to the file, as kubectl reads them.
    public static func kubeconfig(path: String, context: String? = nil) throws -> KubeConnection {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure("cannot read the kubeconfig \(path)")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        return try kubeconfig(text: String(decoding: data, as: UTF8.self), context: context) { file in
            let url = file.hasPrefix("/") ? URL(fileURLWithPath: file) : base.appendingPathComponent(file)
            guard let contents = FileManager.default.contents(atPath: url.path) else {
                throw Failure("cannot read \(url.path), named by the kubeconfig")
            }
            return contents
        }
    }

    /// The same from the file's text; `readFile` reads the files it names.
    public static func kubeconfig(
        text: String,
        context wanted: String? = nil,
        readFile: (String) throws -> Data
    ) throws -> KubeConnection {
        guard let root = try? Yams.load(yaml: text) as? [String: Any] else {
            throw Failure("the kubeconfig is not a YAML mapping")
        }
        func named(_ list: String, _ name: String, _ key: String) throws -> [String: Any] {
            let entries = root[list] as? [[String: Any]] ?? []
            guard let entry = entries.first(where: { $0["name"] as? String == name }),
                let body = entry[key] as? [String: Any]
            else { throw Failure("the kubeconfig has no \(key) named '\(name)'") }
            return body
        }
        guard let contextName = wanted ?? (root["current-context"] as? String), !contextName.isEmpty else {
            throw Failure("the kubeconfig has no current-context; name one")
        }
        let context = try named("contexts", contextName, "context")
        guard let clusterName = context["cluster"] as? String else {
            throw Failure("context '\(contextName)' names no cluster")
        }
        let cluster = try named("clusters", clusterName, "cluster")
        guard let server = cluster["server"] as? String, server.hasPrefix("https://") || server.hasPrefix("http://")
        else { throw Failure("cluster '\(clusterName)' has no https:// server") }
        func pem(_ dataKey: String, _ fileKey: String, in body: [String: Any]) throws -> Data? {
            if let encoded = body[dataKey] as? String {
                guard let data = Data(base64Encoded: encoded.filter { !$0.isWhitespace }) else {
                    throw Failure("\(dataKey) is not base64")
                }
                return data
            }
            if let file = body[fileKey] as? String { return try readFile(file) }
            return nil
        }
        var connection = KubeConnection(
            server: server,
            certificateAuthorityPEM: try pem("certificate-authority-data", "certificate-authority", in: cluster),
            insecureSkipTLSVerify: cluster["insecure-skip-tls-verify"] as? Bool ?? false,
            namespace: context["namespace"] as? String
        )
        if let userName = context["user"] as? String {
            let user = try named("users", userName, "user")
            if let token = user["token"] as? String {
                connection.bearerToken = token
            } else if let file = user["tokenFile"] as? String {
                connection.bearerToken = String(decoding: try readFile(file), as: UTF8.self)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            connection.clientCertificatePEM = try pem("client-certificate-data", "client-certificate", in: user)
            connection.clientKeyPEM = try pem("client-key-data", "client-key", in: user)
            if (connection.clientCertificatePEM == nil) != (connection.clientKeyPEM == nil) {
                throw Failure("user '\(userName)' has a client certificate without its key, or a key without one")
            }
        }
        return connection
    }
}
