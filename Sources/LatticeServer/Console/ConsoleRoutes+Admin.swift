import Foundation
import Hummingbird
import LatticeDomain

/// The console's pages for an admin (SPEC §9): tenants with their wallets and quotas, every
/// namespace's instances (power off, power on, delete, acting in the tenant's namespace and
/// audited under the admin's name), the nodes (health, drain) and the prices. A tenant's
/// session gets a 403 page for any of them; every action goes through `LatticeAPI`, which
/// checks the admin flag again.
extension ConsoleRoutes {
    func registerAdmin(_ console: RouterGroup<LatticeRequestContext>) {
        let admin = console.group("admin")
        admin.get("tenants") { request, _ in
            try await signedInAdmin(request) { visit, principal in
                let namespace = request.uri.queryParameters.get("namespace").flatMap { $0.isEmpty ? nil : $0 }
                return try await tenantsPage(visit, request, principal, manage: namespace)
            }
        }
        admin.post("wallet/:verb") { request, context in
            try await signedInAdminForm(request, context) { visit, principal, form in
                let namespace = (form["namespace"] ?? "").trimmingCharacters(in: .whitespaces)
                context.trace.target = String(namespace.prefix(128))
                do {
                    let message = try await moveMoney(
                        principal,
                        form,
                        namespace,
                        try context.parameters.require("verb")
                    )
                    let back = "/console/admin/tenants?namespace=" + Self.queryEscape(namespace)
                    return redirect(flashed(back, message, visit), visit)
                } catch let error as LatticeError {
                    return try await tenantsPage(visit, nil, principal, manage: namespace, money: form, error: error)
                }
            }
        }
        admin.post("quota") { request, context in
            try await signedInAdminForm(request, context) { visit, principal, form in
                let namespace = form["namespace"] ?? ""
                context.trace.target = String(namespace.prefix(128))
                do {
                    let body = FormBody.json(form, ["instances", "gpus", "tokens", "snapshots"])
                    _ = try await api.setQuota(principal: principal, namespace: namespace, body: body)
                    let back = "/console/admin/tenants?namespace=" + Self.queryEscape(namespace)
                    return redirect(flashed(back, "Quota of \(namespace) set.", visit), visit)
                } catch let error as LatticeError {
                    return try await tenantsPage(visit, nil, principal, manage: namespace, error: error)
                }
            }
        }
        admin.get("instances") { request, _ in
            try await signedInAdmin(request) { visit, principal in
                try await adminInstancesPage(visit, request, principal)
            }
        }
        admin.get("instances.json") { request, _ in
            try await signedInAdmin(request) { _, principal in
                let (filter, page) = Self.adminInstanceQuery(request)
                let found = try await api.adminInstances(principal: principal, filter: filter, page: page)
                return try JSONResponse.encode(found.nodes.map(ConsoleView.LiveStatus.init))
            }
        }
        admin.post("instances/:namespace/:cluster/:name/:verb") { request, context in
            try await signedInAdminForm(request, context) { visit, principal, form in
                let namespace = try context.parameters.require("namespace")
                let name = try context.parameters.require("name")
                let verb = try context.parameters.require("verb")
                // The admin acts in the tenant's namespace, as the API's `namespace` header
                // lets it, and the audit entry is the tenant's, by the admin.
                let acting = Principal(
                    namespace: namespace,
                    tokenID: principal.tokenID,
                    isAdmin: true,
                    actor: principal.namespace
                )
                context.trace.identify(acting)
                do {
                    try await instanceVerb(
                        acting,
                        form,
                        cluster: try context.parameters.require("cluster"),
                        name: name,
                        verb: verb
                    )
                    let back = "/console/admin/instances?namespace=" + Self.queryEscape(namespace)
                    return redirect(flashed(back, Self.requested(name, verb), visit), visit)
                } catch let error as LatticeError {
                    return try await adminInstancesPage(visit, nil, principal, error: error)
                }
            }
        }
        admin.get("nodes") { request, _ in
            try await signedInAdmin(request) { visit, principal in
                try await nodesPage(visit, request, principal)
            }
        }
        admin.post("nodes/:node/:verb") { request, context in
            try await signedInAdminForm(request, context) { visit, principal, _ in
                let node = try context.parameters.require("node")
                do {
                    let verb = try context.parameters.require("verb")
                    guard verb == "drain" || verb == "undrain" else {
                        throw LatticeError.notFound("console action '\(verb.prefix(40))'")
                    }
                    let answer = try await api.setDrained(principal: principal, node: node, verb == "drain")
                    return redirect(
                        flashed("/console/admin/nodes", "\(answer.name) is \(answer.health).", visit),
                        visit
                    )
                } catch let error as LatticeError {
                    return try await nodesPage(visit, nil, principal, error: error)
                }
            }
        }
        admin.get("prices") { request, _ in
            try await signedInAdmin(request) { visit, principal in
                let sku = request.uri.queryParameters.get("sku").flatMap { $0.isEmpty ? nil : $0 }
                return try await pricesPage(visit, request, principal, chosen: sku)
            }
        }
        admin.post("prices/:sku") { request, context in
            try await signedInAdminForm(request, context) { visit, principal, form in
                let sku = try context.parameters.require("sku")
                do {
                    let body = FormBody.json(form, ["price", "ratio", "discountStartTime", "discountEndTime"])
                    let changed = try await api.changePrice(principal: principal, skuID: sku, body: body)
                    let message = "SKU \(sku) now costs \(changed.effectivePrice) \(api.configuration.currency)."
                    return redirect(
                        flashed("/console/admin/prices?sku=" + Self.queryEscape(sku), message, visit),
                        visit
                    )
                } catch let error as LatticeError {
                    return try await pricesPage(visit, nil, principal, chosen: sku, form: form, error: error)
                }
            }
        }
    }

