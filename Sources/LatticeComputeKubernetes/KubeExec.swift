import Foundation
import HTTPTypes
import LatticeCompute
import Logging
import NIOCore
import NIOSSL
import WSClient

/// A process in a pod through the `pods/exec` subresource over WebSocket (the
/// `v5.channel.k8s.io` protocol, `v4` accepted): every message starts with its channel
/// (0 stdin, 1 stdout, 2 stderr, 3 the exit status, 4 terminal size; in v5, 255 closes
/// the channel named by the next byte, so the process sees the end of its input).
enum KubeExec {
    static let loginShell = "if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l"

    /// The command line the pod runs: the client's variables, then the shell.
    static func argv(_ request: ExecRequest) -> [String] {
        var environment = request.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        if request.terminal != nil { environment.append("TERM=\(request.terminalType)") }
        return ["env"] + environment + ["/bin/sh", "-c", request.command ?? loginShell]
    }

    static func query(_ request: ExecRequest) -> [(String, String)] {
        let tty = request.terminal != nil
        return [
            ("container", "main"), ("stdin", "true"), ("stdout", "true"), ("stderr", tty ? "false" : "true"),
            ("tty", tty ? "true" : "false"),
        ] + argv(request).map { ("command", $0) }
    }

    static func isIPAddress(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, bare, &v4) == 1 || inet_pton(AF_INET6, bare, &v6) == 1
    }

    static func frame(_ channel: UInt8, _ payload: Data) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(channel)
        buffer.writeBytes(payload)
        return buffer
    }

    static func resize(_ size: TerminalSize) -> ByteBuffer {
        frame(4, Data(#"{"Width":\#(size.columns),"Height":\#(size.rows)}"#.utf8))
    }

    /// The exit status in a channel-3 message: `Success`, or `NonZeroExitCode` with the
    /// code as a cause; any other failure (no such executable) is 126 with its message.
    static func exitStatus(_ message: Data) -> (code: Int32, message: String?) {
        guard let status = (try? JSONSerialization.jsonObject(with: message)) as? [String: Any] else { return (1, nil) }
        if status["status"] as? String == "Success" { return (0, nil) }
        let causes = (status["details"] as? [String: Any])?["causes"] as? [[String: Any]] ?? []
        if let cause = causes.first(where: { $0["reason"] as? String == "ExitCode" }),
            let code = (cause["message"] as? String).flatMap(Int32.init)
        {
            return (code, nil)
        }
        return (126, status["message"] as? String)
    }

    /// Runs `request` in `pod` until it ends; returns its exit status.
    static func run(
        api: KubeAPI,
        namespace: String,
        pod: String,
        _ request: ExecRequest,
        input: AsyncStream<ExecInput>,
        output: @escaping @Sendable (ExecOutput) async -> Void
    ) async throws -> Int32 {
        var url =
            api.connection.server.hasSuffix("/") ? String(api.connection.server.dropLast()) : api.connection.server
        if url.hasPrefix("https://") { url = "wss://" + url.dropFirst("https://".count) }
        if url.hasPrefix("http://") { url = "ws://" + url.dropFirst("http://".count) }
        url += "/api/v1/namespaces/\(namespace)/pods/\(pod)/exec?" + KubeAPI.encode(query(request))
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20)
        if let token = api.connection.bearerToken {
            configuration.additionalHeaders[.authorization] = "Bearer \(token)"
        }
        if let name = HTTPField.Name("Sec-WebSocket-Protocol") {
            configuration.additionalHeaders[name] = "v5.channel.k8s.io, v4.channel.k8s.io"
        }
        var tls = url.hasPrefix("wss://") ? try KubeAPI.tls(api.connection) : nil
        // A server named by IP address (`https://10.96.0.1`, the usual in-cluster and
        // kubeadm form) cannot be named in SNI, which the WebSocket client always sends:
        // it gets `kubernetes`, a name every API server's certificate has, and the chain is
        // checked against the cluster's own CA (the kubeconfig's, or the service account's)
        // without the name, as that CA signs nothing but the cluster's certificates.
        if tls != nil, let host = URLComponents(string: api.connection.server)?.host,
            KubeExec.isIPAddress(host), api.connection.certificateAuthorityPEM != nil
        {
            configuration.sniHostname = "kubernetes"
            if tls?.certificateVerification == .fullVerification {
                tls?.certificateVerification = .noHostnameVerification
            }
        }
        let status = ExitBox()
        try await api.waitTurn()
        let closed = try await WebSocketClient.connect(
            url: url,
            configuration: configuration,
            tlsConfiguration: tls,
            logger: Logger(label: "lattice.kubernetes.exec")
        ) { inbound, outbound, _ in
            if let size = request.terminal { try await outbound.write(.binary(resize(size))) }
            let writer = Task {
                for await event in input {
                    switch event {
                    case .data(let data): try await outbound.write(.binary(frame(0, data)))
                    case .endOfInput: try await outbound.write(.binary(frame(255, Data([0]))))
                    case .resize(let size): try await outbound.write(.binary(resize(size)))
                    }
                }
            }
            defer { writer.cancel() }
            for try await message in inbound.messages(maxSize: 16 << 20) {
                guard case .binary(var buffer) = message, let channel = buffer.readInteger(as: UInt8.self) else {
                    continue
                }
                let payload = Data(buffer.readableBytesView)
                switch channel {
                case 1: await output(.stdout(payload))
                case 2: await output(.stderr(payload))
                case 3:
                    let (code, why) = exitStatus(payload)
                    if let why { await output(.stderr(Data((why + "\n").utf8))) }
                    status.set(code)
                default: break
                }
            }
        }
        if let code = status.code { return code }
        let why = closed.map { "closed with \($0.closeCode)" } ?? "no close frame"
        throw DriverError("the exec into pod \(pod) ended without an exit status (\(why))")
    }

    final class ExitBox: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Int32?
        var code: Int32? { lock.withLock { value } }
        func set(_ code: Int32) { lock.withLock { value = code } }
    }
}
