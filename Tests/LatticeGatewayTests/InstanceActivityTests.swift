import Foundation
import Synchronization
import Testing

@testable import LatticeGateway

/// The gateways' record of use for idle clocks, with an injected time: open sessions are
/// use now, reports are at most one per resolution, and the last use is reported once settled.
@Suite(.timeLimit(.minutes(10))) struct InstanceActivityTests {
    final class Time: Sendable {
        let seconds = Mutex<TimeInterval>(1_800_000_000)
        var now: Date { Date(timeIntervalSince1970: seconds.withLock { $0 }) }
        func advance(_ by: TimeInterval) { seconds.withLock { $0 += by } }
    }

    @Test func sessionsCountAsUseUntilTheyCloseAndReportsAreSpacedOut() {
        let time = Time()
        let activity = InstanceActivity(now: { time.now })
        let start = time.now
        activity.record(.sessionOpened, instance: "a", namespace: "alice")
        #expect(activity.unreported(resolution: 30) == [.init(namespace: "alice", name: "a", at: start)])
        time.advance(10)
        #expect(activity.unreported(resolution: 30).isEmpty, "reported 10 s ago")
        #expect(activity.lastUse(of: "a") == time.now, "a session is open: in use now")
        time.advance(25)
        #expect(activity.unreported(resolution: 30).map(\.at) == [time.now])
        time.advance(5)
        activity.record(.sessionClosed, instance: "a", namespace: "alice")
        let closed = time.now
        #expect(activity.openSessions.isEmpty)
        time.advance(5)
        #expect(activity.lastUse(of: "a") == closed)
        #expect(activity.unreported(resolution: 30).isEmpty, "the close is within 30 s of the last report")
        time.advance(30)
        #expect(activity.unreported(resolution: 30).map(\.at) == [closed], "the last use, once settled")
        time.advance(60)
        #expect(activity.unreported(resolution: 30).isEmpty, "nothing new")
        #expect(activity.lastUse(of: "b") == nil)
    }

    @Test func entriesAreForgottenAfterTheLongestIdlePeriod() {
        let time = Time()
        let activity = InstanceActivity(now: { time.now })
        activity.record(.sessionOpened, instance: "a", namespace: "alice")
        activity.record(.sessionClosed, instance: "a", namespace: "alice")
        _ = activity.unreported(resolution: 30)
        time.advance(InstanceActivity.memory + 1)
        _ = activity.unreported(resolution: 30)
        #expect(activity.lastUse(of: "a") == nil)
    }
}
