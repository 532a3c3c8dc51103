import Foundation
import LatticeCompute
import NIOCore
import NIOPosix
import Synchronization

/// SSH sessions and port forwards into containers: the Docker Engine exec API
/// (`POST /containers/{id}/exec`, `POST /exec/{id}/start` on a hijacked connection,
/// `POST /exec/{id}/resize`, `GET /exec/{id}/json`) and the container's address on its
/// namespace's network.
extension EngineHost {
    /// The shell an interactive session gets: bash where the image has it, else sh.
    static let loginShell = "if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l"

    func exec(
        instanceName: String,
        _ request: ExecRequest,
        input: AsyncStream<ExecInput>,
        output: @escaping @Sendable (ExecOutput) async -> Void
    ) async throws -> Int32 {
        guard let (container, _) = try await containers(of: instanceName).first else {
            throw DriverError("\(instanceName) has no container", kind: .notFound)
        }
        let tty = request.terminal != nil
        var environment = request.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        if tty { environment.append("TERM=\(request.terminalType)") }
        let created = try await engine.call(
            "POST",
            "/containers/\(container)/exec",
            body: try JSONSerialization.data(withJSONObject: [
                "AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "Tty": tty,
                "Cmd": Self.reportingPID(request.command ?? Self.loginShell), "Env": environment,
            ])
        )
        guard created.status == 201 || created.status == 200 else { throw created.failure("exec in \(container)") }
        let id = try created.json(ExecCreated.self).Id
        let stream = EngineStream(engine: engine)
        let resize: @Sendable (TerminalSize) async -> Void = { size in
            _ = try? await self.engine.call(
                "POST",
                "/exec/\(id)/resize",
                query: ["h": String(size.rows), "w": String(size.columns)],
                timeout: .seconds(5)
            )
        }
        let pid = ExecPID()
        let startBody = try JSONSerialization.data(withJSONObject: ["Detach": false, "Tty": tty])
        var failure: (any Error)?
        do {
            try await stream.run(
                path: "/\(EngineAPI.version)/exec/\(id)/start",
                body: startBody,
                started: { if let size = request.terminal { await resize(size) } },
                input: input,
                resize: resize,
                output: { bytes in
                    let frames: [ExecOutput] = tty ? [.stdout(bytes)] : stream.demultiplex(bytes)
                    for frame in frames {
                        guard case .stdout(let data) = frame else {
                            await output(frame)
                            continue
                        }
                        let rest = pid.strip(data)
                        if !rest.isEmpty { await output(.stdout(rest)) }
                    }
                }
            )
        } catch {
            failure = error
        }
        if Task.isCancelled || failure != nil {
            // The client went away first. An engine leaves an exec running when its
            // connection closes (a shell would wait forever on its terminal): hang it up.
            // A task of its own, because this one is cancelled.
            let found = pid.value
            await Task { if let found { await self.hangUp(container: container, pid: found) } }.value
            throw failure ?? CancellationError()
        }
        return try await exitCode(exec: id)
    }

