import Foundation
import LatticeDomain
import LatticeTestSupport
import Testing

@Suite(.timeLimit(.minutes(10))) struct EventRuleTests {
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aCreateIsCreatedThenItsFirstStatus() {
        let instance = sampleInstance(name: "instance-1", namespace: "alice", status: .creating)
        let events = EventRule.instance(from: nil, to: instance, at: at)
        #expect(events.map(\.type) == [.instanceCreated, .instanceStatus])
        #expect(events[1].data["status"] == .string("Creating") && events[1].data["previous"] == .string(""))
        #expect(events.allSatisfy { $0.namespace == "alice" && $0.instance == "instance-1" && $0.time == at })
    }

    @Test func aChangeOfStatusTellsThePreviousAndTheReason() {
        let running = sampleInstance(name: "instance-1", namespace: "alice", status: .running)
        var failed = running
        failed.status = .failed
        failed.statusReason = "ImagePullFailed: no such image"
        let events = EventRule.instance(from: running, to: failed, at: at)
        #expect(events.map(\.type) == [.instanceStatus])
        #expect(
            events[0].data == [
                "status": .string("Failed"), "previous": .string("Running"),
                "reason": .string("ImagePullFailed: no such image"), "cluster": .string(running.cluster),
            ]
        )
    }

    @Test func aWriteThatLeavesTheStatusTellsNothing() {
        let running = sampleInstance(name: "instance-1", namespace: "alice", status: .running)
        var renamed = running
        renamed.generation += 1
        renamed.idleSince = at
        #expect(EventRule.instance(from: running, to: renamed, at: at).isEmpty)
    }

    @Test func theIdleRuleStoppingAnInstanceIsItsOwnEvent() {
        var running = sampleInstance(name: "instance-1", namespace: "alice", status: .running)
        running.idleStop = IdleStopPolicy(afterMinutes: 30)
        running.idleSince = at.addingTimeInterval(-1800)
        let stopped = IdleRule.idleStop(running, now: at, format: { _ in "then" })!
        let events = EventRule.instance(from: running, to: stopped, at: at)
        #expect(events.map(\.type) == [.instanceStatus, .instanceIdleStopped])
        #expect(events[1].data["afterMinutes"] == .number(30))
        // The next write of the stopping instance keeps the reason: not told twice.
        var next = stopped
        next.status = .stopped
        #expect(EventRule.instance(from: stopped, to: next, at: at).map(\.type) == [.instanceStatus])
    }

    @Test func aPurgeIsDeleted() {
        let gone = sampleInstance(name: "instance-1", namespace: "alice", status: .deleting)
        #expect(EventRule.instance(from: gone, to: nil, at: at).map(\.type) == [.instanceDeleted])
    }

    @Test func theWireIsOneLineOfJSONWithTheIdAsText() throws {
        let event = LatticeEvent(
            id: 42,
            namespace: "alice",
            time: at,
            type: .budgetThreshold,
            data: ["percent": .number(80), "spent": .string("400.00")]
        )
        let json = EventWire(event, format: { TimeFormatter().format($0) }).json
        #expect(!json.contains("\n"))
        #expect(json.contains(#""id":"42""#) && json.contains(#""percent":80"#) && !json.contains("instance"))
        let decoded = try JSONDecoder().decode(EventWire.self, from: Data(json.utf8))
        #expect(decoded.type == "budget.threshold" && decoded.time == "2027-01-15T08:00:00Z")
    }
}

