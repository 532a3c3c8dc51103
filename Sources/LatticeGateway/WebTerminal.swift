import Foundation
import LatticeCompute
import Synchronization

/// The console's web terminal, whatever carries it: a shell with a pseudo-terminal in the
/// instance's workload through the same exec path as an SSH session (`SessionRunner`).
///
/// Its messages, over a WebSocket: the browser sends its keystrokes as binary frames and
/// `{"resize": {"cols": C, "rows": R}}` as text; the server sends what the shell prints as
/// binary frames and, when the shell ends, `{"exit": STATUS}`; a terminal refused before it
/// starts gets `{"code", "message"}`, as every Lattice error.
public enum WebTerminal {
    /// The sizes a terminal may take (xterm.js's own bounds are looser).
    public static let columns = 2...1000
    public static let rows = 1...500

    /// What the browser sends.
    public enum ClientMessage: Sendable, Equatable {
        case input(Data)
        case resize(TerminalSize)
    }

    /// A text frame as a control message; nil when it is none Lattice knows (ignored).
    public static func control(_ text: String) -> ClientMessage? {
        guard text.utf8.count <= 256,
            let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let resize = object["resize"] as? [String: Any],
            let columns = resize["cols"] as? Int, let rows = resize["rows"] as? Int
        else { return nil }
        return size(columns: columns, rows: rows).map(ClientMessage.resize)
    }

    /// A size within bounds, or nil.
    public static func size(columns: Int, rows: Int) -> TerminalSize? {
        guard Self.columns.contains(columns), Self.rows.contains(rows) else { return nil }
        return TerminalSize(columns: columns, rows: rows)
    }

    /// The text frame that ends a session.
    public static func exitMessage(_ status: Int32) -> String { #"{"exit":\#(status)}"# }

    /// Runs a login shell in `target` of `size`, feeding it `messages` and handing its output
    /// to `output`; when the shell ends, `ended` gets its exit status (and should close the
    /// connection, which ends `messages`). The browser going ends the shell.
    public static func run<Messages: AsyncSequence>(
        target: AccessTarget,
        directory: any AccessDirectory,
        size: TerminalSize,
        messages: Messages,
        output: @escaping @Sendable (Data) async -> Void,
        ended: @escaping @Sendable (Int32) async -> Void
    ) async where Messages.Element == ClientMessage {
        let input = TerminalInput()
        let request = ExecRequest(command: nil, terminal: size, terminalType: "xterm-256color")
        await withDiscardingTaskGroup { group in
            group.addTask {
                let status = await SessionRunner.run(request, target: target, directory: directory, input: input.stream)
                {
                    switch $0 {
                    case .stdout(let data), .stderr(let data): await output(data)
                    }
                }
                input.finish()
                await ended(status)
            }
            do {
                for try await message in messages {
                    switch message {
                    case .input(let data): await input.push(.data(data))
                    case .resize(let size): await input.push(.resize(size))
                    }
                }
            } catch {}
            // The browser went (or the shell ended and closed the connection): a terminal's
            // hang-up ends the session.
            input.finish()
            group.cancelAll()
        }
    }
}

/// A web terminal's input, which waits (and so stops reading the WebSocket) while the
/// driver has not taken what is buffered: the SSH session's flow control, for a writer
/// that can await.
final class TerminalInput: Sendable {
    /// The one writer held back, woken when room is made.
    final class Waiter: Sendable {
        let slot = Mutex<CheckedContinuation<Void, Never>?>(nil)

        func wake() { slot.withLock { $0.take() }?.resume() }
    }

    private let buffer: SessionInput
    private let waiter = Waiter()

    init() {
        let waiter = waiter
        buffer = SessionInput(resume: { waiter.wake() })
    }

    var stream: AsyncStream<ExecInput> { buffer.stream }

    func push(_ input: ExecInput) async {
        buffer.push(input)
        while buffer.isFull, !buffer.isFinished, !Task.isCancelled {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    waiter.slot.withLock { $0 = continuation }
                    // Room made (or the end come) before the wait began: go on at once.
                    if !buffer.isFull || buffer.isFinished { waiter.wake() }
                }
            } onCancel: {
                waiter.wake()
            }
        }
    }

    func finish() { buffer.finish() }
}
