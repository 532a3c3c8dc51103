import ArgumentParser
import Foundation

/// `-o table|json`.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

/// The output option every listing takes.
struct OutputOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .long], help: "Output format: table or json.") var output: OutputFormat = .table
}

/// Terminal facts and writing.
enum Terminal {
    static var stdoutIsTTY: Bool { isatty(STDOUT_FILENO) == 1 }
    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) == 1 }
    /// Colour only on a terminal, and never under `NO_COLOR` (no-color.org).
    static var colorEnabled: Bool {
        stdoutIsTTY && ProcessInfo.processInfo.environment["NO_COLOR"].map(\.isEmpty) ?? true
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func progress(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    static func paint(_ text: String, _ code: String) -> String {
        colorEnabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    /// Colours an instance status the way people scan for it.
    static func status(_ status: String) -> String {
        switch status {
        case "Running": paint(status, "32")
        case "Failed": paint(status, "31")
        case "Stopped": paint(status, "90")
        case "Creating", "Starting", "Stopping", "Saving", "Deleting": paint(status, "33")
        default: status
        }
    }

    /// Prints any encodable value as stable, pretty, key-sorted JSON.
    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// Prints an aligned table; widths ignore colour codes.
    static func printTable(_ headers: [String], _ rows: [[String]]) {
        var widths = headers.map(visibleWidth)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], visibleWidth(cell)) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - visibleWidth(cell))
            }.joined(separator: "  ")
        }
        print(paint(line(headers), "1"))
        for row in rows { print(line(row)) }
    }

    static func visibleWidth(_ text: String) -> Int {
        var width = 0, inEscape = false
        for scalar in text.unicodeScalars {
            if scalar == "\u{1B}" { inEscape = true; continue }
            if inEscape { if scalar == "m" { inEscape = false }; continue }
            // East Asian wide characters take two columns.
            width +=
                (0x1100...0x115F).contains(scalar.value) || (0x2E80...0xA4CF).contains(scalar.value)
                    || (0xAC00...0xD7A3).contains(scalar.value) || (0xF900...0xFAFF).contains(scalar.value)
                    || (0xFF00...0xFF60).contains(scalar.value) || (0x1F300...0x1FAFF).contains(scalar.value) ? 2 : 1
        }
        return width
    }
}
