import ArgumentParser
import Foundation
import LatticeClient
import LatticeDomain

/// The cluster option of instance verbs.
struct ClusterOption: ParsableArguments {
    @Option(help: "Cluster (default: $LATTICE_CLUSTER or host-cluster).") var cluster: String?
    var name: String { cluster ?? ProcessInfo.processInfo.environment["LATTICE_CLUSTER"] ?? "host-cluster" }
}

struct Instances: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, stop, start and delete compute instances.",
        subcommands: [
            List.self, Get.self, Create.self, Stop.self, Start.self, Renew.self, Delete.self, Wait.self, Logs.self,
            Top.self, ScheduleStop.self, IdleStop.self,
        ]
    )

    static func row(_ i: InstanceWire) -> [String] {
        [
            i.name, i.displayName, Terminal.status(i.status), "\(i.resources.GPUNum)x\(i.resources.GPUType)",
            i.annotations.first { $0.key.hasSuffix("/unit-price") }?.value ?? "", i.Pods.first?.nodeScheduled ?? "",
            i.servers.SSH.sshAddr,
        ]
    }

    static let headers = ["NAME", "DISPLAY NAME", "STATUS", "GPU", "PRICE", "NODE", "SSH"]

    /// Prints where to connect once an instance runs.
    static func printAccess(_ i: InstanceWire) {
        print("ssh:        \(i.servers.SSH.sshAddr)   (password: \(i.servers.SSH.sshPassword))")
        print("jupyter:    \(i.servers.Jupyterlab)")
        print("tensorboard: \(i.servers.Tensorboard)")
    }

    /// Waits for a status, showing live progress on stderr.
    static func wait(
        _ client: LatticeClient,
        cluster: String,
        name: String,
        for status: InstanceStatus?,
        timeout: Int
    ) async throws -> InstanceWire? {
        let started = ContinuousClock.now
        let live = Terminal.stderrIsTTY
        let result = try await client.waitForStatus(cluster: cluster, name: name, status, timeout: .seconds(timeout)) {
            current in
            let elapsed = (ContinuousClock.now - started).components.seconds
            Terminal.progress(
                live
                    ? "\r\u{1B}[K\(name): \(current.status) (\(elapsed)s)"
                    : "\(name): \(current.status) (\(elapsed)s)\n"
            )
        }
        let elapsed = (ContinuousClock.now - started).components.seconds
        Terminal.progress(
            live
                ? "\r\u{1B}[K\(name): \(result?.status ?? "deleted") (\(elapsed)s)\n"
                : "\(name): \(result?.status ?? "deleted") (\(elapsed)s)\n"
        )
        return result
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your instances in a cluster.")
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let all = try await client.client().allInstances(cluster: cluster.name)
            if output.output == .json { return try Terminal.printJSON(all) }
            Terminal.printTable(Instances.headers, all.map(Instances.row))
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one instance.")
        @Argument(help: "Instance name (instance-xxxxxxxx).") var name: String
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let i = try await client.client().instance(cluster: cluster.name, name: name)
            if output.output == .json { return try Terminal.printJSON(i) }
            Terminal.printTable(
                ["FIELD", "VALUE"],
                [
                    ["name", i.name], ["display name", i.displayName], ["status", Terminal.status(i.status)],
                    ["reason", i.statusReason],
                    ["gpu", "\(i.resources.GPUNum)x\(i.resources.GPUType)"],
                    ["cpu / memory", "\(i.resources.cpu) / \(i.resources.memory)"],
                    ["image", i.image], ["node", i.Pods.first?.nodeScheduled ?? ""], ["ip", i.Pods.first?.ip ?? ""],
                    ["ssh", i.servers.SSH.sshAddr], ["password", i.servers.SSH.sshPassword],
                    ["jupyter", i.servers.Jupyterlab],
                    [
                        "apps",
                        i.servers.apps.map { "jupyterlab \($0.jupyterlab), tensorboard \($0.tensorboard)" } ?? "",
                    ],
                    ["ports", (i.servers.ports ?? []).map { "\($0.port) \($0.url)" }.joined(separator: "\n")],
                    ["env", (i.env ?? [:]).keys.sorted().joined(separator: " ")],
                    ["secret env", (i.secretEnvNames ?? []).joined(separator: " ")],
                    ["created", i.creationTimestamp], ["stops at", i.ScheduleStopTimestamp],
                    [
                        "idle stop",
                        i.idleStop.map { "after \($0.afterMinutes) min; stops at \(i.idle?.stopsAt ?? "")" } ?? "",
                    ],
                    ["wake on connect", i.wakeOnConnect == true ? "yes" : "no"],
                    ["data kept until", i.retentionUntil],
                ]
            )
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an instance.")
        @Option(help: "GPU SKU id (see 'lattice skus').") var sku: String
        @Option(help: "Image reference (see 'lattice images'; may come from --template).") var image = ""
        @Option(help: "Display name.") var name: String
        @Option(help: "A template's id (see 'lattice templates list'): fills what the options leave out.")
        var template = ""
        @Option(help: "Environment variable NAME=value (repeat).") var env: [String] = []
        @Option(help: "Secret environment variable NAME=value, never shown back (repeat).") var secretEnv: [String] = []
        @Option(help: "A file with a startup script run at every start ('-': standard input).") var startupScript:
            String?
        @Option(help: "HTTP port PORT[:NAME][:public] served through the gateway (repeat).") var port: [String] = []
        @Option(help: "Data disk size in GB (default: the disk SKU's default).") var diskSize: Int?
        @Option(help: "Data disk mount path.") var path = "/root/data"
        @Option(help: "Disk SKU id.") var diskSku = "1"
        @Option(help: "1 pay-as-you-go; 2 monthly, 3 weekly, 4 daily (must match the SKU).") var costType = 1
        @Option(help: "Prepaid term, such as 3D, 2W, 1M.") var costTime = ""
        @Option(help: "Coupon id (pay-as-you-go only).") var coupon = ""
        @Flag(help: "Wait until Running and print how to connect.") var wait = false
        @Option(help: "Seconds to wait at most.") var timeout = 600
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let client = try client.client()
            var created = try await client.createInstance(
                cluster: cluster.name,
                CreateInstanceOptions(
                    gpuSkuID: sku,
                    displayName: name,
                    image: image,
                    costType: costType,
                    costTime: costTime,
                    couponID: coupon,
                    diskSkuID: diskSku,
                    pathInContainer: path,
                    sizeGiB: diskSize
                ).with(
                    env: try WorkloadArguments.variables(env, flag: "--env"),
                    secretEnv: try WorkloadArguments.variables(secretEnv, flag: "--secret-env"),
                    startupScript: try WorkloadArguments.script(startupScript),
                    ports: try WorkloadArguments.ports(port),
                    template: template
                )
            )
            if wait {
                Terminal.progress("created \(created.name)\n")
                created =
                    try await Instances.wait(
                        client,
                        cluster: cluster.name,
                        name: created.name,
                        for: .running,
                        timeout: timeout
                    ) ?? created
            }
            if output.output == .json { return try Terminal.printJSON(created) }
            if wait { return Instances.printAccess(created) }
            Terminal.printTable(Instances.headers, [Instances.row(created)])
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Power an instance off, optionally saving it as an image."
        )
        @Argument(help: "Instance name.") var name: String
        @Option(help: "Save the container as IMAGE[:TAG] while stopping.") var snapshot: String?
        @Option(help: "Seconds to let processes exit before they are killed.") var grace = 10
        @Flag(help: "Wait until Stopped.") var wait = false
        @Option(help: "Seconds to wait at most.") var timeout = 600
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let client = try client.client()
            var options = PowerOffOptions(gracePeriodSeconds: grace)
            if let snapshot {
                let parts = snapshot.split(separator: ":", maxSplits: 1).map(String.init)
                options = .snapshot(
                    imageName: parts[0],
                    tag: parts.count > 1 ? parts[1] : "latest",
                    gracePeriodSeconds: grace
                )
            }
            try await client.powerOff(cluster: cluster.name, name: name, options)
            var status = "Stopping"
            if wait {
                status =
                    try await Instances.wait(
                        client,
                        cluster: cluster.name,
                        name: name,
                        for: .stopped,
                        timeout: timeout
                    )?.status ?? status
            }
            try Instances.report(name: name, status: status, output: output.output)
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Power a Stopped instance on.")
        @Argument(help: "Instance name.") var name: String
        @Flag(help: "Wait until Running and print how to connect.") var wait = false
        @Option(help: "Seconds to wait at most.") var timeout = 600
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let client = try client.client()
            try await client.powerOn(cluster: cluster.name, name: name)
            guard wait else { return try Instances.report(name: name, status: "Starting", output: output.output) }
            let running = try await Instances.wait(
                client,
                cluster: cluster.name,
                name: name,
                for: .running,
                timeout: timeout
            )
            if output.output == .json { return try Terminal.printJSON(running) }
            if let running { Instances.printAccess(running) }
        }
    }

    struct Renew: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Extend a prepaid instance's term (charged now, at the SKU's price)."
        )
        @Argument(help: "Instance name.") var name: String
        @Option(help: "How much longer: 3D, 2W, 1M (a leading + is allowed).") var costTime: String
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let term = costTime.hasPrefix("+") ? costTime : "+" + costTime
            let renewed = try await client.client().renew(cluster: cluster.name, name: name, costTime: term)
            if output.output == .json { return try Terminal.printJSON(renewed) }
            print("\(renewed.name): the term now ends at \(renewed.ScheduleStopTimestamp)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an instance and its data disk.")
        @Argument(help: "Instance name.") var name: String
        @Flag(help: "Wait until it is gone.") var wait = false
        @Option(help: "Seconds to wait at most.") var timeout = 600
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let client = try client.client()
            try await client.deleteInstance(cluster: cluster.name, name: name)
            if wait {
                _ = try await Instances.wait(client, cluster: cluster.name, name: name, for: nil, timeout: timeout)
            }
            try Instances.report(name: name, status: wait ? "Deleted" : "Deleting", output: output.output)
        }
    }

    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait until an instance reaches a status (or is deleted)."
        )
        @Argument(help: "Instance name.") var name: String
        @Option(name: .customLong("for"), help: "Running, Stopped, Failed, ... or 'deleted'.") var target = "Running"
        @Option(help: "Seconds to wait at most.") var timeout = 600
        @OptionGroup var cluster: ClusterOption
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let status: InstanceStatus?
            if target.lowercased() == "deleted" {
                status = nil
            } else if let known = InstanceStatus.allCases.first(where: {
                $0.rawValue.lowercased() == target.lowercased()
            }) {
                status = known
            } else {
                throw UsageError(
                    "--for: '\(target)' is not a status; use "
                        + InstanceStatus.allCases.map(\.rawValue).joined(separator: ", ") + " or deleted"
                )
            }
            let result = try await Instances.wait(
                try client.client(),
                cluster: cluster.name,
                name: name,
                for: status,
                timeout: timeout
            )
            try Instances.report(name: name, status: result?.status ?? "Deleted", output: output.output)
        }
    }

    /// The answer of verbs that change state: `{"name", "status"}` in JSON.
    static func report(name: String, status: String, output: OutputFormat) throws {
        if output == .json { return try Terminal.printJSON(["name": name, "status": status]) }
        print("\(name) \(Terminal.status(status))")
    }
}

struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage your API tokens.",
        subcommands: [List.self, Create.self, Regenerate.self, Delete.self]
    )

    static func printSecret(_ token: TokenWire, output: OutputFormat) throws {
        if output == .json { return try Terminal.printJSON(token) }
        print("token \(token.id) '\(token.name)', expires \(token.expiresAt); the secret is shown only now:")
        print(token.token ?? "")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your tokens (never their secrets).")
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let page = try await client.client().tokens(page: PageRequest(page: 1, pageSize: 100))
            if output.output == .json { return try Terminal.printJSON(page.nodes) }
            Terminal.printTable(
                ["ID", "NAME", "CREATED", "EXPIRES", "LAST USED"],
                page.nodes.map { [$0.id, $0.name, $0.createdAt, $0.expiresAt, $0.lastUsedAt] }
            )
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; its secret is printed once.")
        @Argument(help: "Token name.") var name: String
        @Option(help: "Validity in days (default 3650).") var days: Int?
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try Tokens.printSecret(
                try await client.client().createToken(name: name, validityDays: days),
                output: output.output
            )
        }
    }

    struct Regenerate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a token's secret; the old one stops working."
        )
        @Argument(help: "Token id.") var id: String
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try Tokens.printSecret(try await client.client().regenerateToken(id: id), output: output.output)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token.")
        @Argument(help: "Token id.") var id: String
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await client.client().deleteToken(id: id)
            if output.output == .json { return try Terminal.printJSON(["id": id, "status": "deleted"]) }
            print("token \(id) deleted")
        }
    }
}

