import Foundation
import LatticeDomain

/// `GET /openapi.json`: an OpenAPI 3.1 description of every route, its request body, its
/// query parameters and every answer (the success body's schema, and the error shape for
/// every other status), built from one table so that adding a route means adding a line
/// here. The router tests check that every documented path is routed; schemathesis
/// (`tests/fuzz/run.py`) checks the answers against it.
enum OpenAPIDocument {
    struct Query {
        let name: String
        let schema: [String: Any]
        var required = false
    }

    struct Operation {
        let method: String
        let path: String
        let summary: String
        var body: String? = nil
        var query: [Query] = []
        var authenticated = true
        /// The success answer's schema (a component name).
        let response: String
        var contentType = "application/json"
    }

    nonisolated(unsafe) static let page = [
        Query(name: "page", schema: ["type": "integer", "minimum": 1, "maximum": PageRequest.maximumPage]),
        Query(name: "pageSize", schema: ["type": "integer", "minimum": 1]),
    ]
    nonisolated(unsafe) static let auditAction = Query(
        name: "action",
        schema: ["type": "string", "pattern": "^[A-Za-z_.]{0,64}$"]
    )
    nonisolated(unsafe) static let regionID = Query(name: "region_id", schema: ["type": "string"])
    nonisolated(unsafe) static let nameQuery = Query(
        name: "name",
        schema: ["type": "string", "minLength": 1],
        required: true
    )

