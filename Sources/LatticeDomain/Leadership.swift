import Foundation

/// Who runs the reconciler and the meter when several replicas share one database: the
/// holder of one lease row. The epoch grows by one at every change of holder, and every
/// write the leader's services make carries it (fencing): a paused old leader that wakes
/// up after a new one took over cannot write over the new one's work.
public struct LeaderLease: Sendable, Equatable, Codable {
    public var holder: String
    public var epoch: Int64
    public var expiresAt: Date

    public init(holder: String, epoch: Int64, expiresAt: Date) {
        self.holder = holder
        self.epoch = epoch
        self.expiresAt = expiresAt
    }
}

/// The lease decisions, pure: the store reads the row, calls these, writes what they return.
public enum LeaseRule {
    /// What the row becomes when `holder` asks for the lease at `now`: renewed (same epoch)
    /// if it holds it, taken over (next epoch) if nobody does or the holder's lapsed; nil
    /// when another replica holds a lease that has not lapsed.
    public static func claim(
        _ current: LeaderLease?,
        by holder: String,
        at now: Date,
        ttl: TimeInterval
    ) -> LeaderLease? {
        guard let current else { return LeaderLease(holder: holder, epoch: 1, expiresAt: now + ttl) }
        if current.holder == holder, current.expiresAt > now {
            return LeaderLease(holder: holder, epoch: current.epoch, expiresAt: now + ttl)
        }
        guard current.expiresAt <= now || current.holder.isEmpty else { return nil }
        return LeaderLease(holder: holder, epoch: current.epoch + 1, expiresAt: now + ttl)
    }

    /// The row after `holder` hands the lease back on a graceful shutdown: empty and lapsed,
    /// so the next replica to ask takes it at once (with the next epoch).
    public static func release(_ current: LeaderLease, by holder: String, at now: Date) -> LeaderLease? {
        guard current.holder == holder else { return nil }
        return LeaderLease(holder: "", epoch: current.epoch, expiresAt: now)
    }

    /// Whether a write fenced with `epoch` by `holder` may go ahead. No clock is needed:
    /// another replica can only take the lease after it lapsed, and taking it raises the
    /// epoch, so an unchanged holder and epoch mean nobody else has led since.
    public static func admits(_ current: LeaderLease?, holder: String, epoch: Int64) -> Bool {
        guard let current else { return false }
        return current.holder == holder && current.epoch == epoch
    }
}
