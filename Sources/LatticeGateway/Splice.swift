import NIOCore
import NIOSSH

/// Joins two channels on one event loop byte for byte: what one reads the other writes,
/// reading pauses while the other cannot write, half-closes and closes pass across. Used
/// for SSH port forwards and for the HTTP gateway's connections.
final class SpliceHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: SpliceHandler?
    private var context: ChannelHandlerContext?
    private var readWanted = false

    /// Two handlers that splice each other, one for each channel.
    static func pair() -> (SpliceHandler, SpliceHandler) {
        let first = SpliceHandler()
        let second = SpliceHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.send(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) { partner?.flushOut() }

    func channelInactive(context: ChannelHandlerContext) { partner?.closeOut() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.halfCloseOut()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
    }

    func read(context: ChannelHandlerContext) {
        if partner?.isWritable ?? true {
            context.read()
        } else {
            readWanted = true
        }
    }

    // MARK: Called by the partner

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    private func send(_ buffer: ByteBuffer) { context?.write(wrapOutboundOut(buffer), promise: nil) }

    private func flushOut() { context?.flush() }

    private func closeOut() { context?.close(promise: nil) }

    private func halfCloseOut() { context?.close(mode: .output, promise: nil) }

    private func resumeReading() {
        guard readWanted, let context else { return }
        readWanted = false
        context.read()
    }
}

/// An SSH channel's data as plain bytes (standard error is dropped: a forward has none).
final class SSHDataCodec: ChannelDuplexHandler {
    typealias InboundIn = SSHChannelData
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = SSHChannelData

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard case .channel = message.type, case .byteBuffer(let bytes) = message.data else { return }
        context.fireChannelRead(wrapInboundOut(bytes))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let message = SSHChannelData(type: .channel, data: .byteBuffer(unwrapOutboundIn(data)))
        context.write(wrapOutboundOut(message), promise: promise)
    }
}
