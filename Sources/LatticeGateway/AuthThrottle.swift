import Foundation
import LatticeDomain
import Synchronization

/// Slows down repeated failed logins under one key (an address, or an instance): the first
/// few fail at once, then each further failure within the window waits twice as long as
/// the one before (up to `maximumDelay`). The waits of one key are served one after the
/// other, not side by side, so opening more connections buys no more guesses per second.
/// Refusals of every kind count alike, so timing tells nothing.
public final class AuthThrottle: Sendable {
    public struct Rule: Sendable {
        public var freeFailures = 3
        public var window: TimeInterval = 600
        public var firstDelay: TimeInterval = 0.5
        public var maximumDelay: TimeInterval = 8
        /// A wait longer than this is not queued behind the others (the connection's
        /// sign-in deadline closes it first).
        public var longestWait: TimeInterval = 60
        public init() {}

        /// The rule for one instance, from every address together: a little more lenient,
        /// since its owner may offer several keys before the right one.
        public static var perInstance: Rule {
            var rule = Rule()
            rule.freeFailures = 10
            return rule
        }
    }

    struct Record {
        var failures: Int
        var last: Date
        /// When the last queued failure is answered.
        var answeredUntil: Date
    }

    let rule: Rule
    let clock: any WallClock
    private let records = Mutex([String: Record]())

    public init(rule: Rule = Rule(), clock: any WallClock = SystemWallClock()) {
        self.rule = rule
        self.clock = clock
    }

    /// Records a failure under `key`; returns how long to wait before answering it.
    public func failed(_ key: String) -> TimeInterval {
        let now = clock.now()
        return records.withLock { records in
            if records.count > 10_000 {
                records = records.filter { now.timeIntervalSince($0.value.last) < rule.window }
            }
            var record = records[key] ?? Record(failures: 0, last: now, answeredUntil: now)
            if now.timeIntervalSince(record.last) >= rule.window {
                record = Record(failures: 0, last: now, answeredUntil: now)
            }
            record.failures += 1
            record.last = now
            let over = record.failures - rule.freeFailures
            var wait: TimeInterval = 0
            if over > 0 {
                let delay = min(rule.maximumDelay, rule.firstDelay * pow(2, Double(min(over - 1, 16))))
                let answer = max(now, record.answeredUntil).addingTimeInterval(delay)
                wait = answer.timeIntervalSince(now)
                if wait <= rule.longestWait { record.answeredUntil = answer } else { wait = rule.longestWait }
            }
            records[key] = record
            return wait
        }
    }

    /// A success clears the key's record.
    public func succeeded(_ key: String) {
        _ = records.withLock { $0.removeValue(forKey: key) }
    }
}
