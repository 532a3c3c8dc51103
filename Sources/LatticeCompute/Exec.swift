import Foundation

/// A terminal's size in characters.
public struct TerminalSize: Sendable, Equatable {
    public var columns: Int
    public var rows: Int

    public init(columns: Int, rows: Int) {
        self.columns = columns
        self.rows = rows
    }
}

/// A process to run inside an instance's workload (an SSH session's exec or shell).
public struct ExecRequest: Sendable, Equatable {
    /// A command line for the workload's shell (`sh -c`); nil runs an interactive login shell.
    public var command: String?
    /// A pseudo-terminal of this size and type, or none.
    public var terminal: TerminalSize?
    public var terminalType: String
    /// Variables the client sent (`env` requests), added to the workload's own.
    public var environment: [String: String]

    public init(
        command: String?,
        terminal: TerminalSize? = nil,
        terminalType: String = "xterm",
        environment: [String: String] = [:]
    ) {
        self.command = command
        self.terminal = terminal
        self.terminalType = terminalType
        self.environment = environment
    }
}

/// What the client sends to a running exec.
public enum ExecInput: Sendable, Equatable {
    case data(Data)
    /// The client closed its input (EOF).
    case endOfInput
    case resize(TerminalSize)
}

/// What a running exec prints.
public enum ExecOutput: Sendable, Equatable {
    case stdout(Data)
    case stderr(Data)
}

/// Where a port inside a workload is reached from the control plane (the SSH gateway's
/// port forwards, the HTTP gateway).
public struct WorkloadEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// A driver that can run processes inside workloads and reach their ports.
public protocol WorkloadAccess: Sendable {
    /// Runs `request` in the instance's running workload until it exits, feeding it
    /// `input` and handing what it prints to `output`; returns its exit status. Throws
    /// `DriverError` when the workload is not running or cannot run it.
    func exec(
        instanceName: String,
        _ request: ExecRequest,
        input: AsyncStream<ExecInput>,
        output: @escaping @Sendable (ExecOutput) async -> Void
    ) async throws -> Int32

    /// Where `port` of the instance's running workload is reached, or nil when nothing can
    /// reach it (no such workload, not running, or a backend without a network).
    func endpoint(instanceName: String, port: Int) async throws -> WorkloadEndpoint?
}
