import Foundation
import LatticeDomain

extension LatticeAPI {
    // MARK: Budgets (SPEC §12)

    /// The namespace a budget call is about: the caller's, or (admins) the one named.
    func budgetNamespace(_ principal: Principal, _ named: String?) throws -> String {
        guard let named, !named.isEmpty, named != principal.namespace else { return principal.namespace }
        try requireAdmin(principal)
        return named
    }

    /// What the namespace spent this calendar month (in the server's time zone), from the ledger.
    func spentThisMonth(namespace: String, now: Date) async throws -> (Money, DateInterval) {
        let month = Budget.month(of: now, timeZone: configuration.time.timeZone)
        let entries = try await store.ledger(namespace: namespace, from: month.start, to: now).entries
        return (Budget.spent(entries), month)
    }

    public func budget(principal: Principal, namespace named: String?) async throws -> BudgetWire {
        let namespace = try budgetNamespace(principal, named)
        guard let budget = try await store.budget(namespace: namespace) else {
            throw LatticeError.notFound("budget of namespace \(namespace); set one with PUT /mdc/api/v1/budget")
        }
        return try await budgetWire(budget)
    }

    public func setBudget(principal: Principal, namespace named: String?, body: JSONValue) async throws -> BudgetWire {
        let namespace = try budgetNamespace(principal, named)
        guard try await store.user(namespace: namespace) != nil else {
            throw LatticeError.notFound("namespace '\(namespace.prefix(64))'")
        }
        let budget = try Budget(fields: try JSONFields(body), namespace: namespace, now: clock.now())
        try await store.setBudget(budget)
        return try await budgetWire(budget)
    }

    func budgetWire(_ budget: Budget) async throws -> BudgetWire {
        let now = clock.now()
        let (spent, month) = try await spentThisMonth(namespace: budget.namespace, now: now)
        return BudgetWire(
            budget,
            spent: spent,
            forecast: Budget.forecast(spent: spent, month: month, now: now),
            currency: configuration.currency
        )
    }

    /// Refuses a create or power_on with `402 BudgetExceeded` once a `block` or `stop`
    /// budget's limit is reached.
    func checkBudget(namespace: String) async throws {
        try await checkBudget(namespace: namespace, budget: try await store.budget(namespace: namespace))
    }

    /// As above, with the budget already read (`StartInputs`).
    func checkBudget(namespace: String, budget: Budget?) async throws {
        guard let budget, budget.action != .notify else { return }
        let (spent, _) = try await spentThisMonth(namespace: namespace, now: clock.now())
        if budget.blocks(spent: spent) { throw budget.refusal(spent: spent) }
    }

    // MARK: The namespace's default idle stop (SPEC §12)

    public func idleDefault(principal: Principal, namespace named: String?) async throws -> IdleDefaultWire {
        let namespace = try budgetNamespace(principal, named)
        guard let idle = try await store.idleDefault(namespace: namespace) else {
            throw LatticeError.notFound(
                "default idle stop of namespace \(namespace); set one with PUT /mdc/api/v1/idle_stop"
            )
        }
        return IdleDefaultWire(idle, format: configuration.time.format)
    }

    public func setIdleDefault(
        principal: Principal,
        namespace named: String?,
        body: JSONValue
    ) async throws -> IdleDefaultWire {
        let namespace = try budgetNamespace(principal, named)
        guard try await store.user(namespace: namespace) != nil else {
            throw LatticeError.notFound("namespace '\(namespace.prefix(64))'")
        }
        let idle = try IdleDefault(fields: try JSONFields(body), namespace: namespace, now: clock.now())
        try await store.setIdleDefault(idle)
        return IdleDefaultWire(idle, format: configuration.time.format)
    }

    public func clearIdleDefault(principal: Principal, namespace named: String?) async throws {
        let namespace = try budgetNamespace(principal, named)
        guard try await store.clearIdleDefault(namespace: namespace) else {
            throw LatticeError.notFound("default idle stop of namespace \(namespace)")
        }
    }
}
