import Foundation
import LatticeCompute
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// Which host names the HTTP gateway answers: `<uid>.<public-host>` (Jupyter and
/// Tensorboard by path) and `<uid>-<port>.<public-host>` (a port the instance publishes),
/// any port.
public struct GatewayHosts: Sendable {
    public var publicHost: String

    public init(publicHost: String) { self.publicHost = publicHost.lowercased() }

    /// An instance and, for `<uid>-<port>`, one of its ports.
    public struct Address: Sendable, Equatable {
        public var uid: String
        public var port: Int?
    }

    /// The instance (and port) a `Host` header names, or nil when it names none.
    public func address(host: String) -> Address? {
        var name = host.lowercased()
        if let colon = name.lastIndex(of: ":"), !name.hasSuffix("]") { name = String(name[..<colon]) }
        guard name.hasSuffix("." + publicHost) else { return nil }
        let label = String(name.dropLast(publicHost.count + 1))
        if UUID(uuidString: label) != nil { return Address(uid: label, port: nil) }
        guard let dash = label.lastIndex(of: "-"), let port = Int(label[label.index(after: dash)...]),
            (1...65535).contains(port), UUID(uuidString: String(label[..<dash])) != nil
        else { return nil }
        return Address(uid: String(label[..<dash]), port: port)
    }

    /// The instance uid a `Host` header names, or nil when it names no instance.
    public func uid(host: String) -> String? { address(host: host)?.uid }
}

/// A request head as far as the gateway reads it.
struct RequestHead: Equatable {
    var method: String
    var target: String
    var version: String
    /// Header lines in order, names as sent.
    var headers: [(name: String, value: String)]

    static func == (a: RequestHead, b: RequestHead) -> Bool {
        a.method == b.method && a.target == b.target && a.version == b.version
            && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
    }

    /// The end of the head (`\r\n\r\n`) in `bytes`, if it has arrived.
    ///
    /// `scanned` bytes are known to hold no end (a slow client's earlier reads), so only
    /// what arrived since, and the three bytes before it, are looked at: a head sent a byte
    /// at a time costs its length once, not its length squared.
    static func end(in bytes: ByteBuffer, scanned: Int = 0) -> Int? {
        let view = bytes.readableBytesView
        guard view.count >= 4 else { return nil }
        var index = view.startIndex + max(0, min(scanned, view.count) - 3)
        while index <= view.endIndex - 4 {
            if view[index] == 13, view[index + 1] == 10, view[index + 2] == 13, view[index + 3] == 10 {
                return index - view.startIndex + 4
            }
            index += 1
        }
        return nil
    }

    init?(_ text: String) {
        var lines = text.components(separatedBy: "\r\n")
        let request = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard request.count == 3, request[2].hasPrefix("HTTP/1.") else { return nil }
        method = String(request[0])
        target = String(request[1])
        version = String(request[2])
        headers = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers.append(
                (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            )
        }
    }

    func value(_ name: String) -> String? { headers.first { $0.name.lowercased() == name }?.value }

    var path: String { String(target.prefix { $0 != "?" }) }

    /// The value of query parameter `name`, if the target has it.
    func query(_ name: String) -> String? {
        guard let mark = target.firstIndex(of: "?") else { return nil }
        for pair in target[target.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.first.map(String.init) == name { return parts.count == 2 ? String(parts[1]) : "" }
        }
        return nil
    }

    /// The target without query parameter `name`.
    func target(without name: String) -> String {
        guard let mark = target.firstIndex(of: "?") else { return target }
        let kept = target[target.index(after: mark)...].split(separator: "&").filter {
            $0.split(separator: "=", maxSplits: 1).first.map(String.init) != name
        }
        return String(target[..<mark]) + (kept.isEmpty ? "" : "?" + kept.joined(separator: "&"))
    }

    /// The value of cookie `name`, if the request sent it.
    func cookie(_ name: String) -> String? {
        for header in headers where header.name.lowercased() == "cookie" {
            for pair in header.value.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
        }
        return nil
    }

