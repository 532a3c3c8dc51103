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
        console.post("billing/budget") { request, context in
            try await signedInForm(request, context) { visit, principal, form in
                do {
                    _ = try await api.setBudget(principal: principal, namespace: nil, body: Self.budgetBody(form))
                    return redirect(flashed("/console/billing", "Budget saved.", visit), visit)
                } catch let error as LatticeError {
                    return try await billingPage(visit, nil, principal, error: error, form: form)
                }
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

    func billingPage(
        _ visit: Visit,
        _ request: Request?,
        _ principal: Principal,
        error: LatticeError? = nil,
        form: [String: String]? = nil
    ) async throws -> Response {
        let asked = request?.uri.queryParameters.get("month").flatMap { $0.isEmpty ? nil : $0 }
        let wallet = try await api.balance(namespace: principal.namespace)
        let orders = try await api.orders(principal: principal, page: PageRequest(page: 1, pageSize: 20)).nodes
        let budget: BudgetWire?
        do {
            budget = try await api.budget(principal: principal, namespace: nil)
        } catch let missing as LatticeError where missing.kind == .notFound {
            budget = nil
        }
        var view = ConsoleView.BillingPage(
            balance: "\(wallet.balance) \(wallet.currency)",
            month: asked ?? "",
            statement: nil,
            orders: orders,
            csrf: visit.csrf,
            budget: budget,
            budgetForm: ConsoleView.BudgetForm(form: form, budget: budget)
        )
        do {
            let statement = try await api.statement(principal: principal, month: asked)
            view.month = statement.month
            view.statement = ConsoleView.StatementView(statement)
        } catch let refused as LatticeError where refused.kind == .badRequest {
            return show(visit, request, title: "Billing", page: "billing", template: "billing", view, error: refused)
        }
        return show(visit, request, title: "Billing", page: "billing", template: "billing", view, error: error)
    }

    /// The budget form as the API's body: `alertAt` is a comma-separated list of percentages.
    static func budgetBody(_ form: [String: String]) -> JSONValue {
        let alerts = (form["alertAt"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.map { piece -> JSONValue in Int(piece).map { .number(Double($0)) } ?? .string(piece)
            }
        var body: [String: JSONValue] = [
            "monthlyLimit": .string(form["monthlyLimit"] ?? ""), "action": .string(form["action"] ?? "notify"),
        ]
        if !alerts.isEmpty { body["alertAt"] = .array(alerts) }
        return .object(body)
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
        var csrf: String
        var budget: BudgetWire?
        var budgetForm: BudgetForm
    }

    /// The budget form's values: what was sent (a refused form), else the budget as it is.
    struct BudgetForm {
        var monthlyLimit: String
        var alertAt: String
        var notify: Bool
        var block: Bool
        var stop: Bool

        init(form: [String: String]?, budget: BudgetWire?) {
            monthlyLimit = form?["monthlyLimit"] ?? budget?.monthlyLimit ?? ""
            alertAt =
                form?["alertAt"] ?? budget.map { $0.alertAt.map(String.init).joined(separator: ", ") } ?? "50, 80, 100"
            let action = form?["action"] ?? budget?.action ?? "notify"
            notify = action == "notify"
            block = action == "block"
            stop = action == "stop"
        }
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
