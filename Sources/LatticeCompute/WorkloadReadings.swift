import Foundation
import LatticeDomain
import Synchronization

/// Text an exec prints, gathered across its output calls.
public final class ExecText: Sendable {
    private let data = Mutex(Data())

    public init() {}

    public func append(_ more: Data) { data.withLock { $0.append(more) } }
    public var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
    public var bytes: Data { data.withLock { $0 } }
}

/// A workload's figures read from inside it (cgroup v2 files and `nvidia-smi`), for drivers
/// whose backend reports none itself: `command` prints `key=value` lines, `init` reads them.
public struct CgroupReading: Sendable, Equatable {
    /// CPU time used (µs) at two moments a second apart.
    public var cpuMicroseconds: (first: Int64, second: Int64)?
    public var memoryUsed: Int64
    /// 0 where the cgroup sets none (`max`).
    public var memoryLimit: Int64
    public var gpus: [WorkloadMetrics.GPU]

    public static func == (a: Self, b: Self) -> Bool {
        a.cpuMicroseconds?.first == b.cpuMicroseconds?.first && a.cpuMicroseconds?.second == b.cpuMicroseconds?.second
            && a.memoryUsed == b.memoryUsed && a.memoryLimit == b.memoryLimit && a.gpus == b.gpus
    }

    public static let command = """
        cpu() { while read -r k v; do [ "$k" = usage_usec ] && echo "$v"; done </sys/fs/cgroup/cpu.stat; }
        a=$(cpu 2>/dev/null); sleep 1; b=$(cpu 2>/dev/null)
        echo "cpu=$a $b"
        echo "memory=$(cat /sys/fs/cgroup/memory.current 2>/dev/null) $(cat /sys/fs/cgroup/memory.max 2>/dev/null)"
        if command -v nvidia-smi >/dev/null 2>&1; then
            nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits |
                while read -r line; do echo "gpu=$line"; done
        fi
        """

    public init(_ printed: String) {
        cpuMicroseconds = nil
        memoryUsed = 0
        memoryLimit = 0
        var gpuLines: [String] = []
        for line in printed.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            let values = parts[1].split(separator: " ").map(String.init)
            switch parts[0] {
            case "cpu" where values.count == 2:
                if let first = Int64(values[0]), let second = Int64(values[1]) { cpuMicroseconds = (first, second) }
            case "memory":
                memoryUsed = values.first.flatMap { Int64($0) } ?? 0
                memoryLimit = values.count > 1 ? Int64(values[1]) ?? 0 : 0
            case "gpu":
                gpuLines.append(parts[1])
            default:
                break
            }
        }
        gpus = WorkloadMetrics.parseGPUs(gpuLines.joined(separator: "\n"))
    }

    public func metrics(at now: Date) -> WorkloadMetrics {
        let cpu = cpuMicroseconds.map { Double(max(0, $0.second - $0.first)) / 10_000 } ?? 0
        return WorkloadMetrics(
            at: now,
            cpuPercent: (cpu * 10).rounded() / 10,
            memoryUsedBytes: memoryUsed,
            memoryLimitBytes: memoryLimit,
            gpus: gpus
        )
    }
}
