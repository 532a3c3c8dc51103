import ArgumentParser
import Foundation
import LatticeClient
import LatticeDomain

/// `lattice events`: what happened in the namespace (SPEC §13), kept for 24 h; `-f` follows
/// the stream as events commit.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show your namespace's events (the last 24 h), or follow them live with -f."
    )
    @Flag(name: .shortAndLong, help: "Keep printing events as they happen.") var follow = false
    @Flag(help: "The nodes' health events instead (an admin token).") var nodes = false
    @Option(help: "Only events after this id (as Last-Event-ID; default: all kept, or from now with -f).")
    var since: Int64?
    @OptionGroup var client: ClientOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let api = try client.client()
        if follow {
            for try await event in api.events(after: since, nodes: nodes) { try show([event], header: false) }
            return
        }
        var after = since
        var all: [EventWire] = []
        while true {
            let list = try await api.eventList(after: after, nodes: nodes)
            all += list.events
            after = Int64(list.lastEventId)
            if !list.hasMore { break }
        }
        try show(all, header: true)
    }

    func show(_ events: [EventWire], header: Bool) throws {
        let rows = events.map { [$0.id, $0.time, $0.type, $0.instance ?? "-", Self.detail($0)] }
        if header, output.output != .json {
            return Terminal.printTable(["ID", "TIME", "TYPE", "INSTANCE", "DETAIL"], rows)
        }
        // One line per event, written at once, so `-f | jq` (with -o json, an object a line) reads them as they come.
        let lines = output.output == .json ? events.map(\.json) : rows.map { $0.joined(separator: "  ") }
        FileHandle.standardOutput.write(Data(lines.map { $0 + "\n" }.joined().utf8))
    }

    /// What an event says, in a few words.
    static func detail(_ event: EventWire) -> String {
        func text(_ key: String) -> String {
            switch event.data[key] {
            case .string(let value)?: value
            case .number(let value)?: value == value.rounded() ? String(Int64(value)) : String(value)
            default: ""
            }
        }
        switch event.type {
        case LatticeEvent.Kind.instanceStatus.rawValue:
            let change = text("previous").isEmpty ? text("status") : "\(text("previous")) -> \(text("status"))"
            return text("reason").isEmpty ? change : "\(change) (\(text("reason")))"
        case LatticeEvent.Kind.imageReady.rawValue, LatticeEvent.Kind.imageFailed.rawValue:
            return text("reference")
        case LatticeEvent.Kind.nodeUnhealthy.rawValue, LatticeEvent.Kind.nodeDrained.rawValue,
            LatticeEvent.Kind.nodeHealthy.rawValue:
            return "\(text("node")) (\(text("cluster")))" + (text("reason").isEmpty ? "" : ": \(text("reason"))")
        default:
            return event.data.keys.sorted().map { "\($0)=\(text($0))" }.joined(separator: " ")
        }
    }
}

/// `lattice webhooks`: where the namespace's events are POSTed, signed (SPEC §13).
struct Webhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage webhooks: URLs your events are POSTed to, signed with a secret.",
        subcommands: [List.self, Create.self, Delete.self, Deliveries.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your webhooks.")
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let page = try await client.client().webhooks(page: PageRequest(page: 1, pageSize: 100))
            if output.output == .json { return try Terminal.printJSON(page.nodes) }
            Terminal.printTable(
                ["ID", "URL", "EVENTS", "CREATED"],
                page.nodes.map { [$0.id, $0.url, $0.events.joined(separator: ","), $0.createdAt] }
            )
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a webhook; its signing secret is shown this once."
        )
        @Argument(help: "The https:// URL to POST events to.") var url: String
        @Option(
            name: .customLong("event"),
            help: "An event type to send (repeat it; default: every type), e.g. instance.status."
        )
        var events: [String] = []
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let hook = try await client.client().createWebhook(url: url, events: events.isEmpty ? nil : events)
            if output.output == .json { return try Terminal.printJSON(hook) }
            print("webhook \(hook.id) -> \(hook.url) (\(hook.events.joined(separator: ", ")))")
            print("secret \(hook.secret ?? "") (shown once: verify Lattice-Signature with it)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a webhook and its deliveries.")
        @Argument(help: "Webhook id.") var id: String
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await client.client().deleteWebhook(id: id)
            if output.output == .json { return try Terminal.printJSON(["id": id, "status": "deleted"]) }
            print("webhook \(id) deleted")
        }
    }

    struct Deliveries: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A webhook's deliveries, newest first.")
        @Argument(help: "Webhook id.") var id: String
        @OptionGroup var paging: PageOptions
        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let page = try await client.client().webhookDeliveries(id: id, page: try paging.request())
            if output.output == .json { return try Terminal.printJSON(page) }
            Terminal.printTable(
                ["EVENT", "TYPE", "STATUS", "ATTEMPTS", "ANSWER", "LAST ATTEMPT", "NEXT", "ERROR"],
                page.nodes.map {
                    [
                        $0.eventId, $0.type, $0.status, String($0.attempts),
                        $0.responseStatus == 0 ? "-" : String($0.responseStatus), $0.lastAttemptAt,
                        $0.nextAttemptAt, $0.error,
                    ]
                }
            )
        }
    }
}
