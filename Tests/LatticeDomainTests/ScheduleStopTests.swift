import Foundation
import LatticeDomain
import LatticeTestSupport
import Testing

/// SPEC §12's scheduled stop, with an injected time.
@Suite(.timeLimit(.minutes(10))) struct ScheduleStopTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    func format(_ date: Date) -> String { TimeFormatter().format(date) }

    @Test func aPayAsYouGoInstancePowersOffAtItsTimeAndRunsOnAfterAPowerOn() throws {
        var instance = sampleInstance(status: .running)
        let at = now.addingTimeInterval(20)
        instance = try InstanceLifecycle.scheduleStop(instance, at: at, action: .powerOff, now: now)
        #expect(instance.scheduleStopAt == at && instance.scheduleStopAction == .powerOff)
        #expect(InstanceLifecycle.scheduledStop(instance, now: now.addingTimeInterval(19), format: format) == nil)
        let stopped = try #require(InstanceLifecycle.scheduledStop(instance, now: at, format: format))
        #expect(stopped.status == .stopping && stopped.desired.power == .off)
        #expect(stopped.statusReason.hasPrefix("ScheduledStop: powered off as scheduled for"))
        #expect(stopped.scheduleStopAt == nil, "cleared, so that a power on runs on")
        #expect(stopped.generation == instance.generation + 1)
    }

    @Test func deleteAtTheTime() throws {
        let instance = try InstanceLifecycle.scheduleStop(
            sampleInstance(status: .running),
            at: now.addingTimeInterval(5),
            action: .delete,
            now: now
        )
        let deleted = try #require(
            InstanceLifecycle.scheduledStop(instance, now: now.addingTimeInterval(6), format: format)
        )
        #expect(deleted.desired.deleted && deleted.status == .deleting)
        #expect(deleted.statusReason.hasPrefix("ScheduledDelete"))
    }

    @Test func clearingAndRefusals() throws {
        var instance = try InstanceLifecycle.scheduleStop(
            sampleInstance(status: .running),
            at: now.addingTimeInterval(60),
            action: .delete,
            now: now
        )
        instance = try InstanceLifecycle.scheduleStop(instance, at: nil, action: .powerOff, now: now)
        #expect(instance.scheduleStopAt == nil && instance.scheduleStopAction == nil)
        #expect(InstanceLifecycle.scheduledStop(instance, now: now.addingTimeInterval(3600), format: format) == nil)
        #expect(throws: LatticeError.self) {
            try InstanceLifecycle.scheduleStop(instance, at: now, action: .powerOff, now: now)
        }
        var prepaid = sampleInstance(status: .running)
        prepaid.cost.costType = 4
        #expect(throws: LatticeError.self) {
            try InstanceLifecycle.scheduleStop(prepaid, at: now.addingTimeInterval(60), action: .powerOff, now: now)
        }
        // A prepaid term's end is the meter's TermEnded, not a scheduled stop.
        prepaid.scheduleStopAt = now
        #expect(InstanceLifecycle.scheduledStop(prepaid, now: now, format: format) == nil)
    }

    @Test func theRequestsReadTheirFields() throws {
        func body(_ text: String) throws -> JSONValue { try JSONValue.parseBody(Data(text.utf8)) }
        let request = try ScheduleStopRequest(json: body(#"{"at": "2027-01-01T08:00:00+08:00", "action": "delete"}"#))
        #expect(request.at == Date(timeIntervalSince1970: 1_798_761_600) && request.action == .delete)
        #expect(try ScheduleStopRequest(json: body(#"{"at": "0001-01-01T00:00:00Z"}"#)).at == nil)
        #expect(try ScheduleStopRequest(json: body(#"{"at": "2027-01-01T00:00:00Z"}"#)).action == .powerOff)
        let bodies = [
            #"{}"#, #"{"at": "tomorrow"}"#, #"{"at": ""}"#, #"{"at": " ", "action": null}"#,
            #"{"at": "2027-01-01T00:00:00Z", "action": "pause"}"#,
        ]
        for bad in bodies {
            #expect(throws: LatticeError.self, "\(bad)") { try ScheduleStopRequest(json: body(bad)) }
        }
    }
}
