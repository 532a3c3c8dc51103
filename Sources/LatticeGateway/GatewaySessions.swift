import Synchronization

/// Connections the HTTP gateway is passing through to instances right now, for
/// `lattice_gateway_sessions{kind="http"}`.
public final class GatewaySessions: Sendable {
    private let open = Atomic<Int>(0)

    public init() {}

    public var current: Int { open.load(ordering: .relaxed) }

    func opened() { open.add(1, ordering: .relaxed) }

    func closed() { open.subtract(1, ordering: .relaxed) }
}
