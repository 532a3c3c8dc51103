import Foundation
import LatticeDomain
import LatticeStore
import Testing

/// What operators read and write (SPEC §9), on every store: namespaces with their money and
/// use, instances of every namespace by filter, debits that never overdraw, refunds, coupons
/// disabled, and price changes kept in order.
@Suite(.timeLimit(.minutes(10))) struct OperatorStoreTests {
    func entry(_ id: String, _ kind: LedgerEntry.Kind, _ amount: String, namespace: String = "alice") -> LedgerEntry {
        LedgerEntry(
            id: id,
            namespace: namespace,
            kind: kind,
            amount: Money(amount)!,
            idempotencyKey: "\(kind.rawValue):\(id)",
            createdAt: t0,
            reason: kind == .credit ? nil : "because",
            actor: "admin"
        )
    }

    @Test(arguments: StoreFactory.all)
    func namespacesListTheirMoneyAndUse(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await store.createUser(user("alice"), token: token("a1", namespace: "alice"), openingCredit: nil)
        try await store.createUser(user("bob"), token: token("b1", namespace: "bob"), openingCredit: nil)
        try await fund(store, "100")
        _ = try await store.createInstance(
            draft("instance-0000b001", gpus: 2),
            on: nodes(),
            sshPorts: 30000...30010,
            order: order(for: "instance-0000b001"),
            couponID: nil,
            debit: .none
        )
        let (items, total) = try await store.userSummaries(page: PageRequest())
        #expect(total == 2 && items.map(\.user.namespace) == ["alice", "bob"])
        #expect(items[0].balance == Money("100")! && items[0].instances == 1 && items[0].gpusInUse == 2)
        #expect(items[1].instances == 0 && items[1].gpusInUse == 0)
        #expect(
            try await store.userSummaries(page: PageRequest(page: 2, pageSize: 1)).items.map(\.user.namespace) == [
                "bob"
            ]
        )

        let all = try await store.instances(filter: InstanceFilter(), page: PageRequest())
        #expect(all.total == 1 && all.items.first?.name == "instance-0000b001")
        #expect(try await store.instances(filter: InstanceFilter(namespace: "bob"), page: PageRequest()).total == 0)
        #expect(try await store.instances(filter: InstanceFilter(status: "Creating"), page: PageRequest()).total == 1)
        #expect(try await store.instances(filter: InstanceFilter(status: "Running"), page: PageRequest()).total == 0)
        #expect(try await store.instances(filter: InstanceFilter(node: "node-0"), page: PageRequest()).total == 1)
        #expect(try await store.instances(filter: InstanceFilter(node: "node-9"), page: PageRequest()).total == 0)
    }

    @Test(arguments: StoreFactory.all)
    func aDebitNeverOverdrawsAndARefundCountsAsCredit(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await store.createUser(user("alice"), token: token("a1", namespace: "alice"), openingCredit: nil)
        try await fund(store, "10")
        try await store.debit(entry("d1", .adjustment, "4"))
        try await store.debit(entry("d1", .adjustment, "4"))  // the same row again: nothing more
        #expect(try await store.balance(namespace: "alice") == Money("6")!)
        await #expect(throws: LatticeError.self) { try await store.debit(entry("d2", .adjustment, "6.01")) }
        #expect(try await store.balance(namespace: "alice") == Money("6")!)
        _ = try await store.appendLedger(entry("r1", .refund, "1.50"))
        #expect(try await store.balance(namespace: "alice") == Money("7.50")!)
        let bills = try await store.ledger(namespace: "alice", kinds: LedgerEntry.Kind.billed, page: PageRequest())
        #expect(bills.items.map(\.kind) == [.refund, .adjustment] && bills.items.allSatisfy { $0.reason == "because" })
    }

    @Test(arguments: StoreFactory.all)
    func couponsAreDisabledAndPriceChangesKeptInOrder(_ factory: StoreFactory) async throws {
        let store = try await factory.make()
        try await store.createCoupon(
            Coupon(id: "C1", kind: .amount, value: Money("5")!, expiresAt: nil, maxUses: 3, createdAt: t0)
        )
        let disabled = try await store.disableCoupon(id: "C1", at: t0.addingTimeInterval(60))
        #expect(disabled.disabledAt == t0.addingTimeInterval(60))
        #expect(
            try await store.disableCoupon(id: "C1", at: t0.addingTimeInterval(120)).disabledAt == disabled.disabledAt
        )
        #expect(try await store.coupons().first?.disabledAt == disabled.disabledAt)
        await #expect(throws: LatticeError.self) { _ = try await store.disableCoupon(id: "nope", at: t0) }

        let changes = ["3", "4", "2.5"].enumerated().map { index, price in
            PriceChange(
                skuID: index == 1 ? "67" : "66",
                price: Money(price)!,
                discount: nil,
                at: t0.addingTimeInterval(Double(index)),
                actor: "admin"
            )
        }
        for change in changes { try await store.appendPriceChange(change) }
        #expect(try await store.priceChanges(skuID: nil) == changes)
        #expect(try await store.priceChanges(skuID: "66") == [changes[0], changes[2]])
    }
}