    // MARK: Admin sessions

    /// `body` for an admin's session; the login page without one, a 403 page for a tenant's.
    func signedInAdmin(_ request: Request, _ body: (Visit, Principal) async throws -> Response) async throws -> Response
    {
        try await signedIn(request) { visit, principal in
            guard principal.isAdmin else { return forbidden(visit) }
            return try await body(visit, principal)
        }
    }

    func signedInAdminForm(
        _ request: Request,
        _ context: LatticeRequestContext,
        _ body: (Visit, Principal, [String: String]) async throws -> Response
    ) async throws -> Response {
        try await signedInForm(request, context) { visit, principal, form in
            guard principal.isAdmin else { return forbidden(visit) }
            return try await body(visit, principal, form)
        }
    }

    func forbidden(_ visit: Visit) -> Response {
        show(
            visit,
            nil,
            title: "Admins only",
            page: "",
            template: "message",
            ConsoleView.Message(text: "This page is for the cloud's admins.", link: "/console/instances"),
            error: LatticeError.forbidden("this page needs an admin's session; sign in with an admin token")
        )
    }

    // MARK: Tenants

    func tenantsPage(
        _ visit: Visit,
        _ request: Request?,
        _ principal: Principal,
        manage namespace: String?,
        money form: [String: String] = [:],
        error: LatticeError? = nil
    ) async throws -> Response {
        let number = Self.pageNumber(request)
        let users = try await api.users(principal: principal, page: PageRequest(page: number, pageSize: 50))
        let currency = api.configuration.currency
        var view = ConsoleView.TenantsPage(
            csrf: visit.csrf,
            currency: currency,
            tenants: users.nodes.map { ConsoleView.TenantRow($0) },
            money: .init(
                namespace: form["namespace"] ?? namespace ?? "",
                amount: form["amount"] ?? "",
                reason: form["reason"] ?? ""
            )
        )
        let base = "/console/admin/tenants?page="
        if number > 1 { view.newer = base + String(number - 1) }
        if users.hasNextPage { view.older = base + String(number + 1) }
        var shown = error
        if let namespace {
            do {
                view.quota = ConsoleView.QuotaView(try await api.quota(principal: principal, namespace: namespace))
            } catch let refused as LatticeError {
                shown = shown ?? refused
            }
        }
        return show(
            visit,
            request,
            title: "Tenants",
            page: "admin/tenants",
            template: "admin-tenants",
            view,
            error: shown
        )
    }

