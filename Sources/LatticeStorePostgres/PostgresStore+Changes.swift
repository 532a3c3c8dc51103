import Foundation
import LatticeDomain
import LatticeStore
import PostgresNIO

/// Replicas wake each other through `LISTEN/NOTIFY` on one channel. A write sends its
/// notification inside its transaction, and PostgreSQL delivers it when (and only if) the
/// transaction commits, so a listener never hears of a change it cannot read yet.
extension PostgresStore {
    static let channel = "lattice_changes"

    /// Inside a write: tells every replica that `change` commits with it.
    static func notify(_ change: StoreChange, _ tx: Transaction) async throws {
        guard let payload = payload(change) else { return }
        try await tx.run("SELECT pg_notify(\(channel), \(payload))")
    }

    /// What a notification says of `change` (nil: nothing to send).
    static func payload(_ change: StoreChange) -> String? {
        switch change {
        case .instance(let name): "i:" + name
        case .observed(let name): "o:" + name
        case .token(let id): "t:" + id
        case .leaseReleased: "l:"
        case .prices: "p:"
        case .events(let namespace): "e:" + namespace
        case .webhooks: "w:"
        case .startInputs: "s:"
        case .reconnected: nil
        }
    }

    /// Listens on a connection of its own for as long as the stream is consumed; after a
    /// lost connection it listens again with backoff (0.5 s doubling to 5 s) and yields
    /// `.reconnected`, since whatever was sent in between is lost.
    public func changes() -> AsyncStream<StoreChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: StoreChange.self, bufferingPolicy: .unbounded)
        let task = Task { [client, logger, directory, memos] in
            var delay = 0.5
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        try await connection.listen(on: Self.channel) { notifications in
                            directory.listening()
                            memos.listening(true)
                            defer {
                                directory.deaf()
                                memos.listening(false)
                            }
                            continuation.yield(.reconnected)
                            delay = 0.5
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                // Listening first, then the load: nothing committed in between is missed.
                                group.addTask { await self.loadDirectory() }
                                for try await notification in notifications {
                                    // The directory's own notices: no subscriber's business.
                                    if let change = DirectoryChange(payload: notification.payload) {
                                        directory.apply(change)
                                    } else if let change = Self.change(notification.payload) {
                                        memos.forget([change])
                                        continuation.yield(change)
                                    }
                                }
                                group.cancelAll()
                            }
                        }
                    }
                } catch {
                    if Task.isCancelled { break }
                    logger.warning("change feed lost; listening again", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(delay))
                delay = min(5, delay * 2)
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    static func change(_ payload: String) -> StoreChange? {
        let body = String(payload.dropFirst(2))
        switch payload.prefix(2) {
        case "i:": return .instance(body)
        case "o:": return .observed(body)
        case "t:": return .token(body)
        case "l:": return .leaseReleased
        case "p:": return .prices
        case "e:": return .events(body)
        case "w:": return .webhooks
        case "s:": return .startInputs
        default: return nil
        }
    }

    /// Loads the directory from the table, unless it is loaded, loading, or not listened for.
    func loadDirectory() async {
        guard let epoch = directory.startLoad() else { return }
        do {
            let rows = try await read { tx in
                try await tx.rows("SELECT name, namespace, cluster, generation, created_at FROM instances").map {
                    let (name, namespace, cluster, generation, createdAt) = try $0.decode(
                        (String, String, String, Int, Double).self
                    )
                    return InstanceDirectory.Entry(
                        version: InstanceVersion(
                            name: name,
                            namespace: namespace,
                            cluster: cluster,
                            generation: generation
                        ),
                        createdAt: createdAt
                    )
                }
            }
            directory.install(rows, epoch: epoch)
        } catch {
            directory.loadFailed()
            logger.warning("instance directory not loaded; reads go to the database", metadata: ["error": "\(error)"])
        }
    }
}
