import Foundation
import LatticeCompute
import LatticeDomain
import NIOCore
import NIOSSL
import NIOWebSocket
import Synchronization

/// A process in a pod through the `pods/exec` subresource over WebSocket (`KubeWebSocket`; the
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
        guard let server = URLComponents(string: api.connection.server), let host = server.host else {
            throw DriverError(
                "kubernetes: the server address \(api.connection.server) is not a URL",
                kind: .invalidSpec
            )
        }
        let secure = server.scheme == "https"
        let bareHost = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        var path = server.path.hasSuffix("/") ? String(server.path.dropLast()) : server.path
        path += "/api/v1/namespaces/\(namespace)/pods/\(pod)/exec?" + KubeAPI.encode(query(request))
        var headers = [("Sec-WebSocket-Protocol", "v5.channel.k8s.io, v4.channel.k8s.io"), ("User-Agent", "lattice")]
        if let token = api.connection.bearerToken { headers.append(("Authorization", "Bearer \(token)")) }
        // A server named by IP address cannot be named in SNI: the chain is checked against
        // the cluster's CA without a name (REST calls check the address as usual).
        var tls = secure ? try KubeAPI.tls(api.connection) : nil
        let named = !Catalog.isIPAddress(bareHost)
        if !named, tls?.certificateVerification == .fullVerification {
            tls?.certificateVerification = .noHostnameVerification
        }
        try await api.waitTurn()
        let channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>
        do {
            channel = try await KubeWebSocket.connect(
                host: bareHost,
                port: server.port ?? (secure ? 443 : 80),
                path: path,
                headers: headers,
                tls: tls,
                serverName: named ? bareHost : nil
            )
        } catch {
            throw DriverError("kubernetes: cannot open a session in pod \(pod): \(error)")
        }
        let status = ExitBox()
        try await channel.executeThenClose { inbound, outbound in
            func send(_ payload: ByteBuffer, _ opcode: WebSocketOpcode = .binary) async throws {
                try await outbound.write(WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: payload))
            }
            if let size = request.terminal { try await send(resize(size)) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in input {
                        switch event {
                        case .data(let data): try await send(frame(0, data))
                        case .endOfInput: try await send(frame(255, Data([0])))
                        case .resize(let size): try await send(resize(size))
                        }
                    }
                }
                var message = ByteBuffer()
                reading: for try await frame in inbound {
                    switch frame.opcode {
                    case .binary, .continuation:
                        var data = frame.unmaskedData
                        message.writeBuffer(&data)
                        guard frame.fin else { continue }
                        if let channel = message.readInteger(as: UInt8.self) {
                            let payload = Data(message.readableBytesView)
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
                        message.clear()
                    case .ping:
                        try await send(frame.unmaskedData, .pong)
                    case .connectionClose:
                        try? await send(ByteBuffer(), .connectionClose)
                        break reading
                    default:
                        continue
                    }
                }
                group.cancelAll()
            }
        }
        if let code = status.code { return code }
        throw DriverError("the session in pod \(pod) ended without an exit status", kind: .workloadFailed)
    }

    final class ExitBox: Sendable {
        private let value = Mutex<Int32?>(nil)
        var code: Int32? { value.withLock { $0 } }
        func set(_ code: Int32) { value.withLock { $0 = code } }
    }
}
