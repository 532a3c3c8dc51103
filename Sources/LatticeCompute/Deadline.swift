/// Runs `work`, or throws `DriverError` once `limit` has passed (and cancels it): a slow
/// backend delays its caller by at most `limit`. Shared by the reconciler and the drivers.
public func withDeadline<T: Sendable>(
    _ limit: Duration,
    _ work: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await work() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw DriverError("no answer within \(limit)")
        }
        return value
    }
}
