import LatticeCompute
import LatticeDomain
import LatticeGateway
import LatticeStore
import Logging

/// The gateways' view of instances, keys and drivers, read from the store and the fleet.
struct StoreAccessDirectory: AccessDirectory {
    let store: any Store
    let fleet: ComputeFleet
    /// Where SSH sign-ins are audited.
    let audit: AuditRecorder

    func target(instanceName: String) async throws -> AccessTarget? {
        guard let instance = try await store.instance(name: instanceName), !instance.desired.deleted else { return nil }
        return AccessTarget(
            name: instance.name,
            uid: instance.uid,
            namespace: instance.namespace,
            cluster: instance.cluster,
            sshPassword: instance.access.sshPassword,
            status: instance.status.rawValue,
            jupyterToken: instance.access.jupyterToken,
            publishedPorts: Dictionary(
                (instance.workload?.ports ?? []).map { ($0.port, $0.isPublic) },
                uniquingKeysWith: { first, _ in first }
            )
        )
    }

    func target(sshPort: Int) async throws -> AccessTarget? {
        guard let name = try await store.instanceName(holdingSSHPort: sshPort) else { return nil }
        return try await target(instanceName: name)
    }

    func target(uid: String) async throws -> AccessTarget? {
        guard let name = try await store.instanceName(uid: uid) else { return nil }
        return try await target(instanceName: name)
    }

    func authorizedKeys(namespace: String) async throws -> [String] {
        try await store.sshKeys(namespace: namespace).map(\.publicKey)
    }

    func heldSSHPorts() async throws -> Set<Int> { Set(try await store.sshPortHolders().keys) }

    func workloads(cluster: String) -> (any WorkloadAccess)? { fleet.driver(for: cluster) }

    /// `ssh.login` in the instance's namespace: `401` when refused, so guessing shows.
    func signInAttempted(to target: AccessTarget, address: String, method: String, accepted: Bool) async {
        await audit.append(
            AuditEntry(
                id: AuditRecorder.newID(),
                time: audit.clock.now(),
                namespace: target.namespace,
                actor: "ssh:" + method,
                action: "ssh.login",
                target: target.name,
                status: accepted ? 200 : 401,
                requestId: "",
                remoteAddress: address
            )
        )
    }
}
