import Foundation

/// `GET /openapi.json`: an OpenAPI 3.1 description of every route, built from one table
/// so that adding a route means adding a line here (the router tests check that every
/// documented path answers something other than "no route").
enum OpenAPIDocument {
    struct Operation {
        let method: String
        let path: String
        let summary: String
        let body: String?
        let query: [String]
        let authenticated: Bool
    }

    static let operations: [Operation] = [
        .init(method: "get", path: "/healthz", summary: "Liveness", body: nil, query: [], authenticated: false),
        .init(
            method: "get",
            path: "/readyz",
            summary: "Readiness: store answers and the reconciler ran",
            body: nil,
            query: [],
            authenticated: false
        ),
        .init(
            method: "get",
            path: "/metrics",
            summary: "Prometheus metrics",
            body: nil,
            query: [],
            authenticated: false
        ),
        .init(
            method: "get",
            path: "/openapi.json",
            summary: "This document",
            body: nil,
            query: [],
            authenticated: false
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/regions",
            summary: "Regions and their clusters (bare array)",
            body: nil,
            query: [],
            authenticated: true
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/skus/computings",
            summary: "GPU SKUs with price and remainGPUCount (bare array)",
            body: nil,
            query: ["region_id"],
            authenticated: true
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/skus/disks",
            summary: "Disk SKUs",
            body: nil,
            query: ["region_id", "page", "pageSize"],
            authenticated: true
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/images",
            summary: "Official images and the caller's snapshots",
            body: nil,
            query: ["page", "pageSize"],
            authenticated: true
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/clusters/{cluster}/instances",
            summary: "Create an instance (answers it in status Creating)",
            body: "CreateInstance",
            query: [],
            authenticated: true
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/clusters/{cluster}/instances",
            summary: "The caller's instances in a cluster",
            body: nil,
            query: ["page", "pageSize"],
            authenticated: true
        ),
        .init(
            method: "delete",
            path: "/mdc/api/v1/clusters/{cluster}/instances",
            summary: "Delete the instance named by ?name= (answers \"ok\")",
            body: nil,
            query: ["name"],
            authenticated: true
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}",
            summary: "One instance",
            body: nil,
            query: [],
            authenticated: true
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}/power_off",
            summary: "Stop, optionally committing an image (answers \"ok\")",
            body: "PowerOff",
            query: [],
            authenticated: true
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}/power_on",
            summary: "Start a Stopped instance (answers \"ok\")",
            body: nil,
            query: [],
            authenticated: true
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/clusters/{cluster}/instances/{name}/renew",
            summary: "Extend a prepaid term, charged up front",
            body: "Renew",
            query: [],
            authenticated: true
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/admin/coupons",
            summary: "Admin: create a coupon",
            body: "CreateCoupon",
            query: [],
            authenticated: true
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/admin/coupons",
            summary: "Admin: list coupons",
            body: nil,
            query: ["page", "pageSize"],
            authenticated: true
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/tokens",
            summary: "Create a token; the secret is shown only here",
            body: "CreateToken",
            query: [],
            authenticated: true
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/tokens",
            summary: "The caller's tokens, without secrets",
            body: nil,
            query: ["page", "pageSize"],
            authenticated: true
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/tokens/{id}/regenerate",
            summary: "New secret for a token; the old one stops working",
            body: nil,
            query: [],
            authenticated: true
        ),
        .init(
            method: "delete",
            path: "/mdc/api/v1/tokens/{id}",
            summary: "Revoke a token",
            body: nil,
            query: [],
            authenticated: true
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/admin/users",
            summary: "Admin: create a namespace and its first token",
            body: "CreateUser",
            query: [],
            authenticated: true
        ),
        .init(
            method: "post",
            path: "/mdc/api/v1/admin/users/{namespace}/credit",
            summary: "Admin: top up a wallet",
            body: "Credit",
            query: [],
            authenticated: true
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/balance",
            summary: "The caller's wallet",
            body: nil,
            query: [],
            authenticated: true
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/orders",
            summary: "The caller's orders",
            body: nil,
            query: ["page", "pageSize"],
            authenticated: true
        ),
        .init(
            method: "get",
            path: "/mdc/api/v1/bills",
            summary: "The caller's charges",
            body: nil,
            query: ["page", "pageSize"],
            authenticated: true
        ),
    ]

    static var bodies: [String: [String: Any]] {
        [
            "CreateInstance": [
                "type": "object", "required": ["Cost", "VolumeMount", "namespace", "displayName", "image"],
                "properties": [
                    "Cost": [
                        "type": "object", "required": ["CostType", "DiskSKUID", "GPUSKUID"],
                        "properties": [
                            "CostType": ["type": ["string", "integer"]], "CouponID": ["type": "string"],
                            "DiskSKUID": ["type": ["string", "integer"]],
                            "GPUSKUID": ["type": ["string", "integer"]],
                            "CostTime": ["type": "string", "examples": ["3D", "2W", "1M"]],
                        ],
                    ],
                    "VolumeMount": [
                        "type": "array",
                        "items": [
                            "type": "object",
                            "properties": [
                                "PathInContainer": ["type": "string"], "Size": ["type": ["integer", "string"]],
                                "Type": ["type": "string"],
                            ],
                        ],
                    ],
                    "namespace": ["type": "string"],
                    "displayName": ["type": "string", "minLength": 1, "maxLength": 128],
                    "image": ["type": "string"], "Region": ["type": "string"], "description": ["type": "string"],
                ],
            ],
            "PowerOff": [
                "type": "object",
                "properties": [
                    "gracePeriodSeconds": ["type": ["integer", "string"]],
                    "needSnapshot": ["type": ["boolean", "string"]],
                    "imageName": ["type": "string"], "tag": ["type": "string"],
                ],
            ],
            "CreateToken": [
                "type": "object", "required": ["name"],
                "properties": ["name": ["type": "string"], "validityDays": ["type": "integer"]],
            ],
            "CreateUser": [
                "type": "object", "required": ["namespace"],
                "properties": [
                    "namespace": ["type": "string"], "balance": ["type": "string"], "admin": ["type": "boolean"],
                ],
            ],
            "Credit": ["type": "object", "required": ["amount"], "properties": ["amount": ["type": "string"]]],
            "Renew": [
                "type": "object", "required": ["CostTime"],
                "properties": ["CostTime": ["type": "string", "examples": ["+3D"]]],
            ],
            "CreateCoupon": [
                "type": "object", "required": ["kind", "value"],
                "properties": [
                    "id": ["type": "string"], "kind": ["enum": ["amount", "percent"]], "value": ["type": "string"],
                    "expiresAt": ["type": "string", "format": "date-time"], "maxUses": ["type": "integer"],
                ],
            ],
        ]
    }

    static func render() throws -> Data {
        var paths: [String: [String: Any]] = [:]
        for operation in operations {
            var parameters: [[String: Any]] = []
            for name in pathParameters(operation.path) {
                parameters.append(["name": name, "in": "path", "required": true, "schema": ["type": "string"]])
            }
            for name in operation.query {
                parameters.append([
                    "name": name, "in": "query", "required": name == "name", "schema": ["type": "string"],
                ])
            }
            if operation.authenticated {
                parameters.append([
                    "name": "namespace", "in": "header", "required": false, "schema": ["type": "string"],
                    "description": "The caller's namespace; defaults to the token's",
                ])
            }
            var entry: [String: Any] = [
                "summary": operation.summary,
                "parameters": parameters,
                "responses": [
                    "200": [
                        "description": "Success", "content": ["application/json": ["schema": [:] as [String: Any]]],
                    ],
                    "default": [
                        "description": "Error",
                        "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]],
                    ],
                ],
            ]
            if let body = operation.body {
                entry["requestBody"] = [
                    "required": true,
                    "content": ["application/json": ["schema": ["$ref": "#/components/schemas/\(body)"]]],
                ]
            }
            entry["security"] = operation.authenticated ? [["bearer": [] as [String]]] : [] as [[String: [String]]]
            paths[operation.path, default: [:]][operation.method] = entry
        }
        var schemas = bodies
        schemas["Error"] = [
            "type": "object", "required": ["code", "message"],
            "properties": ["code": ["type": "string"], "message": ["type": "string"]],
        ]
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

    static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
    }
}
