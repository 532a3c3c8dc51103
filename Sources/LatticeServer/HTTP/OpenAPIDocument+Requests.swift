import Foundation
import LatticeDomain

/// The request bodies `/openapi.json` describes, with the patterns the request readers accept.
extension OpenAPIDocument {
    // MARK: Requests

    /// Patterns of what the request readers accept (`Requests.swift`, `ImageReference`).
    static let decimal = #"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?$"#
    static let positiveDecimal = #"^(0\.[0-9]{0,3}[1-9]|[1-9][0-9]{0,8}(\.[0-9]{1,4})?)$"#
    /// One line of 1 to 200 characters, not only spaces and tabs (`CreditRequest`).
    nonisolated(unsafe) static let reason: [String: Any] = [
        "type": "string", "minLength": 1, "maxLength": CreditRequest.maxReasonLength,
        "pattern": #"^[^\n\r\u0000]*[^ \t\n\r\u0000][^\n\r\u0000]*$"#,
    ]
    static let namespacePattern = #"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"#
    static let pathComponent = #"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"#
    static var imagePattern: String {
        let label = #"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"#
        let port = #"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"#
        let domain = "(\(label)(\\.\(label))*(:\(port))?/)?"
        return "^\(domain)\(pathComponent)(/\(pathComponent))*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
    }
    /// A clean absolute path outside /proc, /sys and /dev, or empty (the default path).
    static let mountPathPattern =
        #"^$|^/(?!(proc|sys|dev)(/|$))"# + #"[A-Za-z0-9_.-]*[A-Za-z0-9_-](/[A-Za-z0-9_.-]*[A-Za-z0-9_-])*$"#

    static var scalarID: [String: Any] {
        ["oneOf": [["type": "string", "minLength": 1, "maxLength": 64], ["type": "integer", "minimum": 0]]]
    }

