import Foundation
import LatticeDomain

/// What to create: the seed's create body, with its defaults filled in.
public struct CreateInstanceOptions: Sendable, Equatable {
    /// The GPU SKU (`skus/computings`).
    public var gpuSkuID: String
    /// Your name for the instance.
    public var displayName: String
    /// An official image or one of your snapshots (`images`).
    public var image: String
    /// 1 pay-as-you-go; 2, 3, 4 prepaid monthly, weekly, daily (must match the SKU).
    public var costType: Int
    /// Prepaid term such as `3D`, `2W`, `1M`.
    public var costTime: String
    /// A coupon to redeem; "" for none.
    public var couponID: String
    /// The data disk's SKU (`skus/disks`).
    public var diskSkuID: String
    /// Where the data disk is mounted.
    public var pathInContainer: String
    /// The data disk's size in GiB; nil: the SKU's default.
    public var sizeGiB: Int?
    /// The data disk's type, which must be the disk SKU's; "": the SKU's.
    public var volumeType: String
    /// The cluster's region by id or name, checked if given; "": the cluster's.
    public var region: String
    /// Your note on the instance.
    public var description: String
    /// SPEC §11: the workload's environment, secret environment, startup script, HTTP
    /// ports, and a template that fills what is left out.
    public var env: [String: String] = [:]
    /// Environment never shown back and never kept in a snapshot.
    public var secretEnv: [String: String] = [:]
    /// Run as root at every start.
    public var startupScript: String = ""
    /// HTTP ports the gateway serves besides JupyterLab's and Tensorboard's.
    public var ports: [PortOption] = []
    /// A template (`templates`) that fills what is left out.
    public var template: String = ""

    /// A create with the seed's defaults: pay-as-you-go, disk SKU `1` at `/root/data`.
    public init(
        gpuSkuID: String,
        displayName: String,
        image: String,
        costType: Int = 1,
        costTime: String = "",
        couponID: String = "",
        diskSkuID: String = "1",
        pathInContainer: String = "/root/data",
        sizeGiB: Int? = nil,
        volumeType: String = "",
        region: String = "",
        description: String = ""
    ) {
        self.gpuSkuID = gpuSkuID
        self.displayName = displayName
        self.image = image
        self.costType = costType
        self.costTime = costTime
        self.couponID = couponID
        self.diskSkuID = diskSkuID
        self.pathInContainer = pathInContainer
        self.sizeGiB = sizeGiB
        self.volumeType = volumeType
        self.region = region
        self.description = description
    }
}

/// The create body on the wire (the seed's mixed casing).
struct CreateInstanceBody: Encodable, Sendable {
    struct Cost: Encodable, Sendable {
        var CostType: String
        var CouponID: String
        var DiskSKUID: String
        var GPUSKUID: String
        var CostTime: String
    }
    struct Mount: Encodable, Sendable {
        var PathInContainer: String
        var Size: Int?
        var `Type`: String
    }
    var Cost: Cost
    var VolumeMount: [Mount]
    var namespace: String
    var displayName: String
    var image: String?
    var Region: String
    var description: String
    var env: [String: String]?
    var secretEnv: [String: String]?
    var startupScript: String?
    var ports: [PortOption]?
    var template: String?
}

/// `power_off` options.
public struct PowerOffOptions: Sendable, Equatable, Encodable {
    /// How long the workload has to end before it is killed.
    public var gracePeriodSeconds: Int
    /// Whether to save the container as an image while stopping.
    public var needSnapshot: Bool
    /// The snapshot's name (with `needSnapshot`).
    public var imageName: String
    /// The snapshot's tag (with `needSnapshot`).
    public var tag: String

    /// A stop with 10 s of grace and no snapshot, unless told otherwise.
    public init(gracePeriodSeconds: Int = 10, needSnapshot: Bool = false, imageName: String = "", tag: String = "") {
        self.gracePeriodSeconds = gracePeriodSeconds
        self.needSnapshot = needSnapshot
        self.imageName = imageName
        self.tag = tag
    }

    /// Snapshot as `<harborAddr>/<namespace>/<imageName>:<tag>` while stopping.
    public static func snapshot(
        imageName: String,
        tag: String = "latest",
        gracePeriodSeconds: Int = 10
    ) -> PowerOffOptions {
        PowerOffOptions(gracePeriodSeconds: gracePeriodSeconds, needSnapshot: true, imageName: imageName, tag: tag)
    }
}

