import ArgumentParser
import Foundation
import LatticeClient
import LatticeDomain

// What runs in an instance (SPEC §11): its log, its figures and templates.

extension Instances {
    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an instance's log (what its workload and startup script printed)."
        )
        @Argument(help: "Instance name (instance-xxxxxxxx).") var name: String
        @Flag(name: .shortAndLong, help: "Keep printing what the workload prints, until interrupted.") var follow =
            false
        @Option(help: "How many of the last lines to print first.") var tail = 100
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let client = try client.client()
            guard follow else {
                return FileHandle.standardOutput.write(
                    Data(try await client.logs(cluster: cluster.name, name: name, tail: tail).utf8)
                )
            }
            for try await part in client.followLogs(cluster: cluster.name, name: name, tail: tail) {
                FileHandle.standardOutput.write(Data(part.utf8))
            }
        }
    }

    struct ScheduleStop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "schedule-stop",
            abstract: "Power off (or delete) a pay-as-you-go instance at a time, or clear that."
        )
        @Argument(help: "Instance name (instance-xxxxxxxx).") var name: String
        @Option(help: "When: an RFC 3339 time, or +30m, +2h, +1d from now.") var at: String?
        @Flag(help: "Delete the instance then, instead of powering it off.") var delete = false
        @Flag(help: "Clear the schedule.") var clear = false
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            guard clear != (at != nil) else { throw UsageError("give --at TIME or --clear") }
            let when = try at.map(Self.time)
            let updated = try await client.client().scheduleStop(
                cluster: cluster.name,
                name: name,
                at: when,
                delete: delete
            )
            if output.output == .json { return try Terminal.printJSON(updated) }
            print("\(updated.name): \(updated.scheduleStopAction ?? "") at \(updated.ScheduleStopTimestamp)")
        }

        static func time(_ text: String) throws -> Date {
            if text.hasPrefix("+"), let unit = text.last, let count = Double(text.dropFirst().dropLast()),
                let seconds = ["m": 60.0, "h": 3600.0, "d": 86400.0][unit]
            {
                return Date().addingTimeInterval(count * seconds)
            }
            guard let date = RFC3339.parse(text) else {
                throw UsageError("--at takes an RFC 3339 time or +30m, +2h, +1d; got '\(text)'")
            }
            return date
        }
    }

    struct IdleStop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "idle-stop",
            abstract: "Power a pay-as-you-go instance off once nobody used it for a while (disk kept), or clear that."
        )
        @Argument(help: "Instance name (instance-xxxxxxxx).") var name: String
        @Option(help: "Minutes without a session, a gateway request (or GPU use) before it stops.") var after: Int?
        @Option(help: "GPU utilisation (percent) below which the GPUs count as idle.") var gpuBelow: Int?
        @Flag(inversion: .prefixedNo, help: "Power the instance on when someone connects through a gateway.")
        var wakeOnConnect: Bool?
        @Flag(help: "Clear the idle policy.") var clear = false
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            guard !(clear && after != nil) else { throw UsageError("give --after MINUTES or --clear, not both") }
            guard clear || after != nil || wakeOnConnect != nil else {
                throw UsageError("give --after MINUTES, --clear or --[no-]wake-on-connect")
            }
            guard gpuBelow == nil || after != nil else { throw UsageError("--gpu-below goes with --after") }
            // Only --[no-]wake-on-connect: the policy and its clock stay as they are.
            var change: IdleStopPolicy?? = nil
            if let after { change = .some(IdleStopPolicy(afterMinutes: after, gpuUtilizationBelow: gpuBelow)) }
            if clear { change = .some(nil) }
            let updated = try await client.client().idleStop(
                cluster: cluster.name,
                name: name,
                policy: change,
                wakeOnConnect: wakeOnConnect
            )
            if output.output == .json { return try Terminal.printJSON(updated) }
            let policy =
                updated.idleStop.map { "after \($0.afterMinutes) min idle, stops at \(updated.idle?.stopsAt ?? "")" }
                ?? "no idle stop"
            print("\(updated.name): \(policy); wake on connect \(updated.wakeOnConnect == true ? "on" : "off")")
        }
    }

    struct Top: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what your running instances use: CPU, memory and each GPU."
        )
        @Argument(help: "Instance names (default: every Running instance in the cluster).") var names: [String] = []
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let client = try client.client()
            var names = self.names
            if names.isEmpty {
                names = try await client.allInstances(cluster: cluster.name).filter { $0.status == "Running" }.map(
                    \.name
                )
            }
            var figures: [(String, MetricsWire)] = []
            for name in names {
                figures.append((name, try await client.metrics(cluster: cluster.name, name: name)))
            }
            if output.output == .json {
                return try Terminal.printJSON(figures.map { Named(name: $0.0, metrics: $0.1) })
            }
            Terminal.printTable(
                ["NAME", "CPU %", "MEMORY", "GPU UTIL %", "GPU MEMORY"],
                figures.map { name, m in
                    [
                        name, String(format: "%.1f", m.cpuPercent),
                        "\(Self.gib(m.memoryUsedBytes)) / \(Self.gib(m.memoryLimitBytes))",
                        m.gpus.isEmpty
                            ? "-" : m.gpus.map { String(format: "%.0f", $0.utilization) }.joined(separator: " "),
                        m.gpus.isEmpty
                            ? "-" : m.gpus.map { "\($0.memoryUsedMiB)/\($0.memoryTotalMiB)Mi" }.joined(separator: " "),
                    ]
                }
            )
        }

        struct Named: Encodable {
            var name: String
            var metrics: MetricsWire
        }

        static func gib(_ bytes: Int64) -> String { String(format: "%.1fGi", Double(bytes) / 1_073_741_824) }
    }
}

