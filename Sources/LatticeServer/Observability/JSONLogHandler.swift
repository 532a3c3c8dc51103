import Foundation
import Logging
import Synchronization

/// One JSON object per line on standard error (`lattice serve --log-format json`, the
/// default): `time`, `level`, `label`, `message`, then the metadata as strings. Journald,
/// Loki and `jq` read it as it is.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let write: @Sendable (String) -> Void

    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("time", Self.timestamp(Date())),
            ("level", event.level.rawValue),
            ("label", label),
            ("message", event.message.description),
        ]
        let merged = metadata.isEmpty ? event.metadata ?? [:] : metadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) where !Self.reserved.contains(key) {
            fields.append((key, value.description))
        }
        write(Self.line(fields))
    }

    /// `2026-12-03T13:42:37.821Z` (UTC, milliseconds), written digit by digit: Foundation's
    /// date formatting costs more than the rest of a request line.
    static func timestamp(_ date: Date) -> String {
        let since = date.timeIntervalSince1970
        var seconds = time_t(since.rounded(.down))
        let millis = min(999, max(0, Int((since - Double(seconds)) * 1000)))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var out = ""
        out.reserveCapacity(24)
        func digits(_ value: Int, _ width: Int) {
            let text = String(value)
            if text.count < width { out += String(repeating: "0", count: width - text.count) }
            out += text
        }
        digits(Int(parts.tm_year) + 1900, 4)
        out += "-"
        digits(Int(parts.tm_mon) + 1, 2)
        out += "-"
        digits(Int(parts.tm_mday), 2)
        out += "T"
        digits(Int(parts.tm_hour), 2)
        out += ":"
        digits(Int(parts.tm_min), 2)
        out += ":"
        digits(Int(parts.tm_sec), 2)
        out += "."
        digits(millis, 3)
        out += "Z"
        return out
    }

    static let reserved: Set<String> = ["time", "level", "label", "message"]

    /// `{"k":"v",...}` with JSON's string escapes, in the order given.
    static func line(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(quoted($0.0)):\(quoted($0.1))" }.joined(separator: ",") + "}"
    }

    static func quoted(_ text: String) -> String {
        // Most values need no escape: copied as they are.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + text + "\""
        }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Hands the line to `LogLines`, which writes whole lines, never interleaved.
    public static let standardError: @Sendable (String) -> Void = { line in LogLines.standardError.append(line) }
}

/// Log lines on their way to a file descriptor: a caller appends and goes on; a thread
/// of its own writes what gathered every 50 ms (sooner once 512 lines wait), whole lines
/// in order, so a busy server makes one `write` for many requests and no request waits
/// for one. `flush()` writes what is pending before the process ends.
public final class LogLines: Sendable {
    public static let standardError = LogLines(descriptor: FileHandle.standardError)

    static let interval = 0.05
    static let batch = 512

    private let descriptor: FileHandle
    private let pending = Mutex<(lines: [String], started: Bool)>(([], false))
    /// One writer at a time, so batches never interleave.
    private let writing = Mutex<Void>(())

    init(descriptor: FileHandle) { self.descriptor = descriptor }

    func append(_ line: String) {
        let (start, full) = pending.withLock { state -> (Bool, Bool) in
            state.lines.append(line)
            let start = !state.started
            state.started = true
            return (start, state.lines.count >= Self.batch)
        }
        if start {
            let thread = Thread { [self] in
                while true {
                    Thread.sleep(forTimeInterval: Self.interval)
                    flush()
                }
            }
            thread.name = "lattice.log-lines"
            thread.start()
        }
        if full { flush() }
    }

    /// Writes every line appended so far, before returning.
    public func flush() {
        writing.withLock { _ in
            let lines = pending.withLock { state -> [String] in
                defer { state.lines.removeAll(keepingCapacity: true) }
                return state.lines
            }
            guard !lines.isEmpty else { return }
            var text = lines.joined(separator: "\n")
            text.append("\n")
            descriptor.write(Data(text.utf8))
        }
    }
}
