import Foundation

/// The body of `POST /clusters/{cluster}/instances`, validated for shape (not yet against
/// the catalog).
public struct CreateInstanceRequest: Sendable, Equatable {
    /// The largest data disk one instance may ask for: 64 TiB.
    public static let maximumSizeGiB = 65_536
    public var costType: Int
    public var couponID: String
    public var diskSkuID: String
    public var gpuSkuID: String
    public var costTime: String
    public var pathInContainer: String
    public var sizeGiB: Int?
    public var volumeType: String?
    public var namespace: String
    public var displayName: String
    public var description: String
    public var image: String
    public var region: String
    /// `env`, `secretEnv`, `startupScript` and `ports` (SPEC §11).
    public var workload: WorkloadSettings
    /// `ScheduleStopTimestamp` (SPEC §12): when a pay-as-you-go instance powers off; nil for never.
    public var scheduleStopAt: Date?
    /// `idleStop` (SPEC §12); nil for none.
    public var idleStop: IdleStopPolicy?
    /// Whether the body named `idleStop` at all (`null` too): then the namespace's default
    /// (`IdleDefault`) does not apply.
    public var givesIdleStop: Bool
    /// `wakeOnConnect` (SPEC §12).
    public var wakeOnConnect: Bool
    /// Whether the body named `wakeOnConnect`.
    public var givesWakeOnConnect: Bool

    public init(json: JSONValue) throws {
        let body = try JSONFields(json)
        let cost = try body.requiredObject("Cost")
        let costTypeText = try cost.requiredString("CostType")
        guard let costType = Int(costTypeText.trimmingCharacters(in: .whitespaces)), (1...4).contains(costType) else {
            throw LatticeError.invalidField(
                "Cost.CostType",
                "must be 1 (pay-as-you-go), 2 (monthly), 3 (weekly) or 4 (daily), got \"\(costTypeText)\""
            )
        }
        self.costType = costType
        couponID = try cost.string("CouponID") ?? ""
        diskSkuID = try cost.requiredString("DiskSKUID").trimmingCharacters(in: .whitespaces)
        gpuSkuID = try cost.requiredString("GPUSKUID").trimmingCharacters(in: .whitespaces)
        costTime = try cost.string("CostTime")?.trimmingCharacters(in: .whitespaces) ?? ""

        guard let mounts = try body.objects("VolumeMount") else { throw LatticeError.missingField("VolumeMount") }
        guard let mount = mounts.first else {
            throw LatticeError.invalidField("VolumeMount", "must hold one data disk mount")
        }
        guard mounts.count == 1 else {
            throw LatticeError.invalidField("VolumeMount", "only one data disk is supported, got \(mounts.count)")
        }
        let path = try mount.string("PathInContainer") ?? ""
        pathInContainer = path.isEmpty ? "/root/data" : path
        if let why = Self.mountPathProblem(pathInContainer) {
            throw LatticeError.invalidField(mount.name("PathInContainer"), why)
        }
        sizeGiB = try mount.integer("Size")
        if let size = sizeGiB, !(1...Self.maximumSizeGiB).contains(size) {
            throw LatticeError.invalidField(
                mount.name("Size"),
                "must be between 1 and \(Self.maximumSizeGiB) (GB), got \(size)"
            )
        }
        let type = try mount.string("Type") ?? ""
        volumeType = type.isEmpty ? nil : type

        namespace = try body.requiredString("namespace")
        displayName = try body.requiredString("displayName", allowEmpty: true)
        guard (1...128).contains(displayName.count) else {
            throw LatticeError.invalidField("displayName", "must be 1 to 128 characters, got \(displayName.count)")
        }
        description = try body.string("description") ?? ""
        guard description.count <= 1024 else {
            throw LatticeError.invalidField("description", "must be at most 1024 characters")
        }
        image = try body.requiredString("image").trimmingCharacters(in: .whitespaces)
        _ = try ImageReference.parse(image)
        region = try body.string("Region")?.trimmingCharacters(in: .whitespaces) ?? ""
        workload = try WorkloadSettings(fields: body)
        scheduleStopAt = try ScheduleStopRequest.time(body, "ScheduleStopTimestamp")
        idleStop = try body.object("idleStop").map(IdleStopPolicy.init(fields:))
        givesIdleStop = body.fields["idleStop"] != nil
        let wake = try body.boolean("wakeOnConnect")
        wakeOnConnect = wake ?? false
        givesWakeOnConnect = wake != nil
    }
}

