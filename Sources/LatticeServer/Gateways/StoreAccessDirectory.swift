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
    /// This replica's record of use, for idle clocks (SPEC §12).
    let activity: InstanceActivity
    /// Powers an instance on as its owner would (`LatticeAPI.powerOn`), for wake on connect.
    let powerOn: @Sendable (_ namespace: String, _ cluster: String, _ name: String) async throws -> Void

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
            ),
            tracksIdle: instance.idleStop != nil,
            wakeOnConnect: instance.wakeOnConnect == true
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

    func used(_ target: AccessTarget, _ use: GatewayUse) {
        guard target.tracksIdle else { return }
        activity.record(use, instance: target.name, namespace: target.namespace)
    }

    /// Wake on connect (SPEC §12): a Stopped instance is powered on as its owner would do it
    /// (every check of power_on holds: capacity, budget, wallet), audited as the gateway's
    /// `instance.power_on`; one already on its way up is waited for.
    func wake(_ target: AccessTarget) async -> WakeAnswer {
        guard target.status == "Stopped" else { return .starting }
        var status = 200
        var answer = WakeAnswer.starting
        do {
            try await powerOn(target.namespace, target.cluster, target.name)
        } catch let error as LatticeError {
            status = error.kind.status
            answer = .refused(
                error.code == "InsufficientCapacity"
                    ? "no free GPUs for it now, so it stays Stopped (\(error.message))"
                    : "\(error.code): \(error.message)"
            )
        } catch {
            status = 503
            answer = .refused("it cannot be powered on now (\(error))")
        }
        await audit.append(
            AuditEntry(
                id: AuditRecorder.newID(),
                time: audit.clock.now(),
                namespace: target.namespace,
                actor: "gateway:wake",
                action: "instance.power_on",
                target: target.name,
                status: status,
                requestId: "",
                remoteAddress: ""
            )
        )
        return answer
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
