import Foundation

/// `GET`/`PUT /admin/users/{namespace}/quota`: the namespace's limits and what it uses.
public struct QuotaWire: Codable, Sendable, Equatable {
    public var namespace: String
    public var quota: Quota
    public var usage: QuotaUsage

    public init(namespace: String, quota: Quota, usage: QuotaUsage) {
        self.namespace = namespace
        self.quota = quota
        self.usage = usage
    }
}

/// `GET /balance`.
public struct BalanceWire: Codable, Sendable, Equatable {
    public var namespace: String
    public var balance: String
    public var currency: String

    public init(namespace: String, balance: String, currency: String) {
        self.namespace = namespace
        self.balance = balance
        self.currency = currency
    }
}

/// An order as `GET /orders` lists it (SPEC §8).
public struct OrderWire: Codable, Sendable, Equatable {
    public var id: String
    public var instanceName: String
    public var costType: String
    public var gpuSkuId: String
    public var amount: String
    public var status: String
    public var createdAt: String

    public init(
        id: String,
        instanceName: String,
        costType: String,
        gpuSkuId: String,
        amount: String,
        status: String,
        createdAt: String
    ) {
        self.id = id
        self.instanceName = instanceName
        self.costType = costType
        self.gpuSkuId = gpuSkuId
        self.amount = amount
        self.status = status
        self.createdAt = createdAt
    }
}

/// A charge as `GET /bills` lists it (SPEC §8).
public struct BillWire: Codable, Sendable, Equatable {
    public var id: String
    public var instanceName: String
    public var kind: String
    public var periodStart: String
    public var periodEnd: String
    public var amount: String
    public var createdAt: String
    /// An operator's reason, on `adjustment` lines.
    public var reason: String?

    public init(
        id: String,
        instanceName: String,
        kind: String,
        periodStart: String,
        periodEnd: String,
        amount: String,
        createdAt: String,
        reason: String? = nil
    ) {
        self.id = id
        self.instanceName = instanceName
        self.kind = kind
        self.periodStart = periodStart
        self.periodEnd = periodEnd
        self.amount = amount
        self.createdAt = createdAt
        self.reason = reason
    }

    /// A ledger row as a bill line: an operator's debit and refund are both `adjustment`
    /// lines, the refund with a negative amount (it takes from what the tenant owes).
    public init(_ entry: LedgerEntry, time: (Date?) -> String) {
        let refund = entry.kind == .refund
        self.init(
            id: entry.id,
            instanceName: entry.instanceName,
            kind: refund ? LedgerEntry.Kind.adjustment.rawValue : entry.kind.rawValue,
            periodStart: time(entry.periodStart),
            periodEnd: time(entry.periodEnd),
            amount: refund ? Money(units: -entry.amount.units).description : entry.amount.description,
            createdAt: time(entry.createdAt),
            reason: entry.reason
        )
    }
}

/// A coupon as admins see it.
public struct CouponWire: Codable, Sendable, Equatable {
    public var id: String
    public var kind: String
    /// The amount (`"10.00"`) or the percentage (`"20"`).
    public var value: String
    public var expiresAt: String
    public var maxUses: Int
    public var uses: Int
    public var createdAt: String
    /// The namespaces that may redeem it; absent means any.
    public var namespaces: [String]?
    /// How many times one namespace may redeem it; absent means no limit of its own.
    public var usesPerNamespace: Int?
    /// When an admin disabled it; absent while it may be redeemed.
    public var disabledAt: String?

    public init(
        id: String,
        kind: String,
        value: String,
        expiresAt: String,
        maxUses: Int,
        uses: Int,
        createdAt: String,
        namespaces: [String]? = nil,
        usesPerNamespace: Int? = nil,
        disabledAt: String? = nil
    ) {
        self.usesPerNamespace = usesPerNamespace
        self.disabledAt = disabledAt
        self.id = id
        self.kind = kind
        self.value = value
        self.expiresAt = expiresAt
        self.maxUses = maxUses
        self.uses = uses
        self.createdAt = createdAt
        self.namespaces = namespaces
    }
}

/// `POST /admin/users` answers the new namespace and its first token.
public struct NewUserWire: Codable, Sendable, Equatable {
    public var namespace: String
    public var token: String

