import LatticeDomain
import NIOCore
import NIOPosix

/// Checks that the listening address is free before the server creates anything, so a
/// second `lattice serve` on a busy port fails before it touches the store or prints a token.
enum PortProbe {
    static func ensureFree(host: String, port: Int) async throws {
        guard port != 0 else { return }
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port)
                .get()
        } catch {
            throw LatticeError(
                .unavailable,
                code: "AddressInUse",
                "cannot listen on \(host):\(port): \(error); is another server running there? (--host, --port)"
            )
        }
        try await channel.close()
    }
}
