import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing

@testable import LatticeServer

/// SPEC §10: request ids, one JSON log line per request, `/metrics` by route template,
/// the version on `/healthz`.
@Suite(.timeLimit(.minutes(10))) struct ObservabilityTests {
    /// Lines a `JSONLogHandler` wrote, kept in memory.
    final class Lines: Sendable {
        let all = Mutex<[String]>([])
        func append(_ line: String) { all.withLock { $0.append(line) } }
        var objects: [[String: String]] {
            all.withLock { $0 }.compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String]
            }
        }
    }

    static func observedRouter(
        _ server: TestServer,
        lines: Lines,
        metrics: ServerMetrics
    )
        -> Router<LatticeRequestContext>
    {
        var logger = Logger(label: "lattice") { JSONLogHandler(label: $0, write: lines.append) }
        logger.logLevel = .info
        return CompositionRoot.buildRouter(
            api: server.api,
            store: server.store,
            clock: server.clock,
            readiness: Readiness(),
            metrics: metrics,
            requestLogger: logger
        )
    }

    @Test func healthzSaysTheVersion() async throws {
        let server = try await TestServer()
        try await server.test { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: String]
                #expect(body == ["status": "ok", "version": LatticeVersion.current])
            }
        }
    }

    @Test func everyAnswerCarriesARequestID() async throws {
        let server = try await TestServer()
        try await server.test { client in
            var seen: Set<String> = []
            for uri in ["/healthz", "/mdc/api/v1/regions", "/no/such/route"] {
                try await client.execute(uri: uri, method: .get) { response in
                    let id = try #require(response.headers[.requestID])
                    #expect(id.count == 32 && id.allSatisfy(\.isHexDigit))
                    seen.insert(id)
                }
            }
            #expect(seen.count == 3, "each request gets an id of its own")
            var given = headers()
            given[.requestID] = "client-chosen.id:42"
            try await client.execute(uri: "/mdc/api/v1/regions", method: .get, headers: given) { response in
                #expect(response.headers[.requestID] == "client-chosen.id:42")
            }
            for bad in [String(repeating: "a", count: 129), "has space", "tab\tin"] {
                var fields = headers()
                fields[.requestID] = bad
                try await client.execute(uri: "/healthz", method: .get, headers: fields) { response in
                    #expect(response.headers[.requestID] != bad)
                    #expect(response.headers[.requestID]?.count == 32)
                }
            }
        }
    }

    @Test func oneJSONLinePerRequestWithoutSecrets() async throws {
        let server = try await TestServer()
        let lines = Lines()
        let router = Self.observedRouter(server, lines: lines, metrics: ServerMetrics())
        try await Application(router: router).test(.router) { client in
            var fields = headers()
            fields[.requestID] = "trace-1"
            try await client.execute(uri: "/mdc/api/v1/regions", method: .get, headers: fields) { _ in }
            try await client.execute(
                uri: "/mdc/api/v1/clusters/host-cluster/instances/instance-00000000",
                method: .get,
                headers: headers()
            ) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/mdc/api/v1/regions", method: .get, headers: headers("wrong")) {
                #expect($0.status == .unauthorized)
            }
        }
        let requests = lines.objects.filter { $0["message"] == "request" }
        #expect(requests.count == 3)
        let first = try #require(requests.first)
        #expect(first["requestId"] == "trace-1")
        #expect(first["method"] == "GET")
        #expect(first["route"] == "/mdc/api/v1/regions")
        #expect(first["status"] == "200")
        #expect(first["namespace"] == "admin")
        #expect(first["remoteAddress"] != nil)
        #expect(Double(first["durationMs"] ?? "") != nil)
        #expect(first["time"] != nil && first["level"] == "info")
        // The route is the template, never the instance's name.
        #expect(requests[1]["route"]?.contains("instance-00000000") == false)
        #expect(requests[1]["status"] == "404")
        #expect(requests[2]["status"] == "401" && requests[2]["namespace"] == "")
        let text = lines.all.withLock { $0.joined(separator: "\n") }
        #expect(!text.contains(TestServer.adminToken) && !text.contains("wrong"))
    }

    @Test func metricsCountRequestsByRouteTemplate() async throws {
        let server = try await TestServer()
        let metrics = ServerMetrics()
        let router = Self.observedRouter(server, lines: Lines(), metrics: metrics)
        try await Application(router: router).test(.router) { client in
            for name in ["instance-00000001", "instance-00000002"] {
                try await client.execute(
                    uri: "/mdc/api/v1/clusters/host-cluster/instances/\(name)",
                    method: .get,
                    headers: headers()
                ) { _ in }
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                let counted = text.split(separator: "\n").filter {
                    $0.hasPrefix("lattice_http_requests_total{") && $0.contains("status=\"404\"")
                }
                #expect(counted.count == 1, "both names count under one route: \(counted)")
                #expect(counted.first?.hasSuffix(" 2") == true)
                #expect(!text.contains("instance-00000001"))
                for series in [
                    "lattice_http_request_duration_seconds_bucket{",
                    "lattice_build_info{version=\"\(LatticeVersion.current)\"} 1",
                    "lattice_gpus{cluster=\"host-cluster\",model=\"4090\",state=\"free\"}",
                    "lattice_gpus{cluster=\"host-cluster\",model=\"4090\",state=\"used\"} 0",
                    "lattice_instances{status=\"Running\"}", "lattice_reconcile_queue_depth",
                    "lattice_gateway_sessions{kind=\"ssh\"}", "lattice_gateway_sessions{kind=\"http\"}",
                ] {
                    #expect(text.contains(series), "\(series)")
                }
            }
        }
    }

    @Test func logLinesEscapeWhatTheyCarry() throws {
        let line = JSONLogHandler.line([("message", "a \"quoted\"\nline\u{1}"), ("path", "C:\\x")])
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
        #expect(object == ["message": "a \"quoted\"\nline\u{1}", "path": "C:\\x"])
        #expect(!line.contains("\n"))
    }
}

@Suite(.timeLimit(.minutes(10))) struct LogTimestampTests {
    @Test func timestampsAreRFC3339InUTCWithMilliseconds() {
        #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 1_796_304_157.821)) == "2026-12-03T13:22:37.821Z")
        #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(RequestObserver.milliseconds(.microseconds(12_345)) == "12.345")
        #expect(RequestObserver.milliseconds(.microseconds(7)) == "0.007")
    }
}
