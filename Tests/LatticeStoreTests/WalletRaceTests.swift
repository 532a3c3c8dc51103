import Foundation
import LatticeDomain
import LatticeStore
import LatticeStorePostgres
import LatticeStoreSQLite
import LatticeTestDatabase
import LatticeTestSupport
import Testing

/// Several replicas of one store: on SQLite one file opened once (one process owns it),
/// on PostgreSQL three `PostgresStore`s on one database, as three `lattice serve` would be.
struct Replicas: CustomStringConvertible, Sendable {
    let description: String
    let make: @Sendable () async throws -> [any Store]

    static let all: [Replicas] =
        [
            Replicas(description: "sqlite-file") {
                let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
                    "lattice-race-\(UUID().uuidString)"
                )
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                return [try SQLiteStore(path: dir.appendingPathComponent("lattice.sqlite").path)]
            }
        ]
        + (TestDatabase.runs
            ? [
                Replicas(description: "postgresql, three replicas") {
                    let url = try await TestDatabase.freshDatabase()
                    var stores: [any Store] = []
                    for _ in 0..<3 { stores.append(try await TestDatabase.open(url)) }
                    return stores
                }
            ] : [])
}

/// Twenty creates raced against one wallet or one coupon, spread over the replicas: the
/// wallet is never overspent and the coupon never redeemed past its uses.
@Suite(.timeLimit(.minutes(10))) struct WalletRaceTests {
    static let racers = 20

    /// One hour of one 2.50/h instance in the wallet: of 20 concurrent pay-as-you-go
    /// creates exactly one goes ahead; the others are refused with `InsufficientBalance`,
    /// whether or not the namespace has a user row (money credited before sign-up).
    @Test(arguments: Replicas.all, [true, false])
    func aOneHourWalletStartsOneInstance(_ replicas: Replicas, signedUp: Bool) async throws {
        let stores = try await replicas.make()
        try await credit(stores[0], "alice", "2.50", signUp: signedUp)
        let outcomes = try await race(stores) { store, i in
            let name = String(format: "instance-%08x", i)
            _ = try await store.createInstance(
                draft(name),
                on: nodes(Self.racers),
                sshPorts: 30000...31000,
                order: order(for: name),
                couponID: nil,
                debit: .none
            )
        }
        #expect(outcomes["done"] == 1, "\(outcomes)")
        #expect(outcomes["InsufficientBalance"] == Self.racers - 1, "\(outcomes)")
        #expect(try await stores[0].instances(namespace: "alice", cluster: nil, page: PageRequest()).total == 1)
    }

    /// A prepaid term paid up front from a wallet that holds one term: one create pays,
    /// the balance ends at zero, never below.
    @Test(arguments: Replicas.all)
    func aWalletPaysOnePrepaidTerm(_ replicas: Replicas) async throws {
        let stores = try await replicas.make()
        try await credit(stores[0], "alice", "60.00")
        let outcomes = try await race(stores) { store, i in
            let name = String(format: "instance-%08x", i)
            var prepaid = draft(name)
            prepaid.cost.costType = SellingType.daily.rawValue
            let price = Money("60.00")!
            _ = try await store.createInstance(
                prepaid,
                on: nodes(Self.racers),
                sshPorts: 30000...31000,
                order: order(for: name),
                couponID: nil,
                debit: WalletDebit(
                    required: price,
                    charges: [
                        LedgerEntry(
                            id: "prepaid-\(name)",
                            namespace: "alice",
                            kind: .prepaid,
                            amount: price,
                            instanceName: name,
                            idempotencyKey: "prepaid:\(name)",
                            createdAt: t0
                        )
                    ]
                )
            )
        }
        #expect(outcomes["done"] == 1, "\(outcomes)")
        #expect(outcomes["InsufficientBalance"] == Self.racers - 1, "\(outcomes)")
        for store in stores { #expect(try await store.balance(namespace: "alice") == .zero) }
    }

    /// A coupon of `maxUses: 1` named by 20 creates of 20 namespaces: one redeems it, one
    /// credit is written, and every other create is refused for the coupon alone.
    @Test(arguments: Replicas.all)
    func aSingleUseCouponIsRedeemedOnce(_ replicas: Replicas) async throws {
        let stores = try await replicas.make()
        try await stores[0].createCoupon(
            Coupon(id: "once", kind: .amount, value: Money("5.00")!, expiresAt: nil, maxUses: 1, createdAt: t0)
        )
        for i in 0..<Self.racers { try await credit(stores[0], "tenant-\(i)", "100.00") }
        let outcomes = try await race(stores) { store, i in
            let name = String(format: "instance-%08x", i)
            _ = try await store.createInstance(
                draft(name, namespace: "tenant-\(i)"),
                on: nodes(Self.racers),
                sshPorts: 30000...31000,
                order: order(for: name, namespace: "tenant-\(i)"),
                couponID: "once",
                debit: .none
            )
        }
        #expect(outcomes["done"] == 1, "\(outcomes)")
        #expect(outcomes.keys.sorted() == ["CouponUsedUp", "done"], "\(outcomes)")
        #expect(try await stores[0].coupons().first?.uses == 1)
        var credited = Money.zero
        for i in 0..<Self.racers {
            credited = credited + (try await stores[0].balance(namespace: "tenant-\(i)")) - Money("100.00")!
        }
        #expect(credited == Money("5.00")!, "one coupon credit in all")
    }

    /// Makes the tenant (as signing up does, unless `signUp` is false) and credits its wallet.
    private func credit(_ store: any Store, _ namespace: String, _ amount: String, signUp: Bool = true) async throws {
        if signUp {
            try await store.createUser(
                user(namespace),
                token: token("t-\(namespace)", namespace: namespace),
                openingCredit: nil
            )
        }
        _ = try await store.appendLedger(
            LedgerEntry(
                id: "credit-\(namespace)",
                namespace: namespace,
                kind: .credit,
                amount: Money(amount)!,
                idempotencyKey: "credit:\(namespace)",
                createdAt: t0
            )
        )
    }

    /// Runs `body` 20 times at once, racer `i` on replica `i % replicas`; tallies the
    /// outcomes by error code (`done` for a success). A failure without a code fails the test.
    private func race(
        _ stores: [any Store],
        _ body: @escaping @Sendable (any Store, Int) async throws -> Void
    ) async throws -> [String: Int] {
        try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<Self.racers {
                group.addTask {
                    do {
                        try await body(stores[i % stores.count], i)
                        return "done"
                    } catch let error as LatticeError {
                        return error.code
                    }
                }
            }
            return try await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
        }
    }
}
