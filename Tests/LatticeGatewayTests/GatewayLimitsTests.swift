import Foundation
import LatticeCompute
import LatticeDomain
import Synchronization
import Testing

@testable import LatticeGateway

@Suite(.timeLimit(.minutes(10))) struct GatewayLimitsTests {
    @Test func connectionsAreCappedPerAddressAndWhileSigningIn() {
        let limits = SSHConnectionLimits(rule: .init(perAddress: 2, unauthenticated: 3, sessions: 1))
        #expect(limits.admit("a") && limits.admit("a"))
        #expect(!limits.admit("a"), "the address is at its cap")
        #expect(limits.admit("b"))
        #expect(!limits.admit("c"), "three connections are signing in: the gateway is at its cap")
        let first = SignedIn()
        #expect(limits.signIn(first) && first.value)
        #expect(limits.current == (unauthenticated: 2, sessions: 1))
        #expect(limits.admit("c"), "a signed-in connection no longer counts as signing in")
        let second = SignedIn()
        #expect(!limits.signIn(second) && !second.value, "no room for another session")
        limits.release("a", first)
        limits.release("a", second)
        #expect(limits.current == (unauthenticated: 2, sessions: 0))
        #expect(limits.admit("a"))
    }

    @Test func channelsPerConnectionAreCapped() {
        let count = ChannelCount(limit: 2)
        #expect(count.take() && count.take() && !count.take())
        count.give()
        #expect(count.take())
    }

    @Test func eachInstanceHasItsOwnStableHostKey() {
        let master = HostKey(seed: Data(repeating: 7, count: 32))
        let one = master.derived(forInstance: "5556ea07-d418-4fb7-a2b3-f77b171f9e2d")
        let again = HostKey(seed: Data(repeating: 7, count: 32)).derived(
            forInstance: "5556ea07-d418-4fb7-a2b3-f77b171f9e2d"
        )
        let other = master.derived(forInstance: "0a0b0c0d-0000-4000-8000-000000000000")
        #expect(one.fingerprint == again.fingerprint, "the same on every replica and after a restart")
        #expect(one.fingerprint != other.fingerprint && one.fingerprint != master.fingerprint)
        #expect(one.seed.count == 32)
    }

    @Test func anUploadWaitsForTheDriverInsteadOfFillingMemory() async {
        let resumed = ResumeCount()
        let input = SessionInput(resume: { resumed.add() })
        let chunk = Data(repeating: 1, count: 32 * 1024)
        var pushed = 0
        while !input.isFull {
            input.push(.data(chunk))
            pushed += 1
        }
        #expect(pushed == SessionInput.highWater / chunk.count, "the session stops reading at the high-water mark")
        var iterator = input.stream.makeAsyncIterator()
        #expect(await iterator.next() == .data(chunk))
        #expect(!input.isFull && resumed.value == 1, "taking one chunk makes room, and reading resumes")
        for _ in 1..<pushed { _ = await iterator.next() }
        #expect(resumed.value == 1)
        input.push(.endOfInput)
        #expect(await iterator.next() == .endOfInput)
        input.finish()
        #expect(await iterator.next() == nil)
    }

    @Test func aCancelledReaderIsLetGo() async {
        // A driver whose process ended cancels the task that feeds the process and waits for it.
        let input = SessionInput(resume: {})
        let stream = input.stream
        let reader = Task { () -> Int in
            var count = 0
            for await _ in stream { count += 1 }
            return count
        }
        try? await Task.sleep(for: .milliseconds(20))
        reader.cancel()
        #expect(await reader.value == 0)
    }

    @Test func aReaderWaitingForInputGetsItAsItArrives() async {
        let input = SessionInput(resume: {})
        let stream = input.stream
        let reader = Task { () -> [ExecInput] in
            var seen: [ExecInput] = []
            for await item in stream { seen.append(item) }
            return seen
        }
        try? await Task.sleep(for: .milliseconds(20))
        input.push(.data(Data("ls\n".utf8)))
        input.push(.resize(TerminalSize(columns: 80, rows: 24)))
        try? await Task.sleep(for: .milliseconds(20))
        input.finish()
        #expect(await reader.value == [.data(Data("ls\n".utf8)), .resize(TerminalSize(columns: 80, rows: 24))])
    }
}

final class ResumeCount: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func add() { count.withLock { $0 += 1 } }
}
