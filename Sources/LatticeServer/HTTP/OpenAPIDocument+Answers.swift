import Foundation
import LatticeDomain

/// The answers' schemas `/openapi.json` describes.
extension OpenAPIDocument {
    // MARK: Answers

    nonisolated(unsafe) static let string: [String: Any] = ["type": "string"]
    nonisolated(unsafe) static let integer: [String: Any] = ["type": "integer"]
    nonisolated(unsafe) static let number: [String: Any] = ["type": "number"]
    nonisolated(unsafe) static let boolean: [String: Any] = ["type": "boolean"]

    /// An object with these properties, all required unless listed in `optional`.
    static func object(_ properties: [String: Any], optional: Set<String> = []) -> [String: Any] {
        [
            "type": "object", "properties": properties,
            "required": properties.keys.filter { !optional.contains($0) }.sorted(),
        ]
    }

    static func strings(_ names: [String]) -> [String: Any] {
        object(Dictionary(uniqueKeysWithValues: names.map { ($0, string as Any) }))
    }

    static func ref(_ name: String) -> [String: Any] { ["$ref": "#/components/schemas/\(name)"] }

    /// `env` and `secretEnv` (SPEC §11).
    nonisolated(unsafe) static let environment: [String: Any] = [
        "type": "object", "maxProperties": WorkloadSettings.maximumVariables,
        "propertyNames": ["pattern": "^[A-Za-z_][A-Za-z0-9_]*$"], "additionalProperties": ["type": "string"],
    ]
    /// `idleStop` at create (SPEC §12).
    nonisolated(unsafe) static let idlePolicy: [String: Any] = [
        "type": ["object", "null"], "required": ["afterMinutes"],
        "properties": [
            "afterMinutes": [
                "type": "integer", "minimum": IdleStopPolicy.minutes.lowerBound,
                "maximum": IdleStopPolicy.minutes.upperBound,
            ],
            "gpuUtilizationBelow": ["type": ["integer", "null"], "minimum": 1, "maximum": 100],
        ],
    ]
    nonisolated(unsafe) static let ports: [String: Any] = [
        "type": "array", "maxItems": WorkloadSettings.maximumPorts,
        "items": [
            "type": "object", "required": ["port"],
            "properties": [
                "port": ["type": "integer", "minimum": 1, "maximum": 65535, "not": ["const": 22]],
                "name": ["type": "string", "maxLength": 64], "public": ["type": "boolean"],
            ],
        ],
    ]

    static func pageOf(_ name: String) -> [String: Any] {
        object(["hasNextPage": boolean, "nodes": ["type": "array", "items": ref(name)], "totalCount": integer])
    }

