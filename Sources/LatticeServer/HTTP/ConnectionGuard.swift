import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Open connections per client address and in all, shared by every connection's
/// `ConnectionGuard`: the total keeps API clients within their share of the open-file limit
/// (`DescriptorBudget.apiConnections`).
final class ConnectionCounter: Sendable {
    struct Open {
        var perAddress: [String: Int] = [:]
        var total = 0
    }

    let perAddress: Int
    let total: Int
    private let open = Mutex(Open())

    /// - Parameters:
    ///   - perAddress: the most connections one address may hold; 0 means no cap.
    ///   - total: the most connections in all; 0 means no cap.
    init(perAddress: Int, total: Int = 0) {
        self.perAddress = perAddress
        self.total = total
    }

    /// Counts a new connection; false (and not counted) if its address or the server is at the cap.
    func admit(_ address: String) -> Bool {
        open.withLock { open in
            let count = open.perAddress[address, default: 0]
            guard perAddress == 0 || count < perAddress, total == 0 || open.total < total else { return false }
            open.perAddress[address] = count + 1
            open.total += 1
            return true
        }
    }

    func release(_ address: String) {
        open.withLock { open in
            let count = open.perAddress[address, default: 1] - 1
            open.perAddress[address] = count > 0 ? count : nil
            open.total -= 1
        }
    }

    func count(_ address: String) -> Int { open.withLock { $0.perAddress[address, default: 0] } }
}

/// First in each connection's pipeline after HTTP decoding: closes a connection whose
/// address already holds `ConnectionCounter.perAddress` connections, and one that has not
/// sent a complete request head within `headerTimeout` of being accepted (slow-header
/// clients). Later requests on a kept-alive connection are bounded by the server's idle
/// timeout instead.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    /// nil when a `ConnectionAdmission` in front of the HTTP pipeline counts instead.
    let counter: ConnectionCounter?
    let headerTimeout: TimeAmount
    private var address: String?
    private var headerDeadline: Scheduled<Void>?

    init(counter: ConnectionCounter?, headerTimeout: TimeAmount) {
        self.counter = counter
        self.headerTimeout = headerTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if let counter {
            let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
            guard counter.admit(address) else {
                context.close(promise: nil)
                return
            }
            self.address = address
        }
        let channel = context.channel
        headerDeadline = context.eventLoop.scheduleTask(in: headerTimeout) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            headerDeadline?.cancel()
            headerDeadline = nil
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        headerDeadline?.cancel()
        headerDeadline = nil
        if let address {
            counter?.release(address)
            self.address = nil
        }
    }
}

/// The per-address connection cap for a port shared by the API and the HTTP gateway: first
/// in the pipeline, before anything is read, so a connection is counted (and refused over
/// the cap) whichever way its first request sends it.
final class ConnectionAdmission: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let counter: ConnectionCounter
    private var address: String?

    init(counter: ConnectionCounter) { self.counter = counter }

    func handlerAdded(context: ChannelHandlerContext) {
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        guard counter.admit(address) else {
            context.close(promise: nil)
            return
        }
        self.address = address
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let address {
            counter.release(address)
            self.address = nil
        }
    }
}