struct SSHKeys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh-keys",
        abstract: "Manage the SSH public keys the SSH gateway lets into your instances.",
        subcommands: [List.self, Add.self, Delete.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your SSH keys.")
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let page = try await client.client().sshKeys(page: PageRequest(page: 1, pageSize: 100))
            if output.output == .json { return try Terminal.printJSON(page.nodes) }
            Terminal.printTable(
                ["ID", "NAME", "FINGERPRINT", "CREATED"],
                page.nodes.map { [$0.id, $0.name, $0.fingerprint, $0.createdAt] }
            )
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a public key (an OpenSSH .pub file, or '-' for standard input)."
        )
        @Argument(help: "The public key file, e.g. ~/.ssh/id_ed25519.pub.") var file: String
        @Option(help: "A name for the key (default: the key's comment).") var name: String?
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                let path = (file as NSString).expandingTildeInPath
                guard let contents = FileManager.default.contents(atPath: path) else {
                    throw UsageError("cannot read \(file)")
                }
                data = contents
            }
            let key = try await client.client().createSSHKey(
                publicKey: String(decoding: data, as: UTF8.self),
                name: name
            )
            if output.output == .json { return try Terminal.printJSON(key) }
            print("ssh key \(key.id) '\(key.name)' \(key.fingerprint) added")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an SSH key.")
        @Argument(help: "Key id.") var id: String
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await client.client().deleteSSHKey(id: id)
            if output.output == .json { return try Terminal.printJSON(["id": id, "status": "deleted"]) }
            print("ssh key \(id) deleted")
        }
    }
}