/// The body of `POST .../idle_stop` (SPEC §12): the policy (`{"afterMinutes",
/// "gpuUtilizationBelow"}`, optionally with `"wakeOnConnect"`), or `null` to clear it;
/// `{"wakeOnConnect": B}` alone changes only that.
public struct IdleStopRequest: Sendable, Equatable {
    /// nil: the policy is left as it is; `.some(nil)` clears it.
    public var policy: IdleStopPolicy??
    /// nil: left as it is.
    public var wakeOnConnect: Bool?

    /// A request that changes only `wakeOnConnect`.
    public static func keep(wakeOnConnect: Bool) -> IdleStopRequest {
        IdleStopRequest(policy: nil, wakeOnConnect: wakeOnConnect)
    }

    init(policy: IdleStopPolicy??, wakeOnConnect: Bool?) {
        self.policy = policy
        self.wakeOnConnect = wakeOnConnect
    }

    public init(json: JSONValue) throws {
        guard json != .null else {
            policy = .some(nil)
            wakeOnConnect = nil
            return
        }
        let body = try JSONFields(json)
        wakeOnConnect = try body.boolean("wakeOnConnect")
        switch body.fields["afterMinutes"] {
        case .null?: policy = .some(nil)
        case nil where wakeOnConnect != nil && body.fields["gpuUtilizationBelow"] == nil: policy = nil
        default: policy = .some(try IdleStopPolicy(fields: body))
        }
    }
}

extension CreateInstanceRequest {
    /// Directories of the container's own system that a data disk must not cover.
    static let systemDirectories = ["proc", "sys", "dev"]

    /// Why a `PathInContainer` is refused, or nil: it must be a clean absolute path (no
    /// empty, `.` or `..` components, no control characters), not `/` and not inside
    /// `/proc`, `/sys` or `/dev`.
    public static func mountPathProblem(_ path: String) -> String? {
        guard path.count <= 255, path.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            return "must be at most 255 printable characters"
        }
        guard path.hasPrefix("/") else { return "must be an absolute path such as /root/data, got '\(path)'" }
        let components = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            return "must be a clean absolute path without empty, '.' or '..' components (and not /), got '\(path)'"
        }
        if let top = components.first, systemDirectories.contains(String(top)) {
            return "must not be inside /\(top), got '\(path)'"
        }
        return nil
    }
}

/// The body of `POST .../schedule_stop` (SPEC §12): `{"at", "action"}`.
public struct ScheduleStopRequest: Sendable, Equatable {
    /// nil clears the schedule (the zero time).
    public var at: Date?
    public var action: ScheduledStopAction

    public init(json: JSONValue) throws {
        let body = try JSONFields(json)
        guard body.fields["at"].map({ $0 != .null }) == true else { throw LatticeError.missingField("at") }
        guard try body.string("at")?.trimmingCharacters(in: .whitespaces).isEmpty == false else {
            throw LatticeError.invalidField(
                "at",
                "must be an RFC 3339 time such as 2026-12-24T18:00:00+08:00 "
                    + "(or 0001-01-01T00:00:00Z to clear), got \"\""
            )
        }
        at = try Self.time(body, "at")
        let action = try body.string("action") ?? ""
        guard let chosen = action.isEmpty ? .powerOff : ScheduledStopAction(rawValue: action) else {
            throw LatticeError.invalidField("action", "must be power_off or delete, got \"\(action.prefix(40))\"")
        }
        self.action = chosen
    }

    /// An RFC 3339 time; "" and the zero time (`0001-01-01T00:00:00Z`) are none.
    static func time(_ body: JSONFields, _ key: String) throws -> Date? {
        guard let text = try body.string(key)?.trimmingCharacters(in: .whitespaces), !text.isEmpty,
            text != TimeFormatter.zero
        else { return nil }
        guard let date = RFC3339.parse(text) else {
            throw LatticeError.invalidField(
                body.name(key),
                "must be an RFC 3339 time such as 2026-12-24T18:00:00+08:00, got \"\(text.prefix(40))\""
            )
        }
        return date.timeIntervalSince1970 < -62_000_000_000 ? nil : date
    }
}

/// The body of `power_off`; every field is optional.
public struct PowerOffRequest: Sendable, Equatable {
    public var gracePeriodSeconds: Int
    public var needSnapshot: Bool
    public var imageName: String
    public var tag: String

