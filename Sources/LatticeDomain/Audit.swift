import Foundation

/// One state-changing call, as the audit log keeps it (SPEC §10): who (`actor`, the
/// namespace whose token or session made the call, or `ssh:<method>` for a gateway
/// sign-in) did what (`action`) to what (`target`) in which namespace, and how it was
/// answered (`status`, the HTTP status, so refused calls are there too).
public struct AuditEntry: Codable, Sendable, Equatable {
    public var id: String
    public var time: Date
    public var namespace: String
    public var actor: String
    public var action: String
    public var target: String
    public var status: Int
    public var requestId: String
    public var remoteAddress: String

    public init(
        id: String,
        time: Date,
        namespace: String,
        actor: String,
        action: String,
        target: String,
        status: Int,
        requestId: String,
        remoteAddress: String
    ) {
        self.id = id
        self.time = time
        self.namespace = namespace
        self.actor = actor
        self.action = action
        self.target = target
        self.status = status
        self.requestId = requestId
        self.remoteAddress = remoteAddress
    }
}

/// Which calls are audited and under what name, and for how long entries are kept.
public enum AuditRule {
    /// Entries older than this are deleted (SPEC §10: 90 days).
    public static let retention: TimeInterval = 90 * 86400

    /// The dotted action of a call by its method and route template (`{param}` captures,
    /// as the router names them) and, for routes that end in one, the `{verb}` the path
    /// gives (`node.drain`); nil for a call that changes nothing (GET, HEAD) or is neither
    /// the API's nor the console's.
    public static func action(method: String, route: String, verb: String? = nil) -> String? {
        guard mayChangeState(method: method) else { return nil }
        let key = method + " " + route
        if let known = actions[key] { return known }
        if let prefix = verbActions[key], let verb, !verb.isEmpty, verb.count <= 32,
            verb.allSatisfy({ $0.isASCII && ($0.isLetter || $0 == "_") })
        {
            return prefix + "." + verb
        }
        if route.hasPrefix("/mdc/api/v1/") || route.hasPrefix("/console/") {
            // A state-changing route this table does not know yet is still audited.
            return "http." + method.lowercased()
        }
        return nil
    }

    /// Whether a call of this method may change state (and so is audited).
    public static func mayChangeState(method: String) -> Bool {
        method != "GET" && method != "HEAD" && method != "OPTIONS"
    }

    static let v1 = "/mdc/api/v1"
    static let instances = "\(v1)/clusters/{cluster}/instances"
    static let actions: [String: String] = [
        "POST \(instances)": "instance.create",
        "DELETE \(instances)": "instance.delete",
        "POST \(instances)/{name}/power_off": "instance.power_off",
        "POST \(instances)/{name}/power_on": "instance.power_on",
        "POST \(instances)/{name}/schedule_stop": "instance.schedule_stop",
        "POST \(instances)/{name}/idle_stop": "instance.idle_stop",
        "POST \(instances)/{name}/renew": "instance.renew",
        "DELETE \(v1)/images": "image.delete",
        "POST \(v1)/tokens": "token.create",
        "POST \(v1)/tokens/{id}/regenerate": "token.regenerate",
        "DELETE \(v1)/tokens/{id}": "token.delete",
        "POST \(v1)/ssh-keys": "ssh_key.create",
        "POST \(v1)/templates": "template.create",
        "PUT \(v1)/budget": "budget.set",
        "PUT \(v1)/idle_stop": "idle_default.set",
        "DELETE \(v1)/idle_stop": "idle_default.clear",
        "POST \(v1)/webhooks": "webhook.create",
        "DELETE \(v1)/webhooks/{id}": "webhook.delete",
        "DELETE \(v1)/templates/{id}": "template.delete",
        "DELETE \(v1)/ssh-keys/{id}": "ssh_key.delete",
        "POST \(v1)/admin/users": "user.create",
        "PUT \(v1)/admin/users/{namespace}/quota": "quota.set",
        "POST \(v1)/admin/coupons": "coupon.create",
        "PUT \(v1)/admin/skus/computings/{skuId}": "price.change",
        "POST \(v1)/admin/coupons/{id}/disable": "coupon.disable",
        "POST /console/instances": "instance.create",
        "POST /console/tokens": "token.create",
        "POST /console/ssh-keys": "ssh_key.create",
        "POST /console/ssh-keys/{id}/delete": "ssh_key.delete",
        "POST /console/logout": "console.logout",
        "POST /console/images/delete": "image.delete",
        "POST /console/billing/budget": "budget.set",
        "POST /console/admin/quota": "quota.set",
        "POST /console/admin/prices/{sku}": "price.change",
    ]
    /// Routes whose last capture, `{verb}`, completes the action.
    static let verbActions: [String: String] = [
        "POST \(v1)/admin/nodes/{node}/{verb}": "node",
        "POST \(v1)/admin/users/{namespace}/{verb}": "wallet",
        "POST /console/instances/{cluster}/{name}/{verb}": "instance",
        "POST /console/tokens/{id}/{verb}": "token",
        "POST /console/admin/wallet/{verb}": "wallet",
        "POST /console/admin/instances/{namespace}/{cluster}/{name}/{verb}": "instance",
        "POST /console/admin/nodes/{node}/{verb}": "node",
    ]

    /// The captures of `route` in `path` (`{name}` → the segment in its place).
    public static func captures(route: String, path: String) -> [String: String] {
        let template = route.split(separator: "/")
        let segments = path.split(separator: "/")
        guard template.count == segments.count else { return [:] }
        var captured: [String: String] = [:]
        for (part, segment) in zip(template, segments) where part.hasPrefix("{") && part.hasSuffix("}") {
            captured[String(part.dropFirst().dropLast())] = String(segment.removingPercentEncoding ?? String(segment))
        }
        return captured
    }

    /// What a call acted on: the instance, token, key, node or namespace its path names
    /// (most specific first), else the `name` query parameter (deletes by name).
    public static func target(captures: [String: String], nameQuery: String?) -> String {
        for key in ["name", "id", "node", "skuId", "namespace"] {
            if let value = captures[key] { return value }
        }
        return nameQuery ?? ""
    }
}

/// An audit entry on the wire: `time` in the server's wire time zone.
public struct AuditEntryWire: Codable, Sendable, Equatable {
    public var id: String
    public var time: String
    public var namespace: String
    public var actor: String
    public var action: String
    public var target: String
    public var status: Int
    public var requestId: String
    public var remoteAddress: String

    public init(_ entry: AuditEntry, time: String) {
        id = entry.id
        self.time = time
        namespace = entry.namespace
        actor = entry.actor
        action = entry.action
        target = entry.target
        status = entry.status
        requestId = entry.requestId
        remoteAddress = entry.remoteAddress
    }
}