    static var bodies: [String: [String: Any]] {
        [
            "CreateInstance": [
                "type": "object", "required": ["Cost", "namespace", "displayName"],
                // A template gives the image and the disk.
                "anyOf": [["required": ["image", "VolumeMount"]], ["required": ["template"]]],
                "properties": [
                    "Cost": [
                        "type": "object", "required": ["CostType", "DiskSKUID", "GPUSKUID"],
                        "properties": [
                            "CostType": ["enum": [1, 2, 3, 4, "1", "2", "3", "4"]],
                            "CouponID": ["type": "string", "maxLength": 64],
                            "DiskSKUID": scalarID, "GPUSKUID": scalarID,
                            "CostTime": ["type": "string", "pattern": #"^$|^([1-9][0-9]{0,2}|1000)[DWM]$"#],
                        ],
                    ],
                    "VolumeMount": [
                        "type": "array", "minItems": 1, "maxItems": 1,
                        "items": [
                            "type": "object",
                            "properties": [
                                "PathInContainer": [
                                    "type": "string", "maxLength": 255,
                                    "pattern": mountPathPattern,
                                ],
                                "Size": [
                                    "type": "integer", "minimum": 1, "maximum": CreateInstanceRequest.maximumSizeGiB,
                                ],
                                "Type": ["type": "string", "maxLength": 256],
                            ],
                        ],
                    ],
                    "namespace": ["type": "string", "pattern": namespacePattern],
                    "displayName": ["type": "string", "minLength": 1, "maxLength": 128],
                    "image": ["type": "string", "minLength": 1, "maxLength": 255, "pattern": imagePattern],
                    "Region": ["type": "string", "maxLength": 256],
                    "description": ["type": "string", "maxLength": 1024],
                    "env": environment, "secretEnv": environment,
                    "startupScript": ["type": "string", "maxLength": WorkloadSettings.maximumScriptBytes],
                    "ports": ports, "template": ["type": "string", "minLength": 1, "maxLength": 64],
                    "ScheduleStopTimestamp": ["type": "string", "format": "date-time"],
                    "idleStop": idlePolicy, "wakeOnConnect": ["type": ["boolean", "null"]],
                ],
            ],
            // The policy (afterMinutes given; null clears), wakeOnConnect alone, or null.
            "IdleStop": [
                "anyOf": [
                    ["type": "null"],
                    [
                        "type": "object", "required": ["afterMinutes"],
                        "properties": [
                            "afterMinutes": [
                                "type": ["integer", "null"], "minimum": IdleStopPolicy.minutes.lowerBound,
                                "maximum": IdleStopPolicy.minutes.upperBound,
                            ],
                            "gpuUtilizationBelow": ["type": ["integer", "null"], "minimum": 1, "maximum": 100],
                            "wakeOnConnect": ["type": ["boolean", "null"]],
                        ],
                    ],
                    [
                        "type": "object", "required": ["wakeOnConnect"],
                        "properties": ["wakeOnConnect": ["type": ["boolean", "null"]]],
                        "not": ["required": ["gpuUtilizationBelow"]],
                    ],
                ]
            ],
            "SetIdleDefault": [
                "type": "object", "required": ["afterMinutes"],
                "properties": [
                    "afterMinutes": [
                        "type": "integer", "minimum": IdleStopPolicy.minutes.lowerBound,
                        "maximum": IdleStopPolicy.minutes.upperBound,
                    ],
                    "gpuUtilizationBelow": ["type": "integer", "minimum": 1, "maximum": 100],
                    "wakeOnConnect": ["type": "boolean"],
                ],
            ],
            "CreateWebhook": [
                "type": "object", "required": ["url"],
                "properties": [
                    "url": ["type": "string", "format": "uri", "maxLength": WebhookRequest.maximumURLLength],
                    "events": [
                        "type": "array", "minItems": 1,
                        "items": ["enum": ["*"] + LatticeEvent.Kind.tenantKinds.map(\.rawValue)],
                    ],
                ],
            ],
            "SetBudget": [
                "type": "object", "required": ["monthlyLimit"],
                "properties": [
                    "monthlyLimit": ["type": "string", "pattern": positiveDecimal],
                    "alertAt": [
                        "type": "array", "maxItems": 10, "items": ["type": "integer", "minimum": 1, "maximum": 1000],
                    ],
                    "action": ["enum": ["notify", "block", "stop"]],
                ],
            ],
            "ScheduleStop": [
                "type": "object", "required": ["at"],
                "properties": [
                    "at": ["type": "string", "format": "date-time"],
                    "action": ["enum": ["power_off", "delete"]],
                ],
            ],
            "CreateTemplate": [
                "type": "object", "required": ["name", "image"],
                "properties": [
                    "name": ["type": "string", "minLength": 1, "maxLength": 128],
                    "image": ["type": "string", "minLength": 1, "maxLength": 255, "pattern": imagePattern],
                    "env": environment, "ports": ports,
                    "startupScript": ["type": "string", "maxLength": WorkloadSettings.maximumScriptBytes],
                    "diskSizeGB": ["type": "integer", "minimum": 1, "maximum": CreateInstanceRequest.maximumSizeGiB],
                    "description": ["type": "string", "maxLength": 1024], "public": ["type": "boolean"],
                ],
            ],
            "PowerOff": [
                "type": "object",
                "properties": [
                    "gracePeriodSeconds": ["type": "integer", "minimum": 0, "maximum": 3600],
                    "needSnapshot": ["type": "boolean"],
                    // Read only with needSnapshot: see the `then` below.
                    "imageName": ["type": "string", "maxLength": 256], "tag": ["type": "string", "maxLength": 256],
                ],
                "if": ["properties": ["needSnapshot": ["const": true]], "required": ["needSnapshot"]],
                "then": [
                    "required": ["imageName"],
                    "properties": [
                        "imageName": [
                            "type": "string", "minLength": 1, "maxLength": 128,
                            "pattern": "^\(pathComponent)(/\(pathComponent))*$",
                        ],
                        "tag": [
                            "anyOf": [
                                ["type": "string", "pattern": #"^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"#],
                                ["type": "null"],
                            ]
                        ],
                    ],
                ],
            ],
            "CreateToken": [
                "type": "object", "required": ["name"],
                "properties": [
                    "name": [
                        "type": "string", "minLength": 1, "maxLength": 64,
                        "pattern": #"^[^\u0000-\u001F\u007F]*[^\s\u0000-\u001F\u007F][^\u0000-\u001F\u007F]*$"#,
                    ],
                    "validityDays": ["type": "integer", "minimum": 1, "maximum": 36500],
                ],
            ],
            "CreateSSHKey": [
                "type": "object", "required": ["publicKey"],
                "properties": [
                    "name": ["type": "string", "maxLength": 64],
                    "publicKey": ["type": "string", "minLength": 1, "maxLength": 16384],
                ],
            ],
            "CreateUser": [
                "type": "object", "required": ["namespace"],
                "properties": [
                    "namespace": ["type": "string", "pattern": namespacePattern],
                    "balance": ["type": "string", "pattern": decimal], "admin": ["type": "boolean"],
                ],
            ],
            "Credit": [
                "type": "object", "required": ["amount"],
                "properties": ["amount": ["type": "string", "pattern": positiveDecimal], "reason": reason],
            ],
            "PriceChange": [
                "type": "object", "minProperties": 1,
                "properties": [
                    "price": ["type": "string", "pattern": positiveDecimal],
                    "ratio": ["type": "number", "exclusiveMinimum": 0, "maximum": 1, "multipleOf": 0.0001],
                    "discountStartTime": ["type": "string", "format": "date-time"],
                    "discountEndTime": ["type": "string", "format": "date-time"],
                ],
            ],
            "Debit": [
                "type": "object", "required": ["amount", "reason"],
                "properties": ["amount": ["type": "string", "pattern": positiveDecimal], "reason": reason],
            ],
            "Renew": [
                "type": "object", "required": ["CostTime"],
                "properties": ["CostTime": ["type": "string", "pattern": #"^\+?([1-9][0-9]{0,2}|1000)[DWM]$"#]],
            ],
            "QuotaUpdate": [
                "type": "object",
                "properties": [
                    "instances": ["type": "integer", "minimum": 0, "maximum": Quota.maximum],
                    "gpus": ["type": "integer", "minimum": 0, "maximum": Quota.maximum],
                    "tokens": ["type": "integer", "minimum": 0, "maximum": Quota.maximum],
                    "snapshots": ["type": "integer", "minimum": 0, "maximum": Quota.maximum],
                ],
                "additionalProperties": false,
            ],
            "CreateCoupon": [
                "type": "object", "required": ["kind", "value"],
                "properties": [
                    "id": ["type": "string", "pattern": #"^[A-Za-z0-9_-]{1,64}$"#],
                    "kind": ["enum": ["amount", "percent"]],
                    "value": ["type": "string"],
                    "expiresAt": ["type": "string", "format": "date-time"],
                    "maxUses": ["type": "integer", "minimum": 1, "maximum": 1_000_000_000],
                    "usesPerNamespace": ["type": "integer", "minimum": 1, "maximum": 1_000_000_000],
                    "namespaces": [
                        "type": "array", "minItems": 1, "maxItems": 1000,
                        "items": ["type": "string", "pattern": namespacePattern],
                    ],
                ],
                "oneOf": [
                    [
                        "properties": [
                            "kind": ["const": "amount"], "value": ["type": "string", "pattern": positiveDecimal],
                        ]
                    ],
                    [
                        "properties": [
                            "kind": ["const": "percent"],
                            "value": ["type": "string", "pattern": #"^([1-9]|[1-9][0-9]|100)$"#],
                        ]
                    ],
                ],
            ],
        ]
    }
}
