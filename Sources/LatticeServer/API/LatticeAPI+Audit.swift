import Foundation
import LatticeDomain

extension LatticeAPI {
    /// `GET /audit`: the caller's own namespace's entries, newest first.
    public func audit(principal: Principal, action: String?, page: PageRequest) async throws -> Page<AuditEntryWire> {
        try await auditPage(namespace: principal.namespace, action: action, page: page)
    }

    /// `GET /admin/audit`: every namespace's entries, or one's with `namespace`.
    public func adminAudit(
        principal: Principal,
        namespace: String?,
        action: String?,
        page: PageRequest
    )
        async throws -> Page<AuditEntryWire>
    {
        try requireAdmin(principal)
        return try await auditPage(namespace: namespace.flatMap { $0.isEmpty ? nil : $0 }, action: action, page: page)
    }

    func auditPage(namespace: String?, action: String?, page: PageRequest) async throws -> Page<AuditEntryWire> {
        let action = action.flatMap { $0.isEmpty ? nil : $0 }
        if let action,
            action.count > 64 || !action.allSatisfy({ $0.isASCII && ($0.isLetter || $0 == "_" || $0 == ".") })
        {
            throw LatticeError.invalidField("action", "must be a dotted name such as instance.create")
        }
        let (items, total) = try await store.auditEntries(namespace: namespace, action: action, page: page)
        return Page(
            hasNextPage: page.offset + items.count < total,
            nodes: items.map { AuditEntryWire($0, time: wire.time.format($0.time)) },
            totalCount: total
        )
    }
}
