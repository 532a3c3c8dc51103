import Foundation

/// A namespace's webhook (SPEC §13): where its events are POSTed, which types, and the
/// secret each delivery is signed with (shown once, at registration).
public struct Webhook: Sendable, Codable, Equatable {
    /// The webhook's id (`wh-` and 8 random hex digits).
    public var id: String
    /// The namespace whose events it gets.
    public var namespace: String
    /// Where each delivery is POSTed (http or https, no user or password).
    public var url: String
    /// The event types sent, in `LatticeEvent.Kind` order.
    public var events: [LatticeEvent.Kind]
    /// The signing secret (`whsec_...`), sealed at rest; shown once, when registered.
    public var secret: String
    /// When it was registered.
    public var createdAt: Date

    /// A webhook as registered.
    public init(
        id: String,
        namespace: String,
        url: String,
        events: [LatticeEvent.Kind],
        secret: String,
        createdAt: Date
    ) {
        self.id = id
        self.namespace = namespace
        self.url = url
        self.events = events
        self.secret = secret
        self.createdAt = createdAt
    }

    /// Whether `event` goes to this webhook: its namespace's, and of a type it asked for.
    public func wants(_ event: LatticeEvent) -> Bool { event.namespace == namespace && events.contains(event.type) }
}

/// A `POST /webhooks` body: `{"url", "events": [...]}`. `events` left out (or `["*"]`)
/// means every type.
public struct WebhookRequest: Sendable, Equatable {
    /// The URL, parsed and checked.
    public var url: URL
    /// The URL's host, without an IPv6 address's brackets (what the address rule checks).
    public var host: String
    /// The event types asked for, in `LatticeEvent.Kind` order.
    public var events: [LatticeEvent.Kind]

    /// The longest URL accepted, in bytes.
    public static let maximumURLLength = 2048

    /// Reads and checks a body; every refusal names its field.
    public init(fields body: JSONFields) throws {
        let text = try body.requiredString("url").trimmingCharacters(in: .whitespaces)
        guard text.utf8.count <= Self.maximumURLLength else {
            throw LatticeError.invalidField("url", "must be at most \(Self.maximumURLLength) bytes")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
            let url = components.url
        else {
            throw LatticeError.invalidField("url", "must be an absolute http:// or https:// URL with a host")
        }
        guard components.user == nil, components.password == nil else {
            throw LatticeError.invalidField(
                "url",
                "must not carry a user name or password; the signature authenticates"
            )
        }
        self.url = url
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        guard let value = body.fields["events"], value != .null else {
            events = LatticeEvent.Kind.tenantKinds
            return
        }
        guard case .array(let items) = value, !items.isEmpty else {
            throw LatticeError.invalidField("events", "must be a non-empty array of event types, or [\"*\"]")
        }
        var chosen = Set<LatticeEvent.Kind>()
        for (index, item) in items.enumerated() {
            guard case .string(let name) = item else {
                throw LatticeError.invalidField("events[\(index)]", "must be an event type such as \"instance.status\"")
            }
            if name == "*" {
                chosen.formUnion(LatticeEvent.Kind.tenantKinds)
            } else if let kind = LatticeEvent.Kind(rawValue: name), LatticeEvent.Kind.tenantKinds.contains(kind) {
                chosen.insert(kind)
            } else {
                let known = LatticeEvent.Kind.tenantKinds.map(\.rawValue).joined(separator: ", ")
                throw LatticeError.invalidField(
                    "events[\(index)]",
                    "unknown event type \"\(name.prefix(60))\"; known: \(known)"
                )
            }
        }
        events = LatticeEvent.Kind.tenantKinds.filter(chosen.contains)
    }
}

/// One event's delivery to one webhook, and how it went.
public struct WebhookDelivery: Sendable, Codable, Equatable {
    /// Pending (queued or waiting to be tried again), delivered (a 2xx), failed (given up).
    public enum Status: String, Sendable, Codable { case pending, delivered, failed }

