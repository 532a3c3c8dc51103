import Foundation
import LatticeCompute
import NIOCore
import NIOSSH

/// One SSH `session` channel: gathers `env` and `pty-req`, then runs the `exec` or `shell`
/// inside the instance's workload through its driver, passing input, window changes and
/// output across, and ends with the process's exit status.
final class SSHSessionHandler: ChannelDuplexHandler {
    typealias InboundIn = SSHChannelData
    typealias OutboundIn = SSHChannelData
    typealias OutboundOut = SSHChannelData

    /// The most `env` variables one session takes, and their sizes.
    static let environmentLimit = 64
    static let environmentValueLimit = 4096

    let target: AccessTarget
    let directory: any AccessDirectory
    private var environment: [String: String] = [:]
    private var terminal: TerminalSize?
    private var terminalType = "xterm"
    private var input: SessionInput?
    private var task: Task<Void, Never>?
    /// A read the channel asked for while the input was full; made once the driver catches up.
    private var readHeld = false
    private var context: ChannelHandlerContext?

    init(target: AccessTarget, directory: any AccessDirectory) {
        self.target = target
        self.directory = directory
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Without this, the client's EOF (end of stdin) would close the whole channel.
        let channel = context.channel
        channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).whenFailure { _ in
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard case .channel = message.type, case .byteBuffer(let bytes) = message.data else { return }
        input?.push(.data(Data(bytes.readableBytesView)))
    }

    /// Flow control: no more of the client's bytes are read while the driver has not taken
    /// what waits (`SessionInput`).
    func read(context: ChannelHandlerContext) {
        if input?.isFull == true {
            readHeld = true
        } else {
            context.read()
        }
    }

    func resumeReading() {
        guard readHeld, let context else { return }
        readHeld = false
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        input?.finish()
        task?.cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        input?.finish()
        self.context = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let request as SSHChannelRequestEvent.EnvironmentRequest:
            let fits =
                environment.count < Self.environmentLimit && request.value.utf8.count <= Self.environmentValueLimit
                && Self.isVariableName(request.name)
            if fits { environment[request.name] = request.value }
            reply(context, fits, request.wantReply)
        case let request as SSHChannelRequestEvent.PseudoTerminalRequest:
            terminal = TerminalSize(columns: request.terminalCharacterWidth, rows: request.terminalRowHeight)
            terminalType = request.term.isEmpty ? "xterm" : String(request.term.prefix(64))
            reply(context, task == nil, request.wantReply)
        case let request as SSHChannelRequestEvent.WindowChangeRequest:
            let size = TerminalSize(columns: request.terminalCharacterWidth, rows: request.terminalRowHeight)
            terminal = size
            input?.push(.resize(size))
        case let request as SSHChannelRequestEvent.ShellRequest:
            start(context, command: nil, wantReply: request.wantReply)
        case let request as SSHChannelRequestEvent.ExecRequest:
            start(context, command: request.command, wantReply: request.wantReply)
        case let request as SSHChannelRequestEvent.SubsystemRequest:
            // No sftp: the gateway runs commands, it serves no files of its own.
            reply(context, false, request.wantReply)
        case let event as ChannelEvent where event == .inputClosed:
            input?.push(.endOfInput)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first), name.utf8.count <= 256 else {
            return false
        }
        return name.unicodeScalars.allSatisfy {
            $0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
        }
    }

    func reply(_ context: ChannelHandlerContext, _ success: Bool, _ wanted: Bool) {
        guard wanted else { return }
        let event: any Sendable = success ? ChannelSuccessEvent() : ChannelFailureEvent()
        context.triggerUserOutboundEvent(event, promise: nil)
    }

    func start(_ context: ChannelHandlerContext, command: String?, wantReply: Bool) {
        // One process per session channel.
        guard task == nil else { return reply(context, false, wantReply) }
        reply(context, true, wantReply)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let input = SessionInput(resume: { eventLoop.execute { bound.value.resumeReading() } })
        self.input = input
        let stream = input.stream
        let request = ExecRequest(
            command: command,
            terminal: terminal,
            terminalType: terminalType,
            environment: environment
        )
        let channel = context.channel
        let target = target
        let directory = directory
        // The session's process lives as long as its channel: cancelled when the channel goes.
        task = Task {
            let status = await SessionRunner.run(request, target: target, directory: directory, input: stream) {
                let message: SSHChannelData
                switch $0 {
                case .stdout(let data):
                    message = SSHChannelData(type: .channel, data: .byteBuffer(ByteBuffer(bytes: data)))
                case .stderr(let data):
                    message = SSHChannelData(type: .stdErr, data: .byteBuffer(ByteBuffer(bytes: data)))
                }
                try? await channel.writeAndFlush(message).get()
            }
            try? await channel.triggerUserOutboundEvent(
                SSHChannelRequestEvent.ExitStatus(exitStatus: Int(status))
            ).get()
            try? await channel.close(mode: .output).get()
            try? await channel.close().get()
        }
    }

}

/// Runs a session's process in the instance's workload and hands its output on: the exec
/// path every shell goes through, the SSH gateway's sessions and the console's web
/// terminal alike. Notices (the instance gone, not running, the driver failing) go out as
/// standard error.
public enum SessionRunner {
    public static func run(
        _ request: ExecRequest,
        target: AccessTarget,
        directory: any AccessDirectory,
        input: AsyncStream<ExecInput>,
        output: @escaping @Sendable (ExecOutput) async -> Void
    ) async -> Int32 {
        let newline = request.terminal == nil ? "\n" : "\r\n"
        func say(_ text: String) async { await output(.stderr(Data((text + newline).utf8))) }
        do {
            guard var current = try await directory.target(instanceName: target.name) else {
                await say("\(target.name) no longer exists")
                return 1
            }
            if current.wakes {
                switch await Wake.untilRunning(current, directory: directory, say: say) {
                case .some(let running): current = running
                case nil: return 1
                }
            }
            guard current.isRunning, let driver = directory.workloads(cluster: current.cluster) else {
                await say("\(target.name) is \(current.status), not Running: power it on to open a session")
                return 1
            }
            directory.used(current, .sessionOpened)
            defer { directory.used(current, .sessionClosed) }
            return try await driver.exec(instanceName: current.name, request, input: input, output: output)
        } catch {
            await say("lattice: cannot run in \(target.name): \(error)")
            return 255
        }
    }
}

/// Wake on connect for a session (SPEC §12): the instance is powered on and the session
/// waits, with a banner, until it runs.
enum Wake {
    /// How long a session waits for its instance to come up.
    static let patience: Duration = .seconds(300)
    static let poll: Duration = .seconds(1)

    /// The instance once Running, or nil (and the client told why) when it does not come up.
    static func untilRunning(
        _ target: AccessTarget,
        directory: any AccessDirectory,
        say: (String) async -> Void
    ) async -> AccessTarget? {
        if case .refused(let why) = await directory.wake(target) {
            await say("lattice: cannot wake \(target.name): \(why)")
            return nil
        }
        await say("lattice: waking \(target.name) (wake on connect); the session starts once it runs...")
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: patience)
        while clock.now < deadline {
            do { try await Task.sleep(for: poll) } catch { return nil }
            guard let current = try? await directory.target(instanceName: target.name) else { continue }
            if current.isRunning { return current }
            if ["Failed", "Stopped", "Stopping"].contains(current.status) {
                await say("lattice: \(target.name) did not start: it is \(current.status)")
                return nil
            }
        }
        await say("lattice: \(target.name) is still not Running after \(patience); try again later")
        return nil
    }
}
