import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import LatticeGateway
import Logging
import NIOCore

/// The API's port, shared with the HTTP gateway: each connection's first request head
/// decides (`HostSniffer`): a `Host` of `<uid>.<public-host>` goes to the gateway, anything
/// else to the API's HTTP/1 pipeline, which gets the bytes as if nothing had read them.
///
/// A child channel's setup runs before the channel reads anything, so setup only adds the
/// sniffer; the pipeline is completed in `handle`, once the head has arrived.
struct APIOrGatewayChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        let sniffer: NIOLoopBound<HostSniffer>
        let decision: EventLoopFuture<HostSniffer.Decision>
    }

    let http1: HTTP1WebSocketUpgradeChannel
    let settings: HTTPGatewayHandler.Settings
    let directory: any AccessDirectory
    let headerTimeout: TimeAmount
    let connections: ConnectionCounter

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let decision = channel.eventLoop.makePromise(of: HostSniffer.Decision.self)
        let settings = settings
        let timeout = headerTimeout
        let connections = connections
        return channel.eventLoop.makeCompletedFuture {
            let sniffer = HostSniffer(hosts: settings.hosts, timeout: timeout, decision: decision)
            try channel.pipeline.syncOperations.addHandler(ConnectionAdmission(counter: connections))
            try channel.pipeline.syncOperations.addHandler(sniffer)
            return Value(
                channel: channel,
                sniffer: NIOLoopBound(sniffer, eventLoop: channel.eventLoop),
                decision: decision.futureResult
            )
        }
    }

    func handle(value: Value, logger: Logger) async {
        let channel = value.channel
        guard let choice = try? await value.decision.get() else {
            try? await channel.close()
            return
        }
        let http1 = http1
        let settings = settings
        let directory = directory
        switch choice {
        case .api:
            let api = try? await channel.eventLoop.flatSubmit {
                http1.setup(channel: channel, logger: logger).flatMap { wrapped in
                    // Removing the sniffer hands what it read to the API's pipeline.
                    channel.pipeline.syncOperations.removeHandler(value.sniffer.value).map { wrapped }
                }
            }.get()
            guard let api else {
                try? await channel.close()
                return
            }
            await http1.handle(value: api, logger: logger)
        case .gateway:
            let installed: Void? = try? await channel.eventLoop.submit {
                // Behind the sniffer, which hands it every byte read so far as it goes.
                try channel.pipeline.syncOperations.addHandler(
                    HTTPGatewayHandler(settings: settings, directory: directory)
                )
                channel.pipeline.syncOperations.removeHandler(value.sniffer.value, promise: nil)
            }.get()
            if installed == nil { try? await channel.close() }
            try? await channel.closeFuture.get()
        }
    }
}