    /// The delivery's id.
    public var id: String
    /// The webhook it goes to.
    public var webhookID: String
    /// The webhook's namespace.
    public var namespace: String
    /// The event delivered (its number in the namespace's stream).
    public var eventID: Int64
    /// The event's type.
    public var eventType: LatticeEvent.Kind
    /// When the event happened; retries stop `WebhookRule.retryWindow` after it.
    public var eventTime: Date
    /// `LatticeEvent.orderingKey`: deliveries of one key go one at a time, in event order.
    public var orderingKey: String
    /// Where it stands.
    public var status: Status
    /// Attempts made so far.
    public var attempts: Int
    /// When it is tried next (nil once delivered or failed).
    public var nextAttemptAt: Date?
    /// When it was last tried (nil: not yet).
    public var lastAttemptAt: Date?
    /// The receiver's HTTP status at the last attempt (nil: it did not answer).
    public var lastResponseStatus: Int?
    /// Why the last attempt failed ("" when it did not).
    public var lastError: String
    /// When a receiver took it with a 2xx.
    public var deliveredAt: Date?

    /// A pending delivery of `event` to `webhook`, due at once.
    public init(webhook: Webhook, event: LatticeEvent, id: String) {
        self.id = id
        webhookID = webhook.id
        namespace = webhook.namespace
        eventID = event.id
        eventType = event.type
        eventTime = event.time
        orderingKey = event.orderingKey
        status = .pending
        attempts = 0
        nextAttemptAt = event.time
        lastAttemptAt = nil
        lastResponseStatus = nil
        lastError = ""
        deliveredAt = nil
    }
}

/// How deliveries go: which events a webhook gets, when a failed one is tried again, and
/// when it is given up.
public enum WebhookRule {
    /// Webhooks one namespace may register.
    public static let perNamespace = 20
    /// How long a receiver has to answer one delivery.
    public static let attemptTimeout: TimeInterval = 10
    /// Retries stop this long after the event (its retention: it is gone after that).
    public static let retryWindow: TimeInterval = LatticeEvent.retention
    /// The longest wait between two attempts.
    public static let maximumBackoff: TimeInterval = 15 * 60

    /// The wait after the `attempts`-th failed attempt: 1 s, 2 s, 4 s, ... up to 15 minutes.
    public static func backoff(afterAttempts attempts: Int) -> TimeInterval {
        min(maximumBackoff, pow(2, Double(max(0, min(attempts - 1, 20)))))
    }

    /// How an attempt ended: the receiver's status, or why there was none.
    public enum Outcome: Sendable, Equatable {
        /// The receiver answered with this HTTP status.
        case answered(Int)
        /// No answer: the connection, the timeout or the address rule, said why.
        case failed(String)
    }

    /// The delivery after an attempt at `now`: delivered on a 2xx; otherwise pending again
    /// after the backoff, or failed once that would be past the retry window.
    public static func attempted(_ delivery: WebhookDelivery, _ outcome: Outcome, now: Date) -> WebhookDelivery {
        var next = delivery
        next.attempts += 1
        next.lastAttemptAt = now
        switch outcome {
        case .answered(let status):
            next.lastResponseStatus = status
            if (200..<300).contains(status) {
                next.status = .delivered
                next.deliveredAt = now
                next.nextAttemptAt = nil
                next.lastError = ""
                return next
            }
            next.lastError = "the receiver answered \(status)"
        case .failed(let why):
            next.lastResponseStatus = nil
            next.lastError = String(why.prefix(300))
        }
        let retryAt = now.addingTimeInterval(backoff(afterAttempts: next.attempts))
        if retryAt > delivery.eventTime.addingTimeInterval(retryWindow) {
            next.status = .failed
            next.nextAttemptAt = nil
        } else {
            next.nextAttemptAt = retryAt
        }
        return next
    }

