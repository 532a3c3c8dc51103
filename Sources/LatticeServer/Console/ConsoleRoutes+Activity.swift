import Foundation
import Hummingbird
import LatticeDomain

/// The console's Activity page: the namespace's audit log, newest first (SPEC §10), with
/// a filter by action and pages of 50.
extension ConsoleRoutes {
    func registerActivity(_ console: RouterGroup<LatticeRequestContext>) {
        console.get("activity") { request, _ in
            try await signedIn(request) { visit, principal in
                page(visit, title: "Activity", body: try await activityPage(request, principal), request: request)
            }
        }
    }

    func activityPage(_ request: Request, _ principal: Principal) async throws -> String {
        let query = request.uri.queryParameters
        let action = query.get("action").flatMap { $0.isEmpty ? nil : $0 }
        let number = max(1, min(Int(query.get("page") ?? "1") ?? 1, PageRequest.maximumPage))
        let entries: Page<AuditEntryWire>
        do {
            entries = try await api.audit(
                principal: principal,
                action: action,
                page: PageRequest(page: number, pageSize: 50)
            )
        } catch let error as LatticeError where error.kind == .badRequest {
            return "<p class=\"error\" role=\"alert\">\(HTML.escape(error.message))</p>"
        }
        let rows = entries.nodes.map { entry -> String in
            let failed = entry.status >= 400 ? " class=\"failed\"" : ""
            return """
                <tr\(failed)><td>\(HTML.escape(entry.time))</td><td><code>\(HTML.escape(entry.action))</code></td>
                <td>\(HTML.escape(entry.target))</td><td>\(entry.status)</td>
                <td class="optional">\(HTML.escape(entry.actor))</td>
                <td class="optional">\(HTML.escape(entry.remoteAddress))</td></tr>
                """
        }.joined()
        let filter = HTML.escape(action ?? "")
        let base = "/console/activity?action=" + Self.queryEscape(action ?? "") + "&page="
        var pager: [String] = []
        if number > 1 { pager.append("<a href=\"\(base)\(number - 1)\">Newer</a>") }
        if entries.hasNextPage { pager.append("<a href=\"\(base)\(number + 1)\">Older</a>") }
        return """
            <p>Every change made in this namespace, through the API, the console, the CLI or the SSH
            gateway, newest first; entries are kept 90 days.</p>
            <form method="get" action="/console/activity" class="inline">
              <label for="action">Action</label>
              <input id="action" name="action" value="\(filter)" placeholder="instance.create">
              <button type="submit">Filter</button>
            </form>
            <div class="table-wrap"><table>
              <thead><tr><th scope="col">Time</th><th scope="col">Action</th><th scope="col">Target</th>
              <th scope="col">Status</th><th scope="col" class="optional">By</th>
              <th scope="col" class="optional">From</th></tr></thead>
              <tbody>\(rows.isEmpty ? "<tr><td colspan=\"6\">Nothing yet.</td></tr>" : rows)</tbody></table></div>
            <p>\(pager.joined(separator: " · "))</p>
            """
    }
}
