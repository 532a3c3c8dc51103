import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket

/// A WebSocket client connection for `pods/exec`, on NIO directly: the handshake is written
/// and read by `Handshake`, which then puts the frame codec in its place and hands it every
/// byte read after the `101` answer (an API server may send the first frames in the same
/// read; a generic HTTP upgrader can lose them).
enum KubeWebSocket {
    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    /// Connects to `host:port` (TLS when `tls` is given), sends the upgrade request for
    /// `path` with `headers`, and returns the channel of frames once the server agreed.
    static func connect(
        host: String,
        port: Int,
        path: String,
        headers: [(String, String)],
        tls: TLSConfiguration?,
        serverName: String?
    ) async throws -> NIOAsyncChannel<WebSocketFrame, WebSocketFrame> {
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let upgrade = request
        let context = try tls.map { try NIOSSLContext(configuration: $0) }
        let upgraded = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        let ssl = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                        try channel.pipeline.syncOperations.addHandler(ssl)
                    }
                    let promise = channel.eventLoop.makePromise(
                        of: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>.self
                    )
                    try channel.pipeline.syncOperations.addHandler(Handshake(request: upgrade, promise: promise))
                    return promise.futureResult
                }
            }
        return try await upgraded.get()
    }

    /// Writes the upgrade request, reads the answer, and on `101` swaps itself for the
    /// frame codec and an async channel, passing on what was read after the answer.
    final class Handshake: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer

        let request: String
        let promise: EventLoopPromise<NIOAsyncChannel<WebSocketFrame, WebSocketFrame>>
        var received = ByteBuffer()
        var done = false

        init(request: String, promise: EventLoopPromise<NIOAsyncChannel<WebSocketFrame, WebSocketFrame>>) {
            self.request = request
            self.promise = promise
        }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(NIOAny(ByteBuffer(string: request)), promise: nil)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !done else { return context.fireChannelRead(data) }
            var bytes = unwrapInboundIn(data)
            received.writeBuffer(&bytes)
            let view = received.readableBytesView
            guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else {
                if received.readableBytes > 64 << 10 { fail(context, "the upgrade answer is too long") }
                return
            }
            let headLength = end.upperBound - view.startIndex
            let head = received.readString(length: headLength) ?? ""
            let statusLine = head.split(separator: "\r\n").first.map(String.init) ?? ""
            guard statusLine.hasPrefix("HTTP/1.1 101") else {
                // The body, if any, says why (a Status object): keep what arrived.
                let rest = received.readString(length: received.readableBytes) ?? ""
                let message = Self.statusMessage(rest) ?? statusLine
                return fail(context, "the exec was refused: \(message)")
            }
            done = true
            let leftover = received
            do {
                let sync = context.pipeline.syncOperations
                try sync.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)))
                try sync.addHandler(WebSocketFrameEncoder())
                let channel = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                    wrappingChannelSynchronously: context.channel
                )
                promise.succeed(channel)
                if leftover.readableBytes > 0 { context.fireChannelRead(NIOAny(leftover)) }
                context.fireChannelReadComplete()
                sync.removeHandler(context: context, promise: nil)
            } catch {
                fail(context, "\(error)")
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if !done { fail(context, "\(error)") } else { context.fireErrorCaught(error) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !done { fail(context, "the connection closed during the upgrade") }
            context.fireChannelInactive()
        }

        func fail(_ context: ChannelHandlerContext, _ why: String) {
            guard !done else { return }
            done = true
            promise.fail(Refused(description: why))
            context.close(promise: nil)
        }

        static func statusMessage(_ body: String) -> String? {
            guard let start = body.firstIndex(of: "{"),
                let object = try? JSONSerialization.jsonObject(with: Data(body[start...].utf8)) as? [String: Any]
            else { return nil }
            return object["message"] as? String
        }
    }
}
