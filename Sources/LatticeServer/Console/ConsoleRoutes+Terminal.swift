import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import LatticeCompute
import LatticeDomain
import LatticeGateway
import Logging
import NIOCore

/// The console's web terminal (SPEC §11): a page with xterm.js (`ConsoleVendor`) and a
/// WebSocket at `<instance page>/terminal/socket` to a shell in the instance, through the
/// exec path of the SSH gateway (`WebTerminal`).
///
/// The socket is behind the console's session and its CSRF rules: the session cookie
/// (SameSite=Strict, so no other site's page sends it), an `Origin` that is this server
/// (browsers always send one on a WebSocket handshake) and the session's CSRF token in
/// the URL, which only this server's page knows.
extension ConsoleRoutes {
    func registerTerminal(_ console: RouterGroup<LatticeRequestContext>) {
        console.get("vendor/:file") { request, context in
            let name = try context.parameters.require("file")
            let vendor = ConsoleVendor.cached(directory: api.configuration.xtermDirectory)
            guard let asset = vendor.files[name] else {
                throw LatticeError.notFound(
                    "console file '\(name.prefix(40))'" + (vendor.missing.map { ": \($0)" } ?? "")
                )
            }
            var headers: HTTPFields = [.contentType: asset.contentType, .cacheControl: "public, max-age=3600"]
            headers[HTTPField.Name("x-content-type-options")!] = "nosniff"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
        }
        console.get("instances/:cluster/:name/terminal") { request, context in
            try await signedIn(request) { visit, principal in
                let cluster = try context.parameters.require("cluster")
                let name = try context.parameters.require("name")
                let instance = try await api.instance(principal: principal, cluster: cluster, name: name)
                let vendor = ConsoleVendor.cached(directory: api.configuration.xtermDirectory)
                let base = "/console/instances/\(cluster)/\(name)"
                return show(
                    visit,
                    request,
                    title: "Terminal: \(instance.displayName)",
                    page: "instances",
                    template: "terminal",
                    ConsoleView.TerminalPage(
                        name: instance.name,
                        status: instance.status,
                        back: base,
                        socket: base + "/terminal/socket?csrf=" + visit.csrf,
                        vendorVersion: vendor.version,
                        missing: vendor.missing
                    )
                )
            }
        }
    }

    /// Where a terminal socket's handshake leads: the instance to open a shell in, or the
    /// error the browser is told (as `{"code","message"}`, then the socket closes).
    enum TerminalDecision: Sendable {
        case open(AccessTarget, TerminalSize)
        case refused(LatticeError)
    }

    /// The path `/console/instances/<cluster>/<name>/terminal/socket`, as (cluster, name).
    static func terminalSocketPath(_ path: String) -> (cluster: String, name: String)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 7, parts[0].isEmpty, parts[1] == "console", parts[2] == "instances",
            parts[5] == "terminal", parts[6] == "socket", !parts[3].isEmpty, !parts[4].isEmpty
        else { return nil }
        return (String(parts[3]), String(parts[4]))
    }

    /// Decides a terminal socket's handshake: signed in, from this server's page, with the
    /// session's CSRF token, to one of the namespace's instances that runs.
    func terminalDecision(
        _ head: HTTPRequest,
        cluster: String,
        name: String,
        directory: any AccessDirectory
    ) async -> TerminalDecision {
        do {
            let request = Request(head: head, body: RequestBody(buffer: ByteBuffer()))
            guard request.headers[.origin] != nil else {
                throw LatticeError.forbidden("a terminal opens only from this console's own page (no Origin)")
            }
            try checkOrigin(request)
            let visit = try await visit(request)
            guard let principal = visit.principal else {
                throw LatticeError(.unauthorized, code: "Unauthorized", "sign in to the console to open a terminal")
            }
            let query = request.uri.queryParameters
            guard let sent = query.get("csrf"), TokenSecrets.constantTimeEquals(sent, visit.csrf) else {
                throw LatticeError.forbidden("the terminal's CSRF token is missing or wrong; reload the page")
            }
            let instance = try await api.instance(principal: principal, cluster: cluster, name: name)
            guard instance.status == "Running" else {
                throw LatticeError.invalidState(
                    "instance \(name) is \(instance.status), not Running: power it on to open a terminal"
                )
            }
            guard let target = try await directory.target(instanceName: instance.name),
                target.namespace == principal.namespace
            else { throw LatticeError.notFound("instance '\(name)' in cluster \(cluster)") }
            let columns = Int(query.get("cols") ?? "") ?? 80
            let rows = Int(query.get("rows") ?? "") ?? 24
            guard let size = WebTerminal.size(columns: columns, rows: rows) else {
                throw LatticeError.invalidField(
                    "cols",
                    "a terminal is \(WebTerminal.columns) columns by \(WebTerminal.rows) rows, got \(columns)x\(rows)"
                )
            }
            return .open(target, size)
        } catch let error as LatticeError {
            return .refused(error)
        } catch {
            return .refused(LatticeError(.unavailable, code: "Unavailable", "cannot open a terminal: \(error)"))
        }
    }

    /// The WebSocket upgrade for every connection of the API's port: terminal sockets are
    /// upgraded (and then opened or told why not), any other upgrade is refused.
    static func terminalUpgrade(
        console: ConsoleRoutes,
        directory: any AccessDirectory
    )
        -> @Sendable (HTTPRequest, any Channel, Logger) async throws -> ShouldUpgradeResult<
            WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>
        >
    {
        { head, _, _ in
            guard
                let (cluster, name) = terminalSocketPath(head.path?.split(separator: "?").first.map(String.init) ?? "")
            else { return .dontUpgrade }
            let decision = await console.terminalDecision(head, cluster: cluster, name: name, directory: directory)
            return .upgrade([:]) { inbound, outbound, _ in
                switch decision {
                case TerminalDecision.refused(let error):
                    let body = (try? JSONEncoder().encode(["code": error.code, "message": error.message])) ?? Data()
                    try await outbound.write(.text(String(decoding: body, as: UTF8.self)))
                    try await outbound.close(.policyViolation, reason: error.code)
                case TerminalDecision.open(let target, let size):
                    let messages = inbound.messages(maxSize: 1 << 16).compactMap {
                        message -> WebTerminal.ClientMessage? in
                        switch message {
                        case .binary(let buffer): .input(Data(buffer.readableBytesView))
                        case .text(let text): WebTerminal.control(text)
                        }
                    }
                    await WebTerminal.run(
                        target: target,
                        directory: directory,
                        size: size,
                        messages: messages,
                        output: { try? await outbound.write(.binary(ByteBuffer(bytes: $0))) },
                        ended: { status in
                            try? await outbound.write(.text(WebTerminal.exitMessage(status)))
                            try? await outbound.close(.normalClosure, reason: nil)
                        }
                    )
                }
            }
        }
    }
}

extension ConsoleView {
    /// `terminal.mustache`.
    struct TerminalPage {
        var name: String
        var status: String
        var back: String
        var socket: String
        var vendorVersion: String
        var missing: String?
    }
}
