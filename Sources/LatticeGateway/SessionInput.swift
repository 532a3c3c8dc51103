import Foundation
import LatticeCompute
import Synchronization

/// A session's input on its way to the driver, handed over only as fast as the driver
/// takes it: the stream the driver reads is pulled (`AsyncStream(unfolding:)`), and while
/// more than `highWater` bytes wait here the session stops reading from the client, whose
/// SSH window then closes. An upload of any size costs `highWater` bytes and one window.
final class SessionInput: Sendable {
    static let highWater = 256 * 1024

    struct State {
        var waiting: [ExecInput] = []
        var bytes = 0
        var reader: CheckedContinuation<ExecInput?, Never>?
        var finished = false
    }

    private let state = Mutex(State())
    /// Called (from the driver's task) once the buffer has room again.
    let resume: @Sendable () -> Void

    init(resume: @escaping @Sendable () -> Void) { self.resume = resume }

    /// The stream the driver reads.
    var stream: AsyncStream<ExecInput> { AsyncStream(unfolding: { await self.next() }) }

    /// Whether the session should stop reading from the client for now.
    var isFull: Bool { state.withLock { $0.bytes >= Self.highWater } }

    /// What the client sent next (from the channel's event loop).
    func push(_ input: ExecInput) {
        let reader = state.withLock { state -> CheckedContinuation<ExecInput?, Never>? in
            guard !state.finished else { return nil }
            if let reader = state.reader {
                state.reader = nil
                return reader
            }
            state.waiting.append(input)
            state.bytes += Self.size(input)
            return nil
        }
        reader?.resume(returning: input)
    }

    /// No more input: the driver's stream ends once it has read what waits. A writer held
    /// back by a full buffer is let go (nothing will read it now).
    func finish() {
        let reader = state.withLock { state -> CheckedContinuation<ExecInput?, Never>? in
            state.finished = true
            defer { state.reader = nil }
            return state.reader
        }
        reader?.resume(returning: nil)
        resume()
    }

    /// Whether the session has ended its input (or the driver stopped reading).
    var isFinished: Bool { state.withLock { $0.finished } }

    /// The next input for the driver; nil once finished, or once the reading task is
    /// cancelled (a driver whose process ended cancels its input reader and waits for it).
    func next() async -> ExecInput? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let (answer, wasFull): (ExecInput??, Bool) = state.withLock { state in
                    if !state.waiting.isEmpty {
                        let full = state.bytes >= Self.highWater
                        let input = state.waiting.removeFirst()
                        state.bytes -= Self.size(input)
                        return (.some(input), full && state.bytes < Self.highWater)
                    }
                    if state.finished { return (.some(nil), false) }
                    state.reader = continuation
                    return (nil, false)
                }
                if let answer { continuation.resume(returning: answer) }
                if wasFull { resume() }
            }
        } onCancel: {
            finish()
        }
    }

    static func size(_ input: ExecInput) -> Int {
        if case .data(let data) = input { return data.count }
        return 0
    }
}