    /// Credits or debits a wallet; the sentence the page then shows.
    func moveMoney(
        _ principal: Principal,
        _ form: [String: String],
        _ namespace: String,
        _ verb: String
    ) async throws -> String {
        let body = FormBody.json(form, ["amount", "reason"])
        let wallet: BalanceWire
        switch verb {
        case "credit": wallet = try await api.credit(principal: principal, namespace: namespace, body: body)
        case "debit": wallet = try await api.debit(principal: principal, namespace: namespace, body: body)
        default: throw LatticeError.notFound("console action '\(verb.prefix(40))'")
        }
        let amount = (form["amount"] ?? "").trimmingCharacters(in: .whitespaces)
        let done =
            verb == "credit" ? "Credited \(amount) \(wallet.currency) to" : "Debited \(amount) \(wallet.currency) from"
        return "\(done) \(namespace); the balance is \(wallet.balance) \(wallet.currency)."
    }

    static func pageNumber(_ request: Request?) -> Int {
        let asked = request?.uri.queryParameters.get("page").flatMap { Int($0) } ?? 1
        return max(1, min(asked, PageRequest.maximumPage))
    }

    // MARK: All instances

    static func adminInstanceQuery(_ request: Request?) -> (InstanceFilter, PageRequest) {
        let query = request?.uri.queryParameters
        let filter = InstanceFilter(
            namespace: query?.get("namespace").map { String($0) } ?? "",
            status: query?.get("status").map { String($0) } ?? "",
            node: query?.get("node").map { String($0) } ?? ""
        )
        return (filter, PageRequest(page: pageNumber(request), pageSize: 50))
    }

    func adminInstancesPage(
        _ visit: Visit,
        _ request: Request?,
        _ principal: Principal,
        error: LatticeError? = nil
    ) async throws -> Response {
        let (filter, page) = Self.adminInstanceQuery(request)
        var view = ConsoleView.AdminInstancesPage(
            csrf: visit.csrf,
            filter: filter,
            statuses: InstanceStatus.allCases.map {
                ConsoleView.Choice(id: $0.rawValue, name: $0.rawValue, selected: $0.rawValue == filter.status)
            },
            total: 0,
            table: ConsoleView.InstanceTable([], empty: "No instances match.")
        )
        let query =
            "namespace=\(Self.queryEscape(filter.namespace))&status=\(Self.queryEscape(filter.status))"
            + "&node=\(Self.queryEscape(filter.node))"
        var shown = error
        do {
            let found = try await api.adminInstances(principal: principal, filter: filter, page: page)
            view.total = found.totalCount
            view.table = ConsoleView.InstanceTable(
                found.nodes.map {
                    let base = "/console/admin/instances/\($0.namespace)/\($0.Region)/\($0.name)"
                    return ConsoleView.InstanceRow($0, actionBase: base, admin: true)
                },
                empty: "No instances match."
            )
            let base = "/console/admin/instances?\(query)&page="
            if page.page > 1 { view.newer = base + String(page.page - 1) }
            if found.hasNextPage { view.older = base + String(page.page + 1) }
        } catch let refused as LatticeError where refused.kind == .badRequest {
            shown = shown ?? refused
        }
        return show(
            visit,
            request,
            title: "All instances",
            page: "admin/instances",
            template: "admin-instances",
            view,
            error: shown,
            live: "/console/admin/instances.json?\(query)&page=\(page.page)"
        )
    }

    // MARK: Nodes and prices

    func nodesPage(
        _ visit: Visit,
        _ request: Request?,
        _ principal: Principal,
        error: LatticeError? = nil
    ) async throws -> Response {
        let view = ConsoleView.NodesPage(
            csrf: visit.csrf,
            nodes: try await api.adminNodes(principal: principal).map(ConsoleView.NodeRow.init)
        )
        return show(visit, request, title: "Nodes", page: "admin/nodes", template: "admin-nodes", view, error: error)
    }

