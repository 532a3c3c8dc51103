import Foundation

/// A tenant. The namespace is the user id of the seed's examples.
public struct User: Sendable, Codable, Equatable {
    /// The tenant's name: a lower-case DNS label, the `namespace` header of every call.
    public var namespace: String
    /// An operator: sees every namespace and the admin API (SPEC §9).
    public var isAdmin: Bool
    /// When the namespace was made.
    public var createdAt: Date

    /// A tenant as created.
    public init(namespace: String, isAdmin: Bool, createdAt: Date) {
        self.namespace = namespace
        self.isAdmin = isAdmin
        self.createdAt = createdAt
    }
}

/// An API token as stored: only the SHA-256 of the secret is kept.
public struct TokenRecord: Sendable, Codable, Equatable {
    /// The token's id, which the token API names it by (never the secret).
    public var id: String
    /// Whose it is: every call made with it acts as this namespace.
    public var namespace: String
    /// The tenant's name for it.
    public var name: String
    /// The SHA-256 of the secret, hex.
    public var secretHash: String
    /// When it was made.
    public var createdAt: Date
    /// When it stops working.
    public var expiresAt: Date
    /// When it last authenticated a call (written at most once a minute).
    public var lastUsedAt: Date?

    /// A token as stored.
    public init(
        id: String,
        namespace: String,
        name: String,
        secretHash: String,
        createdAt: Date,
        expiresAt: Date,
        lastUsedAt: Date? = nil
    ) {
        self.id = id
        self.namespace = namespace
        self.name = name
        self.secretHash = secretHash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
    }
}

/// The order written when an instance is created (its id is the `cost-order-id`).
public struct Order: Sendable, Codable, Equatable {
    /// The order's id.
    public var id: String
    /// Whose it is.
    public var namespace: String
    /// The instance it was placed for.
    public var instanceName: String
    /// The create's `CostType`.
    public var costType: Int
    /// The GPU SKU ordered.
    public var gpuSkuID: String
    /// Up-front amount for prepaid terms; zero for pay-as-you-go, which is metered.
    public var amount: Money
    /// `paid` (prepaid) or `active` (pay-as-you-go), then `closed` once the instance is gone.
    public var status: String
    /// When it was placed.
    public var createdAt: Date

    /// An order as the create places it.
    public init(
        id: String,
        namespace: String,
        instanceName: String,
        costType: Int,
        gpuSkuID: String,
        amount: Money,
        status: String,
        createdAt: Date
    ) {
        self.id = id
        self.namespace = namespace
        self.instanceName = instanceName
        self.costType = costType
        self.gpuSkuID = gpuSkuID
        self.amount = amount
        self.status = status
        self.createdAt = createdAt
    }
}

/// One row of the append-only ledger: a credit (top-up) or a charge.
public struct LedgerEntry: Sendable, Codable, Equatable {
    /// `adjustment` is an operator's debit and `refund` an operator's credit with a reason
    /// (SPEC §9); the tenant's bills show both as `adjustment` lines.
    public enum Kind: String, Sendable, Codable, Equatable, CaseIterable {
        case credit, compute, prepaid, storage, image, adjustment, refund

        /// Whether the row adds to the wallet (every other kind takes from it).
        public var isCredit: Bool { self == .credit || self == .refund }

        /// The kinds a tenant's bills list.
        public static let billed: Set<Kind> = [.compute, .prepaid, .storage, .image, .adjustment, .refund]
    }
    /// The row's id.
    public var id: String
    /// Whose wallet it moves.
    public var namespace: String
    /// What the money was for.
    public var kind: Kind
    /// Positive for credits and for charges alike; the kind says which way it counts.
    public var amount: Money
    /// The instance a charge is for ("" for credits and the operator's moves).
    public var instanceName: String
    /// The metered period a charge covers (compute, storage), or the prepaid term.
    public var periodStart: Date?
    /// See `periodStart`.
    public var periodEnd: Date?
    /// Makes a replayed charge a no-op (instance and period for metered charges).
    public var idempotencyKey: String
    /// When the row was appended.
    public var createdAt: Date
    /// Why an operator moved the money (debits and refunds), shown to the tenant.
    public var reason: String?
    /// Who moved it (the admin namespace), for the audit of money.
    public var actor: String?

    /// The row's effect on the wallet, in minor units: positive for credits, negative for charges.
    public var signedUnits: Int64 { kind.isCredit ? amount.units : -amount.units }

    /// A row as appended.
    public init(
        id: String,
        namespace: String,
        kind: Kind,
        amount: Money,
        instanceName: String = "",
        periodStart: Date? = nil,
        periodEnd: Date? = nil,
        idempotencyKey: String,
        createdAt: Date,
        reason: String? = nil,
        actor: String? = nil
    ) {
        self.id = id
        self.namespace = namespace
        self.kind = kind
        self.amount = amount
        self.instanceName = instanceName
        self.periodStart = periodStart
        self.periodEnd = periodEnd
        self.idempotencyKey = idempotencyKey
        self.createdAt = createdAt
        self.reason = reason
        self.actor = actor
    }
}

/// A node as the driver reports it, for placement and `remainGPUCount`.
public struct ClusterNode: Sendable, Equatable {
    public var node: Node
    public var cluster: String
    /// Whether new work may be placed on the node: it answers and is not drained.
    public var healthy: Bool
    /// Why it is not healthy, as the driver (or a drain) says.
    public var reason: String
    /// The node does not answer but may come back: its workloads are unseen, not lost.
    public var unreachable: Bool

    public init(node: Node, cluster: String, healthy: Bool, reason: String = "", unreachable: Bool = false) {
        self.node = node
        self.cluster = cluster
        self.healthy = healthy
        self.reason = reason
        self.unreachable = unreachable
    }
}

/// What is reserved on one node.
public struct NodeUsage: Sendable, Equatable {
    public var gpuIndices: Set<Int>
    public var cpuCores: Int
    public var memoryGiB: Int

    public init(gpuIndices: Set<Int> = [], cpuCores: Int = 0, memoryGiB: Int = 0) {
        self.gpuIndices = gpuIndices
        self.cpuCores = cpuCores
        self.memoryGiB = memoryGiB
    }
}

extension NodeCapacity {
    public init(_ node: ClusterNode, usage: NodeUsage?) {
        self.init(
            node: node.node,
            cluster: node.cluster,
            healthy: node.healthy,
            usedGPUIndices: usage?.gpuIndices ?? [],
            usedCPUCores: usage?.cpuCores ?? 0,
            usedMemoryGiB: usage?.memoryGiB ?? 0
        )
    }
}

/// A namespace as an admin's list shows it (`GET /admin/users`).
public struct UserSummary: Sendable, Equatable {
    public var user: User
    public var balance: Money
    public var instances: Int
    public var gpusInUse: Int

    public init(user: User, balance: Money, instances: Int, gpusInUse: Int) {
        self.user = user
        self.balance = balance
        self.instances = instances
        self.gpusInUse = gpusInUse
    }
}

/// What `GET /admin/instances` narrows to; an empty field matches any.
public struct InstanceFilter: Sendable, Equatable {
    public var namespace: String
    public var status: String
    public var node: String

    public init(namespace: String = "", status: String = "", node: String = "") {
        self.namespace = namespace
        self.status = status
        self.node = node
    }
}
