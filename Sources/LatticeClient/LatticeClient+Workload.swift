import AsyncHTTPClient
import Foundation
import LatticeDomain
import NIOCore

// What runs in an instance (SPEC §11) and its scheduled stop (§12): logs, metrics,
// templates, schedule_stop, and the create options for them.

extension CreateInstanceOptions {
    /// The same with SPEC §11's fields set.
    public func with(
        env: [String: String] = [:],
        secretEnv: [String: String] = [:],
        startupScript: String = "",
        ports: [PortOption] = [],
        template: String = ""
    ) -> CreateInstanceOptions {
        var options = self
        options.env = env
        options.secretEnv = secretEnv
        options.startupScript = startupScript
        options.ports = ports
        options.template = template
        return options
    }
}

/// An HTTP port to publish through the gateway.
public struct PortOption: Sendable, Equatable, Encodable {
    public var port: Int
    public var name: String
    public var `public`: Bool

    public init(port: Int, name: String = "", public isPublic: Bool = false) {
        self.port = port
        self.name = name
        self.public = isPublic
    }
}

/// A template to create (`POST /templates`).
public struct TemplateOptions: Sendable, Equatable, Encodable {
    public var name: String
    public var image: String
    public var env: [String: String]
    public var ports: [PortOption]
    public var startupScript: String
    public var diskSizeGB: Int?
    public var description: String
    public var `public`: Bool

    public init(
        name: String,
        image: String,
        env: [String: String] = [:],
        ports: [PortOption] = [],
        startupScript: String = "",
        diskSizeGB: Int? = nil,
        description: String = "",
        public isPublic: Bool = false
    ) {
        self.name = name
        self.image = image
        self.env = env
        self.ports = ports
        self.startupScript = startupScript
        self.diskSizeGB = diskSizeGB
        self.description = description
        self.public = isPublic
    }
}

extension LatticeClient {
    /// `GET .../instances/{name}/logs?tail=N`: the workload's last lines.
    public func logs(cluster: String, name: String, tail: Int = 100) async throws -> String {
        let data = try await send(
            "GET",
            Self.v1 + "/clusters/\(cluster)/instances/\(name)/logs",
            query: ["tail": String(tail)],
            idempotent: true
        )
        return String(decoding: data, as: UTF8.self)
    }

    /// `GET .../logs?follow=true`: the last lines, then each part of the log as the
    /// workload prints it, until it ends or the consumer's task is cancelled.
    public func followLogs(cluster: String, name: String, tail: Int = 100) -> LogStream {
        var components = URLComponents(
            url: baseURL.appendingPathComponent(Self.v1 + "/clusters/\(cluster)/instances/\(name)/logs"),
            resolvingAgainstBaseURL: false
        )!
        components.queryItems = [
            URLQueryItem(name: "follow", value: "true"), URLQueryItem(name: "tail", value: String(tail)),
        ]
        var request = HTTPClientRequest(url: components.url!.absoluteString)
        request.headers.add(name: "Authorization", value: "bearer \(token)")
        if let namespace { request.headers.add(name: "namespace", value: namespace) }
        return LogStream(request: request)
    }

    /// `POST .../schedule_stop`: power off (or, with `delete`, delete) at `at`; nil clears it.
    public func scheduleStop(
        cluster: String,
        name: String,
        at: Date?,
        delete: Bool = false
    ) async throws
        -> InstanceWire
    {
        struct Body: Encodable, Sendable {
            var at: String
            var action: String
        }
        let formatter = ISO8601DateFormatter()
        let body = Body(
            at: at.map { formatter.string(from: $0) } ?? "0001-01-01T00:00:00Z",
            action: delete ? "delete" : "power_off"
        )
        return try decode(
            InstanceWire.self,
            try await send(
                "POST",
                Self.v1 + "/clusters/\(cluster)/instances/\(name)/schedule_stop",
                body: body,
                idempotent: true
            )
        )
    }

