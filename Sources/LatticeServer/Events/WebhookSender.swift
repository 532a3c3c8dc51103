import AsyncHTTPClient
import Crypto
import Foundation
import LatticeDomain
import LatticeStore
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// Sends webhook deliveries (SPEC §13), on the leading replica only: queues a delivery of
/// each new event a webhook wants (woken by the hub as events commit, anywhere), POSTs the
/// deliveries that are due and first in their line (one instance's events in order, other
/// lines beside them), signed, and records each attempt; a failed one is tried again after
/// `WebhookRule.backoff` until a day after its event. Every write is fenced, so a replica that
/// lost the lease records nothing; a delivery sent just before is sent again by the next
/// leader (at least once).
final class WebhookSender: Service, Sendable {
    let store: any Store
    let hub: EventHub
    let clock: any WallClock
    let leadership: Leadership?
    let allowPrivate: Bool
    let format: @Sendable (Date) -> String
    let logger: Logger
    /// How often due retries are looked for when no event wakes the sender.
    let pollInterval: Duration
    /// One client for the process, made once (a client must be shut down before it goes, and
    /// this one never goes): a redirect could lead anywhere, past the address check, so a 3xx
    /// is an answer, not a delivery.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(Int64(WebhookRule.attemptTimeout)))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    init(
        store: any Store,
        hub: EventHub,
        clock: any WallClock,
        leadership: Leadership?,
        allowPrivate: Bool,
        format: @escaping @Sendable (Date) -> String,
        logger: Logger,
        pollInterval: Duration = .seconds(1)
    ) {
        self.store = store
        self.hub = hub
        self.clock = clock
        self.leadership = leadership
        self.allowPrivate = allowPrivate
        self.format = format
        self.logger = logger
        self.pollInterval = pollInterval
    }

    func run() async throws {
        let bell = hub.subscribe(EventHub.everyNamespace)
        await cancelWhenGracefulShutdown {
            // Events are queued when they commit (the bell) and once on taking the lead; the
            // poll between rings only looks for retries that fell due.
            var queue = true
            while !Task.isCancelled {
                var busy = false
                if self.leadership?.isLeader ?? true {
                    do {
                        busy = try await self.pass(queue: queue)
                        queue = false
                    } catch {
                        self.logger.warning("webhook pass failed; will retry", metadata: ["error": "\(error)"])
                    }
                } else {
                    queue = true
                }
                if busy { continue }
                switch await bell.wait(timeout: self.pollInterval) {
                case .rung: queue = true
                case .timedOut: break
                case .closed: return
                }
            }
        }
        hub.unsubscribe(EventHub.everyNamespace, bell)
    }

    /// Queues what is new (with `queue`) and sends what is due; true when a delivery went
    /// (the next in its line may be due at once).
    func pass(queue: Bool) async throws -> Bool {
        let webhooks = try await store.allWebhooks()
        // A delivery whose webhook is gone is not sent (below): with none, nothing is.
        guard !webhooks.isEmpty else { return false }
        if queue {
            for webhook in webhooks {
                while try await store.queueDeliveries(webhookID: webhook.id, limit: 500, newID: Self.newID) == 500 {}
            }
        }
        let due = try await store.dueDeliveries(now: clock.now(), limit: 100)
        guard !due.isEmpty else { return false }
        let byID = Dictionary(webhooks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let byWebhook = Dictionary(grouping: due, by: { $0.0.webhookID })
        return try await withThrowingTaskGroup(of: Bool.self) { group in
            for (id, deliveries) in byWebhook {
                guard let webhook = byID[id] else { continue }
                group.addTask {
                    var sent = false
                    for (delivery, event) in deliveries {
                        sent = try await self.attempt(delivery, event, webhook) || sent
                    }
                    return sent
                }
            }
            var any = false
            for try await sent in group { any = any || sent }
            return any
        }
    }

    /// One attempt, recorded; true when it was delivered.
    func attempt(_ delivery: WebhookDelivery, _ event: LatticeEvent?, _ webhook: Webhook) async throws -> Bool {
        let outcome: WebhookRule.Outcome
        if let event {
            outcome = await post(EventWire(event, format: format).json, to: webhook, delivery)
        } else {
            outcome = .failed("the event is past its retention")
        }
        var next = WebhookRule.attempted(delivery, outcome, now: clock.now())
        if event == nil {
            next.status = .failed
            next.nextAttemptAt = nil
        }
        try await store.recordDelivery(next)
        if next.status != .delivered {
            logger.info(
                "webhook delivery failed",
                metadata: [
                    "webhook": "\(webhook.id)", "event": "\(delivery.eventID)", "attempts": "\(next.attempts)",
                    "error": "\(next.lastError)", "status": "\(next.status.rawValue)",
                ]
            )
        }
        return next.status == .delivered
    }

    func post(_ body: String, to webhook: Webhook, _ delivery: WebhookDelivery) async -> WebhookRule.Outcome {
        guard let url = URL(string: webhook.url), let host = url.host else { return .failed("the URL has no host") }
        do {
            try await WebhookAddresses.check(
                host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host,
                allowPrivate: allowPrivate
            )
        } catch let error as LatticeError {
            return .failed(error.message)
        } catch {
            return .failed("\(error)")
        }
        var request = HTTPClientRequest(url: webhook.url)
        request.method = .POST
        let time = Int64(clock.now().timeIntervalSince1970)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Lattice-Webhook/\(LatticeVersion.current)")
        request.headers.add(
            name: "Lattice-Signature",
            value: Self.signature(secret: webhook.secret, time: time, body: body)
        )
        request.headers.add(name: "Lattice-Event-Id", value: String(delivery.eventID))
        request.headers.add(name: "Lattice-Event-Type", value: delivery.eventType.rawValue)
        request.headers.add(name: "Lattice-Delivery", value: delivery.id)
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await Self.client.execute(request, timeout: .seconds(Int64(WebhookRule.attemptTimeout)))
            // Read (and drop) a little of the answer so the connection can be kept.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            return .answered(Int(response.status.code))
        } catch {
            return .failed("no answer: \(error)")
        }
    }

    /// `Lattice-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
    static func signature(secret: String, time: Int64, body: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data(WebhookRule.signedText(time: time, body: body).utf8),
            using: SymmetricKey(data: Data(secret.utf8))
        )
        return "t=\(time),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    @Sendable static func newID() -> String {
        var rng = SystemRandomNumberGenerator()
        return "whd-" + Identifiers.uuid(using: &rng).prefix(13).lowercased()
    }
}
