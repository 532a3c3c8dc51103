import Foundation

/// `idleStop` (SPEC §12): power a pay-as-you-go instance off, disk kept, once for
/// `afterMinutes` nobody used it: no SSH or web-terminal session open, no request through
/// the HTTP gateway, and (with `gpuUtilizationBelow`) its GPUs below that utilisation
/// where they are measured.
public struct IdleStopPolicy: Sendable, Codable, Equatable {
    public static let minutes = 1...10_080
    public var afterMinutes: Int
    /// Percent; nil: GPU use is not considered.
    public var gpuUtilizationBelow: Int?

    public init(afterMinutes: Int, gpuUtilizationBelow: Int? = nil) {
        self.afterMinutes = afterMinutes
        self.gpuUtilizationBelow = gpuUtilizationBelow
    }

    /// The policy of a request body's object (`idleStop` at create, the body of `idle_stop`).
    public init(fields: JSONFields) throws {
        guard let minutes = try fields.integer("afterMinutes") else {
            throw LatticeError.missingField(fields.name("afterMinutes"))
        }
        guard Self.minutes.contains(minutes) else {
            throw LatticeError.invalidField(
                fields.name("afterMinutes"),
                "must be \(Self.minutes.lowerBound) to \(Self.minutes.upperBound) minutes (a week), got \(minutes)"
            )
        }
        let below = try fields.integer("gpuUtilizationBelow")
        if let below, !(1...100).contains(below) {
            throw LatticeError.invalidField(
                fields.name("gpuUtilizationBelow"),
                "must be a percentage from 1 to 100, got \(below)"
            )
        }
        self.init(afterMinutes: minutes, gpuUtilizationBelow: below)
    }

    public var period: TimeInterval { TimeInterval(afterMinutes * 60) }
}

/// The idle clock of an instance: when it counts from, when it stops it, and what use and
/// the leader's check write.
public enum IdleRule {
    /// Use closer together than this moves the clock only in the record's memory of
    /// the gateway, not in the store: an instance in use is written at most this often.
    public static let resolution: TimeInterval = 30

    /// Whether the instance's idle clock runs: a pay-as-you-go instance with a policy,
    /// Running and not being deleted.
    public static func counts(_ instance: Instance) -> Bool {
        instance.idleStop != nil && instance.status == .running && !instance.desired.deleted
            && instance.cost.costType == SellingType.payAsYouGo.rawValue
    }

    /// When the instance is powered off for being idle, if its clock runs.
    public static func stopsAt(_ instance: Instance) -> Date? {
        guard counts(instance), let policy = instance.idleStop, let since = instance.idleSince else { return nil }
        return since.addingTimeInterval(policy.period)
    }

    /// The instance used at `at` (a session open, a request through the gateway, a busy
    /// GPU): its clock restarted, or nil when nothing needs writing (no clock, or the
    /// record's clock is within `resolution` of `at`).
    public static func used(_ instance: Instance, at: Date) -> Instance? {
        guard counts(instance) else { return nil }
        if let since = instance.idleSince, at.timeIntervalSince(since) < resolution { return nil }
        var next = instance
        next.idleSince = at
        next.generation += 1
        return next
    }

    /// The leader's check before an idle stop: the instance used at `usedAt` (known to the
    /// leader, not yet to the record) so recently that its period has not run out since;
    /// its clock restarted from then, or nil when the stop stands.
    public static func restart(_ instance: Instance, usedAt: Date, now: Date) -> Instance? {
        guard counts(instance), let policy = instance.idleStop, usedAt.addingTimeInterval(policy.period) > now,
            usedAt > (instance.idleSince ?? .distantPast)
        else { return nil }
        var next = instance
        next.idleSince = usedAt
        next.generation += 1
        return next
    }

    /// What the leader writes once an instance's idle period has run out: a power off with
    /// the disk kept (nil when it is no longer due: used since, policy changed, stopped).
    public static func idleStop(_ instance: Instance, now: Date, format: (Date) -> String) -> Instance? {
        guard let policy = instance.idleStop, let due = stopsAt(instance), due <= now else { return nil }
        let gpu = policy.gpuUtilizationBelow.map { " and GPU utilisation below \($0) %" } ?? ""
        return InstanceLifecycle.systemStop(
            instance,
            reason: "IdleStopped: no session, no gateway request\(gpu) for \(policy.afterMinutes) minutes "
                + "(idle since \(format(instance.idleSince ?? due)))",
            now: now
        )
    }

