import Foundation

/// Writes every object a client sent to a directory, one JSON file each, so the test run
/// can validate them all with `kubernetes-validate --strict` (scripts/validate-manifests.sh).
public struct FakeObjectWriter: Sendable {
    /// Where the files go.
    public let directory: String

    /// A writer into `directory` (which must exist).
    public init(directory: String) {
        self.directory = directory
    }

    /// Writes `object` as `sent-<resource>-<name>.json`, replacing an earlier state.
    public func write(_ key: FakeCluster.Key, _ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        else { return }
        // One file per object (the last state sent), so the count stays with the objects.
        let name = "sent-\(key.resource)-\(key.name).json"
        try? data.write(to: URL(fileURLWithPath: directory).appendingPathComponent(name))
    }
}
