import Foundation
import LatticeCompute
import Synchronization
import Testing

@testable import LatticeGateway

/// The web terminal's messages from the browser: keystrokes pass as they are, a resize
/// within bounds is understood, anything else is ignored rather than trusted.
@Suite(.timeLimit(.minutes(10))) struct WebTerminalTests {
    @Test func aResizeWithinBoundsIsUnderstoodAndAnythingElseIgnored() {
        #expect(WebTerminal.control(#"{"resize":{"cols":120,"rows":40}}"#) == .resize(.init(columns: 120, rows: 40)))
        #expect(WebTerminal.control(#"{"resize":{"cols":1,"rows":40}}"#) == nil, "too narrow")
        #expect(WebTerminal.control(#"{"resize":{"cols":80,"rows":501}}"#) == nil, "too tall")
        #expect(WebTerminal.control(#"{"resize":{"cols":"80","rows":24}}"#) == nil, "a string is no size")
        #expect(WebTerminal.control(#"{"resize":{"cols":80}}"#) == nil)
        #expect(WebTerminal.control("not json") == nil)
        #expect(WebTerminal.control(#"{"exit":0}"#) == nil, "the server's own message means nothing from the browser")
        let padded = #"{"resize":{"cols":80,"rows":24},"pad":""# + String(repeating: "x", count: 300) + #""}"#
        #expect(WebTerminal.control(padded) == nil, "a control message is small")
    }

    @Test func sizesAreBoundedAndTheExitMessageIsJSON() throws {
        #expect(WebTerminal.size(columns: 2, rows: 1) == TerminalSize(columns: 2, rows: 1))
        #expect(WebTerminal.size(columns: 1000, rows: 500) == TerminalSize(columns: 1000, rows: 500))
        #expect(WebTerminal.size(columns: 1001, rows: 24) == nil)
        #expect(WebTerminal.size(columns: 80, rows: 0) == nil)
        #expect(WebTerminal.size(columns: -80, rows: 24) == nil)
        let exit = try JSONSerialization.jsonObject(with: Data(WebTerminal.exitMessage(127).utf8)) as? [String: Int]
        #expect(exit == ["exit": 127])
    }

    @Test func inputWaitsWhileTheBufferIsFullAndGoesOnWhenTheShellTakesIt() async throws {
        let input = TerminalInput()
        let chunk = Data(repeating: 0x61, count: SessionInput.highWater / 4)
        let pushed = Atomic<Int>(0)
        let writer = Task {
            for _ in 0..<8 {
                await input.push(.data(chunk))
                pushed.add(1, ordering: .sequentiallyConsistent)
            }
        }
        while pushed.load(ordering: .sequentiallyConsistent) < 3 { await Task.yield() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(
            pushed.load(ordering: .sequentiallyConsistent) == 3,
            "the fourth chunk fills the buffer: its writer waits"
        )
        var taken = 0
        for await piece in input.stream {
            if case .data(let data) = piece { taken += data.count }
            if taken == 8 * chunk.count { break }
        }
        await writer.value
        #expect(taken == 8 * chunk.count, "nothing typed is lost")
        #expect(pushed.load(ordering: .sequentiallyConsistent) == 8)
        input.finish()
    }
}