    /// The head sent upstream: one request per connection (`Connection: close`) unless it
    /// asks for an upgrade (WebSockets), and `X-Forwarded-*` set by the gateway alone.
    func forwarded(clientAddress: String) -> String {
        let upgrade = value("upgrade") != nil
        let dropped: Set<String> = [
            "connection", "keep-alive", "proxy-connection", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
        ]
        var lines = ["\(method) \(target) \(version)"]
        for header in headers where !dropped.contains(header.name.lowercased()) {
            lines.append("\(header.name): \(header.value)")
        }
        lines.append(upgrade ? "Connection: Upgrade" : "Connection: close")
        lines.append("X-Forwarded-For: \(clientAddress)")
        lines.append("X-Forwarded-Host: \(value("host") ?? "")")
        lines.append("X-Forwarded-Proto: http")
        return lines.joined(separator: "\r\n") + "\r\n\r\n"
    }
}

/// The HTTP gateway (`docs/access.md`) on one client connection: reads the first request
/// head, finds the instance its `Host` names and the port its path names (`/jupyter` →
/// 8888, `/monitor` → 6006), connects to that port of the instance's workload and from then
/// on passes bytes both ways unchanged, so bodies stream, uploads of any size pass and
/// WebSocket upgrades work. An instance that is not Running gets a small page that says so.
public final class HTTPGatewayHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public struct Settings: Sendable {
        public var hosts: GatewayHosts
        public var connectTimeout: TimeAmount = .seconds(10)
        /// A proxied connection with no traffic either way for this long is closed.
        public var idleTimeout: TimeAmount = .minutes(30)
        public var maximumHeadBytes = 64 * 1024
        /// Counts the connections passed through, for the server's metrics.
        public var sessions = GatewaySessions()

