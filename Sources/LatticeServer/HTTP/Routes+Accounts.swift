import Foundation
import Hummingbird
import LatticeCompute
import LatticeDomain
import LatticeStore
import Synchronization

/// The routes of a tenant's account (tokens, keys, budget, webhooks, idle stop, templates,
/// events, money) and the admin's.
extension Routes {
    func registerAccounts(_ v1: RouterGroup<LatticeRequestContext>) {
        v1.post("tokens") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createToken(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.get("tokens") { request, context in
            try JSONResponse.encode(
                try await api.tokens(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.post("tokens/:id/regenerate") { _, context in
            try JSONResponse.encode(
                try await api.regenerateToken(
                    principal: try context.requirePrincipal(),
                    id: try context.parameters.require("id")
                )
            )
        }
        v1.delete("tokens/:id") { _, context in
            try await api.deleteToken(
                principal: try context.requirePrincipal(),
                id: try context.parameters.require("id")
            )
            return JSONResponse.ok
        }
        v1.post("ssh-keys") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createSSHKey(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.get("ssh-keys") { request, context in
            try JSONResponse.encode(
                try await api.sshKeys(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.delete("ssh-keys/:id") { _, context in
            try await api.deleteSSHKey(
                principal: try context.requirePrincipal(),
                id: try context.parameters.require("id")
            )
            return JSONResponse.ok
        }
        v1.get("budget") { request, context in
            try JSONResponse.encode(
                try await api.budget(
                    principal: try context.requirePrincipal(),
                    namespace: request.uri.queryParameters["namespace"].map(String.init)
                )
            )
        }
        v1.put("budget") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.setBudget(
                    principal: try context.requirePrincipal(),
                    namespace: request.uri.queryParameters["namespace"].map(String.init),
                    body: body
                )
            )
        }
        for (path, nodes) in [("events", false), ("admin/events", true)] {
            // A tenant's namespace's events; admins: the nodes'.
            v1.get(RouterPath(path)) { request, context in
                let namespace = try api.eventNamespace(principal: try context.requirePrincipal(), nodes: nodes)
                let resume =
                    request.headers[.lastEventID]
                    ?? request.uri.queryParameters["lastEventId"].map(String.init)
                if request.uri.queryParameters["follow"] == "false" {
                    return try JSONResponse.encode(
                        try await api.eventList(
                            namespace: namespace,
                            after: resume,
                            limit: request.uri.queryParameters["limit"].map(String.init)
                        )
                    )
                }
                return EventStream.response(
                    namespace: namespace,
                    after: try await api.eventStart(namespace: namespace, lastEventID: resume),
                    store: store,
                    hub: api.events,
                    format: api.configuration.time.format
                )
            }
        }
        v1.post("webhooks") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createWebhook(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.get("webhooks") { request, context in
            try JSONResponse.encode(
                try await api.webhooks(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.get("webhooks/:id") { _, context in
            try JSONResponse.encode(
                try await api.webhook(
                    principal: try context.requirePrincipal(),
                    id: try context.parameters.require("id")
                )
            )
        }
        v1.delete("webhooks/:id") { _, context in
            try await api.deleteWebhook(
                principal: try context.requirePrincipal(),
                id: try context.parameters.require("id")
            )
            return JSONResponse.ok
        }
        v1.get("webhooks/:id/deliveries") { request, context in
            try JSONResponse.encode(
                try await api.webhookDeliveries(
                    principal: try context.requirePrincipal(),
                    id: try context.parameters.require("id"),
                    page: try pageRequest(request)
                )
            )
        }
        v1.get("idle_stop") { request, context in
            try JSONResponse.encode(
                try await api.idleDefault(
                    principal: try context.requirePrincipal(),
                    namespace: request.uri.queryParameters["namespace"].map(String.init)
                )
            )
        }
        v1.put("idle_stop") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.setIdleDefault(
                    principal: try context.requirePrincipal(),
                    namespace: request.uri.queryParameters["namespace"].map(String.init),
                    body: body
                )
            )
        }
        v1.delete("idle_stop") { request, context in
            try await api.clearIdleDefault(
                principal: try context.requirePrincipal(),
                namespace: request.uri.queryParameters["namespace"].map(String.init)
            )
            return JSONResponse.ok
        }
        v1.post("templates") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createTemplate(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.get("templates") { request, context in
            try JSONResponse.encode(
                try await api.templates(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.get("templates/:id") { _, context in
            try JSONResponse.encode(
                TemplateWire(
                    try await api.template(
                        principal: try context.requirePrincipal(),
                        id: try context.parameters.require("id")
                    )
                )
            )
        }
        v1.delete("templates/:id") { _, context in
            try await api.deleteTemplate(
                principal: try context.requirePrincipal(),
                id: try context.parameters.require("id")
            )
            return JSONResponse.ok
        }
        v1.get("admin/nodes") { request, context in
            let page = LatticeAPI.page(
                try await api.adminNodes(principal: try context.requirePrincipal()),
                try pageRequest(request)
            )
            return try JSONResponse.encode(AdminNodesPage(page, sshListeners: readiness.sshListeners?()))
        }
        v1.post("admin/nodes/:node/:verb") { request, context in
            // Any body is size-checked and must be JSON; none is needed.
            _ = try await request.jsonBody(context: context)
            let verb = try context.parameters.require("verb")
            guard verb == "drain" || verb == "undrain" else {
                throw LatticeError.notFound("node action '\(verb.prefix(40))'")
            }
            return try JSONResponse.encode(
                try await api.setDrained(
                    principal: try context.requirePrincipal(),
                    node: try context.parameters.require("node"),
                    verb == "drain"
                )
            )
        }
        v1.post("admin/users") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createUser(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.get("admin/users") { request, context in
            try JSONResponse.encode(
                try await api.users(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.post("admin/users/:namespace/:verb") { request, context in
            let body = try await request.jsonBody(context: context)
            let verb = try context.parameters.require("verb")
            let principal = try context.requirePrincipal()
            let namespace = try context.parameters.require("namespace")
            switch verb {
            case "credit":
                return try JSONResponse.encode(
                    try await api.credit(principal: principal, namespace: namespace, body: body)
                )
            case "debit":
                return try JSONResponse.encode(
                    try await api.debit(principal: principal, namespace: namespace, body: body)
                )
            default:
                throw LatticeError.notFound("user action '\(verb.prefix(40))'")
            }
        }
        v1.get("admin/instances") { request, context in
            let query = request.uri.queryParameters
            return try JSONResponse.encode(
                try await api.adminInstances(
                    principal: try context.requirePrincipal(),
                    filter: InstanceFilter(
                        namespace: query.get("namespace") ?? "",
                        status: query.get("status") ?? "",
                        node: query.get("node") ?? ""
                    ),
                    page: try pageRequest(request)
                )
            )
        }
        v1.get("admin/users/:namespace/quota") { _, context in
            try JSONResponse.encode(
                try await api.quota(
                    principal: try context.requirePrincipal(),
                    namespace: try context.parameters.require("namespace")
                )
            )
        }
        v1.put("admin/users/:namespace/quota") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.setQuota(
                    principal: try context.requirePrincipal(),
                    namespace: try context.parameters.require("namespace"),
                    body: body
                )
            )
        }
        v1.post("admin/coupons") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.createCoupon(principal: try context.requirePrincipal(), body: body)
            )
        }
        v1.post("admin/coupons/:id/disable") { request, context in
            _ = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.disableCoupon(
                    principal: try context.requirePrincipal(),
                    id: try context.parameters.require("id")
                )
            )
        }
        v1.put("admin/skus/computings/:skuId") { request, context in
            let body = try await request.jsonBody(context: context)
            return try JSONResponse.encode(
                try await api.changePrice(
                    principal: try context.requirePrincipal(),
                    skuID: try context.parameters.require("skuId"),
                    body: body
                )
            )
        }
        v1.get("admin/skus/computings/:skuId/prices") { request, context in
            try JSONResponse.encode(
                try await api.priceHistory(
                    principal: try context.requirePrincipal(),
                    skuID: try context.parameters.require("skuId"),
                    page: try pageRequest(request)
                )
            )
        }
        v1.get("admin/coupons") { request, context in
            try JSONResponse.encode(
                try await api.coupons(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.get("audit") { request, context in
            try JSONResponse.encode(
                try await api.audit(
                    principal: try context.requirePrincipal(),
                    action: request.uri.queryParameters.get("action"),
                    page: try pageRequest(request)
                )
            )
        }
        v1.get("admin/audit") { request, context in
            try JSONResponse.encode(
                try await api.adminAudit(
                    principal: try context.requirePrincipal(),
                    namespace: request.uri.queryParameters.get("namespace"),
                    action: request.uri.queryParameters.get("action"),
                    page: try pageRequest(request)
                )
            )
        }
        v1.get("balance") { _, context in
            try JSONResponse.encode(try await api.balance(namespace: try context.requirePrincipal().namespace))
        }
        v1.get("orders") { request, context in
            try JSONResponse.encode(
                try await api.orders(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
        v1.get("statements") { request, context in try await statement(request, context) }
        v1.get("bills") { request, context in
            try JSONResponse.encode(
                try await api.bills(principal: try context.requirePrincipal(), page: try pageRequest(request))
            )
        }
    }
}
