import ArgumentParser
import Foundation
import LatticeClient
import LatticeDomain

/// `lattice login`: checks the credentials against the server and saves them as a profile.
struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Save a server URL, namespace and token as a profile.")

    @Option(help: "Server URL, such as http://127.0.0.1:8080.") var url: String
    @Option(help: "API token; '-' reads it from standard input.") var token: String
    @Option(help: "Namespace (user id); default: the token's own.") var namespace: String?
    @Option(help: "Profile name.") var profile = "default"

    func run() async throws {
        var secret = token
        if secret == "-" { secret = readLine(strippingNewline: true) ?? "" }
        guard !secret.isEmpty else { throw UsageError("--token: empty token") }
        guard let base = URL(string: url), base.scheme == "http" || base.scheme == "https" else {
            throw UsageError("--url: '\(url)' is not an http(s) URL")
        }
        let client = LatticeClient(baseURL: base, namespace: namespace, token: secret)
        let wallet = try await client.balance()
        var file = ConfigFile.load()
        file.profiles[profile] = .init(url: url, namespace: wallet.namespace, token: secret)
        file.current = profile
        try file.save()
        print("logged in to \(url) as namespace '\(wallet.namespace)' (profile '\(profile)', \(ConfigFile.path.path))")
    }
}

struct Regions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List regions and their clusters.")
    @OptionGroup var client: ClientOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let regions = try await client.client().regions()
        if output.output == .json { return try Terminal.printJSON(regions) }
        Terminal.printTable(
            ["ID", "REGION", "CLUSTER", "REGISTRY"],
            regions.map { [$0.id, $0.region, $0.clusterName, $0.harborAddr] }
        )
    }
}

struct Skus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List GPU SKUs with prices and free GPUs.")
    @Option(help: "Region id or name.") var region: String?
    @OptionGroup var client: ClientOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let skus = try await client.client().gpuSkus(regionID: region)
        if output.output == .json { return try Terminal.printJSON(skus) }
        let selling = ["1": "hourly", "2": "monthly", "3": "weekly", "4": "daily"]
        Terminal.printTable(
            ["ID", "GPU", "GPUS", "CPU", "MEMORY", "BILLING", "PRICE", "NOW", "FREE", "CLUSTER"],
            skus.map {
                [
                    $0.skusID, $0.gpuProduct, String($0.gpuCounts), String($0.cpucores), "\($0.memoryCount)Gi",
                    selling[$0.sellingType] ?? $0.sellingType,
                    Money(String($0.price)).map(\.description) ?? String($0.price), $0.effectivePrice,
                    String($0.remainGPUCount), $0.clusterName,
                ]
            }
        )
    }
}

struct Images: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List official images and your snapshots.",
        subcommands: [List.self, Delete.self],
        defaultSubcommand: List.self
    )

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete one of your snapshots.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The snapshot's full name, as `images` lists it.") var name: String

        func run() async throws {
            try await client.client().deleteImage(name: name)
            print("deleted \(name)")
        }
    }
}

extension Images {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List official images and your snapshots.")
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let client = try client.client()
            var all: [ImageWire] = []
            var page = PageRequest(page: 1, pageSize: 100)
            while true {
                let result = try await client.images(page: page)
                all += result.nodes
                guard result.hasNextPage else { break }
                page.page += 1
            }
            if output.output == .json { return try Terminal.printJSON(all) }
            Terminal.printTable(
                ["NAME", "KIND", "STATUS", "SIZE"],
                all.map {
                    [
                        $0.name, $0.kind, $0.status,
                        ByteCountFormatter.string(fromByteCount: $0.sizeBytes, countStyle: .binary),
                    ]
                }
            )
        }
    }
}

struct Balance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show your wallet.")
    @OptionGroup var client: ClientOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let wallet = try await client.client().balance()
        if output.output == .json { return try Terminal.printJSON(wallet) }
        Terminal.printTable(
            ["NAMESPACE", "BALANCE", "CURRENCY"],
            [[wallet.namespace, wallet.balance, wallet.currency]]
        )
    }
}

/// Paging flags shared by `orders` and `bills`.
struct PageOptions: ParsableArguments {
    @Option(help: "Page number, from 1.") var page = 1
    @Option(help: "Entries per page, at most 100.") var pageSize = 20