    func pricesPage(
        _ visit: Visit,
        _ request: Request?,
        _ principal: Principal,
        chosen: String?,
        form: [String: String] = [:],
        error: LatticeError? = nil
    ) async throws -> Response {
        let regions = Dictionary(api.catalog.regions.map { ($0.id, $0.name) }) { first, _ in first }
        let skus = try await api.gpuSkus(regionID: nil).map {
            ConsoleView.SKURow($0, regionName: regions[$0.regionID] ?? $0.regionID)
        }
        var view = ConsoleView.PricesPage(
            csrf: visit.csrf,
            currency: api.configuration.currency,
            skus: skus,
            form: .init(
                price: form["price"] ?? "",
                ratio: form["ratio"] ?? "",
                discountStartTime: form["discountStartTime"] ?? "",
                discountEndTime: form["discountEndTime"] ?? ""
            )
        )
        var shown = error
        if let chosen {
            if let row = skus.first(where: { $0.id == chosen }) {
                let history = try await api.priceHistory(
                    principal: principal,
                    skuID: chosen,
                    page: PageRequest(page: 1, pageSize: 50)
                )
                view.chosen = ConsoleView.ChosenSKU(row, history: history.nodes)
            } else {
                shown = shown ?? LatticeError.notFound("GPU SKU '\(chosen.prefix(80))'")
            }
        }
        return show(visit, request, title: "Prices", page: "admin/prices", template: "admin-prices", view, error: shown)
    }
}

extension ConsoleView {
    /// `message.mustache`: a sentence and a way back.
    struct Message {
        var text: String
        var link: String
    }

    struct TenantRow {
        var namespace: String
        var admin: Bool
        var balance: String
        var instances: String
        var gpusInUse: String
        var createdAt: String

        init(_ user: AdminUserWire) {
            namespace = user.namespace
            admin = user.admin
            balance = "\(user.balance) \(user.currency)"
            instances = String(user.instances)
            gpusInUse = String(user.gpusInUse)
            createdAt = user.createdAt
        }
    }

    /// A tenant's limits and use, as the quota form shows them.
    struct QuotaView {
        var namespace: String
        var usage: QuotaUsage
        var limits: Quota

        init(_ wire: QuotaWire) {
            namespace = wire.namespace
            usage = wire.usage
            limits = wire.quota
        }
    }

    /// `admin-tenants.mustache`.
    struct TenantsPage {
        struct Money {
            var namespace: String
            var amount: String
            var reason: String
        }

        var csrf: String
        var currency: String
        var tenants: [TenantRow]
        var money: Money
        var quota: QuotaView?
        var newer: String?
        var older: String?
    }

    /// `admin-instances.mustache`.
    struct AdminInstancesPage {
        var csrf: String
        var filter: InstanceFilter
        var statuses: [Choice]
        var total: Int
        var table: InstanceTable
        var newer: String?
        var older: String?
    }

    struct NodeRow {
        var name: String
        var cluster: String
        var gpuModel: String
        var gpuTotal: Int
        var gpuFree: Int
        var health: String
        var reason: String
        var toggle: Button

        init(_ node: AdminNodeWire) {
            name = node.name
            cluster = node.cluster
            gpuModel = node.gpuModel
            gpuTotal = node.gpuTotal
            gpuFree = node.gpuFree
            health = node.health
            reason = node.reason
            let base = "/console/admin/nodes/\(node.name)"
            toggle =
                node.health == NodeHealth.draining.rawValue
                ? Button("Undrain", action: base + "/undrain")
                : Button(
                    "Drain",
                    action: base + "/drain",
                    confirm: "Drain \(node.name)? What runs on it stays; nothing new is placed there.",
                    style: "danger"
                )
        }
    }

    /// `admin-nodes.mustache`.
    struct NodesPage {
        var csrf: String
        var nodes: [NodeRow]
    }

    /// One entry of a SKU's price history.
    struct PriceRow {
        var at: String
        var price: String
        var discount: String
        var actor: String

        init(_ price: PriceWire) {
            at = price.changedAt
            self.price = price.price
            discount =
                price.ratio == "1" || price.discountStartTime.isEmpty
                ? "—" : "×\(price.ratio) \(price.discountStartTime) – \(price.discountEndTime)"
            actor = price.actor
        }
    }

    /// The SKU whose price the form changes, with its history.
    struct ChosenSKU {
        var id: String
        var gpu: String
        var billing: String
        var price: String
        var history: [PriceRow]

        init(_ row: SKURow, history: [PriceWire]) {
            id = row.id
            gpu = row.gpu
            billing = row.billing
            price = row.price
            self.history = history.map(PriceRow.init)
        }
    }

    /// `admin-prices.mustache`.
    struct PricesPage {
        struct Form {
            var price: String
            var ratio: String
            var discountStartTime: String
            var discountEndTime: String
        }

        var csrf: String
        var currency: String
        var skus: [SKURow]
        var form: Form
        var chosen: ChosenSKU?
    }
}