    public init(json: JSONValue) throws {
        let body = try JSONFields(json)
        gracePeriodSeconds = try body.integer("gracePeriodSeconds") ?? 10
        guard (0...3600).contains(gracePeriodSeconds) else {
            throw LatticeError.invalidField(
                "gracePeriodSeconds",
                "must be between 0 and 3600, got \(gracePeriodSeconds)"
            )
        }
        needSnapshot = try body.boolean("needSnapshot") ?? false
        imageName = try body.string("imageName")?.trimmingCharacters(in: .whitespaces) ?? ""
        tag = try body.string("tag")?.trimmingCharacters(in: .whitespaces) ?? ""
        guard needSnapshot else { return }
        guard !imageName.isEmpty else {
            throw LatticeError.invalidField("imageName", "is required when needSnapshot is true")
        }
        guard Self.isValidRepository(imageName) else {
            throw LatticeError.invalidField(
                "imageName",
                "must be lowercase letters, digits and . _ - / (at most 128), got \"\(imageName)\""
            )
        }
        if tag.isEmpty { tag = "latest" }
        guard Self.isValidTag(tag) else {
            throw LatticeError.invalidField(
                "tag",
                "must be letters, digits and . _ - (at most 128, not starting with . or -), got \"\(tag)\""
            )
        }
    }

    static func isValidRepository(_ name: String) -> Bool {
        guard (1...128).contains(name.count), let first = name.first, first.isLetter || first.isNumber else {
            return false
        }
        return name.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || "._-/".contains($0) }
            && !name.contains("//") && !name.hasSuffix("/")
    }

    static func isValidTag(_ tag: String) -> Bool {
        guard (1...128).contains(tag.count), let first = tag.first, first != ".", first != "-" else { return false }
        return tag.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }
}

/// `POST /tokens`: a name and an optional validity in days (default 3650).
public struct CreateTokenRequest: Sendable, Equatable {
    public var name: String
    public var validityDays: Int

    public init(json: JSONValue) throws {
        let body = try JSONFields(json)
        name = try body.requiredString("name", allowEmpty: true)
        guard (1...64).contains(name.count), !TextRules.isBlank(name), !TextRules.hasControlCharacters(name) else {
            throw LatticeError.invalidField(
                "name",
                "must be 1 to 64 characters, not all spaces, without control characters"
            )
        }
        validityDays = try body.integer("validityDays") ?? 3650
        guard (1...36500).contains(validityDays) else {
            throw LatticeError.invalidField("validityDays", "must be between 1 and 36500, got \(validityDays)")
        }
    }
}

/// `POST /admin/users`.
public struct CreateUserRequest: Sendable, Equatable {
    public var namespace: String
    public var balance: Money
    public var admin: Bool

    public init(json: JSONValue) throws {
        let body = try JSONFields(json)
        namespace = try body.requiredString("namespace")
        guard Self.isValidNamespace(namespace) else {
            throw LatticeError.invalidField(
                "namespace",
                "must be 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit"
            )
        }
        balance = try MoneyField.read(body, "balance") ?? .zero
        guard balance >= .zero else { throw LatticeError.invalidField("balance", "must not be negative") }
        try MoneyField.bounded(balance, "balance")
        admin = try body.boolean("admin") ?? false
    }

    public static func isValidNamespace(_ text: String) -> Bool {
        guard (1...63).contains(text.count), let first = text.first, let last = text.last else { return false }
        let ok: (Character) -> Bool = { $0.isASCII && ($0.isLowercase || $0.isNumber) }
        return ok(first) && ok(last) && text.allSatisfy { ok($0) || $0 == "-" }
    }
}

/// `POST /admin/users/{namespace}/credit`.
/// `credit` and `debit` (SPEC §9): a positive amount, and a reason the tenant sees (required
/// for a debit; a credit with one is a refund, shown on the bills).
public struct CreditRequest: Sendable, Equatable {
    public var amount: Money
    public var reason: String?

    public static let maxReasonLength = 200

    public init(json: JSONValue, reasonRequired: Bool = false) throws {
        let body = try JSONFields(json)
        guard let amount = try MoneyField.read(body, "amount") else { throw LatticeError.missingField("amount") }
        guard amount > .zero else { throw LatticeError.invalidField("amount", "must be greater than 0") }
        try MoneyField.bounded(amount, "amount")
        self.amount = amount
        guard let value = body.present("reason") else {
            if reasonRequired { throw LatticeError.missingField("reason") }
            reason = nil
            return
        }
        guard case .string(let text) = value else {
            throw LatticeError.invalidField("reason", "must be a string, got \(value.typeName)")
        }
        // One line (no CR, LF or NUL) of 1 to 200 characters, not only spaces and tabs: the rule
        // `/openapi.json` states, counted in Unicode scalars as JSON Schema counts.
        let scalars = text.unicodeScalars
        let breaks: Set<Unicode.Scalar> = ["\n", "\r", "\u{0}"]
        guard (1...Self.maxReasonLength).contains(scalars.count), !scalars.contains(where: breaks.contains) else {
            throw LatticeError.invalidField(
                "reason",
                "must be one line of 1 to \(Self.maxReasonLength) characters saying why"
            )
        }
        guard scalars.contains(where: { $0 != " " && $0 != "\t" }) else {
            throw LatticeError.invalidField("reason", "must say why, not only spaces")
        }
        reason = text.trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
    }
}

