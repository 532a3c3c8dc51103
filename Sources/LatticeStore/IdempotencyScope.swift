import Foundation
import LatticeDomain
import Synchronization

/// A keyed request being served (`Idempotency-Key`, SPEC §3). While it is bound
/// (`IdempotencyScope.$current`), every write transaction a store commits also writes the
/// key's outcome, once the API has said what that is (`expect`): the work and the record
/// of it commit together, so a process killed between the commit and the answer leaves a
/// key that a retry answers from, and the work is never done twice.
public final class IdempotencyScope: Sendable {
    @TaskLocal public static var current: IdempotencyScope?

    public let namespace: String
    public let key: String
    private let expected = Mutex<Idempotency.Outcome?>(nil)

    public init(namespace: String, key: String) {
        self.namespace = namespace
        self.key = key
    }

    /// Says what the next write's work answers; the API calls it just before the write
    /// that does the work.
    public func expect(_ outcome: Idempotency.Outcome) { expected.withLock { $0 = outcome } }

    /// What a write made now must record, if anything.
    public var outcome: Idempotency.Outcome? { expected.withLock { $0 } }

    /// The outcome to record with a write starting now in this task, if any.
    package static var pending: (scope: IdempotencyScope, outcome: Idempotency.Outcome)? {
        guard let scope = current, let outcome = scope.outcome else { return nil }
        return (scope, outcome)
    }
}
