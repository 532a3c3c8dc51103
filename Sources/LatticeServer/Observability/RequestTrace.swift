import Synchronization

/// What one request's log line and audit entry say of it: its id (set first, by
/// `RequestObserver`), the namespace it acted in and who made it (set by `AuthMiddleware`
/// or the console once the caller is known), and, where the path does not say, what it
/// acted on (a create names the instance it made). A reference in the request context,
/// because the context itself is a value that inner middleware change only for what runs
/// inside them.
public final class RequestTrace: Sendable {
    struct Fields {
        var id = ""
        var namespace: String?
        var actor: String?
        var target: String?
    }

    private let fields = Mutex(Fields())

    public init() {}

    public var id: String {
        get { fields.withLock { $0.id } }
        set { fields.withLock { $0.id = newValue } }
    }

    public var namespace: String? {
        get { fields.withLock { $0.namespace } }
        set { fields.withLock { $0.namespace = newValue } }
    }

    public var actor: String? {
        get { fields.withLock { $0.actor } }
        set { fields.withLock { $0.actor = newValue } }
    }

    public var target: String? {
        get { fields.withLock { $0.target } }
        set { fields.withLock { $0.target = newValue } }
    }

    /// The caller, once authenticated (a token or a console session).
    func identify(_ principal: Principal) {
        fields.withLock {
            $0.namespace = principal.namespace
            $0.actor = principal.actor
        }
    }
}
