import ArgumentParser
import Foundation
import LatticeClient
import LatticeDomain

/// `lattice admin …`: the operator's verbs (an admin namespace's token).
struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator commands (needs an admin token).",
        subcommands: [Quota.self, Nodes.self]
    )

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
