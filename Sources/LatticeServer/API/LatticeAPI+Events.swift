import Foundation
import LatticeDomain
import LatticeStore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

// Events and webhooks (SPEC §13): where a stream starts, and the webhooks' registrations.
extension LatticeAPI {
    /// The number after which a namespace's stream starts: the `Last-Event-ID` it resumes
    /// from, or (none given) the newest event, so a new stream tells what happens from now.
    public func eventStart(principal: Principal, lastEventID: String?) async throws -> Int64 {
        try await eventStart(namespace: principal.namespace, lastEventID: lastEventID)
    }

    /// Where the events live that `GET /events` (nodes: `GET /admin/events`, admins only) tells.
    public func eventNamespace(principal: Principal, nodes: Bool) throws -> String {
        guard nodes else { return principal.namespace }
        try requireAdmin(principal)
        return LatticeEvent.nodes
    }

    func eventStart(namespace: String, lastEventID: String?) async throws -> Int64 {
        guard let text = lastEventID?.trimmingCharacters(in: .whitespaces), !text.isEmpty else {
            return try await store.lastEventID(namespace: namespace)
        }
        guard let id = Int64(text), id >= 0 else {
            throw LatticeError.invalidField(
                "Last-Event-ID",
                "must be the id of an event this stream sent, such as \"42\""
            )
        }
        // An id past the newest (from another store, say) resumes from now, not from a
        // number the namespace may take long to reach.
        return min(id, try await store.lastEventID(namespace: namespace))
    }

    /// `GET /events?follow=false`: the events kept after `after` (default: all kept), oldest
    /// first, at most `limit` (default and most 500).
    public func eventList(namespace: String, after: String?, limit text: String?) async throws -> EventList {
        let start = try await eventStart(namespace: namespace, lastEventID: after ?? "0")
        guard let limit = Int(text ?? "500"), (1...500).contains(limit) else {
            throw LatticeError.invalidField("limit", "must be a whole number from 1 to 500")
        }
        let events = try await store.events(namespace: namespace, after: start, limit: limit + 1)
        let shown = events.prefix(limit)
        return EventList(
            events: shown.map { EventWire($0, format: configuration.time.format) },
            lastEventId: String(shown.last?.id ?? start),
            hasMore: events.count > limit
        )
    }

    public func createWebhook(principal: Principal, body: JSONValue) async throws -> WebhookWire {
        let request = try WebhookRequest(fields: try JSONFields(body))
        try await WebhookAddresses.check(host: request.host, allowPrivate: configuration.webhookAllowPrivate)
        var rng = SystemRandomNumberGenerator()
        let webhook = Webhook(
            id: "wh-" + Identifiers.uuid(using: &rng).prefix(8).lowercased(),
            namespace: principal.namespace,
            url: request.url.absoluteString,
            events: request.events,
            secret: "whsec_"
                + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }
                .joined(),
            createdAt: clock.now()
        )
        let wire = WebhookWire(webhook, showingSecret: true, format: configuration.time.format)
        IdempotencyMiddleware.expect(wire)
        try await store.createWebhook(webhook)
        return wire
    }

    public func webhooks(principal: Principal, page: PageRequest) async throws -> Page<WebhookWire> {
        let all = try await store.webhooks(namespace: principal.namespace)
        return Self.page(all.map { WebhookWire($0, showingSecret: false, format: configuration.time.format) }, page)
    }

    func ownWebhook(_ principal: Principal, _ id: String) async throws -> Webhook {
        guard let webhook = try await store.webhooks(namespace: principal.namespace).first(where: { $0.id == id })
        else { throw LatticeError.notFound("webhook '\(id.prefix(64))'") }
        return webhook
    }

    public func webhook(principal: Principal, id: String) async throws -> WebhookWire {
        WebhookWire(try await ownWebhook(principal, id), showingSecret: false, format: configuration.time.format)
    }

    public func deleteWebhook(principal: Principal, id: String) async throws {
        guard try await store.deleteWebhook(namespace: principal.namespace, id: id) else {
            throw LatticeError.notFound("webhook '\(id.prefix(64))'")
        }
    }

    public func webhookDeliveries(
        principal: Principal,
        id: String,
        page: PageRequest
    ) async throws -> Page<WebhookDeliveryWire> {
        let webhook = try await ownWebhook(principal, id)
        let (items, total) = try await store.deliveries(webhookID: webhook.id, page: page)
        return Self.page(
            items.map { WebhookDeliveryWire($0, format: configuration.time.format) },
            total: total,
            page
        )
    }
}

/// Where a webhook's host resolves, and whether Lattice may POST there: loopback, private,
/// link-local and other non-public addresses are refused unless the operator allows them.
/// Checked at registration and again before each delivery, since DNS can change.
enum WebhookAddresses {
    static func check(host: String, allowPrivate: Bool) async throws {
        let addresses = await resolve(host)
        guard !addresses.isEmpty else {
            throw LatticeError.invalidField("url", "host '\(host.prefix(100))' does not resolve to an address")
        }
        guard !allowPrivate else { return }
        for address in addresses {
            let scope = AddressScope.of(address)
            if scope != .public {
                throw LatticeError.invalidField(
                    "url",
                    "host '\(host.prefix(100))' resolves to \(text(address)), a \(scope.rawValue) address; webhooks "
                        + "go to public addresses only (the operator allows others with --webhook-allow-private)"
                )
            }
        }
    }

    /// The host's IPv4 and IPv6 addresses (an address literal is its own).
    /// `getaddrinfo` blocks: it runs on NIO's thread pool, not on a task's thread.
    static func resolve(_ host: String) async -> [[UInt8]] {
        (try? await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
            defer { freeaddrinfo(first) }
            var addresses: [[UInt8]] = []
            var next: UnsafeMutablePointer<addrinfo>? = first
            while let info = next {
                if let address = info.pointee.ai_addr {
                    switch Int32(info.pointee.ai_family) {
                    case AF_INET:
                        address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                            var raw = $0.pointee.sin_addr
                            addresses.append(withUnsafeBytes(of: &raw) { Array($0) })
                        }
                    case AF_INET6:
                        address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                            var raw = $0.pointee.sin6_addr
                            addresses.append(withUnsafeBytes(of: &raw) { Array($0) })
                        }
                    default: break
                    }
                }
                next = info.pointee.ai_next
            }
            return addresses
        }) ?? []
    }

    static func text(_ address: [UInt8]) -> String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: address.count, by: 2).map {
            String(format: "%x", Int(address[$0]) << 8 | Int(address[$0 + 1]))
        }.joined(separator: ":")
    }
}