struct Empty: Encodable, Sendable {}

extension LatticeClient {
    // MARK: Catalog

    /// `GET /regions`: one entry per cluster.
    public func regions() async throws -> [RegionWire] {
        try await get([RegionWire].self, Self.v1 + "/regions")
    }

    /// `GET /skus/computings`: GPU SKUs with live `remainGPUCount`, of one region if given.
    public func gpuSkus(regionID: String? = nil) async throws -> [GPUSKUWire] {
        try await get([GPUSKUWire].self, Self.v1 + "/skus/computings", query: regionID.map { ["region_id": $0] } ?? [:])
    }

    /// `GET /skus/disks`.
    public func diskSkus(regionID: String? = nil, page: PageRequest = PageRequest()) async throws -> Page<DiskSKUWire> {
        var query = Self.pageQuery(page)
        if let regionID { query["region_id"] = regionID }
        return try await get(Page<DiskSKUWire>.self, Self.v1 + "/skus/disks", query: query)
    }

    /// Deletes one of your snapshots (`DELETE /images?name=`).
    public func deleteImage(name: String) async throws {
        _ = try await send("DELETE", Self.v1 + "/images", query: ["name": name], idempotent: true)
    }

    /// `GET /images`: official images and the caller's snapshots.
    public func images(page: PageRequest = PageRequest()) async throws -> Page<ImageWire> {
        try await get(Page<ImageWire>.self, Self.v1 + "/images", query: Self.pageQuery(page))
    }

    // MARK: Instances

    /// `POST /clusters/{cluster}/instances`; the answer has status `Creating`. Not retried.
    /// The body's `namespace` is the client's, or the token's own when the client has none.
    public func createInstance(cluster: String, _ options: CreateInstanceOptions) async throws -> InstanceWire {
        var owner = namespace
        if owner == nil { owner = try await balance().namespace }
        let body = CreateInstanceBody(
            Cost: .init(
                CostType: String(options.costType),
                CouponID: options.couponID,
                DiskSKUID: options.diskSkuID,
                GPUSKUID: options.gpuSkuID,
                CostTime: options.costTime
            ),
            VolumeMount: [
                .init(PathInContainer: options.pathInContainer, Size: options.sizeGiB, Type: options.volumeType)
            ],
            namespace: owner ?? "",
            displayName: options.displayName,
            image: options.image.isEmpty ? nil : options.image,
            Region: options.region,
            description: options.description,
            env: options.env.isEmpty ? nil : options.env,
            secretEnv: options.secretEnv.isEmpty ? nil : options.secretEnv,
            startupScript: options.startupScript.isEmpty ? nil : options.startupScript,
            ports: options.ports.isEmpty ? nil : options.ports,
            template: options.template.isEmpty ? nil : options.template
        )
        return try decode(
            InstanceWire.self,
            try await send("POST", Self.v1 + "/clusters/\(cluster)/instances", body: body, idempotent: false)
        )
    }

    /// `GET /clusters/{cluster}/instances`, newest first.
    public func instances(cluster: String, page: PageRequest = PageRequest()) async throws -> Page<InstanceWire> {
        try await get(Page<InstanceWire>.self, Self.v1 + "/clusters/\(cluster)/instances", query: Self.pageQuery(page))
    }

    /// Every instance of a cluster, following pages.
    public func allInstances(cluster: String) async throws -> [InstanceWire] {
        var all: [InstanceWire] = []
        var page = PageRequest(page: 1, pageSize: 100)
        while true {
            let result = try await instances(cluster: cluster, page: page)
            all += result.nodes
            guard result.hasNextPage else { return all }
            page.page += 1
        }
    }

    /// `GET /clusters/{cluster}/instances/{name}`.
    public func instance(cluster: String, name: String) async throws -> InstanceWire {
        try await get(InstanceWire.self, Self.v1 + "/clusters/\(cluster)/instances/\(name)")
    }

    /// `power_off`. Not retried (a second call would find the instance Stopping).
    public func powerOff(cluster: String, name: String, _ options: PowerOffOptions = PowerOffOptions()) async throws {
        _ = try await send(
            "POST",
            Self.v1 + "/clusters/\(cluster)/instances/\(name)/power_off",
            body: options,
            idempotent: false
        )
    }

