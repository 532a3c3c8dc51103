import Foundation
import Synchronization

/// The use of instances through this replica's gateways, for their idle clocks (SPEC §12):
/// sessions open now and when each instance was last used. The server reports what is
/// new to the store every few seconds (`ActivityReporter`), so the leader sees the use of
/// every replica; the leader also asks its own directly before it stops an instance.
public final class InstanceActivity: Sendable {
    /// One use waiting to be written: the instance was in use at `at`.
    public struct Report: Sendable, Equatable {
        public var namespace: String
        public var name: String
        public var at: Date
    }

    struct Entry {
        var namespace: String
        var sessions = 0
        var lastUsed: Date
        var reported: Date?
    }

    /// An entry with no session is forgotten this long after its last use (the longest
    /// idle period there is).
    static let memory: TimeInterval = 7 * 86_400

    private let entries = Mutex<[String: Entry]>([:])
    private let now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date) { self.now = now }

    public func record(_ use: GatewayUse, instance: String, namespace: String) {
        let at = now()
        entries.withLock { entries in
            var entry = entries[instance] ?? Entry(namespace: namespace, lastUsed: at)
            entry.lastUsed = max(entry.lastUsed, at)
            switch use {
            case .sessionOpened: entry.sessions += 1
            case .sessionClosed: entry.sessions = max(0, entry.sessions - 1)
            }
            entries[instance] = entry
        }
    }

    /// When `instance` was last used through this replica: now while a session is open.
    public func lastUse(of instance: String) -> Date? {
        let at = now()
        return entries.withLock { entries in
            entries[instance].map { $0.sessions > 0 ? at : $0.lastUsed }
        }
    }

    /// The use not yet reported, at most one report per instance per `resolution` (an open
    /// session counts as use now) and the last use once it has settled; marks it reported.
    public func unreported(resolution: TimeInterval) -> [Report] {
        let at = now()
        return entries.withLock { entries in
            var reports: [Report] = []
            for (name, var entry) in entries {
                let used = entry.sessions > 0 ? at : entry.lastUsed
                if entry.sessions == 0, at.timeIntervalSince(used) > Self.memory {
                    entries[name] = nil
                    continue
                }
                // Within `resolution` of the last report: wait, unless this is the last use
                // (no session, and nothing for `resolution`), which is then reported too.
                if let reported = entry.reported, used.timeIntervalSince(reported) < resolution,
                    used == reported || entry.sessions > 0 || at.timeIntervalSince(used) < resolution
                {
                    continue
                }
                entry.reported = used
                entries[name] = entry
                reports.append(Report(namespace: entry.namespace, name: name, at: used))
            }
            return reports
        }
    }

    /// Sessions open now, by instance (for tests and `/readyz`).
    public var openSessions: [String: Int] {
        entries.withLock { $0.filter { $0.value.sessions > 0 }.mapValues(\.sessions) }
    }
}
