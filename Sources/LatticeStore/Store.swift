import Foundation
import LatticeDomain
import Synchronization

/// Everything Lattice keeps. Each method is one transaction that preserves the
/// invariants (no oversold GPU, balance = credits − charges), so a crash between two calls
/// never leaves a half-written state.
///
/// No storage type appears here: the SQLite and PostgreSQL stores implement it alike and
/// pass the same contract suite. Each role below is a protocol of its own, so a part of
/// the server (or a test double) can ask for just the role it uses.
public typealias Store = AccountStore & InstanceStore & ImageStore & LedgerStore & MeterStore & IdempotencyStore
    & QuotaStore & SessionStore & SSHKeyStore & TemplateStore & BudgetStore & NodeStore & AuditStore & PriceStore
    & LeaseStore & EventStore & WebhookStore & AlertStore & NodeHealthStore
    & IdleDefaultStore
    & ChangeFeed & StoreHealth

/// Users, their tokens and the admin bootstrap.
public protocol AccountStore: Sendable {

    /// Creates the first admin and its token if no user exists yet; false if one did.
    func bootstrap(admin: User, token: TokenRecord) async throws -> Bool
    /// Creates a user, its first token and an opening credit. `Conflict` if the namespace exists.
    func createUser(_ user: User, token: TokenRecord, openingCredit: LedgerEntry?) async throws
    func user(namespace: String) async throws -> User?
    /// One page of every namespace, by name, with its balance, instances and GPUs in use
    /// (`GET /admin/users`), read from the counts kept as they change.
    func userSummaries(page: PageRequest) async throws -> (items: [UserSummary], total: Int)
    /// Refuses with `QuotaExceeded` past the namespace's token quota.
    func createToken(_ token: TokenRecord) async throws
    func tokens(namespace: String) async throws -> [TokenRecord]
    func token(secretHash: String) async throws -> TokenRecord?
    /// Replaces the secret of a token: the old one stops working in the same transaction.
    func replaceTokenSecret(id: String, namespace: String, secretHash: String) async throws -> TokenRecord
    func deleteToken(id: String, namespace: String) async throws
    func touchToken(id: String, at: Date) async throws

}

/// Instances, their GPU and port reservations, and the reads the hot paths and the
/// reconciler make.
public protocol InstanceStore: Sendable {