@Suite(.timeLimit(.minutes(10))) struct WebhookRuleTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func delivery() -> WebhookDelivery {
        WebhookDelivery(
            webhook: Webhook(
                id: "wh-1",
                namespace: "alice",
                url: "https://example.com/hook",
                events: [.instanceStatus],
                secret: "s",
                createdAt: t0
            ),
            event: LatticeEvent(id: 7, namespace: "alice", time: t0, type: .instanceStatus, instance: "instance-1"),
            id: "whd-1"
        )
    }

    @Test func backoffDoublesUpToFifteenMinutes() {
        #expect((1...6).map { WebhookRule.backoff(afterAttempts: $0) } == [1, 2, 4, 8, 16, 32])
        #expect(WebhookRule.backoff(afterAttempts: 11) == 900)
        #expect(WebhookRule.backoff(afterAttempts: 500) == 900)
    }

    @Test func a2xxDeliversAndAnythingElseIsTriedAgain() {
        let first = WebhookRule.attempted(delivery(), .answered(500), now: t0)
        #expect(first.status == .pending && first.attempts == 1 && first.nextAttemptAt == t0.addingTimeInterval(1))
        #expect(first.lastResponseStatus == 500 && first.lastError.contains("500"))
        let second = WebhookRule.attempted(first, .failed("connection refused"), now: t0.addingTimeInterval(1))
        #expect(second.nextAttemptAt == t0.addingTimeInterval(3) && second.lastResponseStatus == nil)
        let done = WebhookRule.attempted(second, .answered(204), now: t0.addingTimeInterval(3))
        #expect(done.status == .delivered && done.deliveredAt == t0.addingTimeInterval(3) && done.lastError.isEmpty)
        #expect(
            WebhookRule.attempted(first, .answered(302), now: t0).status == .pending,
            "a redirect is not a delivery"
        )
    }

    @Test func retriesStopADayAfterTheEvent() {
        let late = WebhookRule.attempted(delivery(), .answered(503), now: t0.addingTimeInterval(86400 - 0.5))
        #expect(late.status == .failed && late.nextAttemptAt == nil)
    }

    @Test func theOrderingLineIsTheInstance() {
        #expect(delivery().orderingKey == "i:instance-1")
        #expect(LatticeEvent(namespace: "a", time: t0, type: .lowBalance).orderingKey == "n:")
    }
}

@Suite(.timeLimit(.minutes(10))) struct WebhookRequestTests {
    func request(_ json: String) throws -> WebhookRequest {
        try WebhookRequest(fields: JSONFields(JSONValue.parseBody(Data(json.utf8))))
    }

    @Test func aURLAndEventTypes() throws {
        let parsed = try request(
            #"{"url": "https://hooks.example.com/x?a=1", "events": ["instance.status", "image.ready"]}"#
        )
        #expect(parsed.host == "hooks.example.com" && parsed.events == [.instanceStatus, .imageReady])
        #expect(try request(#"{"url": "http://[::1]:9000/"}"#).host == "::1")
        #expect(try request(#"{"url": "http://h/", "events": ["*"]}"#).events == LatticeEvent.Kind.tenantKinds)
        #expect(try request(#"{"url": "http://h/"}"#).events == LatticeEvent.Kind.tenantKinds)
    }

    @Test(arguments: [
        #"{}"#,
        #"{"url": "ftp://example.com/"}"#,
        #"{"url": "example.com/hook"}"#,
        #"{"url": "https://user:pw@example.com/"}"#,
        #"{"url": "https://example.com/", "events": []}"#,
        #"{"url": "https://example.com/", "events": ["instance.exploded"]}"#,
        #"{"url": "https://example.com/", "events": [3]}"#,
        #"{"url": "https://example.com/", "events": "instance.status"}"#,
    ])
    func badBodiesAreRefusedNamingTheField(_ json: String) {
        #expect(throws: LatticeError.self) { try request(json) }
    }
}

@Suite(.timeLimit(.minutes(10))) struct AddressScopeTests {
    @Test func ipv4() {
        #expect(AddressScope.of([127, 0, 0, 1]) == .loopback)
        #expect(AddressScope.of([10, 1, 2, 3]) == .private)
        #expect(AddressScope.of([172, 16, 0, 1]) == .private)
        #expect(AddressScope.of([172, 32, 0, 1]) == .public)
        #expect(AddressScope.of([192, 168, 1, 1]) == .private)
        #expect(AddressScope.of([100, 64, 0, 1]) == .private)
        #expect(AddressScope.of([169, 254, 169, 254]) == .linkLocal)
        #expect(AddressScope.of([0, 0, 0, 0]) == .unspecified)
        #expect(AddressScope.of([224, 0, 0, 1]) == .multicast)
        #expect(AddressScope.of([93, 184, 216, 34]) == .public)
    }

    @Test func ipv6() {
        #expect(AddressScope.of(Array(repeating: 0, count: 15) + [1]) == .loopback)
        #expect(AddressScope.of(Array(repeating: 0, count: 16)) == .unspecified)
        #expect(AddressScope.of([0xfe, 0x80] + Array(repeating: 0, count: 14)) == .linkLocal)
        #expect(AddressScope.of([0xfd, 0x12] + Array(repeating: 0, count: 14)) == .private)
        #expect(AddressScope.of(Array(repeating: 0, count: 10) + [0xff, 0xff, 127, 0, 0, 1]) == .loopback)
        #expect(AddressScope.of([0x26, 0x06, 0x28, 0] + Array(repeating: 1, count: 12)) == .public)
    }
}

