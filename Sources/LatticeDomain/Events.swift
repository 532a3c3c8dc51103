import Foundation

/// Something that happened in a namespace (SPEC §13), recorded by the write that made it
/// happen, in the same transaction, so the stream and the webhooks tell exactly what
/// committed. `id` is the namespace's own sequence number, given by the store as the event
/// commits (0 until then): events of one namespace are numbered in the order they commit,
/// which is what `Last-Event-ID` resumes from.
public struct LatticeEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Codable {
        case instanceCreated = "instance.created"
        case instanceStatus = "instance.status"
        case instanceDeleted = "instance.deleted"
        case instanceIdleStopped = "instance.idle_stopped"
        case imageReady = "image.ready"
        case imageFailed = "image.failed"
        case lowBalance = "billing.low_balance"
        case budgetThreshold = "budget.threshold"
        /// Admins' events (`LatticeEvent.nodes`): a node's health changed.
        case nodeUnhealthy = "node.unhealthy"
        case nodeDrained = "node.drained"
        case nodeHealthy = "node.healthy"

        /// What a tenant's namespace tells, and its webhooks may ask for.
        public static let tenantKinds: [Kind] = allCases.filter { !$0.rawValue.hasPrefix("node.") }
    }

    /// Where node events are kept, numbered like a namespace's: `GET /admin/events`
    /// (no tenant's namespace can be named so).
    public static let nodes = "lattice:nodes"

    public var id: Int64
    public var namespace: String
    public var time: Date
    public var type: Kind
    /// The instance it is about, if it is about one.
    public var instance: String?
    public var data: [String: JSONValue]

    public init(
        id: Int64 = 0,
        namespace: String,
        time: Date,
        type: Kind,
        instance: String? = nil,
        data: [String: JSONValue] = [:]
    ) {
        self.id = id
        self.namespace = namespace
        self.time = time
        self.type = type
        self.instance = instance
        self.data = data
    }

    /// How long events are kept, and so how far back `Last-Event-ID` and webhook retries reach.
    public static let retention: TimeInterval = 24 * 3600

    /// What events are ordered by for a webhook: one instance's events go in order, others
    /// need not wait for them (the namespace's own events are one more such line).
    public var orderingKey: String { instance.map { "i:" + $0 } ?? "n:" }
}

/// The events a change of state makes; pure, so the stores record the same events for the
/// same change.
public enum EventRule {
    /// What an instance going from `previous` to `next` at `at` tells (nil: not there, so a
    /// create or a purge): `instance.created` and its first `instance.status`, one
    /// `instance.status` per change of status (with the previous status and the reason),
    /// `instance.idle_stopped` when the idle rule stopped it, `instance.deleted` when it is gone.
    public static func instance(from previous: Instance?, to next: Instance?, at: Date) -> [LatticeEvent] {
        switch (previous, next) {
        case (nil, let next?):
            return [
                event(
                    .instanceCreated,
                    next,
                    at,
                    ["cluster": .string(next.cluster), "status": .string(next.status.rawValue)]
                ),
                statusEvent(next, previous: "", at),
            ]
        case (let previous?, let next?):
            var events: [LatticeEvent] = []
            if previous.status != next.status {
                events.append(statusEvent(next, previous: previous.status.rawValue, at))
            }
            if next.statusReason.hasPrefix(idleStoppedReason), !previous.statusReason.hasPrefix(idleStoppedReason) {
                var data: [String: JSONValue] = ["reason": .string(next.statusReason)]
                if let minutes = previous.idleStop?.afterMinutes { data["afterMinutes"] = .number(Double(minutes)) }
                events.append(event(.instanceIdleStopped, next, at, data))
            }
            return events
        case (let previous?, nil):
            return [event(.instanceDeleted, previous, at, ["cluster": .string(previous.cluster)])]
        case (nil, nil):
            return []
        }
    }