    /// Places the instance with `PlacementPolicy` on the current reservations, reserves its
    /// GPUs and an SSH port, and writes it with its order, all in one transaction.
    /// Throws `InsufficientCapacity` when nothing fits.
    /// Redeems `couponID` (if any) and takes `debit` from the wallet in the same transaction
    /// (`402 InsufficientBalance` if the balance is below `debit.required`), and opens the
    /// instance's meter segments.
    func createInstance(
        _ draft: Instance,
        on nodes: [ClusterNode],
        sshPorts: ClosedRange<Int>,
        order: Order,
        couponID: String?,
        debit: WalletDebit
    ) async throws -> Instance
    /// Reserves GPUs again for a Stopped or Failed instance and marks it Starting.
    func powerOn(
        namespace: String,
        name: String,
        on nodes: [ClusterNode],
        sshPorts: ClosedRange<Int>,
        podName: String,
        now: Date,
        debit: WalletDebit,
        unitPrice: Money?
    ) async throws -> Instance
    /// Applies a state-machine step to a tenant's instance; `NotFound` for another tenant's.
    func updateInstance(
        namespace: String,
        name: String,
        _ change: @escaping @Sendable (Instance) throws -> Instance
    ) async throws -> Instance
    /// Applies a step that also takes money: `change` returns the next record and its debit,
    /// both decided from the record as it is inside the transaction. When one of the
    /// debit's charges was recorded before (its idempotency key exists), the step was done
    /// already: nothing is written and the current record is returned.
    func updateInstance(
        namespace: String,
        name: String,
        paying change: @escaping @Sendable (Instance) throws -> (Instance, WalletDebit)
    ) async throws -> Instance
    /// Writes an observed transition if nobody changed the instance since `generation` was read.
    /// Releases GPUs when the new record has no placement. Returns false on a lost race.
    func recordObservation(_ instance: Instance, expectedGeneration: Int) async throws -> Bool
    /// Forgets a deleted instance and frees everything it held.
    func purgeInstance(name: String, expectedGeneration: Int, at: Date) async throws -> Bool
    func instance(namespace: String, name: String) async throws -> Instance?
    func instance(name: String) async throws -> Instance?
    func instances(
        namespace: String,
        cluster: String?,
        page: PageRequest
    ) async throws -> (items: [Instance], total: Int)
    /// Owner and generation of an instance, by primary key, without decoding its record.
    func instanceVersion(name: String) async throws -> InstanceVersion?
    /// One page of a tenant's instances in a cluster, newest first, as versions (one
    /// indexed query, nothing decoded), and how many there are in all.
    func instanceVersions(
        namespace: String,
        cluster: String,
        page: PageRequest
    ) async throws
        -> (items: [InstanceVersion], total: Int)
    /// One page of the instances of every namespace, newest first, each filter optional
    /// (empty: any), for `GET /admin/instances`.
    func instances(filter: InstanceFilter, page: PageRequest) async throws -> (items: [Instance], total: Int)
    /// Every instance, decoded: for tests and offline checks; the server itself reads by index.
    func allInstances() async throws -> [Instance]
    /// Name, cluster, status and deletion of every instance, for the reconciler's resync.
    func instanceSummaries() async throws -> [InstanceSummary]
    /// What the meter must act on at `now`: prepaid instances whose term ended while they
    /// run, and Stopped instances stopped before `stoppedBefore` (retention over).
    func instancesToEnforce(at now: Date, stoppedBefore: Date) async throws -> [Instance]
    /// Names of pay-as-you-go instances that hold GPUs, by namespace, for namespaces whose
    /// wallet is empty or was found empty before (so a top-up can end the depletion).
    func payAsYouGoHolders() async throws -> [String: [String]]
    /// How many instances are in each status (`/metrics`).
    func instanceCounts() async throws -> [InstanceStatus: Int]
    /// Which instance holds each SSH port now (the SSH gateway's per-instance listeners);
    /// read from the port index, so it costs what the held ports number.
    func sshPortHolders() async throws -> [Int: String]
    /// The instance holding `port`, if any.
    func instanceName(holdingSSHPort port: Int) async throws -> String?
    /// The instance with this `uid` (the HTTP gateway's `<uid>.<public-host>`), by index.
    func instanceName(uid: String) async throws -> String?
    /// GPU, CPU and memory reservations per node.
    func nodeUsage() async throws -> [String: NodeUsage]
    /// Free GPUs of a model in the given clusters of `nodes` (as their drivers report them
    /// now): from the in-memory capacity index when it is current, else from the rows.
    func freeGPUs(model: String, clusters: Set<String>, nodes: [ClusterNode]) async throws -> Int
    /// Loads what the hot read paths keep in memory, so the first clients do not wait for it.
    func warmUp() async throws

}

extension InstanceStore {
    /// `powerOn` at the price the instance has (tests, and callers that do not re-price).
    public func powerOn(
        namespace: String,
        name: String,
        on nodes: [ClusterNode],
        sshPorts: ClosedRange<Int>,
        podName: String,
        now: Date,
        debit: WalletDebit
    ) async throws -> Instance {
        try await powerOn(
            namespace: namespace,
            name: name,
            on: nodes,
            sshPorts: sshPorts,
            podName: podName,
            now: now,
            debit: debit,
            unitPrice: nil
        )
    }

    /// A step that takes no money is a paying step with nothing to pay: every store gets
    /// it from its `paying` form.
    public func updateInstance(
        namespace: String,
        name: String,
        _ change: @escaping @Sendable (Instance) throws -> Instance
    ) async throws -> Instance {
        try await updateInstance(namespace: namespace, name: name, paying: { (try change($0), WalletDebit.none) })
    }
}

/// Snapshot images.
public protocol ImageStore: Sendable {

    /// Writes a snapshot's record; reaching `Ready` or `Failed` records `image.ready` or
    /// `image.failed` at `at`.
    func saveImage(_ image: SnapshotImage, at: Date) async throws
    func images(namespace: String) async throws -> [SnapshotImage]
    /// Forgets a snapshot; false when the namespace has none by that reference.
    func deleteImage(namespace: String, reference: String) async throws -> Bool

}

extension ImageStore {
    public func saveImage(_ image: SnapshotImage) async throws { try await saveImage(image, at: image.createdAt) }
}

/// Orders, the ledger and wallet balances.
public protocol LedgerStore: Sendable {

