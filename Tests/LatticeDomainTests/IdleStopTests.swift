import Foundation
import LatticeDomain
import LatticeTestSupport
import Testing

/// SPEC §12's idle stop, with an injected time: when the clock runs, what use writes, what
/// the leader's check writes, and the policy's bad input.
@Suite(.timeLimit(.minutes(10))) struct IdleStopTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    func format(_ date: Date) -> String { TimeFormatter().format(date) }

    func idle(minutes: Int = 10, since: Date? = nil, status: InstanceStatus = .running) -> Instance {
        var instance = sampleInstance(status: status)
        instance.idleStop = IdleStopPolicy(afterMinutes: minutes)
        instance.idleSince = since ?? now
        return instance
    }

    @Test func theClockRunsOnlyForARunningPayAsYouGoInstanceWithAPolicy() {
        #expect(IdleRule.stopsAt(idle()) == now.addingTimeInterval(600))
        #expect(idle().dueAt == now.addingTimeInterval(600))
        #expect(IdleRule.stopsAt(idle(status: .stopped)) == nil)
        #expect(IdleRule.stopsAt(sampleInstance()) == nil)
        var prepaid = idle()
        prepaid.cost.costType = 4
        #expect(IdleRule.stopsAt(prepaid) == nil)
        var deleting = idle()
        deleting.desired.deleted = true
        #expect(IdleRule.stopsAt(deleting) == nil)
        var scheduled = idle()
        scheduled.scheduleStopAt = now.addingTimeInterval(60)
        #expect(scheduled.dueAt == now.addingTimeInterval(60), "the earlier of the two")
        scheduled.scheduleStopAt = now.addingTimeInterval(6000)
        #expect(scheduled.dueAt == now.addingTimeInterval(600))
    }

    @Test func useRestartsTheClockAtMostOncePerResolution() throws {
        let instance = idle()
        #expect(IdleRule.used(instance, at: now.addingTimeInterval(IdleRule.resolution - 1)) == nil)
        let used = try #require(IdleRule.used(instance, at: now.addingTimeInterval(45)))
        #expect(used.idleSince == now.addingTimeInterval(45) && used.generation == instance.generation + 1)
        #expect(IdleRule.used(sampleInstance(), at: now.addingTimeInterval(45)) == nil, "no policy, nothing to write")
    }

    @Test func theLeaderStopsOnlyWhenThePeriodRanOutAndNothingItKnowsSaysOtherwise() throws {
        let instance = idle(minutes: 10)
        #expect(IdleRule.idleStop(instance, now: now.addingTimeInterval(599), format: format) == nil)
        let stopped = try #require(IdleRule.idleStop(instance, now: now.addingTimeInterval(600), format: format))
        #expect(stopped.status == .stopping && stopped.desired.power == .off && stopped.desired.snapshot == nil)
        #expect(stopped.statusReason.hasPrefix("IdleStopped: no session, no gateway request for 10 minutes"))
        #expect(IdleStopTests.keepsDisk(instance, stopped))
        // Use the record has not heard of yet (this replica's gateway, a busy GPU).
        let late = now.addingTimeInterval(590)
        let restarted = try #require(IdleRule.restart(instance, usedAt: late, now: now.addingTimeInterval(600)))
        #expect(restarted.idleSince == late)
        #expect(IdleRule.restart(instance, usedAt: now, now: now.addingTimeInterval(600)) == nil, "nothing newer")
        #expect(
            IdleRule.restart(instance, usedAt: now.addingTimeInterval(-5), now: now.addingTimeInterval(600)) == nil
        )
    }

    static func keepsDisk(_ before: Instance, _ after: Instance) -> Bool { before.volume == after.volume }

    @Test func thePolicyIsSetClearedOrKept() throws {
        let running = sampleInstance()
        let set = try IdleRule.setPolicy(
            running,
            .some(IdleStopPolicy(afterMinutes: 5)),
            wakeOnConnect: true,
            now: now
        )
        #expect(set.idleStop == IdleStopPolicy(afterMinutes: 5) && set.idleSince == now && set.wakeOnConnect == true)
        let kept = try IdleRule.setPolicy(set, nil, wakeOnConnect: false, now: now.addingTimeInterval(9))
        #expect(kept.idleStop == set.idleStop && kept.idleSince == now && kept.wakeOnConnect == false)
        let cleared = try IdleRule.setPolicy(kept, .some(nil), wakeOnConnect: nil, now: now)
        #expect(cleared.idleStop == nil && cleared.idleSince == nil)
        #expect(try IdleRule.setPolicy(cleared, .some(nil), wakeOnConnect: nil, now: now) == cleared, "no change")
        var prepaid = running
        prepaid.cost.costType = 2
        #expect(throws: LatticeError.self) {
            try IdleRule.setPolicy(prepaid, .some(IdleStopPolicy(afterMinutes: 5)), wakeOnConnect: nil, now: now)
        }
    }

    @Test func badPoliciesNameTheirField() throws {
        func request(_ json: String) throws -> IdleStopRequest {
            try IdleStopRequest(json: JSONValue.parseBody(Data(json.utf8)))
        }
        for (body, field) in [
            (#"{"afterMinutes": 0}"#, "afterMinutes"), (#"{"afterMinutes": 10081}"#, "afterMinutes"),
            (#"{"gpuUtilizationBelow": 5}"#, "afterMinutes"), (#"{}"#, "afterMinutes"),
            (#"{"afterMinutes": 5, "gpuUtilizationBelow": 101}"#, "gpuUtilizationBelow"),
            (#"{"afterMinutes": 5, "wakeOnConnect": "yes"}"#, "wakeOnConnect"), ("[1]", "object"),
        ] {
            #expect(throws: LatticeError.self, "\(body)") { try request(body) }
            if let error = try? { () throws -> LatticeError? in
                do { _ = try request(body) } catch let error as LatticeError { return error }
                return nil
            }() {
                #expect(error.message.contains(field), "\(body): \(error.message)")
            }
        }
        #expect(try request("null").policy == .some(nil))
        #expect(try request(#"{"afterMinutes": null}"#).policy == .some(nil))
        #expect(try request(#"{"wakeOnConnect": true}"#) == IdleStopRequest.keep(wakeOnConnect: true))
        #expect(
            try request(#"{"afterMinutes": 15, "gpuUtilizationBelow": 10}"#).policy
                == .some(IdleStopPolicy(afterMinutes: 15, gpuUtilizationBelow: 10))
        )
    }
}

@Suite(.timeLimit(.minutes(10))) struct IdleDefaultTests {
    let idle = IdleDefault(
        namespace: "alice",
        policy: IdleStopPolicy(afterMinutes: 30, gpuUtilizationBelow: 5),
        wakeOnConnect: true,
        updatedAt: Date(timeIntervalSince1970: 0)
    )

    @Test func aCreateThatSaysNothingGetsTheDefault() {
        let got = IdleDefault.atCreate(
            requested: nil,
            givenIdleStop: false,
            wakeOnConnect: nil,
            default: idle,
            payAsYouGo: true
        )
        #expect(got.policy == idle.policy && got.wakeOnConnect)
    }

    @Test func whatTheCreateSaysWins() {
        let own = IdleStopPolicy(afterMinutes: 5)
        #expect(
            IdleDefault.atCreate(
                requested: own,
                givenIdleStop: true,
                wakeOnConnect: nil,
                default: idle,
                payAsYouGo: true
            )
            .policy == own
        )
        let none = IdleDefault.atCreate(
            requested: nil,
            givenIdleStop: true,
            wakeOnConnect: nil,
            default: idle,
            payAsYouGo: true
        )
        #expect(none.policy == nil && !none.wakeOnConnect, "\"idleStop\": null opts out")
        #expect(
            !IdleDefault.atCreate(
                requested: nil,
                givenIdleStop: false,
                wakeOnConnect: false,
                default: idle,
                payAsYouGo: true
            )
            .wakeOnConnect
        )
        #expect(
            IdleDefault.atCreate(
                requested: nil,
                givenIdleStop: false,
                wakeOnConnect: nil,
                default: idle,
                payAsYouGo: false
            )
            .policy == nil,
            "a prepaid term is paid for"
        )
    }

    @Test func theBodyIsCheckedLikeAnInstancesPolicy() throws {
        let body = try JSONFields(JSONValue.parseBody(Data(#"{"afterMinutes": 0}"#.utf8)))
        #expect(throws: LatticeError.self) { try IdleDefault(fields: body, namespace: "alice", now: .now) }
        let good = try JSONFields(JSONValue.parseBody(Data(#"{"afterMinutes": 45, "wakeOnConnect": true}"#.utf8)))
        let parsed = try IdleDefault(fields: good, namespace: "alice", now: .now)
        #expect(parsed.policy.afterMinutes == 45 && parsed.wakeOnConnect && parsed.policy.gpuUtilizationBelow == nil)
    }
}
