import Foundation
import LatticeDomain
import Synchronization

/// Instances as the wire shows them, rendered once per version of their record: an
/// authenticated GET or a list page reads owners and generations by index and answers
/// from here, decoding and encoding only what changed since it was last shown.
final class RenderedInstances: Sendable {
    private let entries = Mutex([String: (generation: Int, json: Data)]())
    private let capacity: Int

    /// About 2 kB each: the default bounds the cache near 40 MB, the hot set of a busy cloud.
    init(capacity: Int = 20_000) { self.capacity = capacity }

    func json(_ name: String, generation: Int) -> Data? {
        entries.withLock { entries in
            guard let entry = entries[name], entry.generation == generation else { return nil }
            return entry.json
        }
    }

    func keep(_ name: String, generation: Int, json: Data) {
        entries.withLock { entries in
            if entries.count >= capacity, entries[name] == nil { entries.removeAll(keepingCapacity: true) }
            entries[name] = (generation, json)
        }
    }
}

extension LatticeAPI {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }

    /// The wire JSON of one version of an instance, from the cache or rendered now.
    func renderedJSON(_ version: InstanceVersion) async throws -> Data? {
        if let json = rendered.json(version.name, generation: version.generation) { return json }
        guard let instance = try await store.instance(name: version.name) else { return nil }
        let json = try Self.encoder().encode(InstanceWire(instance, context: wire))
        rendered.keep(instance.name, generation: instance.generation, json: json)
        return json
    }

    /// `GET .../instances/{name}` as JSON: one primary-key read when the cache has it.
    public func instanceJSON(principal: Principal, cluster: String, name: String) async throws -> Data {
        _ = try requireCluster(cluster)
        guard let version = try await store.instanceVersion(name: name), version.namespace == principal.namespace,
            version.cluster == cluster, let json = try await renderedJSON(version)
        else {
            throw LatticeError.notFound("instance '\(name)' in cluster \(cluster)")
        }
        return json
    }

    /// An instance of `namespace` as JSON, wherever it runs (a keyed create answered again).
    func instanceJSON(namespace: String, name: String) async throws -> Data {
        guard let version = try await store.instanceVersion(name: name), version.namespace == namespace,
            let json = try await renderedJSON(version)
        else { throw LatticeError.notFound("instance '\(name)'") }
        return json
    }

    /// `GET .../instances` as JSON: one indexed page query, then the cache.
    public func instancesJSON(principal: Principal, cluster: String, page: PageRequest) async throws -> Data {
        _ = try requireCluster(cluster)
        let (versions, total) = try await store.instanceVersions(
            namespace: principal.namespace,
            cluster: cluster,
            page: page
        )
        var body = Data(#"{"hasNextPage":"#.utf8)
        body.append(contentsOf: Data((page.offset + versions.count < total ? "true" : "false").utf8))
        body.append(contentsOf: Data(#","nodes":["#.utf8))
        var first = true
        for version in versions {
            // One purged between the two reads is left out, as a later page would.
            guard let json = try await renderedJSON(version) else { continue }
            if !first { body.append(UInt8(ascii: ",")) }
            body.append(json)
            first = false
        }
        body.append(contentsOf: Data(#"],"totalCount":\#(total)}"#.utf8))
        return body
    }
}
