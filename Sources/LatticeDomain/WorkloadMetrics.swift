import Foundation

/// What an instance's workload uses now (`GET .../instances/{name}/metrics`, SPEC §11).
public struct WorkloadMetrics: Sendable, Codable, Equatable {
    /// One GPU's figures.
    public struct GPU: Sendable, Codable, Equatable {
        /// The GPU's index on its node.
        public var index: Int
        /// Percent, 0-100.
        public var utilization: Double
        /// Its memory in use, in MiB.
        public var memoryUsedMiB: Int
        /// Its memory, in MiB.
        public var memoryTotalMiB: Int

        /// One GPU's figures as read.
        public init(index: Int, utilization: Double, memoryUsedMiB: Int, memoryTotalMiB: Int) {
            self.index = index
            self.utilization = utilization
            self.memoryUsedMiB = memoryUsedMiB
            self.memoryTotalMiB = memoryTotalMiB
        }
    }

    /// When they were read.
    public var at: Date
    /// Percent of one core (200 is two cores busy).
    public var cpuPercent: Double
    /// The workload's memory in use, in bytes.
    public var memoryUsedBytes: Int64
    /// The memory it may use, in bytes.
    public var memoryLimitBytes: Int64
    /// Its GPUs' figures (none when the node cannot tell).
    public var gpus: [GPU]

    /// Figures read at `at`.
    public init(at: Date, cpuPercent: Double, memoryUsedBytes: Int64, memoryLimitBytes: Int64, gpus: [GPU]) {
        self.at = at
        self.cpuPercent = cpuPercent
        self.memoryUsedBytes = memoryUsedBytes
        self.memoryLimitBytes = memoryLimitBytes
        self.gpus = gpus
    }

    /// The GPUs of `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total
    /// --format=csv,noheader,nounits`; lines it cannot read are left out.
    public static func parseGPUs(_ text: String) -> [GPU] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count >= 4, let index = Int(fields[0]), let utilization = Double(fields[1]),
                let used = Int(fields[2]), let total = Int(fields[3])
            else { return nil }
            return GPU(index: index, utilization: utilization, memoryUsedMiB: used, memoryTotalMiB: total)
        }
    }
}

/// `GET .../instances/{name}/metrics`, as SPEC §11 spells it.
public struct MetricsWire: Codable, Sendable, Equatable {
    /// One GPU as shown.
    public struct GPU: Codable, Sendable, Equatable {
        /// The GPU's index on its node.
        public var index: Int
        /// Percent, 0-100.
        public var utilization: Double
        /// Its memory in use, in MiB.
        public var memoryUsedMiB: Int
        /// Its memory, in MiB.
        public var memoryTotalMiB: Int
    }
    /// When they were read (RFC 3339).
    public var at: String
    /// Percent of one core (200 is two cores busy).
    public var cpuPercent: Double
    /// Memory in use, in bytes.
    public var memoryUsedBytes: Int64
    /// The memory it may use, in bytes.
    public var memoryLimitBytes: Int64
    /// Its GPUs.
    public var gpus: [GPU]

    /// The figures as shown, the time in `time`'s format.
    public init(_ metrics: WorkloadMetrics, time: TimeFormatter) {
        at = time.format(metrics.at)
        cpuPercent = metrics.cpuPercent
        memoryUsedBytes = metrics.memoryUsedBytes
        memoryLimitBytes = metrics.memoryLimitBytes
        gpus = metrics.gpus.map {
            GPU(
                index: $0.index,
                utilization: $0.utilization,
                memoryUsedMiB: $0.memoryUsedMiB,
                memoryTotalMiB: $0.memoryTotalMiB
            )
        }
    }
}
