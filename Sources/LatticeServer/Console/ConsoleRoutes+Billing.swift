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
                try await billingPage(visit, request, principal)
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
                try await imagesPage(visit, request, principal)
            }
        }
        console.post("images/delete") { request, context in
            try await signedInForm(request, context) { visit, principal, form in
                do {
                    try await api.deleteImage(principal: principal, reference: form["name"])
                    return redirect(flashed("/console/images", "Image deleted.", visit), visit)
                } catch let error as LatticeError {
                    return try await imagesPage(visit, nil, principal, error: error)
                }
            }
        }
    }

    func billingPage(_ visit: Visit, _ request: Request, _ principal: Principal) async throws -> Response {
        let asked = request.uri.queryParameters.get("month").flatMap { $0.isEmpty ? nil : $0 }
        let wallet = try await api.balance(namespace: principal.namespace)
        let orders = try await api.orders(principal: principal, page: PageRequest(page: 1, pageSize: 20)).nodes
        var view = ConsoleView.BillingPage(
            balance: "\(wallet.balance) \(wallet.currency)",
            month: asked ?? "",
            statement: nil,
            orders: orders
        )
        do {
            let statement = try await api.statement(principal: principal, month: asked)
            view.month = statement.month
            view.statement = ConsoleView.StatementView(statement)
        } catch let error as LatticeError where error.kind == .badRequest {
            return show(visit, request, title: "Billing", page: "billing", template: "billing", view, error: error)
        }
        return show(visit, request, title: "Billing", page: "billing", template: "billing", view)
    }

    func imagesPage(
        _ visit: Visit,
        _ request: Request?,
        _ principal: Principal,
        error: LatticeError? = nil
    ) async throws -> Response {
        let images = try await api.images(principal: principal, page: PageRequest(page: 1, pageSize: 100)).nodes
        let view = ConsoleView.ImagesPage(csrf: visit.csrf, images: images.map(ConsoleView.ImageRow.init))
        return show(visit, request, title: "Images", page: "images", template: "images", view, error: error)
    }
}

extension ConsoleView {
    /// `billing.mustache`.
    struct BillingPage {
        var balance: String
        var month: String
        var statement: StatementView?
        var orders: [OrderWire]
    }

    /// A month's statement with every sum in the wallet's currency.
    struct StatementView {
        struct Adjustment {
            var createdAt: String
            var reason: String
            var amount: String
        }

        var month: String
        var instances: [StatementWire.InstanceLine]
        var hasAdjustments: Bool
        var adjustments: [Adjustment]
        var totals: [String: String]

        init(_ statement: StatementWire) {
            let currency = " " + statement.currency
            month = statement.month
            instances = statement.instances
            adjustments = statement.adjustments.map {
                Adjustment(createdAt: $0.createdAt, reason: $0.reason ?? "", amount: $0.amount + currency)
            }
            hasAdjustments = !adjustments.isEmpty
            let totals = statement.totals
            self.totals = [
                "openingBalance": totals.openingBalance, "topUps": totals.topUps, "coupons": totals.coupons,
                "charges": totals.charges, "closingBalance": totals.closingBalance,
            ].mapValues { $0 + currency }
        }
    }

    struct ImageRow {
        var name: String
        var kind: String
        var status: String
        var size: String
        var createdAt: String
        /// Only a snapshot of the namespace's own may be deleted.
        var delete: Button?

        init(_ image: ImageWire) {
            name = image.name
            kind = image.kind
            status = image.status
            size = ByteCountFormatter.string(fromByteCount: image.sizeBytes, countStyle: .binary)
            createdAt = image.createdAt
            delete =
                image.kind == "snapshot"
                ? Button(
                    "Delete",
                    action: "/console/images/delete",
                    confirm: "Delete the image '\(image.name)'? This cannot be undone.",
                    style: "danger",
                    fields: ["name": image.name]
                ) : nil
        }
    }

    /// `images.mustache`.
    struct ImagesPage {
        var csrf: String
        var images: [ImageRow]
    }
}
