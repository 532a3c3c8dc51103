import Foundation
import HTTPTypes
import Hummingbird
import LatticeDomain

/// The console's Billing page (the wallet, a month's statement with its CSV, the orders) and
/// Images page (official images and the namespace's snapshots, which it may delete).
extension ConsoleRoutes {
    func registerBilling(_ console: RouterGroup<LatticeRequestContext>) {
        console.get("billing") { request, _ in
            try await signedIn(request) { visit, principal in
                page(visit, title: "Billing", body: try await billingPage(request, principal), request: request)
            }
        }
        console.get("billing.csv") { request, _ in
            try await signedIn(request) { visit, principal in
                let month = request.uri.queryParameters.get("month").flatMap { $0.isEmpty ? nil : $0 }
                let statement = try await api.statement(principal: principal, month: month)
                var response = JSONResponse.csv(statement)
                decorate(&response, visit)
                return response
            }
        }
        console.get("images") { request, _ in
            try await signedIn(request) { visit, principal in
                page(visit, title: "Images", body: try await imagesPage(visit, principal), request: request)
            }
        }
        console.post("images/delete") { request, context in
            try await signedInForm(request, context) { visit, principal, form in
                do {
                    try await api.deleteImage(principal: principal, reference: form["name"])
                    return redirect("/console/images?flash=" + Self.queryEscape("Image deleted."), visit)
                } catch let error as LatticeError {
                    return redirect("/console/images?error=" + Self.queryEscape(error.message), visit)
                }
            }
        }
    }

    func billingPage(_ request: Request, _ principal: Principal) async throws -> String {
        let asked = request.uri.queryParameters.get("month").flatMap { $0.isEmpty ? nil : $0 }
        let statement: StatementWire
        do {
            statement = try await api.statement(principal: principal, month: asked)
        } catch let error as LatticeError where error.kind == .badRequest {
            return "<p class=\"error\" role=\"alert\">\(HTML.escape(error.message))</p>"
                + "<p><a href=\"/console/billing\">This month</a></p>"
        }
        let wallet = try await api.balance(namespace: principal.namespace)
        let orders = try await api.orders(principal: principal, page: PageRequest(page: 1, pageSize: 20)).nodes
        let money = { (amount: String) in "\(HTML.escape(amount)) \(HTML.escape(statement.currency))" }
        let instances = statement.instances.map {
            """
            <tr><td><code>\(HTML.escape($0.instanceName))</code></td><td class="num">\(HTML.escape($0.compute))</td>
            <td class="num optional">\(HTML.escape($0.prepaid))</td><td class="num">\(HTML.escape($0.storage))</td>
            <td class="num optional">\(HTML.escape($0.image))</td><td class="num">\(HTML.escape($0.total))</td></tr>
            """
        }.joined()
        let adjustments = statement.adjustments.map {
            """
            <tr><td>\(HTML.escape($0.createdAt))</td><td>\(HTML.escape($0.reason ?? ""))</td>
            <td class="num">\(HTML.escape($0.amount))</td></tr>
            """
        }.joined()
        let orderRows = orders.map {
            """
            <tr><td><code>\(HTML.escape($0.id))</code></td><td>\(HTML.escape($0.instanceName))</td>
            <td class="optional">\(HTML.escape($0.gpuSkuId))</td><td class="num">\(HTML.escape($0.amount))</td>
            <td>\(HTML.escape($0.status))</td><td class="optional">\(HTML.escape($0.createdAt))</td></tr>
            """
        }.joined()
        let totals = statement.totals
        let month = HTML.escape(statement.month)
        return """
            <section class="card" aria-labelledby="wallet-heading">
              <h2 id="wallet-heading">Wallet</h2>
              <p class="balance" id="balance">\(money(wallet.balance))</p>
            </section>
            <form method="get" action="/console/billing" class="inline">
              <label for="month">Month</label>
              <input id="month" name="month" type="month" value="\(month)" min="2000-01" max="2999-12">
              <button type="submit">Show</button>
              <a href="/console/billing.csv?month=\(month)" download id="csv">Download CSV</a>
            </form>
            <h2>Statement \(month)</h2>
            <div class="table-wrap"><table id="statement">
              <thead><tr><th scope="col">Instance</th><th scope="col" class="num">Compute</th>
              <th scope="col" class="num optional">Prepaid</th><th scope="col" class="num">Storage</th>
              <th scope="col" class="num optional">Images</th><th scope="col" class="num">Total</th></tr></thead>
              <tbody>\(instances.isEmpty ? "<tr><td colspan=\"6\">No charges this month.</td></tr>" : instances)</tbody>
            </table></div>
            \(adjustments.isEmpty ? "" : """
            <h3>Adjustments</h3>
            <div class="table-wrap"><table id="adjustments"><thead><tr><th scope="col">Time</th>
            <th scope="col">Reason</th><th scope="col" class="num">Amount</th></tr></thead>
            <tbody>\(adjustments)</tbody></table></div>
            """)
            <dl class="totals">
              <dt>Opening balance</dt><dd>\(money(totals.openingBalance))</dd>
              <dt>Top-ups</dt><dd>\(money(totals.topUps))</dd>
              <dt>Coupons</dt><dd>\(money(totals.coupons))</dd>
              <dt>Charges</dt><dd>\(money(totals.charges))</dd>
              <dt>Closing balance</dt><dd id="closing">\(money(totals.closingBalance))</dd>
            </dl>
            <h2>Orders</h2>
            <div class="table-wrap"><table id="orders">
              <thead><tr><th scope="col">Order</th><th scope="col">Instance</th>
              <th scope="col" class="optional">SKU</th>
              <th scope="col" class="num">Amount</th><th scope="col">Status</th>
              <th scope="col" class="optional">Created</th></tr></thead>
              <tbody>\(orderRows.isEmpty ? "<tr><td colspan=\"6\">No orders yet.</td></tr>" : orderRows)</tbody>
            </table></div>
            """
    }

    func imagesPage(_ visit: Visit, _ principal: Principal) async throws -> String {
        let images = try await api.images(principal: principal, page: PageRequest(page: 1, pageSize: 100)).nodes
        let rows = images.map { image -> String in
            let action =
                image.kind == "snapshot"
                ? HTML.form(
                    "Delete",
                    action: "/console/images/delete",
                    fields: ["name": image.name],
                    csrf: visit.csrf,
                    confirm: "Delete the image '\(image.name)'? This cannot be undone.",
                    style: "danger"
                ) : ""
            let size = ByteCountFormatter.string(fromByteCount: image.sizeBytes, countStyle: .binary)
            return """
                <tr><td><code>\(HTML.escape(image.name))</code></td><td>\(HTML.escape(image.kind))</td>
                <td>\(HTML.escape(image.status))</td><td class="num optional">\(HTML.escape(size))</td>
                <td class="optional">\(HTML.escape(image.createdAt))</td><td>\(action)</td></tr>
                """
        }.joined()
        return """
            <p>Official images, and the snapshots you saved by powering an instance off with
            “save as image”; create an instance from any of them.</p>
            <div class="table-wrap"><table id="images">
              <thead><tr><th scope="col">Image</th><th scope="col">Kind</th><th scope="col">Status</th>
              <th scope="col" class="num optional">Size</th><th scope="col" class="optional">Created</th>
              <th scope="col">Actions</th></tr></thead>
              <tbody>\(rows)</tbody></table></div>
            """
    }
}