    /// `power_on`. Not retried.
    public func powerOn(cluster: String, name: String) async throws {
        _ = try await send("POST", Self.v1 + "/clusters/\(cluster)/instances/\(name)/power_on", idempotent: false)
    }

    /// `DELETE /clusters/{cluster}/instances?name=`. Retried: deleting twice is harmless.
    public func deleteInstance(cluster: String, name: String) async throws {
        _ = try await send(
            "DELETE",
            Self.v1 + "/clusters/\(cluster)/instances",
            query: ["name": name],
            idempotent: true
        )
    }

    /// `POST .../renew {"CostTime": "+3D"}`: extends a prepaid term.
    public func renew(cluster: String, name: String, costTime: String) async throws -> InstanceWire {
        struct Body: Encodable, Sendable { var CostTime: String }
        return try decode(
            InstanceWire.self,
            try await send(
                "POST",
                Self.v1 + "/clusters/\(cluster)/instances/\(name)/renew",
                body: Body(CostTime: costTime),
                idempotent: false
            )
        )
    }

    /// Polls until the instance reaches `status` (or is gone, for `nil`), calling
    /// `progress` on every change. Throws `LatticeClientError` on timeout.
    @discardableResult
    public func waitForStatus(
        cluster: String,
        name: String,
        _ status: InstanceStatus?,
        timeout: Duration = .seconds(600),
        interval: Duration = .milliseconds(500),
        progress: (@Sendable (InstanceWire) -> Void)? = nil
    ) async throws -> InstanceWire? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        // The event stream tells each change as it commits; a server without one (or a stream
        // that ends) leaves the rest of the wait to polling.
        let onEvents = try await withThrowingTaskGroup(of: InstanceWire??.self) { group in
            group.addTask { try await self.waitOnEvents(cluster: cluster, name: name, status, progress: progress) }
            group.addTask {
                try await Task.sleep(until: deadline, clock: clock)
                throw LatticeClientError.transport(
                    "timed out waiting for \(name) to reach \(status?.rawValue ?? "deletion")"
                )
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        if let done = onEvents { return done }
        var last: String?
        while clock.now < deadline {
            do {
                let current = try await instance(cluster: cluster, name: name)
                if current.status != last {
                    last = current.status
                    progress?(current)
                }
                if current.status == status?.rawValue { return current }
                if current.status == InstanceStatus.failed.rawValue, status != .failed {
                    throw LatticeAPIError(
                        status: 409,
                        code: "InstanceFailed",
                        message: "\(name) failed: \(current.statusReason)"
                    )
                }
            } catch let error as LatticeAPIError where error.status == 404 && status == nil {
                return nil
            }
            try await Task.sleep(for: interval)
        }
        throw LatticeClientError.transport("timed out waiting for \(name) to reach \(status?.rawValue ?? "deletion")")
    }

    // MARK: Tokens

    /// `POST /tokens`; the answer's `token` is the only time the secret is shown.
    public func createToken(name: String, validityDays: Int? = nil) async throws -> TokenWire {
        struct Body: Encodable, Sendable { var name: String; var validityDays: Int? }
        return try decode(
            TokenWire.self,
            try await send(
                "POST",
                Self.v1 + "/tokens",
                body: Body(name: name, validityDays: validityDays),
                idempotent: false
            )
        )
    }

    /// `GET /tokens`: the caller's tokens (names, ids and expiry; never a secret).
    public func tokens(page: PageRequest = PageRequest()) async throws -> Page<TokenWire> {
        try await get(Page<TokenWire>.self, Self.v1 + "/tokens", query: Self.pageQuery(page))
    }

    /// A new secret for a token; the old one stops working at once.
    public func regenerateToken(id: String) async throws -> TokenWire {
        try decode(TokenWire.self, try await send("POST", Self.v1 + "/tokens/\(id)/regenerate", idempotent: false))
    }

    /// Deletes a token: calls made with it fail from now on, on every replica.
    public func deleteToken(id: String) async throws {
        _ = try await send("DELETE", Self.v1 + "/tokens/\(id)", idempotent: false)
    }

    // MARK: SSH keys

    /// `POST /ssh-keys`: registers an OpenSSH public key line for the SSH gateway.
    public func createSSHKey(publicKey: String, name: String? = nil) async throws -> SSHKeyWire {
        struct Body: Encodable, Sendable { var name: String?; var publicKey: String }
        return try decode(
            SSHKeyWire.self,
            try await send(
                "POST",
                Self.v1 + "/ssh-keys",
                body: Body(name: name, publicKey: publicKey),
                idempotent: false
            )
        )
    }

    /// `GET /ssh-keys`: the caller's registered public keys.
    public func sshKeys(page: PageRequest = PageRequest()) async throws -> Page<SSHKeyWire> {
        try await get(Page<SSHKeyWire>.self, Self.v1 + "/ssh-keys", query: Self.pageQuery(page))
    }

    /// Removes a public key: the SSH gateway no longer takes it.
    public func deleteSSHKey(id: String) async throws {
        _ = try await send("DELETE", Self.v1 + "/ssh-keys/\(id)", idempotent: false)
    }

    // MARK: Wallet

    /// `GET /balance`: the wallet's balance and currency.
    public func balance() async throws -> BalanceWire {
        try await get(BalanceWire.self, Self.v1 + "/balance")
    }

    /// `GET /orders`: one order per instance created, newest first.
    public func orders(page: PageRequest = PageRequest()) async throws -> Page<OrderWire> {
        try await get(Page<OrderWire>.self, Self.v1 + "/orders", query: Self.pageQuery(page))
    }

    /// `GET /bills`: every charge, adjustment and refund, newest first.
    public func bills(page: PageRequest = PageRequest()) async throws -> Page<BillWire> {
        try await get(Page<BillWire>.self, Self.v1 + "/bills", query: Self.pageQuery(page))
    }

    /// `GET /statements`: the month's statement (`YYYY-MM`; nil: this month).
    public func statement(month: String? = nil) async throws -> StatementWire {
        try await get(StatementWire.self, Self.v1 + "/statements", query: month.map { ["month": $0] } ?? [:])
    }

    /// The month's statement as the server's CSV.
    public func statementCSV(month: String? = nil) async throws -> String {
        var query = ["format": "csv"]
        if let month { query["month"] = month }
        return String(
            decoding: try await send("GET", Self.v1 + "/statements", query: query, idempotent: true),
            as: UTF8.self
        )
    }

    // MARK: Admin

    /// Creates a namespace; the answer carries its first token.
    public func createUser(namespace: String, balance: String? = nil, admin: Bool = false) async throws -> NewUserWire {
        struct Body: Encodable, Sendable { var namespace: String; var balance: String?; var admin: Bool }
        return try decode(
            NewUserWire.self,
            try await send(
                "POST",
                Self.v1 + "/admin/users",
                body: Body(namespace: namespace, balance: balance, admin: admin),
                idempotent: false
            )
        )
    }

    /// Tops up a wallet; with a reason, a refund the tenant sees on its bills.
    public func credit(namespace: String, amount: String, reason: String? = nil) async throws -> BalanceWire {
        try await moveMoney("credit", namespace: namespace, amount: amount, reason: reason)
    }

    /// Takes money back from a wallet, with the reason the tenant sees on its bills.
    public func debit(namespace: String, amount: String, reason: String) async throws -> BalanceWire {
        try await moveMoney("debit", namespace: namespace, amount: amount, reason: reason)
    }

    func moveMoney(_ verb: String, namespace: String, amount: String, reason: String?) async throws -> BalanceWire {
        struct Body: Encodable, Sendable { var amount: String; var reason: String? }
        return try decode(
            BalanceWire.self,
            try await send(
                "POST",
                Self.v1 + "/admin/users/\(namespace)/\(verb)",
                body: Body(amount: amount, reason: reason),
                idempotent: false
            )
        )
    }

    /// `GET /admin/users`: every namespace with its balance, instances and GPUs in use.
    public func users(page: PageRequest = PageRequest()) async throws -> Page<AdminUserWire> {
        try await get(Page<AdminUserWire>.self, Self.v1 + "/admin/users", query: Self.pageQuery(page))
    }

    /// `GET /admin/instances`: instances of every namespace, narrowed by the given filters.
    public func adminInstances(
        namespace: String? = nil,
        status: String? = nil,
        node: String? = nil,
        page: PageRequest = PageRequest()
    ) async throws -> Page<InstanceWire> {
        var query = Self.pageQuery(page)
        if let namespace { query["namespace"] = namespace }
        if let status { query["status"] = status }
        if let node { query["node"] = node }
        return try await get(Page<InstanceWire>.self, Self.v1 + "/admin/instances", query: query)
    }

    /// Stops a coupon from being redeemed again.
    public func disableCoupon(id: String) async throws -> CouponWire {
        try decode(CouponWire.self, try await send("POST", Self.v1 + "/admin/coupons/\(id)/disable", idempotent: true))
    }

    /// `POST /admin/coupons`: a coupon of `kind` `amount` or `percent` worth `value`,
    /// optionally expiring and limited to `maxUses` redemptions.
    public func createCoupon(
        id: String? = nil,
        kind: String,
        value: String,
        expiresAt: String? = nil,
        maxUses: Int? = nil
    ) async throws -> CouponWire {
        struct Body: Encodable, Sendable {
            var id: String?; var kind: String; var value: String; var expiresAt: String?; var maxUses: Int?
        }
        return try decode(
            CouponWire.self,
            try await send(
                "POST",
                Self.v1 + "/admin/coupons",
                body: Body(id: id, kind: kind, value: value, expiresAt: expiresAt, maxUses: maxUses),
                idempotent: false
            )
        )
    }

    /// `GET /admin/nodes`: every node with its health and free GPUs.
    public func adminNodes(page: PageRequest = PageRequest(page: 1, pageSize: 100)) async throws -> Page<AdminNodeWire>
    {
        try await get(Page<AdminNodeWire>.self, Self.v1 + "/admin/nodes", query: Self.pageQuery(page))
    }

    /// Stops (`drain`) or resumes placing new instances on a node.
    public func setDrained(node: String, _ drained: Bool) async throws -> AdminNodeWire {
        let verb = drained ? "drain" : "undrain"
        return try decode(
            AdminNodeWire.self,
            try await send("POST", Self.v1 + "/admin/nodes/\(node)/\(verb)", idempotent: true)
        )
    }

    /// A namespace's quota and what it uses.
    public func quota(namespace: String) async throws -> QuotaWire {
        try await get(QuotaWire.self, Self.v1 + "/admin/users/\(namespace)/quota")
    }

    /// Sets the given limits of a namespace's quota; nil ones keep their value.
    public func setQuota(
        namespace: String,
        instances: Int? = nil,
        gpus: Int? = nil,
        tokens: Int? = nil,
        snapshots: Int? = nil
    ) async throws -> QuotaWire {
        struct Body: Encodable, Sendable { var instances: Int?; var gpus: Int?; var tokens: Int?; var snapshots: Int? }
        return try decode(
            QuotaWire.self,
            try await send(
                "PUT",
                Self.v1 + "/admin/users/\(namespace)/quota",
                body: Body(instances: instances, gpus: gpus, tokens: tokens, snapshots: snapshots),
                idempotent: true
            )
        )
    }

    /// `GET /admin/coupons`: every coupon and how often it was redeemed.
    public func coupons(page: PageRequest = PageRequest()) async throws -> Page<CouponWire> {
        try await get(Page<CouponWire>.self, Self.v1 + "/admin/coupons", query: Self.pageQuery(page))
    }

    // MARK: Audit log

    /// `GET /audit`: the caller's namespace's audit log, newest first, optionally one action's.
    public func audit(action: String? = nil, page: PageRequest = PageRequest()) async throws -> Page<AuditEntryWire> {
        var query = Self.pageQuery(page)
        if let action { query["action"] = action }
        return try await get(Page<AuditEntryWire>.self, Self.v1 + "/audit", query: query)
    }

    /// `GET /admin/audit`: every namespace's audit log (or `namespace`'s), newest first.
    public func adminAudit(
        namespace: String? = nil,
        action: String? = nil,
        page: PageRequest = PageRequest()
    )
        async throws -> Page<AuditEntryWire>
    {
        var query = Self.pageQuery(page)
        if let namespace { query["namespace"] = namespace }
        if let action { query["action"] = action }
        return try await get(Page<AuditEntryWire>.self, Self.v1 + "/admin/audit", query: query)
    }

    // MARK: Operations

    /// `GET /healthz`, unauthenticated.
    public func health() async throws -> Bool {
        struct Health: Decodable { var status: String }
        return try await get(Health.self, "/healthz").status == "ok"
    }
}
