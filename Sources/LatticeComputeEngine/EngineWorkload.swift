import Foundation
import LatticeCompute
import LatticeDomain

/// What makes a container a place to work in (SPEC §11): the image's own command kept
/// alive, JupyterLab, Tensorboard and the startup script started after every start, the
/// container's log and its figures.
extension EngineHost {
    /// One start's launcher: what it reported so far and the rest of a line not yet ended.
    struct LaunchState {
        var report = WorkloadLauncher.Report()
        var partial = ""
        /// Which start this is, so an older launcher's late lines are not taken for this one's.
        var start: Int
    }

    /// The image's entrypoint and command, which the container runs under the keep-alive
    /// init; nil when the image cannot be inspected (then the container runs it as is).
    func imageCommand(_ image: String) async throws -> [String]? {
        let answer = try await engine.call("GET", "/images/\(image)/json")
        guard answer.status == 200, let inspect = try? answer.json(ImageInspect.self) else { return nil }
        var entrypoint = inspect.Config?.Entrypoint ?? []
        // A snapshot of a Lattice container keeps its keep-alive init: not wrapped twice.
        if entrypoint.count == 4, entrypoint[0] == "/bin/sh", entrypoint[3] == "lattice-init" { entrypoint = [] }
        return entrypoint + (inspect.Config?.Cmd ?? [])
    }

    /// The container's secret environment variables, from its label (containers made
    /// before the label: Lattice's own two).
    func secretNames(container: String) async throws -> [String] {
        let answer = try await engine.call("GET", "/containers/\(container)/json")
        guard answer.status == 200, let inspect = try? answer.json(ContainerInspect.self),
            let label = inspect.Config.Labels["lattice.secret-env"]
        else { return WorkloadSpec.secretEnvironmentKeys }
        return label.split(separator: ",").map(String.init)
    }

    /// Runs `WorkloadLauncher.launcher` in the just-started container, in the background:
    /// what it reports becomes the instance's apps and, for a failed startup script, its
    /// `statusReason` (through the driver's change stream).
    func launch(_ spec: WorkloadSpec) {
        let instance = spec.instanceName
        let start = state.withLock { state in
            let start = (state.launches[instance]?.start ?? 0) + 1
            state.launches[instance] = LaunchState(start: start)
            return start
        }
        changeSink.yield(instance)
        let request = ExecRequest(
            command: WorkloadLauncher.launcher,
            environment: [
                WorkloadLauncher.scriptVariable: spec.startupScript, WorkloadLauncher.dataVariable: spec.volumePath,
            ]
        )
        // A child of `run()`: the launcher lives as long as the workload, or the driver.
        jobSink.yield {
            let (input, feed) = AsyncStream<ExecInput>.makeStream()
            feed.yield(.endOfInput)
            feed.finish()
            _ = try? await self.exec(instanceName: instance, request, input: input) { output in
                guard case .stdout(let data) = output else { return }
                let changed = self.state.withLock { state -> Bool in
                    guard var launch = state.launches[instance], launch.start == start else { return false }
                    var changed = false
                    launch.partial += String(decoding: data, as: UTF8.self)
                    while let newline = launch.partial.firstIndex(of: "\n") {
                        if launch.report.read(launch.partial[..<newline]) { changed = true }
                        launch.partial.removeSubrange(...newline)
                    }
                    state.launches[instance] = launch
                    return changed
                }
                if changed { self.changeSink.yield(instance) }
            }
        }
    }

    /// `GET /containers/{id}/logs`, both streams, the last `tail` lines, then followed.
    func logs(
        instanceName: String,
        tail: Int,
        follow: Bool,
        output: @escaping @Sendable (Data) async -> Void
    )
        async throws -> Bool
    {
        guard let (container, _) = try await containers(of: instanceName).first else { return false }
        let query = [
            "stdout": "true", "stderr": "true", "tail": String(tail), "follow": follow ? "true" : "false",
        ]
        let frames = EngineStream(engine: engine)
        guard follow else {
            let answer = try await engine.call("GET", "/containers/\(container)/logs", query: query)
            try answer.expect(200, "logs of \(container)")
            let parts = EngineStream.frames(answer.body)
            // Without framing (a container with a terminal), the body is the log itself.
            await output(parts.isEmpty ? answer.body : parts.reduce(Data(), +))
            return true
        }
        try await engine.stream("/containers/\(container)/logs", query: query) { chunk in
            for frame in frames.demultiplex(chunk) {
                switch frame {
                case .stdout(let data), .stderr(let data): await output(data)
                }
            }
        }
        return true
    }

    /// `GET /containers/{id}/stats?stream=false` for CPU and memory, and `nvidia-smi` in
    /// the container for its GPUs (none where the image has no `nvidia-smi`).
    func metrics(instanceName: String, now: Date) async throws -> WorkloadMetrics? {
        guard let (container, _) = try await containers(of: instanceName).first else { return nil }
        let answer = try await engine.call("GET", "/containers/\(container)/stats", query: ["stream": "false"])
        guard answer.status == 200, let stats = try? answer.json(ContainerStats.self) else { return nil }
        guard stats.memory_stats?.usage != nil || stats.cpu_stats?.cpu_usage?.total_usage != nil else { return nil }
        let (input, feed) = AsyncStream<ExecInput>.makeStream()
        feed.yield(.endOfInput)
        feed.finish()
        let printed = ExecText()
        let query = ExecRequest(
            command: "command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi "
                + "--query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits"
        )
        _ = try? await exec(instanceName: instanceName, query, input: input) { output in
            if case .stdout(let data) = output { printed.append(data) }
        }
        return WorkloadMetrics(
            at: now,
            cpuPercent: stats.cpuPercent,
            memoryUsedBytes: stats.memory_stats?.usage ?? 0,
            memoryLimitBytes: stats.memory_stats?.limit ?? 0,
            gpus: WorkloadMetrics.parseGPUs(printed.text)
        )
    }
}

/// The parts of `GET /containers/{id}/stats` Lattice reads (Docker's and Podman's alike).
struct ContainerStats: Decodable {
    struct CPUUsage: Decodable { var total_usage: Int64? }
    struct CPU: Decodable {
        var cpu_usage: CPUUsage?
        var system_cpu_usage: Int64?
        var online_cpus: Int?
    }
    struct Memory: Decodable {
        var usage: Int64?
        var limit: Int64?
    }
    var cpu_stats: CPU?
    var precpu_stats: CPU?
    var memory_stats: Memory?

    /// Percent of one core over the engine's two samples (0 when it gave only one).
    var cpuPercent: Double {
        let used = Double((cpu_stats?.cpu_usage?.total_usage ?? 0) - (precpu_stats?.cpu_usage?.total_usage ?? 0))
        let system = Double((cpu_stats?.system_cpu_usage ?? 0) - (precpu_stats?.system_cpu_usage ?? 0))
        guard used > 0, system > 0, precpu_stats?.system_cpu_usage ?? 0 > 0 else { return 0 }
        let cores = Double(cpu_stats?.online_cpus ?? 1)
        return (used / system * cores * 100 * 10).rounded() / 10
    }
}