    func request() throws -> PageRequest {
        guard page >= 1 else { throw UsageError("--page: must be at least 1") }
        guard (1...100).contains(pageSize) else { throw UsageError("--page-size: must be between 1 and 100") }
        return PageRequest(page: page, pageSize: pageSize)
    }
}

struct Orders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List your orders.")
    @OptionGroup var paging: PageOptions
    @OptionGroup var client: ClientOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let page = try await client.client().orders(page: try paging.request())
        if output.output == .json { return try Terminal.printJSON(page) }
        Terminal.printTable(
            ["ID", "INSTANCE", "TYPE", "SKU", "AMOUNT", "STATUS", "CREATED"],
            page.nodes.map {
                [$0.id, $0.instanceName, $0.costType, $0.gpuSkuId, $0.amount, $0.status, $0.createdAt]
            }
        )
    }
}

/// `lattice audit`: who did what, newest first (`--all` for every namespace, as an admin).
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the audit log: every state-changing call, newest first."
    )
    @Option(help: "Only this action (instance.create, token.regenerate, ssh.login, ...).") var action: String?
    @Flag(help: "Every namespace's entries (needs an admin token).") var all = false
    @Option(name: .customLong("of"), help: "Only this namespace's entries (with --all).") var ofNamespace: String?
    @OptionGroup var paging: PageOptions
    @OptionGroup var client: ClientOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let api = try client.client()
        if ofNamespace != nil && !all { throw UsageError("--of needs --all") }
        let page =
            all
            ? try await api.adminAudit(namespace: ofNamespace, action: action, page: try paging.request())
            : try await api.audit(action: action, page: try paging.request())
        if output.output == .json { return try Terminal.printJSON(page) }
        Terminal.printTable(
            ["TIME", "NAMESPACE", "ACTOR", "ACTION", "TARGET", "STATUS", "FROM", "REQUEST"],
            page.nodes.map {
                [
                    $0.time, $0.namespace, $0.actor, $0.action, $0.target, String($0.status), $0.remoteAddress,
                    $0.requestId,
                ]
            }
        )
    }
}

struct Bills: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List your charges, or a month's statement with --month."
    )
    @Option(help: "A month's statement, YYYY-MM ('now' for this month).") var month: String?
    @Flag(help: "With --month: the statement as CSV.") var csv = false
    @OptionGroup var paging: PageOptions
    @OptionGroup var client: ClientOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        if csv && month == nil { throw UsageError("--csv needs --month") }
        if let month { return try await statement(month == "now" ? nil : month) }
        let page = try await client.client().bills(page: try paging.request())
        if output.output == .json { return try Terminal.printJSON(page) }
        Terminal.printTable(
            ["INSTANCE", "KIND", "FROM", "TO", "AMOUNT"],
            page.nodes.map {
                [$0.instanceName, $0.kind, $0.periodStart, $0.periodEnd, $0.amount]
            }
        )
    }

    func statement(_ month: String?) async throws {
        let api = try client.client()
        if csv { return print(try await api.statementCSV(month: month), terminator: "") }
        let statement = try await api.statement(month: month)
        if output.output == .json { return try Terminal.printJSON(statement) }
        print("statement \(statement.month) for \(statement.namespace) (\(statement.currency))")
        Terminal.printTable(
            ["INSTANCE", "COMPUTE", "PREPAID", "STORAGE", "IMAGE", "TOTAL"],
            statement.instances.map { [$0.instanceName, $0.compute, $0.prepaid, $0.storage, $0.image, $0.total] }
        )
        for line in statement.adjustments {
            print("adjustment \(line.amount): \(line.reason ?? "")")
        }
        let t = statement.totals
        print(
            "opening \(t.openingBalance) + top-ups \(t.topUps) + coupons \(t.coupons) - charges \(t.charges)"
                + " = closing \(t.closingBalance)"
        )
    }
}

struct Completion: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a shell completion script (bash, zsh or fish).")
    @Argument(help: "bash, zsh or fish.") var shell: String

    func run() throws {
        guard let kind = CompletionShell(rawValue: shell) else {
            throw UsageError("shell must be bash, zsh or fish, got '\(shell)'")
        }
        print(Lattice.completionScript(for: kind))
    }
}
