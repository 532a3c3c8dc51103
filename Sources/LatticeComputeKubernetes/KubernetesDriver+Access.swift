import Foundation
import LatticeCompute
import LatticeDomain
import Synchronization

/// Reaching a running pod: its address, logs, metrics and exec sessions.
extension KubernetesDriver {
    // MARK: - Access

    /// The running pod's IP and `port` (reachable from inside the cluster).
    public func endpoint(instanceName: String, port: Int) async throws -> WorkloadEndpoint? {
        try await synced()
        guard let pod = livePod(instanceName), pod.status?.phase == "Running", let ip = pod.status?.podIP, !ip.isEmpty
        else { return nil }
        return WorkloadEndpoint(host: ip, port: port)
    }

    /// `pods/log` of the instance's pod (its `main` container): the last `tail` lines, then
    /// followed (`follow=true`) until the pod ends or the task is cancelled.
    public func logs(
        instanceName: String,
        tail: Int,
        follow: Bool,
        output: @escaping @Sendable (Data) async -> Void
    ) async throws -> Bool {
        try await synced()
        guard let pod = livePod(instanceName) else { return false }
        let path = "/api/v1/namespaces/\(settings.namespace)/pods/\(pod.metadata.name)/log"
        let query = [("container", "main"), ("tailLines", String(tail))]
        guard follow else {
            let reply = try await api.call(.GET, path, query: query)
            await output(reply.body)
            return true
        }
        try await api.stream(path, query: query + [("follow", "true")], chunk: output)
        return true
    }

    /// CPU and memory from the pod's cgroup (two readings of `cpu.stat` a second apart) and
    /// its GPUs from `nvidia-smi`, through `pods/exec`; nil when the pod is not running.
    public func metrics(instanceName: String) async throws -> WorkloadMetrics? {
        try await synced()
        guard let pod = livePod(instanceName), pod.status?.phase == "Running" else { return nil }
        let (input, feed) = AsyncStream<ExecInput>.makeStream()
        feed.yield(.endOfInput)
        feed.finish()
        let printed = ExecText()
        _ = try await exec(instanceName: instanceName, ExecRequest(command: CgroupReading.command), input: input) {
            if case .stdout(let data) = $0 { printed.append(data) }
        }
        return CgroupReading(printed.text).metrics(at: Date())
    }

    /// Runs a command in the pod through `pods/exec` (WebSocket, `v5.channel.k8s.io`).
    public func exec(
        instanceName: String,
        _ request: ExecRequest,
        input: AsyncStream<ExecInput>,
        output: @escaping @Sendable (ExecOutput) async -> Void
    ) async throws -> Int32 {
        try await synced()
        guard let pod = livePod(instanceName), pod.status?.phase == "Running" else {
            throw DriverError("\(instanceName) has no running pod", kind: .notFound)
        }
        return try await KubeExec.run(
            api: api,
            namespace: settings.namespace,
            pod: pod.metadata.name,
            request,
            input: input,
            output: output
        )
    }
}
