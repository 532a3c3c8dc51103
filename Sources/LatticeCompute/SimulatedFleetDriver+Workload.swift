import Foundation
import LatticeDomain

/// What the simulated fleet's workloads print and use (SPEC §11): a log with the start and
/// the startup script's output (run by `SimulatedShell`), JupyterLab and Tensorboard as
/// the seed's images have them, and plausible, repeatable figures.
extension SimulatedFleetDriver {
    /// The most log lines kept per workload.
    static let logLines = 1000
    /// The seed's images carry JupyterLab and Tensorboard: Lattice has them running.
    static let apps = WorkloadApps(jupyterlab: .running, tensorboard: .running)

    /// A start's log lines, and the startup script run in the simulated shell.
    func boot(_ spec: WorkloadSpec, at now: Date) {
        let time = TimeFormatter().format(now)
        appendLog(spec.instanceName, ["\(time) lattice: starting \(spec.image) on \(spec.node)"])
        startupNotes[spec.instanceName] = nil
        guard !spec.startupScript.isEmpty else { return }
        appendLog(spec.instanceName, ["\(time) lattice: running the startup script"])
        var shell = SimulatedShell(
            machine: SimulatedShell.Machine(
                hostname: spec.instanceName,
                gpuModel: nodeIndex[spec.node].map { nodeList[$0].gpuModel } ?? "",
                gpuIndices: spec.gpuIndices
            ),
            environment: spec.environment.merging(["HOME": "/root", "USER": "root"]) { own, _ in own },
            terminal: nil
        )
        var status: Int32 = 0
        var printed: [String] = []
        // One command line per script line; `exit N` ends the script.
        for line in spec.startupScript.split(whereSeparator: \.isNewline) {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty || text.hasPrefix("#") { continue }
            let step = shell.run(commandLine: text)
            printed += step.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if printed.last == "" { printed.removeLast() }
            status = step.exitStatus ?? 0
            if text == "exit" || text.hasPrefix("exit ") { break }
        }
        appendLog(spec.instanceName, printed + ["\(time) lattice: the startup script exited with status \(status)"])
        if status != 0 {
            startupNotes[spec.instanceName] = WorkloadLauncher.Report.failureNote(status: status)
        }
    }

    func appendLog(_ instance: String, _ lines: [String]) {
        var kept = logs[instance] ?? []
        kept.append(contentsOf: lines)
        if kept.count > Self.logLines { kept.removeFirst(kept.count - Self.logLines) }
        logs[instance] = kept
    }

    public func logs(
        instanceName: String,
        tail: Int,
        follow: Bool,
        output: @escaping @Sendable (Data) async -> Void
    ) async throws -> Bool {
        guard state.workloads[instanceName] != nil else { return false }
        var seen = logs[instanceName]?.count ?? 0
        let lines = (logs[instanceName] ?? []).suffix(max(0, tail))
        if !lines.isEmpty { await output(Data((lines.joined(separator: "\n") + "\n").utf8)) }
        while follow, !Task.isCancelled, state.workloads[instanceName] != nil {
            try? await Task.sleep(for: .milliseconds(250))
            let now = logs[instanceName] ?? []
            // Trimmed past the lines seen: start again from what is kept.
            if now.count < seen { seen = 0 }
            if now.count > seen {
                await output(Data((now[seen...].joined(separator: "\n") + "\n").utf8))
                seen = now.count
            }
        }
        return true
    }

    /// Figures that move with the clock (a new value every 10 s) but are the same for
    /// the same instance and moment, so tests can rely on their ranges.
    public func metrics(instanceName: String) async throws -> WorkloadMetrics? {
        guard let workload = state.workloads[instanceName] else { return nil }
        let now = clock.now()
        guard observation(of: workload, now: now).phase == .running else { return nil }
        let slot = Int(now.timeIntervalSince1970 / 10)
        func figure(_ salt: Int, _ range: ClosedRange<Double>) -> Double {
            var hash: UInt64 = 1_469_598_103_934_665_603
            for byte in "\(instanceName)/\(slot)/\(salt)".utf8 {
                hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211
            }
            let unit = Double(hash % 10_000) / 10_000
            return ((range.lowerBound + unit * (range.upperBound - range.lowerBound)) * 10).rounded() / 10
        }
        let limit = Int64(workload.spec.memoryGiB) * 1_073_741_824
        let model = nodeIndex[workload.spec.node].map { nodeList[$0].gpuModel } ?? ""
        let total = Self.memoryMiB(gpuModel: model)
        return WorkloadMetrics(
            at: now,
            cpuPercent: figure(0, 2...(Double(workload.spec.cpuCores) * 60)),
            memoryUsedBytes: Int64(Double(limit) * figure(1, 0.05...0.6)),
            memoryLimitBytes: limit,
            gpus: workload.spec.gpuIndices.enumerated().map { offset, index in
                WorkloadMetrics.GPU(
                    index: index,
                    utilization: figure(10 + offset, 0...95),
                    memoryUsedMiB: Int(Double(total) * figure(20 + offset, 0.02...0.8)),
                    memoryTotalMiB: total
                )
            }
        )
    }

    /// A GPU model's memory, as `nvidia-smi` reports it, by the number in its name (80 GB
    /// for an A100-80G); 24 GiB when the name says none.
    static func memoryMiB(gpuModel: String) -> Int {
        let digits = gpuModel.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        guard let gigabytes = digits.last(where: { (8...192).contains($0) }) else { return 24_576 }
        return gigabytes * 1024
    }
}