    func orders(namespace: String, page: PageRequest) async throws -> (items: [Order], total: Int)
    /// Appends a ledger entry; an entry whose idempotency key exists already is ignored (false).
    func appendLedger(_ entry: LedgerEntry) async throws -> Bool
    /// Appends an operator's debit unless it takes more than the wallet holds (then
    /// `422 InsufficientBalance`, nothing written), checked and written under the wallet's lock.
    func debit(_ entry: LedgerEntry) async throws
    func ledger(
        namespace: String,
        kinds: Set<LedgerEntry.Kind>,
        page: PageRequest
    ) async throws -> (items: [LedgerEntry], total: Int)
    func balance(namespace: String) async throws -> Money
    /// The rows written in `[from, to)`, oldest first, and the balance before `from`
    /// (credits minus charges over every earlier row): what a month's statement is made of.
    func ledger(namespace: String, from: Date, to: Date) async throws -> (entries: [LedgerEntry], opening: Money)
    /// When the meter first found the wallet empty while it paid for running instances, if
    /// it still is; kept in the store so a restart does not start the grace period again.
    func depletedSince(namespace: String) async throws -> Date?
    func setDepletedSince(namespace: String, _ since: Date?) async throws

}

/// `Idempotency-Key` records.
public protocol IdempotencyStore: Sendable {

    /// Reads the record under `(namespace, key)`, lets `Idempotency.decide` judge it, and
    /// on `.claim` writes a fresh, unanswered record, all in one transaction (so two
    /// concurrent calls with one key cannot both claim it).
    func claimIdempotencyKey(
        namespace: String,
        key: String,
        requestHash: String,
        now: Date
    ) async throws
        -> Idempotency.Decision
    /// Keeps the first answer under a claimed key.
    func completeIdempotencyKey(namespace: String, key: String, status: Int, body: Data) async throws
    /// Gives a claimed key up (its call was refused or failed), so a retry runs again.
    func releaseIdempotencyKey(namespace: String, key: String) async throws

}

/// Per-namespace quotas.
public protocol QuotaStore: Sendable {

    /// The namespace's limits: its own if an admin set them, else the store's defaults
    /// (none for an admin namespace). Creates and power_ons check them in their write.
    func quota(namespace: String) async throws -> Quota
    func setQuota(namespace: String, _ quota: Quota) async throws
    func quotaUsage(namespace: String) async throws -> QuotaUsage

}

/// The meter's segments and the coupons it applies.
public protocol MeterStore: Sendable {

    /// Every segment not fully charged (tests hold the meter against it; the meter reads `dueSegments`).
    func unsettledSegments() async throws -> [MeterSegment]
    /// Unsettled segments due at `now` (an index on the time each is next due).
    func dueSegments(at now: Date) async throws -> [MeterSegment]
    /// Appends the charges of a segment and moves its cursor, in one transaction; a charge
    /// whose idempotency key exists is skipped. `nextDue` is when the meter should look at
    /// the segment again. Returns how many charges were new.
    func applyCharges(
        segmentID: String,
        billedThrough: Date,
        charges: [LedgerEntry],
        nextDue: Date?
    ) async throws -> Int
    func createCoupon(_ coupon: Coupon) async throws
    func coupons() async throws -> [Coupon]
    /// Stops a coupon from being redeemed again (idempotent); 404 for an unknown one.
    func disableCoupon(id: String, at: Date) async throws -> Coupon
}

/// A signed-in web console session, as every replica reads it. Keyed by the SHA-256 of
/// the session id (the id itself is only in the browser's cookie).
public struct ConsoleSessionRecord: Sendable, Equatable {
    /// The namespace signed in.
    public var namespace: String
    /// The API token the session was opened with, by id.
    public var tokenID: String
    /// The hash of the API token the session was opened with: regenerating or deleting
    /// that token ends the session.
    public var tokenHash: String
    /// Whether the namespace is an admin's (the console shows the operator's pages).
    public var isAdmin: Bool
    /// When the session ends unless the browser signs in again.
    public var expiresAt: Date
    /// The token every form and every state-changing call of the session must carry.
    public var csrf: String

    /// A session as the console opens it.
    public init(namespace: String, tokenID: String, tokenHash: String, isAdmin: Bool, expiresAt: Date, csrf: String) {
        self.namespace = namespace
        self.tokenID = tokenID
        self.tokenHash = tokenHash
        self.isAdmin = isAdmin
        self.expiresAt = expiresAt
        self.csrf = csrf
    }
}