    /// `idle_stop`: the policy set (the clock counting from now), cleared (`.some(nil)`) or
    /// kept (nil), and `wakeOnConnect` set when given.
    public static func setPolicy(
        _ instance: Instance,
        _ policy: IdleStopPolicy??,
        wakeOnConnect: Bool?,
        now: Date
    )
        throws -> Instance
    {
        guard !instance.desired.deleted else {
            throw LatticeError.invalidState("instance \(instance.name) is being deleted")
        }
        if case .some(.some) = policy, instance.cost.costType != SellingType.payAsYouGo.rawValue {
            throw LatticeError.invalidState(
                "instance \(instance.name) is prepaid: its term is paid for; idle stop is for pay-as-you-go"
            )
        }
        var next = instance
        if let policy {
            next.idleStop = policy
            next.idleSince = policy == nil ? nil : now
        }
        if let wakeOnConnect { next.wakeOnConnect = wakeOnConnect }
        guard next != instance else { return instance }
        next.updatedAt = now
        next.generation += 1
        return next
    }
}

extension Instance {
    /// When the meter next has something to do with this instance while it runs: its
    /// scheduled stop (or prepaid term's end) or its idle stop, whichever comes first. The
    /// stores index this (`schedule_stop`), so the meter reads only what is due.
    public var dueAt: Date? {
        switch (scheduleStopAt, IdleRule.stopsAt(self)) {
        case (let at?, let idle?): min(at, idle)
        case (let at, let idle): at ?? idle
        }
    }
}

/// A namespace's default idle stop (SPEC §12, set by its tenant or an admin): what a
/// pay-as-you-go create that says nothing of `idleStop` gets. A create that gives its own
/// policy, or `"idleStop": null`, keeps what it said; prepaid creates get none.
public struct IdleDefault: Sendable, Codable, Equatable {
    public var namespace: String
    public var policy: IdleStopPolicy
    public var wakeOnConnect: Bool
    public var updatedAt: Date

    public init(namespace: String, policy: IdleStopPolicy, wakeOnConnect: Bool, updatedAt: Date) {
        self.namespace = namespace
        self.policy = policy
        self.wakeOnConnect = wakeOnConnect
        self.updatedAt = updatedAt
    }

    /// A `PUT /idle_stop` body: `{"afterMinutes", "gpuUtilizationBelow"?, "wakeOnConnect"?}`.
    public init(fields: JSONFields, namespace: String, now: Date) throws {
        self.namespace = namespace
        policy = try IdleStopPolicy(fields: fields)
        wakeOnConnect = try fields.boolean("wakeOnConnect") ?? false
        updatedAt = now
    }

    /// What a create gets: its own policy when it gave `idleStop` (null included), else the
    /// default's, for pay-as-you-go only; `wakeOnConnect` likewise.
    public static func atCreate(
        requested: IdleStopPolicy?,
        givenIdleStop: Bool,
        wakeOnConnect: Bool?,
        default idle: IdleDefault?,
        payAsYouGo: Bool
    ) -> (policy: IdleStopPolicy?, wakeOnConnect: Bool) {
        guard payAsYouGo, let idle, !givenIdleStop else { return (requested, wakeOnConnect ?? false) }
        return (idle.policy, wakeOnConnect ?? idle.wakeOnConnect)
    }
}

/// `GET`/`PUT /idle_stop`'s answer.
public struct IdleDefaultWire: Codable, Sendable, Equatable {
    public var namespace: String
    public var afterMinutes: Int
    public var gpuUtilizationBelow: Int?
    public var wakeOnConnect: Bool
    public var updatedAt: String

    public init(_ idle: IdleDefault, format: (Date) -> String) {
        namespace = idle.namespace
        afterMinutes = idle.policy.afterMinutes
        gpuUtilizationBelow = idle.policy.gpuUtilizationBelow
        wakeOnConnect = idle.wakeOnConnect
        updatedAt = format(idle.updatedAt)
    }

    // Nulls written out: a client sees `gpuUtilizationBelow: null`, not a missing key.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(namespace, forKey: .namespace)
        try container.encode(afterMinutes, forKey: .afterMinutes)
        try container.encode(gpuUtilizationBelow, forKey: .gpuUtilizationBelow)
        try container.encode(wakeOnConnect, forKey: .wakeOnConnect)
        try container.encode(updatedAt, forKey: .updatedAt)
    }
}
