import Foundation
import LatticeDomain
import LatticeStore

extension LatticeAPI {
    // MARK: Tokens

    func tokenWire(_ token: TokenRecord, secret: String? = nil) -> TokenWire {
        TokenWire(
            id: token.id,
            name: token.name,
            createdAt: wire.time.format(token.createdAt),
            expiresAt: wire.time.format(token.expiresAt),
            lastUsedAt: wire.time.format(token.lastUsedAt),
            token: secret
        )
    }

    public func createToken(principal: Principal, body: JSONValue) async throws -> TokenWire {
        let request = try CreateTokenRequest(json: body)
        let secret = TokenSecrets.generate()
        let now = clock.now()
        var rng = SystemRandomNumberGenerator()
        let record = TokenRecord(
            id: Identifiers.uuid(using: &rng),
            namespace: principal.namespace,
            name: request.name,
            secretHash: TokenSecrets.hash(secret),
            createdAt: now,
            expiresAt: now.addingTimeInterval(Double(request.validityDays) * 86400)
        )
        IdempotencyMiddleware.expect(tokenWire(record, secret: secret))
        try await store.createToken(record)
        return tokenWire(record, secret: secret)
    }

    public func tokens(principal: Principal, page: PageRequest) async throws -> Page<TokenWire> {
        Self.page(try await store.tokens(namespace: principal.namespace).map { tokenWire($0) }, page)
    }

    public func regenerateToken(principal: Principal, id: String) async throws -> TokenWire {
        let secret = TokenSecrets.generate()
        let record = try await store.replaceTokenSecret(
            id: id,
            namespace: principal.namespace,
            secretHash: TokenSecrets.hash(secret)
        )
        tokenCache.evict(tokenID: id)
        return tokenWire(record, secret: secret)
    }

    public func deleteToken(principal: Principal, id: String) async throws {
        try await store.deleteToken(id: id, namespace: principal.namespace)
        tokenCache.evict(tokenID: id)
    }

    // MARK: Admin

    func requireAdmin(_ principal: Principal) throws {
        guard principal.isAdmin else {
            throw LatticeError.forbidden("admin endpoints need a token of an admin namespace")
        }
    }

    public func createUser(principal: Principal, body: JSONValue) async throws -> NewUserWire {
        try requireAdmin(principal)
        let request = try CreateUserRequest(json: body)
        guard !catalog.reservedNamespaces.contains(request.namespace) else {
            throw LatticeError(
                .conflict,
                code: "NamespaceReserved",
                "namespace: '\(request.namespace)' is reserved (official images live under it)"
            )
        }
        let now = clock.now()
        var rng = SystemRandomNumberGenerator()
        let secret = TokenSecrets.generate()
        let token = TokenRecord(
            id: Identifiers.uuid(using: &rng),
            namespace: request.namespace,
            name: "default",
            secretHash: TokenSecrets.hash(secret),
            createdAt: now,
            expiresAt: now.addingTimeInterval(3650 * 86400)
        )
        let credit =
            request.balance > .zero
            ? LedgerEntry(
                id: Identifiers.uuid(using: &rng),
                namespace: request.namespace,
                kind: .credit,
                amount: request.balance,
                idempotencyKey: "opening:\(request.namespace)",
                createdAt: now
            )
            : nil
        IdempotencyMiddleware.expect(NewUserWire(namespace: request.namespace, token: secret))
        try await store.createUser(
            User(namespace: request.namespace, isAdmin: request.admin, createdAt: now),
            token: token,
            openingCredit: credit
        )
        return NewUserWire(namespace: request.namespace, token: secret)
    }

    public func users(principal: Principal, page: PageRequest) async throws -> Page<AdminUserWire> {
        try requireAdmin(principal)
        let (items, total) = try await store.userSummaries(page: page)
        let nodes = items.map {
            AdminUserWire($0, currency: configuration.currency, createdAt: wire.time.format($0.user.createdAt))
        }
        return Self.page(nodes, total: total, page)
    }

    /// Tops up a wallet; with a reason it is a refund, a line on the tenant's bills.
    public func credit(principal: Principal, namespace: String, body: JSONValue) async throws -> BalanceWire {
        try requireAdmin(principal)
        let request = try CreditRequest(json: body)
        try await requireUser(namespace)
        let current = try await store.balance(namespace: namespace)
        guard current.units <= Money.maximumBalance.units - request.amount.units else {
            throw LatticeError(
                .unprocessable,
                code: "BalanceLimit",
                "amount: the balance would exceed \(Money.maximumBalance), the most a wallet may hold"
            )
        }
        let entry = moneyEntry(request, kind: request.reason == nil ? .credit : .refund, namespace, principal)
        IdempotencyScope.current?.expect(.balance(namespace: namespace))
        _ = try await store.appendLedger(entry)
        return try await balance(namespace: namespace)
    }

    /// Takes money back with a reason (SPEC §9), never more than the wallet holds.
    public func debit(principal: Principal, namespace: String, body: JSONValue) async throws -> BalanceWire {
        try requireAdmin(principal)
        let request = try CreditRequest(json: body, reasonRequired: true)
        try await requireUser(namespace)
        IdempotencyScope.current?.expect(.balance(namespace: namespace))
        try await store.debit(moneyEntry(request, kind: .adjustment, namespace, principal))
        return try await balance(namespace: namespace)
    }