/// Console sessions, so a restart or another replica signs nobody out.
public protocol SessionStore: Sendable {
    /// Keeps a new session; drops expired ones (a few at a time) and, past
    /// `SessionLimits.perNamespace`, the namespace's oldest.
    func createSession(idHash: String, _ session: ConsoleSessionRecord, now: Date) async throws
    /// The session if it exists and has not expired at `now`.
    func session(idHash: String, now: Date) async throws -> ConsoleSessionRecord?
    func endSession(idHash: String) async throws
    /// Keeps a sealed secret for the session's next page view (sealed by the caller with a
    /// key only the session's cookie gives: the store never holds it readable).
    func setRevealed(idHash: String, sealed: Data) async throws
    /// The sealed secret, removed in the same transaction (shown once).
    func takeRevealed(idHash: String) async throws -> Data?
}

/// The SSH public keys namespaces register for the SSH gateway.
public protocol SSHKeyStore: Sendable {
    /// Keeps a new key; `409 Conflict` if the namespace already has one with the same
    /// fingerprint, `409 QuotaExceeded` past `SSHKeyRecord.limitPerNamespace`.
    func createSSHKey(_ key: SSHKeyRecord) async throws
    /// The namespace's keys, oldest first.
    func sshKeys(namespace: String) async throws -> [SSHKeyRecord]
    /// `404` if the namespace has no key with this id.
    func deleteSSHKey(id: String, namespace: String) async throws
}

/// Instance templates namespaces and admins keep (the catalog's official ones are not stored).
public protocol TemplateStore: Sendable {
    /// Keeps a new template; `409 QuotaExceeded` past `InstanceTemplate.limitPerNamespace`.
    func createTemplate(_ template: InstanceTemplate) async throws
    /// The namespace's own templates and every public one, oldest first.
    func templates(visibleTo namespace: String) async throws -> [InstanceTemplate]
    /// One template by id, whoever owns it (the caller checks that it may see it).
    func template(id: String) async throws -> InstanceTemplate?
    /// Removes a template; `404` if there is none with this id.
    func deleteTemplate(id: String) async throws
}

/// Namespaces' monthly budgets (SPEC §12).
public protocol BudgetStore: Sendable {
    /// Keeps a namespace's budget, replacing the one it had.
    func setBudget(_ budget: Budget) async throws
    func budget(namespace: String) async throws -> Budget?
    /// Every budget whose action stops instances (the meter's pass).
    func stoppingBudgets() async throws -> [Budget]
}

/// Nodes an operator drained (placement skips them), shared by every replica.
public protocol NodeStore: Sendable {
    /// Drains `node` (keeping the first time it was drained) or undrains it.
    func setDrained(node: String, _ drained: Bool, at: Date) async throws
    /// Every drained node.
    func drainedNodes() async throws -> [NodeDrain]
    /// What a create or a power_on reads before its write, in one read: the namespace's
    /// budget and default idle stop, and every drained node.
    func startInputs(namespace: String) async throws -> StartInputs
}

/// What a create or a power_on reads before its write (`NodeStore.startInputs`).
public struct StartInputs: Sendable, Equatable {
    /// The namespace's budget, if it set one (SPEC §12): its cap is checked before the write.
    public var budget: Budget?
    /// The namespace's default idle stop, which a new instance without its own takes.
    public var idleDefault: IdleDefault?
    /// Nodes an admin drained: placement leaves them out.
    public var drained: [NodeDrain]

    /// What was read.
    public init(budget: Budget? = nil, idleDefault: IdleDefault? = nil, drained: [NodeDrain] = []) {
        self.budget = budget
        self.idleDefault = idleDefault
        self.drained = drained
    }
}

/// Admins' price changes (`PriceChange`), kept in the order made.
public protocol PriceStore: Sendable {
    /// Appends a change; every replica hears of it (`StoreChange.prices`).
    func appendPriceChange(_ change: PriceChange) async throws
    /// Every change in the order made (one SKU's with `skuID`).
    func priceChanges(skuID: String?) async throws -> [PriceChange]
}

