import Foundation
import LatticeDomain

/// Slows down repeated failed logins from one address: the first few fail at once, then
/// each further failure within the window waits twice as long as the one before (up to
/// `maximumDelay`). Refusals of every kind count alike, so timing tells nothing.
public final class AuthThrottle: @unchecked Sendable {
    public struct Rule: Sendable {
        public var freeFailures = 3
        public var window: TimeInterval = 600
        public var firstDelay: TimeInterval = 0.5
        public var maximumDelay: TimeInterval = 8
        public init() {}
    }

    struct Record {
        var failures: Int
        var last: Date
    }

    let rule: Rule
    let clock: any WallClock
    private let lock = NSLock()
    private var records: [String: Record] = [:]

    public init(rule: Rule = Rule(), clock: any WallClock = SystemWallClock()) {
        self.rule = rule
        self.clock = clock
    }

    /// Records a failure from `address`; returns how long to wait before answering it.
    public func failed(_ address: String) -> TimeInterval {
        let now = clock.now()
        return lock.withLock {
            if records.count > 10_000 {
                records = records.filter { now.timeIntervalSince($0.value.last) < rule.window }
            }
            var record = records[address] ?? Record(failures: 0, last: now)
            if now.timeIntervalSince(record.last) >= rule.window { record.failures = 0 }
            record.failures += 1
            record.last = now
            records[address] = record
            let over = record.failures - rule.freeFailures
            guard over > 0 else { return 0 }
            return min(rule.maximumDelay, rule.firstDelay * pow(2, Double(min(over - 1, 16))))
        }
    }

    /// A success clears the address's record.
    public func succeeded(_ address: String) {
        _ = lock.withLock { records.removeValue(forKey: address) }
    }
}