    /// `POST .../idle_stop`: power off once idle for `policy.afterMinutes` (`.some(nil)`
    /// clears the policy, nil leaves it and its clock as they are), and `wakeOnConnect`
    /// when given.
    public func idleStop(
        cluster: String,
        name: String,
        policy: IdleStopPolicy??,
        wakeOnConnect: Bool? = nil
    ) async throws -> InstanceWire {
        struct Body: Encodable, Sendable {
            var policy: IdleStopPolicy??
            var wakeOnConnect: Bool?

            enum Keys: String, CodingKey { case afterMinutes, gpuUtilizationBelow, wakeOnConnect }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Keys.self)
                if let policy {
                    // An explicit null clears the policy.
                    try container.encode(policy?.afterMinutes, forKey: .afterMinutes)
                    try container.encodeIfPresent(policy?.gpuUtilizationBelow, forKey: .gpuUtilizationBelow)
                }
                try container.encodeIfPresent(wakeOnConnect, forKey: .wakeOnConnect)
            }
        }
        return try decode(
            InstanceWire.self,
            try await send(
                "POST",
                Self.v1 + "/clusters/\(cluster)/instances/\(name)/idle_stop",
                body: Body(policy: policy, wakeOnConnect: wakeOnConnect),
                idempotent: true
            )
        )
    }

    /// `GET .../instances/{name}/metrics`: what the running workload uses now.
    public func metrics(cluster: String, name: String) async throws -> MetricsWire {
        try await get(MetricsWire.self, Self.v1 + "/clusters/\(cluster)/instances/\(name)/metrics")
    }

    /// `GET /templates`: the official ones, the public ones and the namespace's own.
    public func templates(page: PageRequest = PageRequest(page: 1, pageSize: 100)) async throws -> Page<TemplateWire> {
        try await get(Page<TemplateWire>.self, Self.v1 + "/templates", query: Self.pageQuery(page))
    }

    /// `POST /templates`. Not retried without its idempotency key (one per call).
    public func createTemplate(_ template: TemplateOptions) async throws -> TemplateWire {
        try decode(TemplateWire.self, try await send("POST", Self.v1 + "/templates", body: template, idempotent: false))
    }

    /// `DELETE /templates/{id}`.
    public func deleteTemplate(id: String) async throws {
        _ = try await send("DELETE", Self.v1 + "/templates/\(id)", idempotent: true)
    }

    /// `GET /budget` (an admin may name another namespace).
    public func budget(namespace other: String? = nil) async throws -> BudgetWire {
        try await get(BudgetWire.self, Self.v1 + "/budget", query: other.map { ["namespace": $0] } ?? [:])
    }

    /// `PUT /budget`.
    public func setBudget(
        monthlyLimit: String,
        alertAt: [Int] = Budget.defaultAlerts,
        action: String = "notify",
        namespace other: String? = nil
    ) async throws -> BudgetWire {
        struct Body: Encodable, Sendable {
            var monthlyLimit: String
            var alertAt: [Int]
            var action: String
        }
        return try decode(
            BudgetWire.self,
            try await send(
                "PUT",
                Self.v1 + "/budget",
                query: other.map { ["namespace": $0] } ?? [:],
                body: Body(monthlyLimit: monthlyLimit, alertAt: alertAt, action: action),
                idempotent: true
            )
        )
    }

    /// `GET /idle_stop`: the namespace's default idle stop (SPEC §12).
    public func idleDefault(namespace other: String? = nil) async throws -> IdleDefaultWire {
        try await get(IdleDefaultWire.self, Self.v1 + "/idle_stop", query: other.map { ["namespace": $0] } ?? [:])
    }

    /// `PUT /idle_stop`.
    public func setIdleDefault(
        afterMinutes: Int,
        gpuUtilizationBelow: Int? = nil,
        wakeOnConnect: Bool = false,
        namespace other: String? = nil
    ) async throws -> IdleDefaultWire {
        struct Body: Encodable, Sendable {
            var afterMinutes: Int
            var gpuUtilizationBelow: Int?
            var wakeOnConnect: Bool
        }
        return try decode(
            IdleDefaultWire.self,
            try await send(
                "PUT",
                Self.v1 + "/idle_stop",
                query: other.map { ["namespace": $0] } ?? [:],
                body: Body(
                    afterMinutes: afterMinutes,
                    gpuUtilizationBelow: gpuUtilizationBelow,
                    wakeOnConnect: wakeOnConnect
                ),
                idempotent: true
            )
        )
    }

    /// `DELETE /idle_stop`.
    public func clearIdleDefault(namespace other: String? = nil) async throws {
        _ = try await send(
            "DELETE",
            Self.v1 + "/idle_stop",
            query: other.map { ["namespace": $0] } ?? [:],
            idempotent: false
        )
    }
}

/// The parts of a followed log (`LatticeClient.followLogs`), read as the consumer asks for
/// them: the iterator opens the request on its first `next()` and holds the connection.
public struct LogStream: AsyncSequence, Sendable {
    public typealias Element = String

    let request: HTTPClientRequest

    public func makeAsyncIterator() -> Iterator { Iterator(request: request) }

    public struct Iterator: AsyncIteratorProtocol {
        let request: HTTPClientRequest
        var body: HTTPClientResponse.Body.AsyncIterator?
        var ended = false

        /// The next part as printed; nil when the log ends.
        public mutating func next() async throws -> String? {
            guard !ended else { return nil }
            if body == nil {
                let response = try await HTTPClient.shared.execute(request, timeout: .hours(24))
                guard response.status.code == 200 else {
                    ended = true
                    let body = try await response.body.collect(upTo: 1 << 20)
                    throw LatticeAPIError(status: Int(response.status.code), body: Data(body.readableBytesView))
                }
                body = response.body.makeAsyncIterator()
            }
            guard let part = try await body?.next() else {
                ended = true
                return nil
            }
            return String(buffer: part)
        }
    }
}
