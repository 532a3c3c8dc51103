import Foundation
import LatticeCompute
import NIOCore
import NIOPosix

/// SSH sessions and port forwards into containers: the Docker Engine exec API
/// (`POST /containers/{id}/exec`, `POST /exec/{id}/start` on a hijacked connection,
/// `POST /exec/{id}/resize`, `GET /exec/{id}/json`) and the container's address on its
/// namespace's network.
extension EngineDriver {
    /// The shell an interactive session gets: bash where the image has it, else sh.
    static let loginShell = "if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l"

    public func exec(
        instanceName: String,
        _ request: ExecRequest,
        input: AsyncStream<ExecInput>,
        output: @escaping @Sendable (ExecOutput) async -> Void
    ) async throws -> Int32 {
        guard let (container, _) = try await containers(of: instanceName).first else {
            throw DriverError("\(instanceName) has no container")
        }
        let tty = request.terminal != nil
        var environment = request.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        if tty { environment.append("TERM=\(request.terminalType)") }
        let created = try await engine.call(
            "POST",
            "/containers/\(container)/exec",
            body: try JSONSerialization.data(withJSONObject: [
                "AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "Tty": tty,
                "Cmd": ["/bin/sh", "-c", request.command ?? Self.loginShell], "Env": environment,
            ])
        )
        guard created.status == 201 || created.status == 200 else { throw created.failure("exec in \(container)") }
        let id = try created.json(ExecCreated.self).Id
        let stream = EngineStream(socketPath: engine.socketPath)
        let resize: @Sendable (TerminalSize) async -> Void = { size in
            _ = try? await self.engine.call(
                "POST",
                "/exec/\(id)/resize",
                query: ["h": String(size.rows), "w": String(size.columns)],
                timeout: .seconds(5)
            )
        }
        try await stream.run(
            path: "/\(EngineAPI.version)/exec/\(id)/start",
            body: try JSONSerialization.data(withJSONObject: ["Detach": false, "Tty": tty]),
            started: { if let size = request.terminal { await resize(size) } },
            input: input,
            resize: resize,
            output: { bytes in
                if tty { return await output(.stdout(bytes)) }
                for frame in stream.demultiplex(bytes) { await output(frame) }
            }
        )
        return try await exitCode(exec: id)
    }

    /// The exec's exit code; the engine may need a moment after the stream ends to record it.
    func exitCode(exec id: String) async throws -> Int32 {
        for _ in 0..<50 {
            let answer = try await engine.call("GET", "/exec/\(id)/json", timeout: .seconds(5))
            try answer.expect(200, "inspect exec")
            let state = try answer.json(ExecInspect.self)
            if !state.Running, let code = state.ExitCode { return Int32(truncatingIfNeeded: code) }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw DriverError("exec \(id) did not report an exit code")
    }

    /// The container's address on its namespace's network; ports are reached there, never
    /// through the host.
    public func endpoint(instanceName: String, port: Int) async throws -> WorkloadEndpoint? {
        guard let (container, _) = try await containers(of: instanceName).first else { return nil }
        let answer = try await engine.call("GET", "/containers/\(container)/json", timeout: .seconds(5))
        guard answer.status == 200 else { return nil }
        let inspect = try answer.json(ContainerAddress.self)
        guard inspect.State.Running else { return nil }
        let address = inspect.NetworkSettings.Networks?.values.compactMap(\.IPAddress).first { !$0.isEmpty }
        return address.map { WorkloadEndpoint(host: $0, port: port) }
    }
}

struct ExecCreated: Decodable { var Id: String }

struct ExecInspect: Decodable {
    var Running: Bool
    var ExitCode: Int?
}

struct ContainerAddress: Decodable {
    struct State: Decodable { var Running: Bool }
    struct Network: Decodable { var IPAddress: String? }
    struct Settings: Decodable { var Networks: [String: Network]? }
    var State: State
    var NetworkSettings: Settings
}

/// One hijacked engine connection: an HTTP request whose answer (`101 UPGRADED`, or `200`
/// on engines that do not upgrade) is followed by the process's raw stream both ways.
final class EngineStream: @unchecked Sendable {
    let socketPath: String
    private let lock = NSLock()
    private var pending = Data()

    init(socketPath: String) { self.socketPath = socketPath }

    func run(
        path: String,
        body: Data,
        started: @escaping @Sendable () async -> Void,
        input: AsyncStream<ExecInput>,
        resize: @escaping @Sendable (TerminalSize) async -> Void,
        output: @escaping @Sendable (Data) async -> Void
    ) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(unixDomainSocketPath: socketPath) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            let head =
                "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                + "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: \(body.count)\r\n\r\n"
            try await outbound.write(ByteBuffer(bytes: Data(head.utf8) + body))
            var iterator = inbound.makeAsyncIterator()
            var received = Data()
            // The answer's head, then the stream.
            while true {
                guard let chunk = try await iterator.next() else { throw DriverError("the engine closed the exec") }
                received.append(contentsOf: chunk.readableBytesView)
                guard let end = received.firstRange(of: Data("\r\n\r\n".utf8)) else {
                    if received.count > 65536 { throw DriverError("the engine's exec answer has no end") }
                    continue
                }
                let status = String(decoding: received[..<end.lowerBound], as: UTF8.self).split(separator: " ")
                guard status.count >= 2, ["101", "200"].contains(String(status[1])) else {
                    throw DriverError(
                        "exec start: engine answered \(String(decoding: received.prefix(200), as: UTF8.self))"
                    )
                }
                received = Data(received[end.upperBound...])
                break
            }
            await started()
            if !received.isEmpty { await output(received) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in input {
                        switch event {
                        case .data(let data): try await outbound.write(ByteBuffer(bytes: data))
                        case .endOfInput: outbound.finish()
                        case .resize(let size): await resize(size)
                        }
                    }
                }
                // The process ends when the engine closes the stream; input stops there.
                while let chunk = try await iterator.next() {
                    await output(Data(chunk.readableBytesView))
                }
                group.cancelAll()
            }
        }
    }

    /// Splits a non-terminal exec's multiplexed stream (an 8-byte header per frame: stream
    /// type, three zero bytes, big-endian length) into stdout and stderr, keeping a partial
    /// frame for the next call.
    func demultiplex(_ bytes: Data) -> [ExecOutput] {
        lock.withLock {
            pending.append(bytes)
            var frames: [ExecOutput] = []
            while pending.count >= 8 {
                let start = pending.startIndex
                let length = pending[(start + 4)..<(start + 8)].reduce(0) { $0 << 8 | Int($1) }
                guard pending.count >= 8 + length else { break }
                let payload = Data(pending[(start + 8)..<(start + 8 + length)])
                frames.append(pending[start] == 2 ? .stderr(payload) : .stdout(payload))
                pending = Data(pending[(start + 8 + length)...])
            }
            return frames
        }
    }
}