        public init(hosts: GatewayHosts) { self.hosts = hosts }
    }

    /// Where each path prefix leads inside the instance.
    static let routes: [(prefix: String, port: Int)] = [("/jupyter", 8888), ("/monitor", 6006)]

    enum State {
        case readingHead
        case connecting
        case done
    }

    let settings: Settings
    let directory: any AccessDirectory
    private var state = State.readingHead
    private var buffered: ByteBuffer
    /// How much of `buffered` is known to hold no end of head.
    private var scanned = 0

    public init(settings: Settings, directory: any AccessDirectory, buffered: ByteBuffer = ByteBuffer()) {
        self.settings = settings
        self.directory = directory
        self.buffered = buffered
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        // A client must finish its request head in time (the API's own limit, 10 s).
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .seconds(10)) {
            guard case .readingHead = handler.value.state else { return }
            handler.value.answer(
                boundContext.value,
                408,
                "Request Timeout",
                "The request's head did not arrive in time."
            )
        }
        if buffered.readableBytes > 0 { examine(context) }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffered.writeBuffer(&bytes)
        if case .readingHead = state { examine(context) }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        state = .done
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    func examine(_ context: ChannelHandlerContext) {
        guard let end = RequestHead.end(in: buffered, scanned: scanned) else {
            scanned = buffered.readableBytes
            if buffered.readableBytes > settings.maximumHeadBytes {
                answer(context, 431, "Request Header Fields Too Large", "The request's head is too large.")
            }
            return
        }
        // The head without its closing blank line (counted in bytes: "\r\n" is one Character).
        let text = buffered.getString(at: buffered.readerIndex, length: end - 4) ?? ""
        guard let head = RequestHead(text) else {
            return answer(context, 400, "Bad Request", "The request is not HTTP/1.")
        }
        guard let address = head.value("host").flatMap(settings.hosts.address(host:)) else {
            return answer(context, 404, "Not Found", "No instance is served at this address.")
        }
        let uid = address.uid
        guard
            let port = address.port
                ?? Self.routes.first(where: { head.path == $0.prefix || head.path.hasPrefix($0.prefix + "/") })?.port
        else {
            return answer(
                context,
                404,
                "Not Found",
                "An instance serves Jupyter under /jupyter and Tensorboard under /monitor."
            )
        }
        buffered.moveReaderIndex(forwardBy: end)
        state = .connecting
        context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
        let directory = directory
        let client = context.channel.remoteAddress?.ipAddress ?? ""
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.eventLoop.makeFutureWithTask { () -> Route in
            guard let target = try await directory.target(uid: uid) else { return .unknown }
            let cookie: String?
            if address.port != nil {
                guard let isPublic = target.publishedPorts[port] else { return .notPublished(target.name, port) }
                cookie = isPublic ? nil : Self.portCookie
            } else {
                cookie = port == 6006 ? Self.monitorCookie : Self.jupyterCookie
            }
            if let cookie {
                switch Self.tokenAccess(head, token: target.jupyterToken, cookie: cookie) {
                case .allowed: break
                case .setCookie(let location): return .setCookie(location, cookie, target.jupyterToken)
                case .refused: return .tokenRequired(cookie)
                }
            }
            if target.wakes {
                switch await directory.wake(target) {
                case .starting: return .waking(target.name, browser: Self.isBrowser(head))
                case .refused(let why): return .wakeRefused(target.name, why)
                }
            }
            guard target.isRunning, let driver = directory.workloads(cluster: target.cluster) else {
                return .notRunning(target.name, target.status)
            }
            guard let endpoint = try await driver.endpoint(instanceName: target.name, port: port) else {
                return .unreachable(target.name, port)
            }
            return .upstream(target, endpoint)
        }.whenComplete { result in
            let handler = loopBoundSelf.value
            let context = loopBoundContext.value
            switch result {
            case .success(.upstream(let target, let endpoint)):
                handler.connect(context, to: endpoint, target: target, port: port, head: head, client: client)
            case .success(.waking(let name, let browser)):
                // Wake on connect (SPEC §12): a browser's page refreshes until the instance
                // answers; any other client is told when to try again.
                handler.answer(
                    context,
                    503,
                    "Service Unavailable",
                    "\(name) is starting (wake on connect). "
                        + (browser ? "This page reloads until it answers." : "Try again in a few seconds."),
                    retryAfter: Self.wakeRetrySeconds,
                    refresh: browser ? Self.wakeRetrySeconds : nil
                )
            case .success(.wakeRefused(let name, let why)):
                handler.answer(
                    context,
                    503,
                    "Service Unavailable",
                    "\(name) stays Stopped: it cannot be woken now. \(why)"
                )
            case .success(.notRunning(let name, let status)):
                handler.answer(
                    context,
                    503,
                    "Service Unavailable",
                    "\(name) is \(status), not Running. Power it on, then reload this page.",
                    retryAfter: 30
                )
            case .success(.unreachable(let name, let port)):
                handler.answer(context, 502, "Bad Gateway", "Nothing can be reached on port \(port) of \(name).")
            case .success(.unknown):
                handler.answer(context, 404, "Not Found", "No instance is served at this address.")
            case .success(.notPublished(let name, let port)):
                handler.answer(context, 404, "Not Found", "\(name) does not publish port \(port).")
            case .success(.tokenRequired(let cookie)):
                handler.answer(context, 401, "Unauthorized", Self.tokenRequiredText(cookie: cookie))
            case .success(.setCookie(let location, let cookie, let token)):
                handler.redirect(
                    context,
                    to: location,
                    cookie: "\(cookie)=\(token); Path=\(Self.cookiePath(cookie)); HttpOnly; SameSite=Lax"
                )
            case .failure:
                handler.answer(context, 503, "Service Unavailable", "The gateway cannot look this instance up now.")
            }
        }
    }

    /// Seconds a client waits (and a browser's page reloads) while an instance wakes.
    static let wakeRetrySeconds = 5

    /// Whether the request is a browser's (it accepts HTML), which gets a page that reloads.
    static func isBrowser(_ head: RequestHead) -> Bool {
        (head.value("accept") ?? "").lowercased().contains("text/html")
    }

    enum Route: Sendable {
        case upstream(AccessTarget, WorkloadEndpoint)
        case waking(String, browser: Bool)
        case wakeRefused(String, String)
        case notRunning(String, String)
        case unreachable(String, Int)
        case unknown
        case notPublished(String, Int)
        /// The token is missing; the cookie it would have come in.
        case tokenRequired(String)
        /// Location, cookie name, token.
        case setCookie(String, String, String)
    }

    /// `303` to `location`, setting `cookie`.
    func redirect(_ context: ChannelHandlerContext, to location: String, cookie: String) {
        guard context.channel.isActive else { return }
        state = .done
        let safe = location.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F }
        let head =
            "HTTP/1.1 303 See Other\r\nLocation: \(safe ? location : "/monitor/")\r\nSet-Cookie: \(cookie)\r\n"
            + "Content-Length: 0\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n"
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: head))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func connect(
        _ context: ChannelHandlerContext,
        to endpoint: WorkloadEndpoint,
        target: AccessTarget,
        port: Int,
        head: RequestHead,
        client: String
    ) {
        guard case .connecting = state else { return }
        let (inner, outer) = SpliceHandler.pair()
        let outerBound = NIOLoopBound(outer, eventLoop: context.eventLoop)
        let innerBound = NIOLoopBound(inner, eventLoop: context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let idle = settings.idleTimeout
        let instance = target.name
        let directory = directory
        // A request through the gateway is a use for the idle clock, answered or not, and a
        // proxied connection a session while it is open.
        directory.used(target, .sessionOpened)
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { upstream in
                upstream.eventLoop.makeCompletedFuture {
                    try upstream.pipeline.syncOperations.addHandler(IdleCloser(timeout: idle))
                    try upstream.pipeline.syncOperations.addHandler(outerBound.value)
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .whenComplete { result in
                let handler = handler.value
                let context = boundContext.value
                switch result {
                case .failure:
                    directory.used(target, .sessionClosed)
                    handler.answer(context, 502, "Bad Gateway", "Nothing answers on port \(port) of \(instance).")
                case .success(let upstream):
                    guard case .connecting = handler.state else {
                        directory.used(target, .sessionClosed)
                        upstream.close(promise: nil)
                        return
                    }
                    handler.state = .done
                    let sessions = handler.settings.sessions
                    sessions.opened()
                    upstream.closeFuture.whenComplete { _ in
                        sessions.closed()
                        directory.used(target, .sessionClosed)
                    }
                    var first = ByteBuffer(string: head.forwarded(clientAddress: client))
                    first.writeBuffer(&handler.buffered)
                    upstream.writeAndFlush(first, promise: nil)
                    do {
                        try context.pipeline.syncOperations.addHandler(innerBound.value)
                        context.pipeline.syncOperations.removeHandler(handler, promise: nil)
                        context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
                        context.read()
                    } catch {
                        upstream.close(promise: nil)
                        context.close(promise: nil)
                    }
                }
            }
    }

    /// A small page, and the connection closes.
    func answer(
        _ context: ChannelHandlerContext,
        _ status: Int,
        _ reason: String,
        _ message: String,
        retryAfter: Int? = nil,
        refresh: Int? = nil
    ) {
        guard context.channel.isActive else { return }
        state = .done
        let reload = refresh.map { #"<meta http-equiv="refresh" content="\#($0)">"# } ?? ""
        let body = """
            <!doctype html><html><head><meta charset="utf-8">\(reload)<title>\(status) \(reason)</title></head>
            <body style="font-family:sans-serif;margin:3em"><h1>\(reason)</h1><p>\(Self.escape(message))</p>
            <p><small>lattice gateway</small></p></body></html>

            """
        var head =
            "HTTP/1.1 \(status) \(reason)\r\nContent-Type: text/html; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\nCache-Control: no-store\r\n"
        if let retryAfter { head += "Retry-After: \(retryAfter)\r\n" }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: head + "\r\n" + body))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
