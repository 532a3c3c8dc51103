import Foundation
import LatticeDomain
import LatticeStore
import Logging

/// Writes the audit entry of each state-changing call once it is answered (SPEC §10):
/// the action from the route (`AuditRule`), the status it was answered with, and the
/// request's id, caller and address. A call that reached no namespace (a bad token) is
/// logged but not audited: there is no namespace to file it under.
struct AuditRecorder: Sendable {
    let store: any AuditStore
    let clock: any WallClock
    let logger: Logger

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

    func append(_ entry: AuditEntry) async {
        do {
            try await store.appendAudit(entry)
        } catch {
            // The call itself is done; its answer stands. The log line keeps what was lost.
            logger.error(
                "cannot write the audit entry",
                metadata: [
                    "action": "\(entry.action)", "namespace": "\(entry.namespace)", "requestId": "\(entry.requestId)",
                    "error": "\(error)",
                ]
            )
        }
    }

    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = String(generator.next() as UInt64, radix: 16)
        return "audit-" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
