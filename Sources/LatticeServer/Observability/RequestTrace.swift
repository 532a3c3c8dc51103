import Synchronization

/// What one request's log line and audit entry say of it: its id (set first, by
/// `RequestObserver`) and the namespace it was made in (set by `AuthMiddleware` once the
/// token is known). A reference in the request context, because the context itself is a
/// value that inner middleware changes only for what runs inside them.
public final class RequestTrace: Sendable {
    private let fields = Mutex<(id: String, namespace: String?)>(("", nil))

    public init() {}

    public var id: String {
        get { fields.withLock { $0.id } }
        set { fields.withLock { $0.id = newValue } }
    }

    public var namespace: String? {
        get { fields.withLock { $0.namespace } }
        set { fields.withLock { $0.namespace = newValue } }
    }
}
