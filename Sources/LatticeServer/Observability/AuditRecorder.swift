import Foundation
import LatticeDomain
import LatticeStore
import Logging
import Synchronization

/// Writes the audit entry of each state-changing call once it is answered (SPEC §10):
/// the action from the route (`AuditRule`), the status it was answered with, and the
/// request's id, caller and address. A call that reached no namespace (a bad token) is
/// logged but not audited: there is no namespace to file it under.
struct AuditRecorder: Sendable {
    let store: any AuditStore
    let clock: any WallClock
    let logger: Logger
    private let batches: AuditBatches

    init(store: any AuditStore, clock: any WallClock, logger: Logger) {
        self.store = store
        self.clock = clock
        self.logger = logger
        batches = AuditBatches { entries in
            do {
                try await store.appendAudit(entries)
            } catch {
                // The calls themselves are done; their answers stand. The log keeps what was lost.
                for entry in entries {
                    logger.error(
                        "cannot write the audit entry",
                        metadata: [
                            "action": "\(entry.action)", "namespace": "\(entry.namespace)",
                            "requestId": "\(entry.requestId)", "error": "\(error)",
                        ]
                    )
                }
            }
        }
    }

    func record(
        method: String,
        route: String,
        path: String,
        query: String?,
        status: Int,
        trace: RequestTrace,
        remoteAddress: String
    ) async {
        let captures = AuditRule.captures(route: route, path: path)
        guard let action = AuditRule.action(method: method, route: route, verb: captures["verb"]),
            let namespace = trace.namespace
        else { return }
        let entry = AuditEntry(
            id: AuditRecorder.newID(),
            time: clock.now(),
            namespace: namespace,
            actor: trace.actor ?? namespace,
            action: action,
            target: trace.target ?? AuditRule.target(captures: captures, nameQuery: query),
            status: status,
            requestId: trace.id,
            remoteAddress: remoteAddress
        )
        await append(entry)
    }

    /// Returns once the entry is in the store (or its loss is logged).
    func append(_ entry: AuditEntry) async {
        await batches.append(entry)
    }

    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = String(generator.next() as UInt64, radix: 16)
        return "audit-" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Group commit for audit entries: the first call to arrive writes its entry at once, and
/// the entries of calls answered while that write runs are written together by one of
/// them, so a busy server writes one transaction per batch, not per call, and adds no wait
/// when it is quiet. Every caller returns once a write that holds its entry has finished;
/// a writer writes one batch and hands the next to a caller whose entry is in it.
final class AuditBatches: Sendable {
    private struct Waiter {
        var ticket: UInt64
        /// Resumed with true: this caller writes the next batch.
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var pending: [AuditEntry] = []
        var lastTicket: UInt64 = 0
        var writtenThrough: UInt64 = 0
        var writing = false
        var waiters: [Waiter] = []
    }

    private let state = Mutex(State())
    private let write: @Sendable ([AuditEntry]) async -> Void

    init(write: @escaping @Sendable ([AuditEntry]) async -> Void) { self.write = write }

    func append(_ entry: AuditEntry) async {
        let ticket = state.withLock { state in
            state.pending.append(entry)
            state.lastTicket += 1
            return state.lastTicket
        }
        let writes = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let answer: Bool? = state.withLock { state in
                if state.writtenThrough >= ticket { return false }
                if !state.writing {
                    state.writing = true
                    return true
                }
                state.waiters.append(Waiter(ticket: ticket, continuation: continuation))
                return nil
            }
            if let answer { continuation.resume(returning: answer) }
        }
        if writes { await writeOneBatch() }
    }

    private func writeOneBatch() async {
        let (entries, through) = state.withLock { state in
            defer { state.pending.removeAll() }
            return (state.pending, state.lastTicket)
        }
        if !entries.isEmpty { await write(entries) }
        let (ready, next) = state.withLock { state in
            state.writtenThrough = through
            let ready = state.waiters.filter { $0.ticket <= through }
            state.waiters.removeAll { $0.ticket <= through }
            // The next batch is written by a caller whose entry is in it; one that has not
            // begun to wait yet finds nobody writing and writes it itself.
            var next: Waiter?
            if !state.pending.isEmpty, !state.waiters.isEmpty { next = state.waiters.removeFirst() }
            state.writing = next != nil
            return (ready, next)
        }
        for waiter in ready { waiter.continuation.resume(returning: false) }
        next?.continuation.resume(returning: true)
    }
}