@Suite(.timeLimit(.minutes(10))) struct AlertRuleTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func budget(_ limit: String, alertAt: [Int] = [50, 80, 100]) -> Budget {
        Budget(namespace: "alice", monthlyLimit: Money(limit)!, alertAt: alertAt, action: .notify, updatedAt: now)
    }

    @Test func aWalletWithLessThanAnHourOfItsInstancesIsLowOnce() {
        let low = AlertReads(balance: Money("2.00")!, hourly: Money("2.50")!, raised: [])
        let told = AlertRule.decide(namespace: "alice", low, budget: nil, currency: "CNY", now: now)
        #expect(told.raise.keys.sorted() == [AlertRule.lowBalance])
        #expect(told.raise[AlertRule.lowBalance]?.data["balance"] == .string("2.00"))
        var again = low
        again.raised = [AlertRule.lowBalance]
        #expect(AlertRule.decide(namespace: "alice", again, budget: nil, currency: "CNY", now: now) == AlertDecision())
        let credited = AlertReads(balance: Money("100")!, hourly: Money("2.50")!, raised: [AlertRule.lowBalance])
        #expect(
            AlertRule.decide(namespace: "alice", credited, budget: nil, currency: "CNY", now: now).clear == [
                AlertRule.lowBalance
            ]
        )
        let idle = AlertReads(balance: .zero, hourly: .zero, raised: [])
        #expect(AlertRule.decide(namespace: "alice", idle, budget: nil, currency: "CNY", now: now).raise.isEmpty)
    }

    @Test func eachBudgetThresholdReachedIsToldOnceAMonth() {
        let reads = AlertReads(balance: Money("1000")!, hourly: .zero, raised: ["budget:2027-01:50"])
        let spend = AlertRule.BudgetSpend(budget: budget("100"), spent: Money("80.00")!, month: "2027-01")
        let told = AlertRule.decide(namespace: "alice", reads, budget: spend, currency: "CNY", now: now)
        #expect(told.raise.keys.sorted() == ["budget:2027-01:80"])
        let event = told.raise["budget:2027-01:80"]
        #expect(event?.type == .budgetThreshold && event?.data["percent"] == .number(80))
        #expect(event?.data["spent"] == .string("80.00") && event?.data["monthlyLimit"] == .string("100.00"))
        let below = AlertRule.BudgetSpend(budget: budget("100"), spent: Money("79.99")!, month: "2027-01")
        #expect(
            AlertRule.decide(namespace: "alice", reads, budget: below, currency: "CNY", now: now).raise.isEmpty
        )
        let nextMonth = AlertRule.BudgetSpend(budget: budget("100"), spent: Money("60")!, month: "2027-02")
        #expect(
            AlertRule.decide(namespace: "alice", reads, budget: nextMonth, currency: "CNY", now: now).raise.keys
                .sorted() == ["budget:2027-02:50"]
        )
    }

    @Test func theMonthLabelIsInTheServersZone() {
        let zone = TimeZone(identifier: "Asia/Shanghai")!
        let month = Budget.month(of: Date(timeIntervalSince1970: 1_800_000_000), timeZone: zone)
        #expect(AlertRule.monthLabel(month, timeZone: zone) == "2027-01")
    }
}

@Suite(.timeLimit(.minutes(10))) struct NodeEventTests {
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aChangeOfHealthIsToldOnceAndAHealthyNewNodeNever() {
        let drained = EventRule.node("n1", cluster: "c", from: .healthy, to: .draining, reason: "drained", at: at)
        #expect(drained?.type == .nodeDrained && drained?.namespace == LatticeEvent.nodes)
        #expect(drained?.data["node"] == .string("n1") && drained?.data["previous"] == .string("healthy"))
        #expect(
            EventRule.node("n1", cluster: "c", from: .unhealthy, to: .healthy, reason: "", at: at)?.type == .nodeHealthy
        )
        #expect(
            EventRule.node("n1", cluster: "c", from: nil, to: .unhealthy, reason: "down", at: at)?.type
                == .nodeUnhealthy
        )
        #expect(EventRule.node("n1", cluster: "c", from: nil, to: .healthy, reason: "", at: at) == nil)
        #expect(EventRule.node("n1", cluster: "c", from: .unhealthy, to: .unhealthy, reason: "still", at: at) == nil)
    }

    @Test func tenantsWebhooksCannotAskForNodeEvents() throws {
        #expect(throws: LatticeError.self) {
            try WebhookRequest(
                fields: JSONFields(JSONValue.parseBody(Data(#"{"url":"https://h/","events":["node.drained"]}"#.utf8)))
            )
        }
        #expect(!LatticeEvent.Kind.tenantKinds.contains(.nodeHealthy))
    }
}