/// Money fields accept a decimal string or a JSON number.
enum MoneyField {
    static func bounded(_ money: Money, _ field: String) throws {
        guard money <= Money.maximumAmount else {
            throw LatticeError.invalidField(field, "must be at most \(Money.maximumAmount), got \(money)")
        }
    }

    static func read(_ body: JSONFields, _ key: String) throws -> Money? {
        guard let value = body.present(key) else { return nil }
        let text: String
        switch value {
        case .string(let s): text = s
        case .number(let n): text = String(n)
        default:
            throw LatticeError.invalidField(
                body.name(key),
                "must be a decimal amount such as \"12.50\", got \(value.typeName)"
            )
        }
        guard let money = Money(text) else {
            throw LatticeError.invalidField(
                body.name(key),
                "must be a decimal amount with at most 4 fraction digits, got \"\(text)\""
            )
        }
        return money
    }
}

/// `POST /admin/coupons` `{"id"?, "kind": "amount"|"percent", "value", "expiresAt"?, "maxUses"?}`.
public struct CreateCouponRequest: Sendable, Equatable {
    public var id: String?
    public var kind: Coupon.Kind
    public var value: Money
    public var expiresAt: Date?
    public var maxUses: Int
    public var namespaces: [String]?
    public var usesPerNamespace: Int?

    public init(json: JSONValue) throws {
        let body = try JSONFields(json)
        if let value = body.present("namespaces") {
            guard case .array(let items) = value, (1...1000).contains(items.count) else {
                throw LatticeError.invalidField("namespaces", "must be a list of 1 to 1000 namespaces")
            }
            namespaces = try items.map { item in
                guard case .string(let name) = item, CreateUserRequest.isValidNamespace(name) else {
                    throw LatticeError.invalidField("namespaces", "every entry must be a namespace name")
                }
                return name
            }
        }
        id = try body.string("id")?.trimmingCharacters(in: .whitespaces)
        if let id,
            !(1...64).contains(id.count)
                || !id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_".contains($0)) })
        {
            throw LatticeError.invalidField("id", "must be 1 to 64 letters, digits, '-' or '_'")
        }
        let kindText = try body.requiredString("kind")
        guard let kind = Coupon.Kind(rawValue: kindText) else {
            throw LatticeError.invalidField("kind", "must be \"amount\" or \"percent\", got \"\(kindText)\"")
        }
        self.kind = kind
        guard let value = try MoneyField.read(body, "value") else { throw LatticeError.missingField("value") }
        switch kind {
        case .amount:
            guard value > .zero else { throw LatticeError.invalidField("value", "must be greater than 0") }
            try MoneyField.bounded(value, "value")
        case .percent:
            guard value.units % Money.scale == 0, (1...100).contains(value.units / Money.scale) else {
                throw LatticeError.invalidField("value", "a percentage must be a whole number from 1 to 100")
            }
        }
        self.value = value
        if let text = try body.string("expiresAt"), !text.isEmpty {
            guard let date = RFC3339.parse(text) else {
                throw LatticeError.invalidField("expiresAt", "must be an RFC 3339 time, got \"\(text)\"")
            }
            expiresAt = date
        }
        maxUses = try body.integer("maxUses") ?? 1
        guard (1...1_000_000_000).contains(maxUses) else {
            throw LatticeError.invalidField("maxUses", "must be between 1 and 1000000000")
        }
        usesPerNamespace = try body.integer("usesPerNamespace")
        if let usesPerNamespace, !(1...1_000_000_000).contains(usesPerNamespace) {
            throw LatticeError.invalidField("usesPerNamespace", "must be between 1 and 1000000000")
        }
    }
}

/// Rules for free text in requests, stated so that the OpenAPI document can state them too
/// (its patterns use ECMAScript's `\s` and control ranges).
public enum TextRules {
    /// ECMAScript's `\s`: the spaces a JSON Schema pattern knows.
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x20, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF: true
        default: false
        }
    }

    public static func isBlank(_ text: String) -> Bool { text.unicodeScalars.allSatisfy(isSpace) }

    public static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }
}