    public init(namespace: String, token: String) {
        self.namespace = namespace
        self.token = token
    }
}

/// A namespace in `GET /admin/users` (SPEC §9).
public struct AdminUserWire: Codable, Sendable, Equatable {
    public var namespace: String
    public var admin: Bool
    public var balance: String
    public var currency: String
    public var instances: Int
    public var gpusInUse: Int
    public var createdAt: String

    public init(_ summary: UserSummary, currency: String, createdAt: String) {
        namespace = summary.user.namespace
        admin = summary.user.isAdmin
        balance = summary.balance.description
        self.currency = currency
        instances = summary.instances
        gpusInUse = summary.gpusInUse
        self.createdAt = createdAt
    }
}

/// `GET /statements?month=YYYY-MM`: a month's bill (`Statement`) on the wire.
public struct StatementWire: Codable, Sendable, Equatable {
    public struct InstanceLine: Codable, Sendable, Equatable {
        public var instanceName: String
        public var compute: String
        public var prepaid: String
        public var storage: String
        public var image: String
        public var total: String
    }

    public struct Totals: Codable, Sendable, Equatable {
        public var openingBalance: String
        public var compute: String
        public var prepaid: String
        public var storage: String
        public var image: String
        public var adjustments: String
        public var charges: String
        public var topUps: String
        public var coupons: String
        public var closingBalance: String
    }

    public var namespace: String
    public var month: String
    public var currency: String
    public var from: String
    public var to: String
    public var instances: [InstanceLine]
    public var adjustments: [BillWire]
    public var lines: [BillWire]
    public var totals: Totals

    public init(
        _ statement: Statement,
        namespace: String,
        currency: String,
        bounds: (start: Date, end: Date),
        time: (Date?) -> String
    ) {
        self.namespace = namespace
        month = statement.month.description
        self.currency = currency
        from = time(bounds.start)
        to = time(bounds.end)
        instances = statement.instances.map {
            InstanceLine(
                instanceName: $0.instanceName,
                compute: $0.compute.description,
                prepaid: $0.prepaid.description,
                storage: $0.storage.description,
                image: $0.image.description,
                total: $0.total.description
            )
        }
        adjustments = statement.adjustments.map { BillWire($0, time: time) }
        lines = statement.lines.map { BillWire($0, time: time) }
        func sum(_ key: KeyPath<Statement.InstanceTotal, Money>) -> String {
            statement.instances.reduce(Money.zero) { $0 + $1[keyPath: key] }.description
        }
        totals = Totals(
            openingBalance: statement.opening.description,
            compute: sum(\.compute),
            prepaid: sum(\.prepaid),
            storage: sum(\.storage),
            image: sum(\.image),
            adjustments: statement.adjustmentsTotal.description,
            charges: statement.charges.description,
            topUps: statement.topUps.description,
            coupons: statement.coupons.description,
            closingBalance: statement.closing.description
        )
    }

    /// The statement as CSV: one row per ledger row of the month (money in is negative, as
    /// on a bill), then the totals.
    public var csv: String {
        var rows = ["date,kind,instance,period_start,period_end,amount,currency,reason"]
        for line in lines {
            let money = line.kind == "credit" ? "-" + line.amount : line.amount
            rows.append(
                [
                    line.createdAt, line.kind, line.instanceName, line.periodStart, line.periodEnd, money, currency,
                    line.reason ?? "",
                ]
                .map(Self.field).joined(separator: ",")
            )
        }
        rows.append(
            ["", "total charges", "", from, to, totals.charges, currency, ""].map(Self.field).joined(separator: ",")
        )
        rows.append(
            ["", "closing balance", "", "", to, totals.closingBalance, currency, ""].map(Self.field)
                .joined(separator: ",")
        )
        return rows.joined(separator: "\r\n") + "\r\n"
    }

    /// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a
    /// leading `=`, `+`, `-` or `@` of text is escaped so spreadsheets do not run it.
    static func field(_ text: String) -> String {
        var value = text
        if let first = value.first, "=+@".contains(first) || (first == "-" && Double(value) == nil) {
            value = "'" + value
        }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