    /// `image.ready` or `image.failed` when a snapshot reaches that status (nothing for a save
    /// that leaves the status as it was).
    public static func image(from previous: SnapshotImage?, to next: SnapshotImage, at: Date) -> [LatticeEvent] {
        guard previous?.status != next.status else { return [] }
        let type: LatticeEvent.Kind
        switch next.status {
        case .ready: type = .imageReady
        case .failed: type = .imageFailed
        case .saving: return []
        }
        return [
            LatticeEvent(
                namespace: next.namespace,
                time: at,
                type: type,
                instance: next.sourceInstance.isEmpty ? nil : next.sourceInstance,
                data: [
                    "reference": .string(next.reference),
                    "sourceInstance": .string(next.sourceInstance),
                    "sizeBytes": .number(Double(next.sizeBytes)),
                ]
            )
        ]
    }

    /// What a node's health going from `previous` (nil: never seen) to `current` tells:
    /// `node.unhealthy`, `node.drained`, or `node.healthy` when it is back; nothing when
    /// the health is the same (a new reason alone) or a node first seen is healthy.
    public static func node(
        _ name: String,
        cluster: String,
        from previous: NodeHealth?,
        to current: NodeHealth,
        reason: String,
        at: Date
    ) -> LatticeEvent? {
        guard previous != current, previous != nil || current != .healthy else { return nil }
        let type: LatticeEvent.Kind
        switch current {
        case .unhealthy: type = .nodeUnhealthy
        case .draining: type = .nodeDrained
        case .healthy: type = .nodeHealthy
        }
        return LatticeEvent(
            namespace: LatticeEvent.nodes,
            time: at,
            type: type,
            data: [
                "node": .string(name), "cluster": .string(cluster), "reason": .string(reason),
                "previous": .string(previous?.rawValue ?? ""),
            ]
        )
    }

    /// The reason's code the idle rule writes (`IdleRule.idleStop`).
    static let idleStoppedReason = "IdleStopped"

    static func statusEvent(_ instance: Instance, previous: String, _ at: Date) -> LatticeEvent {
        event(
            .instanceStatus,
            instance,
            at,
            [
                "status": .string(instance.status.rawValue),
                "previous": .string(previous),
                "reason": .string(instance.statusReason),
                "cluster": .string(instance.cluster),
            ]
        )
    }

    static func event(
        _ type: LatticeEvent.Kind,
        _ instance: Instance,
        _ at: Date,
        _ data: [String: JSONValue]
    ) -> LatticeEvent {
        LatticeEvent(namespace: instance.namespace, time: at, type: type, instance: instance.name, data: data)
    }
}

/// An event as the stream and the webhooks send it:
/// `{"id","time","type","instance"?,"data"}`, `id` the decimal text `Last-Event-ID` takes.
public struct EventWire: Codable, Sendable, Equatable {
    public var id: String
    public var time: String
    public var type: String
    public var instance: String?
    public var data: [String: JSONValue]

    public init(_ event: LatticeEvent, format: (Date) -> String) {
        id = String(event.id)
        time = format(event.time)
        type = event.type.rawValue
        instance = event.instance
        data = event.data
    }

    /// Compact JSON with sorted keys: one line, as an SSE `data:` field must be.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// `GET /events?follow=false`: the events kept after a point, oldest first; `lastEventId`
/// is where to go on from (with `Last-Event-ID`, or `lastEventId=` for the next page).
public struct EventList: Codable, Sendable, Equatable {
    public var events: [EventWire]
    public var lastEventId: String
    public var hasMore: Bool

    public init(events: [EventWire], lastEventId: String, hasMore: Bool) {
        self.events = events
        self.lastEventId = lastEventId
        self.hasMore = hasMore
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            // Whole numbers as integers (`80`, not `80.0`).
            if value == value.rounded(), abs(value) < 9e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        case .object(let fields): try container.encode(fields)
        }
    }
}
