import Foundation

/// `Idempotency-Key` on a POST (SPEC §3): within `window` the same key and request in the
/// same namespace answer what the first call answered, without doing the work again; the
/// same key with another request is `422 IdempotencyKeyReused`.
public enum Idempotency {
    /// How long an answer is kept.
    public static let window: TimeInterval = 24 * 3600
    /// A claim not completed within this is taken to be abandoned (its process died).
    public static let abandonedAfter: TimeInterval = 60

    /// The most keys one namespace keeps; past it the oldest go first.
    public static let keysPerNamespace = 10_000

    /// What a keyed request's work answers, written in the work's own transaction, so that a
    /// retry after a crash between the commit and the answer is answered, never run again.
    public enum Outcome: Sendable, Equatable {
        /// An answer known before the work ran (`"ok"`, a record made by the API).
        case answer(status: Int, body: Data)
        /// The instance the work made or changed, answered as it is now.
        case instance(namespace: String, name: String)
        /// The namespace's wallet, answered as it is now.
        case balance(namespace: String)

        /// How the store keeps a reference (`answer` is kept as the answer itself).
        public var reference: String? {
            switch self {
            case .answer: nil
            case .instance(let namespace, let name): "instance:\(namespace)/\(name)"
            case .balance(let namespace): "balance:\(namespace)"
            }
        }

        /// The reference read back.
        public init?(reference: String) {
            let parts = reference.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { return nil }
            switch parts[0] {
            case "instance":
                let path = parts[1].split(separator: "/", maxSplits: 1).map(String.init)
                guard path.count == 2 else { return nil }
                self = .instance(namespace: path[0], name: path[1])
            case "balance": self = .balance(namespace: parts[1])
            default: return nil
            }
        }
    }

    /// A key as the store keeps it.
    public struct Record: Sendable, Equatable {
        public var requestHash: String
        public var createdAt: Date
        /// The first answer; nil while the first call is still running.
        public var status: Int?
        public var body: Data?
        /// What the committed work answers, when it committed but its answer was not kept.
        public var outcome: String?

        public init(requestHash: String, createdAt: Date, status: Int? = nil, body: Data? = nil, outcome: String? = nil)
        {
            self.requestHash = requestHash
            self.createdAt = createdAt
            self.status = status
            self.body = body
            self.outcome = outcome
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Run the request; the caller now holds the key.
        case claim
        /// Answer this again.
        case replay(status: Int, body: Data)
        /// The work committed and its answer was lost with its process: answer this as it is now.
        case answerAgain(Outcome)
        case reused
        case inProgress
    }

    /// What a request carrying a key does, given what the store has under that key.
    public static func decide(existing: Record?, requestHash: String, now: Date) -> Decision {
        guard let existing, now.timeIntervalSince(existing.createdAt) < window else { return .claim }
        guard existing.requestHash == requestHash else { return .reused }
        if let status = existing.status, let body = existing.body { return .replay(status: status, body: body) }
        if let reference = existing.outcome, let outcome = Outcome(reference: reference) {
            return .answerAgain(outcome)
        }
        return now.timeIntervalSince(existing.createdAt) < abandonedAfter ? .inProgress : .claim
    }

    /// Whether an answer is kept for replay: successes only. A refused call did nothing, so
    /// a retry with the same key runs again (and may succeed once, say, the wallet is topped up).
    public static func keeps(status: Int) -> Bool { (200..<300).contains(status) }

    /// The key's own rules: 1 to 255 printable ASCII characters.
    public static func validate(_ key: String) throws {
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw LatticeError.invalidField("Idempotency-Key", "must be 1 to 255 printable ASCII characters")
        }
    }
}