/// `--env NAME=value` and `--port 8000[:name][:public]`, as the create command takes them.
enum WorkloadArguments {
    static func variables(_ pairs: [String], flag: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for pair in pairs {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw UsageError("\(flag) takes NAME=value, got '\(pair)'")
            }
            result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        return result
    }

    static func ports(_ specs: [String]) throws -> [PortOption] {
        try specs.map { spec in
            let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard let port = Int(parts[0]), parts.count <= 3, parts.count < 3 || parts[2] == "public" else {
                throw UsageError("--port takes PORT[:NAME][:public], such as 8000:api or 7860:ui:public; got '\(spec)'")
            }
            return PortOption(port: port, name: parts.count > 1 ? parts[1] : "", public: parts.count == 3)
        }
    }

    /// A startup script's text: from a file, or standard input for `-`.
    static func script(_ path: String?) throws -> String {
        guard let path else { return "" }
        if path == "-" { return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
        guard let data = FileManager.default.contents(atPath: path) else { throw UsageError("cannot read \(path)") }
        return String(decoding: data, as: UTF8.self)
    }
}

struct Templates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Instance templates: the official ones, public ones and your own.",
        subcommands: [List.self, Create.self, Delete.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the templates you can create from.")
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let all = try await client.client().templates().nodes
            if output.output == .json { return try Terminal.printJSON(all) }
            Terminal.printTable(
                ["ID", "NAME", "IMAGE", "PORTS", "KIND"],
                all.map {
                    [
                        $0.id, $0.name, $0.image, $0.ports.map { String($0.port) }.joined(separator: ","),
                        $0.official ? "official" : $0.public ? "public" : "yours",
                    ]
                }
            )
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Keep a template of your own (admins: --public).")
        @Option(help: "Its name.") var name: String
        @Option(help: "Image reference (see 'lattice images').") var image: String
        @Option(help: "Environment variable NAME=value (repeat).") var env: [String] = []
        @Option(help: "HTTP port PORT[:NAME][:public] (repeat).") var port: [String] = []
        @Option(help: "A file with the startup script ('-': standard input).") var startupScript: String?
        @Option(help: "Data disk size in GB.") var diskSize: Int?
        @Option(help: "What it is for.") var description = ""
        @Flag(help: "Seen by every namespace (admins only).") var `public` = false
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let made = try await client.client().createTemplate(
                TemplateOptions(
                    name: name,
                    image: image,
                    env: try WorkloadArguments.variables(env, flag: "--env"),
                    ports: try WorkloadArguments.ports(port),
                    startupScript: try WorkloadArguments.script(startupScript),
                    diskSizeGB: diskSize,
                    description: description,
                    public: `public`
                )
            )
            if output.output == .json { return try Terminal.printJSON(made) }
            print(made.id)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete one of your templates.")
        @Argument(help: "Template id.") var id: String
        @OptionGroup var client: ClientOptions

        func run() async throws { try await client.client().deleteTemplate(id: id) }
    }
}