/// The audit log (SPEC §10): one entry per state-changing call, kept `AuditRule.retention`.
public protocol AuditStore: Sendable {
    /// Appends the entries in one transaction (a server writes the entries of calls answered
    /// together at once: `AuditRecorder`).
    func appendAudit(_ entries: [AuditEntry]) async throws
    /// Newest first; one namespace's entries, or every namespace's when `namespace` is nil;
    /// only `action`'s when it is given.
    func auditEntries(
        namespace: String?,
        action: String?,
        page: PageRequest
    ) async throws -> (
        items: [AuditEntry], total: Int
    )
    /// Deletes the entries older than `before`; how many went.
    @discardableResult func pruneAudit(before: Date) async throws -> Int
}

/// The events every write records with it (the outbox, SPEC §13), kept
/// `LatticeEvent.retention`.
public protocol EventStore: Sendable {
    /// A namespace's events numbered after `after`, oldest first, at most `limit`.
    func events(namespace: String, after: Int64, limit: Int) async throws -> [LatticeEvent]
    /// The number of the namespace's newest event (0: none yet).
    func lastEventID(namespace: String) async throws -> Int64
    /// Deletes the events older than `before`; how many went.
    @discardableResult func pruneEvents(before: Date) async throws -> Int
}

/// Webhooks and their deliveries. The leader queues a delivery of each event a webhook
/// wants (after the webhook's cursor, which moves in the same write), sends those due,
/// first in their line (`WebhookDelivery.orderingKey`), and records each attempt; these
/// three writes are fenced.
public protocol WebhookStore: Sendable {
    /// Registers a webhook; its deliveries start with the namespace's next event.
    /// `422 WebhookLimitExceeded` past `WebhookRule.perNamespace`.
    func createWebhook(_ webhook: Webhook) async throws
    func webhooks(namespace: String) async throws -> [Webhook]
    func allWebhooks() async throws -> [Webhook]
    /// Deletes a webhook and its deliveries; false when the namespace has none by that id.
    func deleteWebhook(namespace: String, id: String) async throws -> Bool
    /// Newest first.
    func deliveries(webhookID: String, page: PageRequest) async throws -> (items: [WebhookDelivery], total: Int)
    /// Queues the deliveries of the events after the webhook's cursor (at most `limit` events
    /// read) and moves the cursor past them; how many events were read (a whole batch: read again).
    func queueDeliveries(webhookID: String, limit: Int, newID: @escaping @Sendable () -> String) async throws -> Int
    /// Pending deliveries due at `now` with no earlier pending one in their line, with their
    /// events (nil: the event is gone).
    func dueDeliveries(now: Date, limit: Int) async throws -> [(WebhookDelivery, LatticeEvent?)]
    func recordDelivery(_ delivery: WebhookDelivery) async throws
    /// Deletes the settled deliveries of events older than `before`.
    @discardableResult func pruneDeliveries(before: Date) async throws -> Int
}

/// Alerts of money (`AlertRule`): raised once, as events, until cleared.
public protocol AlertStore: Sendable {
    /// Reads the namespace's balance, hourly commitment and raised alerts under its wallet
    /// lock, lets `decide` say what to raise and clear, and records that with the events of
    /// the alerts raised; returns those events. Fenced (the leader's meter).
    func recordAlerts(
        namespace: String,
        _ decide: @escaping @Sendable (AlertReads) -> AlertDecision
    ) async throws
        -> [LatticeEvent]
}

/// Each node's health as last told (`EventRule.node`), so a node's change is told once,
/// whichever replica leads.
public protocol NodeHealthStore: Sendable {
    func nodeHealth() async throws -> [String: NodeHealth]
    /// Records the nodes' new health with the events their changes tell. Fenced (the leader's).
    func recordNodeHealth(_ health: [(node: String, health: NodeHealth)], events: [LatticeEvent], at: Date) async throws
}

/// Namespaces' default idle stop (`IdleDefault`).
public protocol IdleDefaultStore: Sendable {
    func idleDefault(namespace: String) async throws -> IdleDefault?
    func setIdleDefault(_ idle: IdleDefault) async throws
    /// False when the namespace had none.
    func clearIdleDefault(namespace: String) async throws -> Bool
}

/// How many console sessions the store keeps.
public enum SessionLimits {
    /// Signed-in sessions one namespace keeps; a new one ends the oldest past this.
    public static let perNamespace = 100
}

