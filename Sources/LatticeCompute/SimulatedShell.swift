import Foundation

/// The small shell of the simulated fleet, so the SSH gateway can be tried without
/// containers: `echo` (with `$VAR`), `exit N`, `hostname`, `nvidia-smi` (the instance's
/// GPUs), `env`, `pwd`, `whoami`, `uname`, `stty size`, `true`, `false`; commands are
/// separated by `;`. Pure: each input is a `mutating` call that returns what to print and
/// whether the shell has ended; the driver does the I/O.
public struct SimulatedShell: Sendable {
    public struct Machine: Sendable, Equatable {
        public var hostname: String
        public var gpuModel: String
        public var gpuIndices: [Int]

        public init(hostname: String, gpuModel: String, gpuIndices: [Int]) {
            self.hostname = hostname
            self.gpuModel = gpuModel
            self.gpuIndices = gpuIndices
        }
    }

    /// What a step produced.
    public struct Step: Sendable, Equatable {
        public var output: String = ""
        /// Set when the shell has ended, with its exit status.
        public var exitStatus: Int32?
    }

    let machine: Machine
    var environment: [String: String]
    var terminal: TerminalSize?
    var line: [Character] = []
    var lastStatus: Int32 = 0

    public init(machine: Machine, environment: [String: String], terminal: TerminalSize?) {
        self.machine = machine
        self.environment = environment
        self.terminal = terminal
    }

    var newline: String { terminal == nil ? "\n" : "\r\n" }
    public var prompt: String { "root@\(machine.hostname):~# " }

    /// Runs one command line (`ssh host 'command'`) and ends.
    public mutating func run(commandLine: String) -> Step {
        var step = Step()
        let status = execute(commandLine, into: &step.output) ?? lastStatus
        step.exitStatus = status
        return step
    }

    /// The banner and first prompt of an interactive shell.
    public func greeting() -> Step {
        Step(output: "Lattice simulated shell on \(machine.hostname); try 'nvidia-smi' or 'exit'." + newline + prompt)
    }

    public mutating func resize(_ size: TerminalSize) {
        terminal = size
    }

    /// Typed input of an interactive shell. With a terminal the shell echoes what is typed
    /// and edits the line (backspace, Ctrl-C, Ctrl-D on an empty line).
    /// The longest line the shell keeps (Linux's `MAX_CANON`).
    static let longestLine = 4096

    public mutating func feed(_ data: Data) -> Step {
        var step = Step()
        for character in String(decoding: data, as: UTF8.self) {
            switch character {
            case "\r", "\n", "\r\n":
                if terminal != nil { step.output += "\r\n" }
                let text = String(line)
                line = []
                if let status = execute(text, into: &step.output) {
                    step.exitStatus = status
                    return step
                }
                step.output += prompt
            case "\u{7F}", "\u{08}":
                if !line.isEmpty {
                    line.removeLast()
                    if terminal != nil { step.output += "\u{08} \u{08}" }
                }
            case "\u{03}":
                line = []
                step.output += "^C" + newline + prompt
            case "\u{04}" where line.isEmpty:
                step.exitStatus = lastStatus
                return step
            default:
                // A terminal's line discipline keeps at most a line of MAX_CANON (4096): what
                // goes beyond is dropped, so endless input without a newline costs nothing.
                guard line.count < Self.longestLine else { continue }
                line.append(character)
                if terminal != nil { step.output.append(character) }
            }
        }
        return step
    }

    /// The end of input of an interactive shell without a terminal.
    public mutating func endOfInput() -> Step {
        var step = Step()
        if !line.isEmpty, let status = execute(String(line), into: &step.output) {
            step.exitStatus = status
            return step
        }
        step.exitStatus = lastStatus
        return step
    }

    /// Runs `text`; returns an exit status when the shell must end (`exit`).
    mutating func execute(_ text: String, into output: inout String) -> Int32? {
        for command in text.split(separator: ";") {
            let words = command.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { expand(unquote(String($0))) }
            guard let name = words.first else { continue }
            let arguments = Array(words.dropFirst())
            var status: Int32 = 0
            func say(_ text: String) { output += text.replacingOccurrences(of: "\n", with: newline) + newline }
            switch name {
            case "exit":
                return arguments.first.map { Int32(truncatingIfNeeded: Int($0) ?? 2) & 0xFF } ?? lastStatus
            case "echo": say(arguments.joined(separator: " "))
            case "hostname": say(machine.hostname)
            case "whoami": say("root")
            case "pwd": say("/root")
            case "uname": say(arguments.contains("-a") ? "Linux \(machine.hostname) lattice-simulated x86_64" : "Linux")
            case "true": break
            case "false": status = 1
            case "env":
                say(environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n"))
            case "stty" where arguments == ["size"]:
                if let terminal {
                    say("\(terminal.rows) \(terminal.columns)")
                } else {
                    say("stty: standard input: Not a tty")
                    status = 1
                }
            case "nvidia-smi": say(nvidiaSMI())
            default:
                say("sh: \(name): not found (the simulated shell knows echo, exit, hostname, nvidia-smi, env)")
                status = 127
            }
            lastStatus = status
        }
        return nil
    }

    func unquote(_ word: String) -> String {
        guard word.count >= 2, let first = word.first, first == word.last, first == "'" || first == "\"" else {
            return word
        }
        return String(word.dropFirst().dropLast())
    }

    func expand(_ word: String) -> String {
        guard word.hasPrefix("$") else { return word }
        let name = String(word.dropFirst())
        if name == "?" { return String(lastStatus) }
        return environment[name] ?? ""
    }

    func nvidiaSMI() -> String {
        guard !machine.gpuIndices.isEmpty else { return "No devices were found" }
        var lines = ["| GPU  Name                      | Memory-Usage        | GPU-Util |"]
        for index in machine.gpuIndices {
            let name = machine.gpuModel.padding(toLength: 25, withPad: " ", startingAt: 0)
            let number = String(index).padding(toLength: 4, withPad: " ", startingAt: 0)
            lines.append("| \(number) \(name) |     0MiB / 0MiB    |    0%    |")
        }
        return lines.joined(separator: "\n")
    }
}
