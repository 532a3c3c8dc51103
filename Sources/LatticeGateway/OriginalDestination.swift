import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Where a connection was headed before the host's firewall redirected it to the gateway
/// (nftables `redirect`, iptables `REDIRECT`): `SO_ORIGINAL_DST` from netfilter's
/// connection tracking, so that one listener serves a whole port range.
enum OriginalDestination {
    /// `SO_ORIGINAL_DST` (linux/netfilter_ipv4.h), and IPv6's `IP6T_SO_ORIGINAL_DST`.
    static let option: Int32 = 80

    /// The original destination port; nil when the socket cannot tell (not redirected
    /// connections answer their own local port).
    static func port(of channel: any Channel) -> EventLoopFuture<Int?> {
        #if canImport(Glibc)
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        if case .v6? = channel.localAddress {
            let answer: EventLoopFuture<sockaddr_in6> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(IPPROTO_IPV6),
                name: SocketOptionName(option)
            )
            return answer.map { Int(UInt16(bigEndian: $0.sin6_port)) as Int? }.recover { _ in nil }
        }
        let answer: EventLoopFuture<sockaddr_in> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(IPPROTO_IP),
            name: SocketOptionName(option)
        )
        return answer.map { Int(UInt16(bigEndian: $0.sin_port)) as Int? }.recover { _ in nil }
        #else
        return channel.eventLoop.makeSucceededFuture(nil)
        #endif
    }
}
