import Foundation

/// Finds the host's NVIDIA GPUs with `nvidia-smi`, where it exists; the catalog's count is
/// used otherwise (and on hosts without GPUs, such as CI).
public enum GPUDiscovery {
    /// The GPU indices `nvidia-smi --query-gpu=index --format=csv,noheader` lists, or nil
    /// when `nvidia-smi` is not installed or fails.
    public static func nvidiaGPUCount() -> Int? {
        guard let path = which("nvidia-smi") else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--query-gpu=index", "--format=csv,noheader"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return parseIndexList(String(decoding: data, as: UTF8.self))
    }

    /// Counts the indices of `nvidia-smi`'s CSV output (one per line).
    public static func parseIndexList(_ output: String) -> Int? {
        let indices = output.split(whereSeparator: \.isNewline).compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        return indices.isEmpty ? nil : indices.count
    }

    static func which(_ program: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
