import AsyncHTTPClient
import Foundation
import LatticeDomain
import NIOCore

/// Reads Server-Sent Events from text as it arrives, in pieces cut anywhere: each complete
/// message's `id` and `data` (several `data:` lines joined by newlines); comments and other
/// fields are dropped.
public struct ServerSentEvents: Sendable {
    public struct Message: Sendable, Equatable {
        public var id: String?
        public var data: String
    }

    private var pending = ""
    private var id: String?
    private var data: [String] = []

    public init() {}

    /// The messages that `chunk` completes.
    public mutating func feed(_ chunk: String) -> [Message] {
        pending += chunk
        var messages: [Message] = []
        while let newline = pending.firstIndex(where: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            let line = String(pending[..<newline])
            pending = String(pending[pending.index(after: newline)...])
            if line.isEmpty {
                if !data.isEmpty { messages.append(Message(id: id, data: data.joined(separator: "\n"))) }
                id = nil
                data = []
            } else if line.hasPrefix(":") {
                continue
            } else {
                let (field, value) = Self.field(line)
                switch field {
                case "id": id = value
                case "data": data.append(value)
                default: break
                }
            }
        }
        return messages
    }

    static func field(_ line: String) -> (String, String) {
        guard let colon = line.firstIndex(of: ":") else { return (line, "") }
        var value = line[line.index(after: colon)...]
        if value.first == " " { value = value.dropFirst() }
        return (String(line[..<colon]), String(value))
    }
}