    /// The text the signature is made over: `"<t>.<body>"`.
    public static func signedText(time: Int64, body: String) -> String { "\(time).\(body)" }
}

/// What an IP address is, for the webhook rule that refuses to POST into the operator's own
/// network unless allowed (`--webhook-allow-private`).
public enum AddressScope: String, Sendable, Equatable {
    /// The scopes an address can be in: each but `public` is refused unless allowed.
    case loopback, `private`, linkLocal = "link-local", unspecified, multicast, `public`

    /// The scope of a 4- or 16-byte address (an IPv4-mapped IPv6 address as its IPv4).
    public static func of(_ bytes: [UInt8]) -> AddressScope {
        if bytes.count == 16 {
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                return of(Array(bytes[12..<16]))
            }
            if bytes[0..<15].allSatisfy({ $0 == 0 }) { return bytes[15] == 1 ? .loopback : .unspecified }
            if bytes[0] == 0xfe, bytes[1] & 0xc0 == 0x80 { return .linkLocal }
            if bytes[0] & 0xfe == 0xfc { return .private }  // unique local fc00::/7
            if bytes[0] == 0xff { return .multicast }
            return .public
        }
        guard bytes.count == 4 else { return .unspecified }
        switch (bytes[0], bytes[1]) {
        case (0, _): return .unspecified
        case (127, _): return .loopback
        case (10, _), (192, 168): return .private
        case (172, let b) where (16...31).contains(b): return .private
        case (100, let b) where (64...127).contains(b): return .private  // carrier-grade NAT
        case (169, 254): return .linkLocal
        case (let a, _) where a >= 224: return .multicast  // and 240/4, reserved
        default: return .public
        }
    }
}

/// A webhook as the API shows it; `secret` only in the answer to its registration.
public struct WebhookWire: Codable, Sendable, Equatable {
    /// The webhook's id.
    public var id: String
    /// Where deliveries are POSTed.
    public var url: String
    /// The event types it gets.
    public var events: [String]
    /// The signing secret, in the answer to its registration only.
    public var secret: String?
    /// When it was registered (RFC 3339).
    public var createdAt: String

    /// The webhook as shown; its secret only when `showingSecret`.
    public init(_ webhook: Webhook, showingSecret: Bool, format: (Date) -> String) {
        id = webhook.id
        url = webhook.url
        events = webhook.events.map(\.rawValue)
        secret = showingSecret ? webhook.secret : nil
        createdAt = format(webhook.createdAt)
    }
}

/// A delivery as `GET /webhooks/{id}/deliveries` shows it.
public struct WebhookDeliveryWire: Codable, Sendable, Equatable {
    /// The delivery's id.
    public var id: String
    /// The event's id, as the event stream numbers it.
    public var eventId: String
    /// The event's type.
    public var type: String
    /// `pending`, `delivered` or `failed`.
    public var status: String
    /// Attempts made so far.
    public var attempts: Int
    /// When it was last tried (RFC 3339, "" if not yet).
    public var lastAttemptAt: String
    /// When it is tried next (RFC 3339, "" once delivered or failed).
    public var nextAttemptAt: String
    /// The receiver's HTTP status at the last attempt; 0 when it did not answer (or none yet).
    public var responseStatus: Int
    /// Why the last attempt failed ("" when it did not).
    public var error: String
    /// When it was delivered (RFC 3339, "" if not).
    public var deliveredAt: String

    /// The delivery as shown, its times in `format`.
    public init(_ delivery: WebhookDelivery, format: (Date?) -> String) {
        id = delivery.id
        eventId = String(delivery.eventID)
        type = delivery.eventType.rawValue
        status = delivery.status.rawValue
        attempts = delivery.attempts
        lastAttemptAt = format(delivery.lastAttemptAt)
        nextAttemptAt = format(delivery.nextAttemptAt)
        responseStatus = delivery.lastResponseStatus ?? 0
        error = delivery.lastError
        deliveredAt = format(delivery.deliveredAt)
    }
}
