import Foundation
import LatticeCompute
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// Closes a proxied connection after `timeout` without traffic either way.
final class IdleCloser: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) { rearm(context) }

    func handlerRemoved(context: ChannelHandlerContext) { deadline?.cancel() }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        rearm(context)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        rearm(context)
        context.write(data, promise: promise)
    }

    func rearm(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }
}

/// Decides on a connection's first request head whether it is for the API or, by its
/// `Host` (`<uid>.<public-host>`), for the HTTP gateway, so both share one port. Keeps
/// everything it reads (the head, and whatever follows until it is removed) and hands it
/// on when removed, so the pipeline installed behind it gets the bytes as if never read.
public final class HostSniffer: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    public enum Decision: Sendable {
        case api
        case gateway
    }

    let hosts: GatewayHosts
    let timeout: TimeAmount
    let decision: EventLoopPromise<Decision>
    private var buffered = ByteBuffer()
    /// How much of `buffered` is known to hold no end of head.
    private var scanned = 0
    private var decided = false
    private var timer: Scheduled<Void>?

    public init(hosts: GatewayHosts, timeout: TimeAmount, decision: EventLoopPromise<Decision>) {
        self.hosts = hosts
        self.timeout = timeout
        self.decision = decision
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        if buffered.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(buffered))
            context.fireChannelReadComplete()
        }
        buffered.clear()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffered.writeBuffer(&bytes)
        guard !decided else { return }
        if let end = RequestHead.end(in: buffered, scanned: scanned) {
            let text = buffered.getString(at: buffered.readerIndex, length: end - 4) ?? ""
            let host = RequestHead(text)?.value("host")
            decide(host.flatMap(hosts.uid(host:)) != nil ? .gateway : .api)
        } else if buffered.readableBytes > 64 * 1024 {
            // Not for the gateway: the API's own limits answer it.
            decide(.api)
        } else {
            scanned = buffered.readableBytes
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if !decided {
            decided = true
            decision.fail(ChannelError.inputClosed)
        }
        context.fireChannelInactive()
    }

    func decide(_ choice: Decision) {
        decided = true
        timer?.cancel()
        decision.succeed(choice)
    }
}

/// The HTTP gateway on a port of its own (`--http-gateway-port`).
public final class HTTPGateway: Service, Sendable {
    let host: String
    let port: Int
    let settings: HTTPGatewayHandler.Settings
    let directory: any AccessDirectory
    let logger: Logger
    /// Serves TLS with the context this gives when a connection is accepted (the API's
    /// certificate, which SIGHUP may replace), when set.
    let tls: (@Sendable () -> NIOSSLContext)?

    public init(
        host: String,
        port: Int,
        settings: HTTPGatewayHandler.Settings,
        directory: any AccessDirectory,
        tls: (@Sendable () -> NIOSSLContext)? = nil,
        logger: Logger
    ) {
        self.host = host
        self.port = port
        self.settings = settings
        self.directory = directory
        self.tls = tls
        self.logger = logger
    }

    public func run() async throws {
        let settings = settings
        let directory = directory
        let tls = tls
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls()))
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPGatewayHandler(settings: settings, directory: directory)
                        )
                    }
                }
                .bind(host: host, port: port)
                .get()
        } catch {
            logger.error("http gateway: cannot listen", metadata: ["port": "\(port)", "error": "\(error)"])
            try? await gracefulShutdown()
            return
        }
        logger.info("http gateway listening", metadata: ["port": "\(port)"])
        try? await gracefulShutdown()
        try? await channel.close()
    }
}
