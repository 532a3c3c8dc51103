import Foundation
import Hummingbird
import LatticeDomain

/// The console's Activity page: the namespace's audit log, newest first (SPEC §10), with
/// a filter by action and pages of 50.
extension ConsoleRoutes {
    func registerActivity(_ console: RouterGroup<LatticeRequestContext>) {
        console.get("activity") { request, _ in
            try await signedIn(request) { visit, principal in
                try await activityPage(visit, request, principal)
            }
        }
    }

    func activityPage(_ visit: Visit, _ request: Request, _ principal: Principal) async throws -> Response {
        let query = request.uri.queryParameters
        let action = query.get("action").flatMap { $0.isEmpty ? nil : $0 }
        let number = max(1, min(Int(query.get("page") ?? "1") ?? 1, PageRequest.maximumPage))
        var view = ConsoleView.ActivityPage(filter: action ?? "", entries: [])
        do {
            let entries = try await api.audit(
                principal: principal,
                action: action,
                page: PageRequest(page: number, pageSize: 50)
            )
            view.entries = entries.nodes.map(ConsoleView.ActivityRow.init)
            let base = "/console/activity?action=" + Self.queryEscape(action ?? "") + "&page="
            if number > 1 { view.newer = base + String(number - 1) }
            if entries.hasNextPage { view.older = base + String(number + 1) }
        } catch let error as LatticeError where error.kind == .badRequest {
            return show(visit, request, title: "Activity", page: "activity", template: "activity", view, error: error)
        }
        return show(visit, request, title: "Activity", page: "activity", template: "activity", view)
    }
}

extension ConsoleView {
    struct ActivityRow {
        var failed: Bool
        var time: String
        var action: String
        var target: String
        var status: String
        var actor: String
        var remoteAddress: String

        init(_ entry: AuditEntryWire) {
            failed = entry.status >= 400
            time = entry.time
            action = entry.action
            target = entry.target
            status = String(entry.status)
            actor = entry.actor
            remoteAddress = entry.remoteAddress
        }
    }

    /// `activity.mustache`.
    struct ActivityPage {
        var filter: String
        var entries: [ActivityRow]
        var newer: String?
        var older: String?
    }
}