/// The leader lease (`LeaseRule` decides) and the fence on the leader's writes.
///
/// The writes only the leader's services make (`recordObservation`, `purgeInstance`,
/// `applyCharges`, `setDepletedSince`) check `fence` inside their transaction: when it is
/// enabled they go ahead only if the lease row still names this replica with the epoch it
/// holds, and are refused with `503 NotLeader` otherwise.
public protocol LeaseStore: Sendable {
    /// Reads the lease row, lets `LeaseRule.claim` decide and writes the result, in one
    /// transaction; returns the row as it stands afterwards.
    func claimLease(holder: String, now: Date, ttl: TimeInterval) async throws -> LeaderLease?
    /// Hands the lease back (graceful shutdown), if `holder` has it.
    func releaseLease(holder: String, now: Date) async throws
    func leaderLease() async throws -> LeaderLease?
    /// What this replica's fenced writes carry.
    var fence: LeaderFence { get }
}

/// The lease a replica holds, as its fenced writes carry it. Disabled (the default) it
/// fences nothing: a store used on its own, in tests and tools, writes freely.
public final class LeaderFence: Sendable {
    private struct Held {
        var holder: String?
        var epoch: Int64?
    }

    private let held = Mutex(Held())

    /// Fencing off until `enable`.
    public init() {}

    /// Turns fencing on for `holder`; until `hold` is called its fenced writes are refused.
    public func enable(holder: String) { held.withLock { $0.holder = holder } }
    /// This replica leads at `epoch` (its claim or renewal just said so).
    public func hold(epoch: Int64) { held.withLock { $0.epoch = epoch } }
    /// This replica does not lead: its fenced writes are refused.
    public func drop() { held.withLock { $0.epoch = nil } }

    /// nil when fencing is off; else the holder and the epoch it leads with (nil: it does not lead).
    public var current: (holder: String, epoch: Int64?)? {
        held.withLock { held in held.holder.map { ($0, held.epoch) } }
    }

    /// Refuses a fenced write unless `lease` (the row, read in the write's transaction)
    /// still names this replica at its epoch.
    public func check(_ lease: LeaderLease?) throws {
        guard let (holder, epoch) = current else { return }
        guard let epoch, LeaseRule.admits(lease, holder: holder, epoch: epoch) else {
            throw LatticeError(
                .unavailable,
                code: "NotLeader",
                "this replica no longer leads; the write was refused and the new leader will redo it"
            )
        }
    }
}

/// What a committed write changed.
public enum StoreChange: Sendable, Equatable {
    /// A write committed a change to this instance that the reconciler acts on (a create,
    /// a user's verb, the meter's stop).
    case instance(String)
    /// The reconciler recorded what it observed of this instance, or purged it: its GPUs
    /// or its SSH port may have been given back, and there is nothing more to act on.
    case observed(String)
    /// This token was regenerated or deleted.
    case token(String)
    /// The leader handed its lease back: the next replica to claim leads.
    case leaseReleased
    /// An admin changed a price: every replica applies the store's price changes again.
    case prices
    /// The feed (re)connected: changes may have been missed, so caches start afresh and
    /// the leader resyncs.
    case reconnected
    /// A write recorded events of this namespace (its streams read them; the leader's
    /// webhook sender queues them).
    case events(String)
    /// A webhook was created or deleted (the stores' own memo of the list forgets it).
    case webhooks
    /// A budget, a namespace's default idle stop or a node's drain changed: what a create or
    /// a start reads first (`StartInputs`; the stores' own memo forgets it).
    case startInputs
}

/// The one change feed: every write's changes, once it has committed, from this replica and
/// (on PostgreSQL, through `LISTEN/NOTIFY`) every other. The reconciler's queue, the token
/// cache and the gateways follow it (`ChangeFollower`); nothing else tells them of a write.
public protocol ChangeFeed: Sendable {
    func changes() -> AsyncStream<StoreChange>
}

/// Whether the store answers.
public protocol StoreHealth: Sendable {
    /// A cheap query proving the store answers, for `/readyz`.
    func ping() async throws
}

/// Money an API write takes from the wallet, checked and charged in its transaction.
public struct WalletDebit: Sendable, Equatable {
    /// The balance the wallet must hold before the write for it to go ahead.
    public var required: Money
    /// The ledger entries the write appends (a prepaid period's charge), in its transaction.
    public var charges: [LedgerEntry]

    /// A debit of `charges` that needs `required` in the wallet.
    public init(required: Money = .zero, charges: [LedgerEntry] = []) {
        self.required = required
        self.charges = charges
    }

    /// No money moves and none is needed.
    public static let none = WalletDebit()
}
