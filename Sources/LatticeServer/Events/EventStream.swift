import Foundation
import Hummingbird
import LatticeDomain
import LatticeStore
import ServiceLifecycle

/// `GET /mdc/api/v1/events` (SPEC §13): a namespace's events as Server-Sent Events, each
/// `id: <n>` and `data: <EventWire JSON>`, from the event after `start`; a comment as a
/// heartbeat when nothing happened for a while. The stream reads the store's outbox, woken by
/// the hub as events commit on any replica, so what it sends is what committed, in order,
/// and a client that resumes with `Last-Event-ID` (after a reconnect, a restart or a move to
/// another replica) gets the rest.
enum EventStream {
    /// Events read from the store at a time.
    static let batch = 200

    static func response(
        namespace: String,
        after start: Int64,
        store: any Store,
        hub: EventHub,
        format: @escaping @Sendable (Date) -> String
    ) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-cache"
        headers[.accelBuffering] = "no"
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                let bell = hub.subscribe(namespace)
                defer { hub.unsubscribe(namespace, bell) }
                // Sent at once, so the client knows it is connected (and the proxy flushes).
                try await writer.write(ByteBuffer(string: "retry: 2000\n: connected\n\n"))
                var cursor = start
                // The server waits for its responses to end before it stops: a stream ends then.
                try await withGracefulShutdownHandler {
                    var read = true
                    reading: while !Task.isCancelled {
                        if read {
                            let events = try await store.events(namespace: namespace, after: cursor, limit: batch)
                            if let last = events.last {
                                try await writer.write(ByteBuffer(string: text(events, format: format)))
                                cursor = last.id
                                if events.count == batch { continue }
                            }
                        }
                        // Only a ring means something committed: a quiet stream's heartbeat
                        // (the hub's, for all streams at once) costs no read.
                        switch await bell.wait() {
                        case .rung: read = true
                        case .timedOut:
                            read = false
                            try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                        case .closed: break reading
                        }
                    }
                } onGracefulShutdown: {
                    bell.close()
                }
                try await writer.finish(nil)
            }
        )
    }

    /// Events as SSE messages.
    static func text(_ events: [LatticeEvent], format: (Date) -> String) -> String {
        var out = ""
        for event in events {
            out += "id: \(event.id)\ndata: \(EventWire(event, format: format).json)\n\n"
        }
        return out
    }
}