    static var answers: [String: [String: Any]] {
        let limits = object(["instances": integer, "gpus": integer, "tokens": integer, "snapshots": integer])
        let instance = object(
            [
                "name": string, "namespace": string, "Region": string, "displayName": string, "description": string,
                "annotations": ["type": "object", "additionalProperties": string], "uid": string,
                "servers": object([
                    "Jupyterlab": string, "Tensorboard": string,
                    "SSH": object(["sshAddr": string, "sshPassword": string]),
                    "ports": [
                        "type": "array",
                        "items": object(["port": integer, "name": string, "url": string, "public": boolean]),
                    ],
                    "apps": object([
                        "jupyterlab": ["enum": ["running", "starting", "absent"]],
                        "tensorboard": ["enum": ["running", "starting", "absent"]],
                    ]),
                ]),
                "env": ["type": "object", "additionalProperties": string],
                "secretEnvNames": ["type": "array", "items": string], "startupScript": string,
                "scheduleStopAction": ["enum": ["", "power_off", "delete"]],
                "idleStop": object(
                    ["afterMinutes": integer, "gpuUtilizationBelow": integer],
                    optional: ["gpuUtilizationBelow"]
                ),
                "idle": object(["since": string, "stopsAt": string]), "wakeOnConnect": boolean,
                "image": string, "replicas": integer,
                "resources": strings(["cpu", "memory", "GPUNum", "GPUType"]),
                "volumeMounts": [
                    "type": "array",
                    "items": object([
                        "PathInContainer": string, "Type": string, "Size": integer, "PVCName": string,
                        "displayName": string, "filesystemType": string,
                    ]),
                ],
                "creationTimestamp": string, "updateTimestamp": string, "ScheduleStopTimestamp": string,
                "status": ["enum": InstanceStatus.allCases.map(\.rawValue)], "statusReason": string,
                "retentionUntil": string, "regionID": string,
                "cost": strings(["CostType", "CostTime", "DiscountID", "GPUSKUID", "DiskSKUID", "CouponID"]),
                "Pods": [
                    "type": "array",
                    "items": object([
                        "Name": string, "Containers": ["type": "array", "items": strings(["Name"])],
                        "nodeScheduled": string, "ip": string,
                    ]),
                ],
            ],
            // Absent without an idle policy (SPEC §12).
            optional: ["idleStop"]
        )
        return [
            "Any": [:],
            "Ok": ["const": "ok"],
            "Status": strings(["status"]),
            "Metrics": string,
            "Regions": [
                "type": "array",
                "items": strings(["id", "region", "clusterName", "harborAddr", "howlerID", "createdAt", "updatedAt"]),
            ],
            "GPUSKUs": ["type": "array", "items": ref("GPUSKU")],
            "Price": strings([
                "skuId", "price", "ratio", "discountStartTime", "discountEndTime", "changedAt", "actor",
            ]),
            "PricePage": pageOf("Price"),
            "GPUSKU": object([
                "name": string, "regionID": string, "cpuArch": string, "cpuSeries": string, "cpucores": integer,
                "memoryCount": integer, "cpuVendor": string, "gpuSeries": string, "gpuProduct": string,
                "gpuResourceKey": string, "gpuCounts": integer, "gpuMemory": integer, "systemstorage": integer,
                "datastorage": integer, "skusID": string, "regionName": string, "clusterName": string,
                "sellingType": string, "ratio": number, "discountID": string, "discountStartTime": string,
                "discountEndTime": string, "price": number, "remainGPUCount": integer, "effectivePrice": string,
            ]),
            "DiskSKU": object([
                "id": string, "name": string, "regionID": string, "type": string, "pricePerGBDay": string,
                "minSize": integer, "maxSize": integer, "defaultSize": integer,
            ]),
            "DiskSKUPage": pageOf("DiskSKU"),
            "Image": object([
                "name": string, "repository": string, "tag": string, "kind": ["enum": ["official", "snapshot"]],
                "status": ["enum": ["Saving", "Ready", "Failed"]], "sizeBytes": integer, "createdAt": string,
            ]),
            "ImagePage": pageOf("Image"),
            "Instance": instance,
            "InstancePage": pageOf("Instance"),
            "Token": object(
                [
                    "id": string, "name": string, "createdAt": string, "expiresAt": string, "lastUsedAt": string,
                    "token": string,
                ],
                optional: ["token"]
            ),
            "TokenPage": pageOf("Token"),
            "SSHKey": strings(["id", "name", "fingerprint", "publicKey", "createdAt"]),
            "Log": string,
            "WorkloadMetrics": object([
                "at": string, "cpuPercent": number, "memoryUsedBytes": integer, "memoryLimitBytes": integer,
                "gpus": [
                    "type": "array",
                    "items": object([
                        "index": integer, "utilization": number, "memoryUsedMiB": integer, "memoryTotalMiB": integer,
                    ]),
                ],
            ]),
            "Template": object([
                "id": string, "name": string, "image": string,
                "env": ["type": "object", "additionalProperties": string],
                "ports": ["type": "array", "items": object(["port": integer, "name": string, "public": boolean])],
                "startupScript": string, "diskSizeGB": ["type": ["integer", "null"]], "description": string,
                "public": boolean, "official": boolean,
            ]),
            "TemplatePage": pageOf("Template"),
            "EventStream": string,
            "IdleDefault": object(
                [
                    "namespace": string, "afterMinutes": integer,
                    "gpuUtilizationBelow": ["type": ["integer", "null"]], "wakeOnConnect": boolean,
                    "updatedAt": string,
                ]
            ),
            "Webhook": object(
                [
                    "id": string, "url": string, "events": ["type": "array", "items": string], "secret": string,
                    "createdAt": string,
                ],
                optional: ["secret"]
            ),
            "WebhookPage": pageOf("Webhook"),
            "WebhookDelivery": object([
                "id": string, "eventId": string, "type": string,
                "status": ["enum": ["pending", "delivered", "failed"]],
                "attempts": integer, "lastAttemptAt": string, "nextAttemptAt": string, "responseStatus": integer,
                "error": string, "deliveredAt": string,
            ]),
            "WebhookDeliveryPage": pageOf("WebhookDelivery"),
            "Budget": object([
                "namespace": string, "monthlyLimit": string, "alertAt": ["type": "array", "items": integer],
                "action": ["enum": ["notify", "block", "stop"]], "spentThisMonth": string, "forecast": string,
                "currency": string,
            ]),
            "SSHKeyPage": pageOf("SSHKey"),
            "AdminNode": object([
                "name": string, "cluster": string, "gpuModel": string, "gpuTotal": integer, "gpuFree": integer,
                "health": string, "reason": string,
            ]),
            "AdminNodePage": pageOf("AdminNode"),
            "AuditEntry": object([
                "id": string, "time": string, "namespace": string, "actor": string, "action": string,
                "target": string, "status": integer, "requestId": string, "remoteAddress": string,
            ]),
            "AuditPage": pageOf("AuditEntry"),
            "NewUser": object(["namespace": string, "token": string], optional: ["token"]),
            "Balance": strings(["namespace", "balance", "currency"]),
            "Quota": object(["namespace": string, "quota": limits, "usage": limits]),
            "Coupon": object(
                [
                    "id": string, "kind": string, "value": string, "expiresAt": string, "maxUses": integer,
                    "uses": integer, "createdAt": string, "namespaces": ["type": "array", "items": string],
                    "usesPerNamespace": integer, "disabledAt": string,
                ],
                optional: ["namespaces", "usesPerNamespace", "disabledAt"]
            ),
            "CouponPage": pageOf("Coupon"),
            "Order": strings(["id", "instanceName", "costType", "gpuSkuId", "amount", "status", "createdAt"]),
            "OrderPage": pageOf("Order"),
            "Bill": object(
                [
                    "id": string, "instanceName": string, "kind": string, "periodStart": string, "periodEnd": string,
                    "amount": string, "createdAt": string, "reason": string,
                ],
                optional: ["reason"]
            ),
            "Statement": object([
                "namespace": string, "month": string, "currency": string, "from": string, "to": string,
                "instances": [
                    "type": "array",
                    "items": strings(["instanceName", "compute", "prepaid", "storage", "image", "total"]),
                ],
                "adjustments": ["type": "array", "items": ref("Bill")],
                "lines": ["type": "array", "items": ref("Bill")],
                "totals": strings([
                    "openingBalance", "compute", "prepaid", "storage", "image", "adjustments", "charges", "topUps",
                    "coupons", "closingBalance",
                ]),
            ]),
            "AdminUser": object([
                "namespace": string, "admin": boolean, "balance": string, "currency": string, "instances": integer,
                "gpusInUse": integer, "createdAt": string,
            ]),
            "AdminUserPage": pageOf("AdminUser"),
            "BillPage": pageOf("Bill"),
            "Error": strings(["code", "message"]),
        ]
    }
}