extension LatticeClient {
    /// `GET /events`: the namespace's events as they happen, from the one after `after` (nil:
    /// from now). A lost connection is opened again from the last event received, so nothing
    /// is missed while the server keeps it (24 h). Ends with an error the server answers
    /// (`404` from a server without events: fall back to polling), or when the consumer's
    /// task is cancelled.
    ///
    /// `nodes`: the admins' node events (`GET /admin/events`) instead of the namespace's.
    public func events(after: Int64? = nil, nodes: Bool = false) -> EventStream {
        EventStream(client: self, after: after, nodes: nodes)
    }
    /// The stream's response once its head arrived (so events from here on are not missed),
    /// or the server's error.
    func openEvents(after: Int64?, nodes: Bool = false) async throws -> HTTPClientResponse {
        let path = Self.v1 + (nodes ? "/admin/events" : "/events")
        var request = HTTPClientRequest(url: baseURL.appendingPathComponent(path).absoluteString)
        request.headers.add(name: "Authorization", value: "bearer \(token)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let namespace { request.headers.add(name: "namespace", value: namespace) }
        if let after { request.headers.add(name: "Last-Event-ID", value: String(after)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .hours(24 * 365))
        guard response.status.code == 200 else {
            let body = try await response.body.collect(upTo: 1 << 20)
            throw LatticeAPIError(status: Int(response.status.code), body: Data(body.readableBytesView))
        }
        return response
    }

    /// Waits on the event stream for `name` to reach `status` (nil: to be deleted): the stream
    /// is opened first, then the instance read once, then each of its changes is told as it
    /// commits. Nil when the server has no stream (an older one): the caller polls.
    func waitOnEvents(
        cluster: String,
        name: String,
        _ status: InstanceStatus?,
        progress: (@Sendable (InstanceWire) -> Void)?
    ) async throws -> InstanceWire?? {
        let response: HTTPClientResponse
        do {
            response = try await openEvents(after: nil)
        } catch let error as LatticeAPIError where error.status == 404 || error.status == 405 {
            return .none
        }
        var last: String?
        func check() async throws -> InstanceWire?? {
            let current: InstanceWire
            do {
                current = try await instance(cluster: cluster, name: name)
            } catch let error as LatticeAPIError where error.status == 404 && status == nil {
                return .some(nil)
            }
            if current.status != last {
                last = current.status
                progress?(current)
            }
            if current.status == status?.rawValue { return .some(current) }
            if current.status == InstanceStatus.failed.rawValue, status != .failed {
                throw LatticeAPIError(
                    status: 409,
                    code: "InstanceFailed",
                    message: "\(name) failed: \(current.statusReason)"
                )
            }
            return .none
        }
        if let done = try await check() { return .some(done) }
        var parser = ServerSentEvents()
        for try await part in response.body {
            for message in parser.feed(String(buffer: part)) {
                guard let event = try? decode(EventWire.self, Data(message.data.utf8)), event.instance == name
                else { continue }
                if event.type == LatticeEvent.Kind.instanceDeleted.rawValue, status == nil { return .some(nil) }
                if event.type == LatticeEvent.Kind.instanceStatus.rawValue, let done = try await check() {
                    return .some(done)
                }
            }
        }
        // The stream ended (the server restarted): the caller polls for the rest.
        return .none
    }
}

extension LatticeClient {
    /// `GET /events?follow=false`: the events kept after `after` (nil: all kept), oldest first.
    public func eventList(after: Int64? = nil, limit: Int = 500, nodes: Bool = false) async throws -> EventList {
        var query = ["follow": "false", "limit": String(limit)]
        if let after { query["lastEventId"] = String(after) }
        return try await get(EventList.self, Self.v1 + (nodes ? "/admin/events" : "/events"), query: query)
    }

    /// `POST /webhooks`; the answer's `secret` is the only time it is shown. `events` nil: every type.
    public func createWebhook(url: String, events: [String]? = nil) async throws -> WebhookWire {
        struct Body: Encodable, Sendable { var url: String; var events: [String]? }
        return try decode(
            WebhookWire.self,
            try await send("POST", Self.v1 + "/webhooks", body: Body(url: url, events: events), idempotent: false)
        )
    }

    public func webhooks(page: PageRequest = PageRequest()) async throws -> Page<WebhookWire> {
        try await get(Page<WebhookWire>.self, Self.v1 + "/webhooks", query: Self.pageQuery(page))
    }

    public func deleteWebhook(id: String) async throws {
        _ = try await send("DELETE", Self.v1 + "/webhooks/\(id)", idempotent: false)
    }

    public func webhookDeliveries(
        id: String,
        page: PageRequest = PageRequest()
    ) async throws -> Page<
        WebhookDeliveryWire
    > {
        try await get(
            Page<WebhookDeliveryWire>.self,
            Self.v1 + "/webhooks/\(id)/deliveries",
            query: Self.pageQuery(page)
        )
    }
}

/// The events of `LatticeClient.events`, read as the consumer asks for them: the iterator
/// holds the connection, and each `next()` reads from it (no task runs ahead of the consumer,
/// and nothing is buffered beyond what one read brought).
public struct EventStream: AsyncSequence, Sendable {
    public typealias Element = EventWire

    let client: LatticeClient
    let after: Int64?
    let nodes: Bool

    public func makeAsyncIterator() -> Iterator { Iterator(client: client, last: after, nodes: nodes) }

    public struct Iterator: AsyncIteratorProtocol {
        let client: LatticeClient
        var last: Int64?
        let nodes: Bool
        var delay = Duration.milliseconds(250)
        var body: HTTPClientResponse.Body.AsyncIterator?
        var parser = ServerSentEvents()
        var ready: [EventWire] = []

        init(client: LatticeClient, last: Int64?, nodes: Bool) {
            self.client = client
            self.last = last
            self.nodes = nodes
        }

        /// The next event; nil once the consumer's task is cancelled.
        public mutating func next() async throws -> EventWire? {
            while !Task.isCancelled {
                if !ready.isEmpty { return ready.removeFirst() }
                do {
                    if body == nil {
                        body = try await client.openEvents(after: last, nodes: nodes).body.makeAsyncIterator()
                        parser = ServerSentEvents()
                        delay = .milliseconds(250)
                    }
                    if let part = try await body?.next() {
                        for message in parser.feed(String(buffer: part)) {
                            let event = try client.decode(EventWire.self, Data(message.data.utf8))
                            last = Int64(event.id) ?? last
                            ready.append(event)
                        }
                        continue
                    }
                } catch let error as LatticeAPIError {
                    throw error
                } catch {
                    if Task.isCancelled { break }
                }
                // The server ended the stream (a restart) or the connection was lost: again.
                body = nil
                try? await Task.sleep(for: delay)
                delay = Swift.min(delay * 2, .seconds(5))
            }
            return nil
        }
    }
}
