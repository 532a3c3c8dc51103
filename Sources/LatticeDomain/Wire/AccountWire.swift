import Foundation

/// `GET`/`PUT /admin/users/{namespace}/quota`: the namespace's limits and what it uses.
public struct QuotaWire: Codable, Sendable, Equatable {
    /// The namespace.
    public var namespace: String
    /// Its limits.
    public var quota: Quota
    /// What it uses now.
    public var usage: QuotaUsage

    /// The namespace's limits and use.
    public init(namespace: String, quota: Quota, usage: QuotaUsage) {
        self.namespace = namespace
        self.quota = quota
        self.usage = usage
    }
}

/// `GET /balance`.
public struct BalanceWire: Codable, Sendable, Equatable {
    /// The namespace.
    public var namespace: String
    /// Its balance (`"12.34"`).
    public var balance: String
    /// The currency the balance is in.
    public var currency: String

    /// A balance as shown.
    public init(namespace: String, balance: String, currency: String) {
        self.namespace = namespace
        self.balance = balance
        self.currency = currency
    }
}

/// An order as `GET /orders` lists it (SPEC §8).
public struct OrderWire: Codable, Sendable, Equatable {
    /// The order's id.
    public var id: String
    /// The instance it was placed for.
    public var instanceName: String
    /// How it is paid (`CostType`: `1` pay-as-you-go, `2` to `4` prepaid).
    public var costType: String
    /// The GPU SKU.
    public var gpuSkuId: String
    /// What it cost when placed.
    public var amount: String
    /// `active`, or `closed` once its instance is gone.
    public var status: String
    /// When it was placed (RFC 3339).
    public var createdAt: String

    /// An order as listed.
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
    /// The ledger row's id.
    public var id: String
    /// The instance charged ("" for a line of no instance).
    public var instanceName: String
    /// `credit`, `compute`, `prepaid`, `storage`, `image` or `adjustment` (refunds included).
    public var kind: String
    /// The start of the period charged (RFC 3339; "" when none).
    public var periodStart: String
    /// The end of the period charged (RFC 3339; "" when none).
    public var periodEnd: String
    /// The amount (a refund's is negative).
    public var amount: String
    /// When the row was written (RFC 3339).
    public var createdAt: String
    /// An operator's reason, on `adjustment` lines.
    public var reason: String?

    /// A bill line as listed.
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
    /// The coupon's code.
    public var id: String
    /// `amount` or `percent`.
    public var kind: String
    /// The amount (`"10.00"`) or the percentage (`"20"`).
    public var value: String
    /// When it expires (RFC 3339).
    public var expiresAt: String
    /// Redemptions allowed across every namespace.
    public var maxUses: Int
    /// Redemptions so far.
    public var uses: Int
    /// When it was issued (RFC 3339).
    public var createdAt: String
    /// The namespaces that may redeem it; absent means any.
    public var namespaces: [String]?
    /// How many times one namespace may redeem it; absent means no limit of its own.
    public var usesPerNamespace: Int?
    /// When an admin disabled it; absent while it may be redeemed.
    public var disabledAt: String?

    /// A coupon as admins see it.
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
    /// The new namespace.
    public var namespace: String
    /// Its first API token (shown once).
    public var token: String

    /// The new namespace and its token.
    public init(namespace: String, token: String) {
        self.namespace = namespace
        self.token = token
    }
}

/// A namespace in `GET /admin/users` (SPEC §9).
public struct AdminUserWire: Codable, Sendable, Equatable {
    /// The namespace.
    public var namespace: String
    /// Whether it is an admin's.
    public var admin: Bool
    /// Its balance.
    public var balance: String
    /// The balance's currency.
    public var currency: String
    /// Instances it has.
    public var instances: Int
    /// GPUs its instances hold now.
    public var gpusInUse: Int
    /// When it was made (RFC 3339).
    public var createdAt: String

    /// A namespace as listed, from its summary.
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
    /// One instance's charges in the month, by kind.
    public struct InstanceLine: Codable, Sendable, Equatable {
        /// The instance.
        public var instanceName: String
        /// Pay-as-you-go GPU time.
        public var compute: String
        /// Prepaid terms.
        public var prepaid: String
        /// Its data disk.
        public var storage: String
        /// Snapshots it saved.
        public var image: String
        /// All of them.
        public var total: String
    }

    /// The month's sums: `closingBalance = openingBalance + topUps + coupons - charges`.
    public struct Totals: Codable, Sendable, Equatable {
        /// The balance when the month began.
        public var openingBalance: String
        /// Pay-as-you-go GPU time, every instance.
        public var compute: String
        /// Prepaid terms, every instance.
        public var prepaid: String
        /// Data disks, every instance.
        public var storage: String
        /// Snapshots, every instance.
        public var image: String
        /// Operators' debits less refunds.
        public var adjustments: String
        /// Everything charged, refunds taken off.
        public var charges: String
        /// Money put in (`credit` rows).
        public var topUps: String
        /// Amount coupons redeemed.
        public var coupons: String
        /// The balance when the month ended.
        public var closingBalance: String
    }

    /// The namespace billed.
    public var namespace: String
    /// The month (`YYYY-MM`).
    public var month: String
    /// The currency.
    public var currency: String
    /// The month's first instant (RFC 3339).
    public var from: String
    /// The next month's first instant (RFC 3339).
    public var to: String
    /// Charges per instance.
    public var instances: [InstanceLine]
    /// Operators' debits and refunds, in order.
    public var adjustments: [BillWire]
    /// Every ledger row of the month, oldest first.
    public var lines: [BillWire]
    /// The sums.
    public var totals: Totals

    /// A month's statement as shown, its times in `time`.
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