    /// The command, run by a shell that first prints its PID between two RS (0x1E)
    /// characters and then becomes the command (`exec`), so the PID is the command's.
    static func reportingPID(_ command: String) -> [String] {
        ["/bin/sh", "-c", #"printf '\036%s\036' "$$"; exec /bin/sh -c "$1""#, "lattice-exec", command]
    }

    /// SIGHUP to the process (a shell passes it on to its jobs).
    func hangUp(container: String, pid: Int) async {
        let body = try? JSONSerialization.data(withJSONObject: [
            "AttachStdout": false, "AttachStderr": false, "Tty": false,
            "Cmd": ["/bin/sh", "-c", "kill -HUP \(pid)"],
        ])
        guard let created = try? await engine.call("POST", "/containers/\(container)/exec", body: body),
            let id = try? created.json(ExecCreated.self).Id
        else { return }
        _ = try? await engine.call(
            "POST",
            "/exec/\(id)/start",
            body: try? JSONSerialization.data(withJSONObject: ["Detach": true, "Tty": false]),
            timeout: .seconds(10)
        )
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
        throw DriverError("exec \(id) did not report an exit code", kind: .workloadFailed)
    }

    /// The container's address on its namespace's network; ports are reached there, never
    /// through the host.
    func endpoint(instanceName: String, port: Int) async throws -> WorkloadEndpoint? {
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

/// Takes the PID marker (`\u{1E}<digits>\u{1E}`) off the start of an exec's output.
final class ExecPID: Sendable {
    private struct State {
        var pending = Data()
        var done = false
        var pid: Int?
    }

    private let state = Mutex(State())

    var value: Int? { state.withLock { state in state.pid } }

    /// The output with the marker removed; holds bytes back until the marker is complete.
    func strip(_ data: Data) -> Data {
        state.withLock { state in
            if state.done { return data }
            state.pending.append(data)
            guard state.pending.first == 0x1E else {
                // No marker (a shell that does not print it): pass everything on.
                state.done = true
                return state.pending
            }
            guard let end = state.pending.dropFirst().firstIndex(of: 0x1E) else {
                if state.pending.count > 32 {
                    state.done = true
                    return state.pending
                }
                return Data()
            }
            state.pid = Int(String(decoding: state.pending[(state.pending.startIndex + 1)..<end], as: UTF8.self))
            state.done = true
            return Data(state.pending[(end + 1)...])
        }
    }
}

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
final class EngineStream: Sendable {
    let engine: EngineAPI
    private struct State {
        var pending = Data()
    }

    private let state = Mutex(State())

    init(engine: EngineAPI) { self.engine = engine }

    func run(
        path: String,
        body: Data,
        started: @escaping @Sendable () async -> Void,
        input: AsyncStream<ExecInput>,
        resize: @escaping @Sendable (TerminalSize) async -> Void,
        output: @escaping @Sendable (Data) async -> Void
    ) async throws {
        let channel = try await engine.connect { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                    wrappingChannelSynchronously: channel,
                    configuration: .init(isOutboundHalfClosureEnabled: true)
                )
            }
        }
        // Cancelled (the client went away): close the connection, which ends the reads below.
        let connection = channel.channel
        try await withTaskCancellationHandler {
            try await exchange(
                channel,
                path: path,
                body: body,
                started: started,
                input: input,
                resize: resize,
                output: output
            )
        } onCancel: {
            connection.close(promise: nil)
        }
    }

    private func exchange(
        _ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>,
        path: String,
        body: Data,
        started: @escaping @Sendable () async -> Void,
        input: AsyncStream<ExecInput>,
        resize: @escaping @Sendable (TerminalSize) async -> Void,
        output: @escaping @Sendable (Data) async -> Void
    ) async throws {
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

    /// The stdout payloads of a whole multiplexed body (a container's logs), or none when
    /// the body is not framed.
    static func frames(_ body: Data) -> [Data] {
        var frames: [Data] = []
        var offset = body.startIndex
        while body.endIndex - offset >= 8 {
            guard [0, 1, 2].contains(body[offset]), body[offset + 1] == 0, body[offset + 2] == 0 else { return [] }
            let length = body[(offset + 4)..<(offset + 8)].reduce(0) { $0 << 8 | Int($1) }
            guard body.endIndex - offset - 8 >= length else { return [] }
            if body[offset] == 1 { frames.append(Data(body[(offset + 8)..<(offset + 8 + length)])) }
            offset += 8 + length
        }
        return offset == body.endIndex ? frames : []
    }

    /// Splits a non-terminal exec's multiplexed stream (an 8-byte header per frame: stream
    /// type, three zero bytes, big-endian length) into stdout and stderr, keeping a partial
    /// frame for the next call.
    func demultiplex(_ bytes: Data) -> [ExecOutput] {
        state.withLock { state in
            state.pending.append(bytes)
            var frames: [ExecOutput] = []
            while state.pending.count >= 8 {
                let start = state.pending.startIndex
                let length = state.pending[(start + 4)..<(start + 8)].reduce(0) { $0 << 8 | Int($1) }
                guard state.pending.count >= 8 + length else { break }
                let payload = Data(state.pending[(start + 8)..<(start + 8 + length)])
                frames.append(state.pending[start] == 2 ? .stderr(payload) : .stdout(payload))
                state.pending = Data(state.pending[(start + 8 + length)...])
            }
            return frames
        }
    }
}