    func requireUser(_ namespace: String) async throws {
        guard try await store.user(namespace: namespace) != nil else {
            throw LatticeError.notFound("namespace '\(namespace.prefix(80))'")
        }
    }

    func moneyEntry(
        _ request: CreditRequest,
        kind: LedgerEntry.Kind,
        _ namespace: String,
        _ principal: Principal
    ) -> LedgerEntry {
        var rng = SystemRandomNumberGenerator()
        let id = Identifiers.uuid(using: &rng)
        return LedgerEntry(
            id: id,
            namespace: namespace,
            kind: kind,
            amount: request.amount,
            idempotencyKey: "\(kind.rawValue):\(id)",
            createdAt: clock.now(),
            reason: request.reason,
            actor: principal.actor
        )
    }

    // MARK: Quotas

    public func quota(principal: Principal, namespace: String) async throws -> QuotaWire {
        try requireAdmin(principal)
        guard try await store.user(namespace: namespace) != nil else {
            throw LatticeError.notFound("namespace '\(namespace)'")
        }
        return QuotaWire(
            namespace: namespace,
            quota: try await store.quota(namespace: namespace),
            usage: try await store.quotaUsage(namespace: namespace)
        )
    }

    /// Sets any of the four limits; the others keep their value. A limit below today's use
    /// refuses new use only: nothing running is stopped.
    public func setQuota(principal: Principal, namespace: String, body: JSONValue) async throws -> QuotaWire {
        try requireAdmin(principal)
        guard try await store.user(namespace: namespace) != nil else {
            throw LatticeError.notFound("namespace '\(namespace)'")
        }
        let next = try QuotaRule.update(try await store.quota(namespace: namespace), with: body)
        try await store.setQuota(namespace: namespace, next)
        return try await quota(principal: principal, namespace: namespace)
    }

    // MARK: Coupons

    func couponWire(_ coupon: Coupon) -> CouponWire {
        CouponWire(
            id: coupon.id,
            kind: coupon.kind.rawValue,
            value: coupon.kind == .percent ? String(coupon.percent) : coupon.value.description,
            expiresAt: wire.time.format(coupon.expiresAt),
            maxUses: coupon.maxUses,
            uses: coupon.uses,
            createdAt: wire.time.format(coupon.createdAt),
            namespaces: coupon.namespaces,
            usesPerNamespace: coupon.namespaceLimit,
            disabledAt: coupon.disabledAt.map { wire.time.format($0) }
        )
    }

    public func disableCoupon(principal: Principal, id: String) async throws -> CouponWire {
        try requireAdmin(principal)
        return couponWire(try await store.disableCoupon(id: id, at: clock.now()))
    }

    public func createCoupon(principal: Principal, body: JSONValue) async throws -> CouponWire {
        try requireAdmin(principal)
        let request = try CreateCouponRequest(json: body)
        var rng = SystemRandomNumberGenerator()
        let id = request.id ?? "CPN-" + Identifiers.jupyterToken(using: &rng).prefix(10).uppercased()
        let coupon = Coupon(
            id: id,
            kind: request.kind,
            value: request.value,
            expiresAt: request.expiresAt,
            maxUses: request.maxUses,
            createdAt: clock.now(),
            namespaces: request.namespaces,
            usesPerNamespace: request.usesPerNamespace
        )
        IdempotencyMiddleware.expect(couponWire(coupon))
        try await store.createCoupon(coupon)
        return couponWire(coupon)
    }

    public func coupons(principal: Principal, page: PageRequest) async throws -> Page<CouponWire> {
        try requireAdmin(principal)
        return Self.page(try await store.coupons().map(couponWire), page)
    }

    // MARK: Wallet

    public func balance(namespace: String) async throws -> BalanceWire {
        BalanceWire(
            namespace: namespace,
            balance: try await store.balance(namespace: namespace).description,
            currency: configuration.currency
        )
    }

    public func orders(principal: Principal, page: PageRequest) async throws -> Page<OrderWire> {
        let (items, total) = try await store.orders(namespace: principal.namespace, page: page)
        let nodes = items.map {
            OrderWire(
                id: $0.id,
                instanceName: $0.instanceName,
                costType: String($0.costType),
                gpuSkuId: $0.gpuSkuID,
                amount: $0.amount.description,
                status: $0.status,
                createdAt: wire.time.format($0.createdAt)
            )
        }
        return Self.page(nodes, total: total, page)
    }

    public func bills(principal: Principal, page: PageRequest) async throws -> Page<BillWire> {
        let (items, total) = try await store.ledger(
            namespace: principal.namespace,
            kinds: LedgerEntry.Kind.billed,
            page: page
        )
        let time = wire.time
        return Self.page(items.map { BillWire($0, time: { time.format($0) }) }, total: total, page)
    }
}

extension LatticeAPI {
    /// `GET /statements?month=YYYY-MM` (default: this month), in the server's time zone.
    public func statement(principal: Principal, month: String?) async throws -> StatementWire {
        let zone = configuration.time.timeZone
        let month = try month.map(StatementMonth.parse) ?? StatementMonth.containing(clock.now(), timeZone: zone)
        let bounds = month.bounds(timeZone: zone)
        let (entries, opening) = try await store.ledger(
            namespace: principal.namespace,
            from: bounds.start,
            to: bounds.end
        )
        let time = wire.time
        return StatementWire(
            Statement(month: month, opening: opening, entries: entries),
            namespace: principal.namespace,
            currency: configuration.currency,
            bounds: bounds,
            time: { time.format($0) }
        )
    }
}
