import ArgumentParser
import Foundation
import LatticeClient
import LatticeDomain

/// `lattice admin …`: the operator's verbs (an admin namespace's token).
struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator commands (needs an admin token).",
        subcommands: [
            Users.self, AdminInstances.self, Credit.self, Debit.self, Coupons.self, Quota.self, Nodes.self,
        ]
    )

    struct Users: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every namespace with its balance, instances and GPUs in use."
        )
        @OptionGroup var paging: PageOptions
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let page = try await client.client().users(page: try paging.request())
            if output.output == .json { return try Terminal.printJSON(page) }
            Terminal.printTable(
                ["NAMESPACE", "ADMIN", "BALANCE", "INSTANCES", "GPUS", "CREATED"],
                page.nodes.map {
                    [
                        $0.namespace, $0.admin ? "yes" : "", "\($0.balance) \($0.currency)", String($0.instances),
                        String($0.gpusInUse), $0.createdAt,
                    ]
                }
            )
        }
    }

    struct AdminInstances: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "instances",
            abstract: "The instances of every namespace (act on one with --namespace on 'lattice instances')."
        )
        @Option(name: .customLong("of"), help: "Only this namespace's.") var ofNamespace: String?
        @Option(help: "Only instances in this status (Running, Stopped, ...).") var status: String?
        @Option(help: "Only instances placed on this node.") var node: String?
        @OptionGroup var paging: PageOptions
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let page = try await client.client().adminInstances(
                namespace: ofNamespace,
                status: status,
                node: node,
                page: try paging.request()
            )
            if output.output == .json { return try Terminal.printJSON(page) }
            Terminal.printTable(
                ["NAMESPACE"] + Instances.headers,
                page.nodes.map { [$0.namespace] + Instances.row($0) }
            )
        }
    }

    /// The arguments `credit` and `debit` share.
    struct MoneyArguments: ParsableArguments {
        @Argument(help: "The namespace.") var namespace: String
        @Argument(help: "The amount, such as 25.00.") var amount: String
    }

    static func printBalance(_ wallet: BalanceWire, _ output: OutputOptions) throws {
        if output.output == .json { return try Terminal.printJSON(wallet) }
        Terminal.printTable(
            ["NAMESPACE", "BALANCE", "CURRENCY"],
            [[wallet.namespace, wallet.balance, wallet.currency]]
        )
    }

    struct Credit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Top up a wallet; with --reason it is a refund, shown on the tenant's bills."
        )
        @OptionGroup var money: MoneyArguments
        @Option(help: "Why (makes it a refund the tenant sees).") var reason: String?
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let api = try client.client()
            try printBalance(
                try await api.credit(namespace: money.namespace, amount: money.amount, reason: reason),
                output
            )
        }
    }

    struct Debit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take money back from a wallet, with the reason the tenant sees on its bills."
        )
        @OptionGroup var money: MoneyArguments
        @Option(help: "Why (required; shown to the tenant).") var reason: String
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let api = try client.client()
            try printBalance(
                try await api.debit(namespace: money.namespace, amount: money.amount, reason: reason),
                output
            )
        }
    }

    struct Coupons: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create, list and disable coupons.",
            subcommands: [List.self, Create.self, Disable.self],
            defaultSubcommand: List.self
        )

        static func print(_ coupons: [CouponWire], _ output: OutputOptions) throws {
            if output.output == .json { return try Terminal.printJSON(coupons) }
            Terminal.printTable(
                ["ID", "KIND", "VALUE", "USES", "EXPIRES", "STATE"],
                coupons.map {
                    [
                        $0.id, $0.kind, $0.kind == "percent" ? "\($0.value) %" : $0.value, "\($0.uses)/\($0.maxUses)",
                        $0.expiresAt, $0.disabledAt.map { "disabled \($0)" } ?? "active",
                    ]
                }
            )
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List every coupon.")
            @OptionGroup var paging: PageOptions
            @OptionGroup var client: ClientOptions
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try Coupons.print(try await client.client().coupons(page: try paging.request()).nodes, output)
            }
        }

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Issue a coupon: an amount credited on use, or a percentage off pay-as-you-go."
            )
            @Option(help: "amount or percent.") var kind: String
            @Option(help: "The amount (10.00) or the percentage (20).") var value: String
            @Option(help: "Its id (default: a generated CPN-...).") var id: String?
            @Option(help: "When it expires (RFC 3339).") var expiresAt: String?
            @Option(help: "How many times it may be used in all.") var maxUses: Int?
            @OptionGroup var client: ClientOptions
            @OptionGroup var output: OutputOptions

            func run() async throws {
                let coupon = try await client.client().createCoupon(
                    id: id,
                    kind: kind,
                    value: value,
                    expiresAt: expiresAt,
                    maxUses: maxUses
                )
                try Coupons.print([coupon], output)
            }
        }

        struct Disable: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Redeem a coupon no more (instances that have it keep it)."
            )
            @Argument(help: "The coupon id.") var id: String
            @OptionGroup var client: ClientOptions
            @OptionGroup var output: OutputOptions

            func run() async throws { try Coupons.print([try await client.client().disableCoupon(id: id)], output) }
        }
    }

    struct Nodes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every node's health and free GPUs; drain or undrain one.",
            subcommands: [List.self, Drain.self, Undrain.self],
            defaultSubcommand: List.self
        )

        static func print(_ nodes: [AdminNodeWire], _ output: OutputOptions) throws {
            if output.output == .json { return try Terminal.printJSON(nodes) }
            Terminal.printTable(
                ["NODE", "CLUSTER", "GPU", "FREE/TOTAL", "HEALTH", "REASON"],
                nodes.map {
                    [$0.name, $0.cluster, $0.gpuModel, "\($0.gpuFree)/\($0.gpuTotal)", $0.health, $0.reason]
                }
            )
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List every node.")
            @OptionGroup var client: ClientOptions
            @OptionGroup var output: OutputOptions

            func run() async throws { try Nodes.print(try await client.client().adminNodes().nodes, output) }
        }

        struct Drain: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Place nothing new on a node; what runs there runs on."
            )
            @OptionGroup var client: ClientOptions
            @OptionGroup var output: OutputOptions
            @Argument(help: "The node.") var node: String

            func run() async throws {
                try Nodes.print([try await client.client().setDrained(node: node, true)], output)
            }
        }

        struct Undrain: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Place on a drained node again.")
            @OptionGroup var client: ClientOptions
            @OptionGroup var output: OutputOptions
            @Argument(help: "The node.") var node: String

            func run() async throws {
                try Nodes.print([try await client.client().setDrained(node: node, false)], output)
            }
        }
    }

    struct Quota: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set a namespace's quota.",
            subcommands: [Get.self, Set.self]
        )

        static func print(_ wire: QuotaWire, _ output: OutputOptions) throws {
            if output.output == .json { return try Terminal.printJSON(wire) }
            Terminal.printTable(
                ["LIMIT", "QUOTA", "USED"],
                [
                    ["instances", String(wire.quota.instances), String(wire.usage.instances)],
                    ["gpus", String(wire.quota.gpus), String(wire.usage.gpus)],
                    ["tokens", String(wire.quota.tokens), String(wire.usage.tokens)],
                    ["snapshots", String(wire.quota.snapshots), String(wire.usage.snapshots)],
                ]
            )
        }

        struct Get: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show a namespace's quota and use.")
            @OptionGroup var client: ClientOptions
            @OptionGroup var output: OutputOptions
            @Argument(help: "The namespace.") var namespace: String

            func run() async throws {
                try Quota.print(try await client.client().quota(namespace: namespace), output)
            }
        }

        struct Set: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Set limits of a namespace's quota; the others keep their value."
            )
            @OptionGroup var client: ClientOptions
            @OptionGroup var output: OutputOptions
            @Argument(help: "The namespace.") var namespace: String
            @Option(help: "Instances it may keep.") var instances: Int?
            @Option(help: "GPUs it may hold at once.") var gpus: Int?
            @Option(help: "API tokens it may have.") var tokens: Int?
            @Option(help: "Snapshot images it may keep.") var snapshots: Int?

            func validate() throws {
                guard instances != nil || gpus != nil || tokens != nil || snapshots != nil else {
                    throw ValidationError("give at least one of --instances, --gpus, --tokens, --snapshots")
                }
            }

            func run() async throws {
                let wire = try await client.client().setQuota(
                    namespace: namespace,
                    instances: instances,
                    gpus: gpus,
                    tokens: tokens,
                    snapshots: snapshots
                )
                try Quota.print(wire, output)
            }
        }
    }
}
