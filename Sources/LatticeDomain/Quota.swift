import Foundation

/// Per-namespace limits an operator sets (issue "hardening" 3): how many instances it may
/// keep, GPUs it may hold at once, tokens and snapshots it may have.
public struct Quota: Sendable, Codable, Equatable {
    public var instances: Int
    public var gpus: Int
    public var tokens: Int
    public var snapshots: Int

    public init(instances: Int, gpus: Int, tokens: Int, snapshots: Int) {
        self.instances = instances
        self.gpus = gpus
        self.tokens = tokens
        self.snapshots = snapshots
    }

    /// The largest value a limit may take.
    public static let maximum = 1_000_000_000
    /// No limit in practice (the admin namespace's default).
    public static let unlimited = Quota(instances: maximum, gpus: maximum, tokens: maximum, snapshots: maximum)
    /// What a namespace gets until an admin says otherwise (flags `--quota-*`).
    public static let defaults = Quota(instances: 50, gpus: 16, tokens: 50, snapshots: 50)
}

/// What a namespace uses of each limit.
public struct QuotaUsage: Sendable, Codable, Equatable {
    public var instances: Int
    public var gpus: Int
    public var tokens: Int
    public var snapshots: Int

    public init(instances: Int = 0, gpus: Int = 0, tokens: Int = 0, snapshots: Int = 0) {
        self.instances = instances
        self.gpus = gpus
        self.tokens = tokens
        self.snapshots = snapshots
    }
}

public enum QuotaRule {
    /// The image a change newly asks to be saved (a power_off with `needSnapshot`), which
    /// counts against the snapshot quota from the moment it is asked for, not once saved:
    /// checked in the write, with the requests still in flight counted, so concurrent
    /// power_offs cannot pass the quota together.
    public static func snapshotRequested(from previous: Instance, to next: Instance) -> String? {
        guard let requested = next.desired.snapshot?.imageReference,
            previous.desired.snapshot?.imageReference != requested
        else { return nil }
        return requested
    }

    /// Refuses with `409 QuotaExceeded` when `usage` plus `adding` passes a limit that
    /// `adding` touches (a limit lowered below today's use stops only new use).
    public static func check(namespace: String, usage: QuotaUsage, adding: QuotaUsage, quota: Quota) throws {
        let rows: [(String, Int, Int, Int)] = [
            ("instances", usage.instances, adding.instances, quota.instances),
            ("GPUs", usage.gpus, adding.gpus, quota.gpus),
            ("tokens", usage.tokens, adding.tokens, quota.tokens),
            ("snapshots", usage.snapshots, adding.snapshots, quota.snapshots),
        ]
        for (what, used, more, limit) in rows where more > 0 && used + more > limit {
            throw LatticeError(
                .conflict,
                code: "QuotaExceeded",
                "namespace '\(namespace)' may have at most \(limit) \(what) and has \(used); "
                    + "this needs \(more) more. Free some, or ask an admin to raise the quota"
            )
        }
    }

    /// Reads `PUT /admin/users/{namespace}/quota`: any of the four limits (0 to
    /// `Quota.maximum`); an absent one keeps `current`.
    public static func update(_ current: Quota, with json: JSONValue) throws -> Quota {
        let body = try JSONFields(json)
        var next = current
        for (key, path) in [
            ("instances", \Quota.instances), ("gpus", \Quota.gpus), ("tokens", \Quota.tokens),
            ("snapshots", \Quota.snapshots),
        ] as [(String, WritableKeyPath<Quota, Int>)] {
            guard let value = try body.integer(key) else { continue }
            guard (0...Quota.maximum).contains(value) else {
                throw LatticeError.invalidField(key, "must be between 0 and \(Quota.maximum), got \(value)")
            }
            next[keyPath: path] = value
        }
        let known: Set<String> = ["instances", "gpus", "tokens", "snapshots"]
        if let unknown = body.fields.keys.first(where: { !known.contains($0) }) {
            throw LatticeError.invalidField(unknown, "is not a quota; use instances, gpus, tokens or snapshots")
        }
        return next
    }
}