/// `lattice ssh NAME [-- COMMAND...]`: OpenSSH's `ssh` to the instance through the SSH
/// gateway, with a key (`--identity`, or whatever the agent offers) or with the instance's
/// password through sshpass when it is installed; without sshpass it prints the command
/// and the password.
struct SSH: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Open an SSH session to an instance (or run a command).")
    @Argument(help: "Instance name.") var name: String
    @Option(name: [.short, .long], help: "Log in with this private key instead of the password.") var identity: String?
    @Argument(parsing: .postTerminator, help: "A command to run instead of a shell (after --).") var command: [String] =
        []
    @OptionGroup var cluster: ClusterOption
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let instance = try await client.client().instance(cluster: cluster.name, name: name)
        guard instance.status == "Running" else { throw UsageError("\(name) is \(instance.status), not Running") }
        let address = instance.servers.SSH.sshAddr.split(separator: " ").map(String.init)
        // `ssh -p<port> <login>@<host>`; the gateway's host key is stable, so it is trusted on first use.
        guard address.count == 3, address[0] == "ssh", let ssh = Self.which("ssh") else {
            print(instance.servers.SSH.sshAddr)
            print("password: \(instance.servers.SSH.sshPassword)")
            return
        }
        var arguments = [address[1], "-o", "StrictHostKeyChecking=accept-new"]
        if let identity { arguments += ["-i", identity, "-o", "IdentitiesOnly=yes"] }
        arguments.append(address[2])
        arguments += command
        let process = Process()
        var environment = ProcessInfo.processInfo.environment
        if identity == nil, let sshpass = Self.which("sshpass") {
            process.executableURL = URL(fileURLWithPath: sshpass)
            process.arguments = ["-e", ssh] + arguments
            environment["SSHPASS"] = instance.servers.SSH.sshPassword
        } else {
            if identity == nil {
                FileHandle.standardError.write(Data("password: \(instance.servers.SSH.sshPassword)\n".utf8))
            }
            process.executableURL = URL(fileURLWithPath: ssh)
            process.arguments = arguments
        }
        process.environment = environment
        try process.run()
        process.waitUntilExit()
        if process.terminationStatus != 0 { throw ExitCode(process.terminationStatus) }
    }

    static func which(_ program: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
