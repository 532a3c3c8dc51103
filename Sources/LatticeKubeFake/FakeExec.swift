import Foundation
import HTTPTypes
import HummingbirdWebSocket
import NIOCore

/// The fake's `pods/exec`: the command runs on this machine (a test's stand-in for the pod's
/// container), over the `v5.channel.k8s.io` WebSocket protocol as the API server speaks it.
/// For tests only: it listens on loopback.
enum FakeExec {
    /// What an exec request asks for, when the path is a running pod's exec.
    static func command(_ request: HTTPRequest, cluster: FakeCluster) -> [String]? {
        guard let components = URLComponents(string: request.path ?? "") else { return nil }
        let parts = components.path.split(separator: "/").map(String.init)
        guard parts.count == 7, parts[0] == "api", parts[2] == "namespaces", parts[4] == "pods", parts[6] == "exec"
        else { return nil }
        let pod = cluster.object(.init(resource: "pods", namespace: parts[3], name: parts[5]))
        guard (pod?["status"] as? [String: Any])?["phase"] as? String == "Running" else { return nil }
        let argv = (components.queryItems ?? []).filter { $0.name == "command" }.compactMap(\.value)
        guard !argv.isEmpty else { return nil }
        // As in a container, the command sees the pod's environment (then its own `env`'s).
        let own = argv.first == "env" ? Array(argv.dropFirst()) : argv
        return ["env"] + environment(of: pod ?? [:], namespace: parts[3], cluster: cluster) + own
    }

    /// The `main` container's variables as `NAME=value`: plain values, and those from a
    /// Secret's key (`stringData` as the fake keeps it, else `data`).
    static func environment(of pod: [String: Any], namespace: String, cluster: FakeCluster) -> [String] {
        let containers = (pod["spec"] as? [String: Any])?["containers"] as? [[String: Any]] ?? []
        let env = containers.first?["env"] as? [[String: Any]] ?? []
        return env.compactMap { variable -> String? in
            guard let name = variable["name"] as? String else { return nil }
            if let value = variable["value"] as? String { return "\(name)=\(value)" }
            guard
                let ref = (variable["valueFrom"] as? [String: Any])?["secretKeyRef"] as? [String: Any],
                let secretName = ref["name"] as? String, let key = ref["key"] as? String,
                let secret = cluster.object(.init(resource: "secrets", namespace: namespace, name: secretName))
            else { return nil }
            if let value = (secret["stringData"] as? [String: String])?[key] { return "\(name)=\(value)" }
            if let encoded = (secret["data"] as? [String: String])?[key], let data = Data(base64Encoded: encoded) {
                return "\(name)=\(String(decoding: data, as: UTF8.self))"
            }
            return nil
        }
    }

    static func frame(_ channel: UInt8, _ data: Data) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(channel)
        buffer.writeBytes(data)
        return buffer
    }

    /// A pipe's output as a stream (ends at end of file), read by a thread of its own with
    /// blocking reads (a readability handler can miss the end of file).
    static func chunks(_ pipe: Pipe) -> AsyncStream<Data> {
        AsyncStream { continuation in
            let handle = pipe.fileHandleForReading
            Thread.detachNewThread {
                while true {
                    let data = handle.availableData
                    if data.isEmpty { break }
                    continuation.yield(data)
                }
                continuation.finish()
            }
        }
    }

    static func run(
        _ argv: [String],
        inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter
    ) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = Array(argv.first == "env" ? argv.dropFirst() : argv[...])
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        (process.standardInput, process.standardOutput, process.standardError) = (stdin, stdout, stderr)
        do {
            try process.run()
        } catch {
            let status = #"{"status":"Failure","message":"exec: \#(argv.first ?? ""): not found"}"#
            try await outbound.write(.binary(frame(3, Data(status.utf8))))
            return
        }
        let reader = Task {
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .binary(var buffer) = message, let channel = buffer.readInteger(as: UInt8.self) else {
                    continue
                }
                if channel == 0 { stdin.fileHandleForWriting.write(Data(buffer.readableBytesView)) }
                if channel == 255 { try? stdin.fileHandleForWriting.close() }
            }
            try? stdin.fileHandleForWriting.close()
        }
        await withTaskGroup(of: Void.self) { group in
            for (channel, pipe) in [(UInt8(1), stdout), (UInt8(2), stderr)] {
                group.addTask {
                    for await data in chunks(pipe) { try? await outbound.write(.binary(frame(channel, data))) }
                }
            }
        }
        // Waited for on a thread of its own (a termination handler needs a run loop this
        // program's main thread does not turn).
        let code = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }
        }
        reader.cancel()
        let status =
            code == 0
            ? #"{"metadata":{},"status":"Success"}"#
            : #"{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","#
                + #""details":{"causes":[{"reason":"ExitCode","message":"\#(code)"}]}}"#
        try await outbound.write(.binary(frame(3, Data(status.utf8))))
    }
}