    nonisolated(unsafe) static let operations: [Operation] = [
        .init(method: "get", path: "/healthz", summary: "Liveness", authenticated: false, response: "Status"),
        .init(
            method: "get",
            path: "/readyz",
            summary: "Readiness: the store answers and the reconciler ran",
            authenticated: false,
            response: "Status"
        ),
        .init(
            method: "get",
            path: "/metrics",
            summary: "Prometheus metrics",
            authenticated: false,
            response: "Metrics",
            contentType: "text/plain"
        ),
        .init(method: "get", path: "/openapi.json", summary: "This document", authenticated: false, response: "Any"),
        .init(method: "get", path: "/mdc/api/v1/regions", summary: "Regions and their clusters", response: "Regions"),
        .init(
            method: "get",
            path: "/mdc/api/v1/skus/computings",
            summary: "GPU SKUs with price and remainGPUCount",
            query: [regionID],
            response: "GPUSKUs"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/skus/disks",
            summary: "Disk SKUs",
            query: [regionID] + page,
            response: "DiskSKUPage"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/images",
            summary: "Official images and the caller's snapshots",
            query: page,
            response: "ImagePage"
        ),
        .init(
            method: "delete",
            path: "/mdc/api/v1/images",
            summary: "Delete one of the caller's snapshots",
            query: [nameQuery],
            response: "Ok"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/clusters/{cluster}/instances",
            summary: "Create an instance (answers it in status Creating)",
            body: "CreateInstance",
            response: "Instance"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/clusters/{cluster}/instances",
            summary: "The caller's instances, newest first",
            query: page,
            response: "InstancePage"
        ),
        .init(
            method: "delete",
            path: "/mdc/api/v1/clusters/{cluster}/instances",
            summary: "Delete an instance (by ?name=)",
            query: [nameQuery],
            response: "Ok"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}",
            summary: "One instance",
            response: "Instance"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}/power_off",
            summary: "Stop, optionally saving the container as an image",
            body: "PowerOff",
            response: "Ok"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}/power_on",
            summary: "Start a Stopped instance",
            response: "Ok"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}/schedule_stop",
            summary: "Power off (or delete) a pay-as-you-go instance at a time; the zero time clears it",
            body: "ScheduleStop",
            response: "Instance"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}/idle_stop",
            summary: "Power a pay-as-you-go instance off once idle for a while (null clears); wakeOnConnect",
            body: "IdleStop",
            response: "Instance"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}/logs",
            // `follow=true` streams until the workload ends: an answer without an end, which this
            // document does not describe (docs/api-notes.md does).
            summary: "The workload's log (stdout, stderr, the startup script's output); ?follow=true streams it",
            query: [
                Query(name: "tail", schema: ["type": "integer", "minimum": 0, "maximum": LogsRequest.maximumTail])
            ],
            response: "Log",
            contentType: "text/plain"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}/metrics",
            summary: "What the running workload uses now: CPU, memory and each GPU",
            response: "WorkloadMetrics"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/budget",
            summary: "The namespace's monthly budget, with the month's spend and its forecast",
            query: [Query(name: "namespace", schema: ["type": "string"])],
            response: "Budget"
        ),
        .init(
            method: "put",
            path: "/mdc/api/v1/budget",
            summary: "Set the namespace's monthly budget (admins: ?namespace= any)",
            body: "SetBudget",
            query: [Query(name: "namespace", schema: ["type": "string"])],
            response: "Budget"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/idle_stop",
            summary: "The namespace's default idle stop for pay-as-you-go creates (admins: ?namespace= any)",
            query: [Query(name: "namespace", schema: ["type": "string"])],
            response: "IdleDefault"
        ),
        .init(
            method: "put",
            path: "/mdc/api/v1/idle_stop",
            summary: "Set the namespace's default idle stop",
            body: "SetIdleDefault",
            query: [Query(name: "namespace", schema: ["type": "string"])],
            response: "IdleDefault"
        ),
        .init(
            method: "delete",
            path: "/mdc/api/v1/idle_stop",
            summary: "Clear the namespace's default idle stop",
            query: [Query(name: "namespace", schema: ["type": "string"])],
            response: "Ok"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/events",
            summary: "The namespace's events as they commit (Server-Sent Events; Last-Event-ID resumes)",
            query: [Query(name: "lastEventId", schema: ["type": "string", "pattern": "^[0-9]{1,18}$"])],
            response: "EventStream",
            contentType: "text/event-stream"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/admin/events",
            summary: "Admins: the nodes' health events (node.unhealthy, node.drained, node.healthy) as SSE",
            query: [Query(name: "lastEventId", schema: ["type": "string", "pattern": "^[0-9]{1,18}$"])],
            response: "EventStream",
            contentType: "text/event-stream"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/webhooks",
            summary: "Register a webhook (its signing secret is shown once)",
            body: "CreateWebhook",
            response: "Webhook"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/webhooks",
            summary: "The namespace's webhooks",
            query: page,
            response: "WebhookPage"
        ),
        .init(method: "get", path: "/mdc/api/v1/webhooks/{id}", summary: "One webhook", response: "Webhook"),
        .init(method: "delete", path: "/mdc/api/v1/webhooks/{id}", summary: "Delete a webhook", response: "Ok"),
        .init(
            method: "get",
            path: "/mdc/api/v1/webhooks/{id}/deliveries",
            summary: "A webhook's deliveries, newest first, and how each went",
            query: page,
            response: "WebhookDeliveryPage"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/templates",
            summary: "Keep an instance template (public ones: admins only)",
            body: "CreateTemplate",
            response: "Template"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/templates",
            summary: "The official templates, the public ones and the namespace's own",
            query: page,
            response: "TemplatePage"
        ),
        .init(method: "get", path: "/mdc/api/v1/templates/{id}", summary: "One template", response: "Template"),
        .init(method: "delete", path: "/mdc/api/v1/templates/{id}", summary: "Delete a template", response: "Ok"),
        .init(
            method: "post",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}/renew",
            summary: "Extend a prepaid term",
            body: "Renew",
            response: "Instance"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/tokens",
            summary: "Create a token (its secret is shown once)",
            body: "CreateToken",
            response: "Token"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/tokens",
            summary: "The caller's tokens",
            query: page,
            response: "TokenPage"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/tokens/{id}/regenerate",
            summary: "A new secret for a token",
            response: "Token"
        ),
        .init(method: "delete", path: "/mdc/api/v1/tokens/{id}", summary: "Revoke a token", response: "Ok"),
        .init(
            method: "post",
            path: "/mdc/api/v1/ssh-keys",
            summary: "Register an SSH public key (OpenSSH form) for the SSH gateway",
            body: "CreateSSHKey",
            response: "SSHKey"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/ssh-keys",
            summary: "The namespace's SSH public keys",
            query: page,
            response: "SSHKeyPage"
        ),
        .init(method: "delete", path: "/mdc/api/v1/ssh-keys/{id}", summary: "Remove an SSH key", response: "Ok"),
        .init(
            method: "post",
            path: "/mdc/api/v1/admin/users",
            summary: "Admin: create a namespace and its first token",
            body: "CreateUser",
            response: "NewUser"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/admin/users",
            summary: "Admin: every namespace with its balance, instances and GPUs in use",
            query: page,
            response: "AdminUserPage"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/admin/users/{namespace}/credit",
            summary: "Admin: top up a wallet (with a reason: a refund, on the tenant's bills)",
            body: "Credit",
            response: "Balance"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/admin/users/{namespace}/debit",
            summary: "Admin: take money back, with a reason (an adjustment on the tenant's bills)",
            body: "Debit",
            response: "Balance"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/admin/instances",
            summary: "Admin: the instances of every namespace, newest first",
            query: page + [
                Query(name: "namespace", schema: ["type": "string"]),
                Query(name: "status", schema: ["enum": InstanceStatus.allCases.map(\.rawValue)]),
                Query(name: "node", schema: ["type": "string"]),
            ],
            response: "InstancePage"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/audit",
            summary: "The caller's namespace's audit log, newest first",
            query: page + [auditAction],
            response: "AuditPage"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/admin/audit",
            summary: "Admin: every namespace's audit log, newest first",
            query: page + [auditAction, Query(name: "namespace", schema: ["type": "string"])],
            response: "AuditPage"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/admin/nodes",
            summary: "Admin: every node with its health and free GPUs",
            query: page,
            response: "AdminNodePage"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/admin/nodes/{node}/drain",
            summary: "Admin: place nothing new on a node",
            response: "AdminNode"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/admin/nodes/{node}/undrain",
            summary: "Admin: place on a drained node again",
            response: "AdminNode"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/admin/users/{namespace}/quota",
            summary: "Admin: a namespace's quota and use",
            response: "Quota"
        ),
        .init(
            method: "put",
            path: "/mdc/api/v1/admin/users/{namespace}/quota",
            summary: "Admin: set limits of a namespace's quota",
            body: "QuotaUpdate",
            response: "Quota"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/admin/coupons",
            summary: "Admin: create a coupon",
            body: "CreateCoupon",
            response: "Coupon"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/admin/coupons",
            summary: "Admin: coupons",
            query: page,
            response: "CouponPage"
        ),
        .init(
            method: "put",
            path: "/mdc/api/v1/admin/skus/computings/{skuId}",
            summary: "Admin: change a GPU SKU's price while serving (for what starts afterwards)",
            body: "PriceChange",
            response: "GPUSKU"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/admin/skus/computings/{skuId}/prices",
            summary: "Admin: every price the SKU has had, newest first",
            query: page,
            response: "PricePage"
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/admin/coupons/{id}/disable",
            summary: "Admin: redeem a coupon no more (instances that have it keep it)",
            response: "Coupon"
        ),
        .init(method: "get", path: "/mdc/api/v1/balance", summary: "The caller's wallet", response: "Balance"),
        .init(
            method: "get",
            path: "/mdc/api/v1/statements",
            summary: "A month's statement (default: this month); as CSV with ?format=csv or Accept: text/csv",
            query: [Query(name: "month", schema: ["type": "string", "pattern": #"^2[0-9]{3}-(0[1-9]|1[0-2])$"#])],
            response: "Statement"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/orders",
            summary: "The caller's orders",
            query: page,
            response: "OrderPage"
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/bills",
            summary: "The caller's charges",
            query: page,
            response: "BillPage"
        ),
    ]

    static func render() throws -> Data {
        var paths: [String: [String: Any]] = [:]
        for operation in operations {
            var parameters: [[String: Any]] = []
            for name in pathParameters(operation.path) {
                parameters.append(["name": name, "in": "path", "required": true, "schema": ["type": "string"]])
            }
            for query in operation.query {
                parameters.append([
                    "name": query.name, "in": "query", "required": query.required, "schema": query.schema,
                ])
            }
            if operation.authenticated {
                parameters.append([
                    "name": "namespace", "in": "header", "required": false, "schema": ["type": "string"],
                    "description": "The caller's namespace; defaults to the token's",
                ])
            }
            if operation.method == "post" {
                parameters.append([
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "schema": ["type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7E]+$"],
                    "description": "Repeats of the same request answer the first answer (24 h)",
                ])
            }
            let error: [String: Any] = [
                "description": "Error: the code and a message naming the field or resource",
                "content": ["application/json": ["schema": ref("Error")]],
                "headers": ["Retry-After": ["description": "On 429 and 503: seconds to wait", "schema": integer]],
            ]
            var entry: [String: Any] = [
                "summary": operation.summary,
                "parameters": parameters,
                "responses": [
                    "200": [
                        "description": "Success",
                        "content": [operation.contentType: ["schema": ref(operation.response)]],
                    ],
                    "default": error,
                ],
            ]
            if let body = operation.body {
                entry["requestBody"] = [
                    // power_off and a quota change may come without a body.
                    "required": !["PowerOff", "QuotaUpdate"].contains(body),
                    "content": ["application/json": ["schema": ref(body)]],
                ]
            }
            entry["security"] = operation.authenticated ? [["bearer": [] as [String]]] : [] as [[String: [String]]]
            paths[operation.path, default: [:]][operation.method] = entry
        }
        var schemas = bodies.mapValues(nullableOptionals)
        schemas.merge(answers) { request, _ in request }
        let document: [String: Any] = [
            "openapi": "3.1.0",
            "info": [
                "title": "Lattice Computing API", "version": "1",
                "description": "Wire-compatible with the seed's Computing API; see SPEC.md and docs/api-notes.md.",
            ],
            "paths": paths,
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
                "schemas": schemas,
            ],
        ]
        return try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    /// String fields whose digits alone would not be valid (so a number is refused).
    static let strictStrings: Set<String> = ["PathInContainer", "expiresAt", "value", "CostTime"]
    /// String fields any text is good for, so any whole number is too (even a negative one).
    static let freeText: Set<String> = [
        "name", "displayName", "description", "Region", "CouponID", "id", "Type", "imageName", "tag",
    ]

    /// Request readers take `null` for an optional field as its absence, and a whole number
    /// for a string: say so in the schema of every property, at every depth.
    static func nullableOptionals(_ schema: [String: Any]) -> [String: Any] {
        var schema = schema
        if var properties = schema["properties"] as? [String: Any] {
            let required = Set(schema["required"] as? [String] ?? [])
            for (name, value) in properties {
                guard var property = value as? [String: Any] else { continue }
                property = nullableOptionals(property)
                // The seed's leniency: a string field takes a whole number too, read as its digits.
                if property["type"] as? String == "string", !strictStrings.contains(name) {
                    let money = ["amount", "balance"].contains(name)
                    let largest = money ? 1_000_000_000 : 999_999_999_999_999
                    let smallest = freeText.contains(name) ? -largest : name == "amount" ? 1 : 0
                    property = ["anyOf": [property, ["type": "integer", "minimum": smallest, "maximum": largest]]]
                }
                properties[name] = required.contains(name) ? property : ["anyOf": [property, ["type": "null"]]]
            }
            schema["properties"] = properties
        }
        if let items = schema["items"] as? [String: Any] { schema["items"] = nullableOptionals(items) }
        return schema
    }

    /// The methods documented for a request path (`{param}` matches one segment), or nil
    /// when no documented path matches: the router answers 405 with `Allow` for the others.
    static func methods(forPath path: String) -> [String]? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        let methods = operations.filter { operation in
            let template = operation.path.split(separator: "/", omittingEmptySubsequences: false)
            return template.count == segments.count
                && zip(template, segments).allSatisfy { $0.hasPrefix("{") ? !$1.isEmpty : $0 == $1 }
        }.map { $0.method.uppercased() }
        return methods.isEmpty ? nil : Array(Set(methods)).sorted()
    }

    static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
    }
}
