import Foundation
import LatticeDomain
import Testing

@testable import LatticeServer

@Suite(.timeLimit(.minutes(10))) struct EventsServerTests {
    @Test func theSignatureIsHMACSHA256OfTimeDotBody() {
        // python3: hmac.new(b"whsec_test", b'1800000000.{"id":"1"}', hashlib.sha256).hexdigest()
        #expect(
            WebhookSender.signature(secret: "whsec_test", time: 1_800_000_000, body: #"{"id":"1"}"#)
                == "t=1800000000,v1=15d2177989c694fad512568783fd1e0c20e1c480f7ab63182bf13486b475c540"
        )
    }

    @Test func aRingBeforeTheWaitIsKept() async {
        let bell = Doorbell()
        bell.ring()
        #expect(await bell.wait(timeout: .seconds(5)) == .rung)
        #expect(await bell.wait(timeout: .milliseconds(20)) == .timedOut, "one ring wakes one wait")
    }

    @Test func aRingWakesAWaiterAndCloseEndsIt() async {
        let bell = Doorbell()
        async let woken = bell.wait(timeout: .seconds(30))
        try? await Task.sleep(for: .milliseconds(20))
        bell.ring()
        #expect(await woken == .rung)
        async let closed = bell.wait(timeout: .seconds(30))
        try? await Task.sleep(for: .milliseconds(20))
        bell.close()
        #expect(await closed == .closed)
        #expect(await bell.wait(timeout: .seconds(30)) == .closed, "closed stays closed")
    }

    @Test func theHubRingsANamespaceAndTheSenderOnly() async {
        let hub = EventHub()
        let alice = hub.subscribe("alice")
        let bob = hub.subscribe("bob")
        let sender = hub.subscribe(EventHub.everyNamespace)
        #expect(hub.openStreams == 2)
        hub.committed("alice")
        #expect(await alice.wait(timeout: .seconds(5)) == .rung)
        #expect(await sender.wait(timeout: .seconds(5)) == .rung)
        #expect(await bob.wait(timeout: .milliseconds(20)) == .timedOut)
        hub.unsubscribe("bob", bob)
        #expect(hub.openStreams == 1)
    }

    @Test func oneHeartbeatWakesEveryWaitingStreamButNotTheSender() async {
        let hub = EventHub()
        let alice = hub.subscribe("alice")
        let sender = hub.subscribe(EventHub.everyNamespace)
        async let beaten = alice.wait()
        async let senderWoken = sender.wait(timeout: .seconds(30))
        // The heartbeat service, every 10 ms, until the stream's wait (no timer of its own) ends.
        let heartbeat = Task { try await EventHeartbeat(hub: hub, interval: .milliseconds(10)).run() }
        #expect(await beaten == .timedOut)
        try? await Task.sleep(for: .milliseconds(50))
        hub.committed("bob")
        #expect(await senderWoken == .rung, "the beats left the sender waiting")
        heartbeat.cancel()
        // A beat while nobody waits is not kept: the next wait waits for a ring.
        hub.beat()
        hub.committed("alice")
        #expect(await alice.wait() == .rung)
    }

    @Test func eventsAreSSEMessages() {
        let event = LatticeEvent(id: 3, namespace: "alice", time: .init(timeIntervalSince1970: 0), type: .imageReady)
        let text = EventStream.text([event], format: { _ in "T" })
        #expect(text == "id: 3\ndata: {\"data\":{},\"id\":\"3\",\"time\":\"T\",\"type\":\"image.ready\"}\n\n")
    }

    @Test func loopbackIsRefusedUnlessAllowed() async throws {
        await #expect(throws: LatticeError.self) {
            try await WebhookAddresses.check(host: "127.0.0.1", allowPrivate: false)
        }
        await #expect(throws: LatticeError.self) { try await WebhookAddresses.check(host: "::1", allowPrivate: false) }
        await #expect(throws: LatticeError.self) {
            try await WebhookAddresses.check(host: "localhost", allowPrivate: false)
        }
        try await WebhookAddresses.check(host: "127.0.0.1", allowPrivate: true)
        #expect(WebhookAddresses.text([127, 0, 0, 1]) == "127.0.0.1")
    }
}