struct BudgetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget",
        abstract: "Your monthly budget: the limit, the month's spend and its forecast; or set it.",
        subcommands: [Show.self, Set.self],
        defaultSubcommand: Show.self
    )

    static func print(_ budget: BudgetWire) {
        Terminal.printTable(
            ["FIELD", "VALUE"],
            [
                ["namespace", budget.namespace], ["monthly limit", "\(budget.monthlyLimit) \(budget.currency)"],
                ["spent this month", budget.spentThisMonth], ["forecast", budget.forecast],
                ["alerts at", budget.alertAt.map { "\($0) %" }.joined(separator: ", ")], ["at 100 %", budget.action],
            ]
        )
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the budget.")
        @Option(help: "Another namespace's (admins).") var of: String?
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let budget = try await client.client().budget(namespace: of)
            if output.output == .json { return try Terminal.printJSON(budget) }
            BudgetCommand.print(budget)
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set the budget.")
        @Option(help: "The monthly limit, such as 500.") var limit: String
        @Option(help: "Percentages to be told at, such as 50,80,100.") var alertAt = "50,80,100"
        @Option(help: "At 100 %: notify, block (creates and power_on refused) or stop (and power off).")
        var action = "notify"
        @Option(help: "Another namespace's (admins).") var of: String?
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let percents = try alertAt.split(separator: ",").map { text -> Int in
                guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                    throw UsageError("--alert-at takes percentages such as 50,80,100")
                }
                return value
            }
            let budget = try await client.client().setBudget(
                monthlyLimit: limit,
                alertAt: percents,
                action: action,
                namespace: of
            )
            if output.output == .json { return try Terminal.printJSON(budget) }
            BudgetCommand.print(budget)
        }
    }
}

/// `lattice idle-default`: the namespace's default idle stop for pay-as-you-go creates.
struct IdleDefaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle-default",
        abstract: "Your namespace's default idle stop, which pay-as-you-go creates get unless they say otherwise.",
        subcommands: [Show.self, Set.self, Clear.self],
        defaultSubcommand: Show.self
    )

    static func print(_ idle: IdleDefaultWire) {
        Terminal.printTable(
            ["FIELD", "VALUE"],
            [
                ["namespace", idle.namespace], ["after", "\(idle.afterMinutes) minutes"],
                ["gpu below", idle.gpuUtilizationBelow.map { "\($0) %" } ?? "-"],
                ["wake on connect", idle.wakeOnConnect ? "yes" : "no"], ["updated", idle.updatedAt],
            ]
        )
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the default.")
        @Option(help: "Another namespace's (admins).") var of: String?
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let idle = try await client.client().idleDefault(namespace: of)
            if output.output == .json { return try Terminal.printJSON(idle) }
            IdleDefaultCommand.print(idle)
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set the default.")
        @Option(help: "Minutes without use before an instance is powered off (1 to 10080).") var after: Int
        @Option(help: "Count GPUs busy at or above this utilisation (percent) as use.") var gpuBelow: Int?
        @Flag(help: "Power a Stopped instance on when someone connects through the gateway.")
        var wakeOnConnect = false
        @Option(help: "Another namespace's (admins).") var of: String?
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let idle = try await client.client().setIdleDefault(
                afterMinutes: after,
                gpuUtilizationBelow: gpuBelow,
                wakeOnConnect: wakeOnConnect,
                namespace: of
            )
            if output.output == .json { return try Terminal.printJSON(idle) }
            IdleDefaultCommand.print(idle)
        }
    }

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Clear the default.")
        @Option(help: "Another namespace's (admins).") var of: String?
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await client.client().clearIdleDefault(namespace: of)
            if output.output == .json { return try Terminal.printJSON(["status": "cleared"]) }
            Swift.print("default idle stop cleared")
        }
    }
}
