import Foundation
import Hummingbird
import LatticeCompute
import LatticeDomain
import LatticeStore
import Synchronization

/// `/readyz`'s answer.
struct ReadyBody: Encodable {
    var status: String
    var role: String
    var replica: String?
    var leader: String?
    var epoch: String?
    /// The SSH gateway's descriptor budget and its use (`DescriptorBudget`).
    var sshListeners: SSHListenerReport?
}

/// `GET /admin/nodes`: the nodes in the seed's list shape, and the SSH gateway's listeners.
struct AdminNodesPage: Encodable {
    var hasNextPage: Bool
    var nodes: [AdminNodeWire]
    var totalCount: Int
    var sshListeners: SSHListenerReport?

    init(_ page: Page<AdminNodeWire>, sshListeners: SSHListenerReport?) {
        hasNextPage = page.hasNextPage
        nodes = page.nodes
        totalCount = page.totalCount
        self.sshListeners = sshListeners
    }
}

/// Set once the reconciler has completed its first pass; `/readyz` reports it, with who
/// leads when replicas share a database.
final class Readiness: Sendable {
    private struct State {
        var ready = false
        var leadership: Leadership?
        var sshListeners: (@Sendable () -> SSHListenerReport)?
    }

    private let state = Mutex(State())

    /// Set once by the composition root.
    var leadership: Leadership? {
        get { state.withLock { $0.leadership } }
        set { state.withLock { $0.leadership = newValue } }
    }
    /// The SSH gateway's listeners against its budget; set once by the composition root.
    var sshListeners: (@Sendable () -> SSHListenerReport)? {
        get { state.withLock { $0.sshListeners } }
        set { state.withLock { $0.sshListeners = newValue } }
    }
    var isReady: Bool { state.withLock { $0.ready } }
    func markReady() { state.withLock { $0.ready = true } }
}
