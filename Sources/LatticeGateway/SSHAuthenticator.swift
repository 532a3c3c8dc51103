import Foundation
import Logging
import NIOCore
import NIOSSH
import Synchronization

/// Decides one connection's logins. Which instance a login means depends on where it
/// arrived: on an instance's own port the user must be `root`; on the shared port the user
/// name is the instance's name. A login is let in with the instance's `sshPassword` or a key
/// its namespace registered. A wrong password, another tenant's key and an unknown instance
/// are refused alike, and slowed down alike per address and per instance.
final class SSHAuthenticator: NIOSSHServerUserAuthenticationDelegate, Sendable {
    enum Entry: Sendable, Equatable {
        case shared
        case instancePort(Int)
        /// The redirect port: decided per connection, by where it was headed (`SSHGateway.arrival`).
        case redirected
    }

    let entry: Entry
    let directory: any AccessDirectory
    let throttles: Throttles
    let address: String
    /// Takes a signed-in place for the connection (`SSHConnectionLimits`); false when the
    /// gateway is full, and the login is refused.
    let signIn: @Sendable () -> Bool
    let logger: Logger
    private let authenticated = Mutex<AccessTarget?>(nil)

    /// Failed logins are slowed down per address and per instance.
    struct Throttles: Sendable {
        var address: AuthThrottle
        var instance: AuthThrottle
    }

    init(
        entry: Entry,
        directory: any AccessDirectory,
        throttles: Throttles,
        address: String,
        signIn: @escaping @Sendable () -> Bool = { true },
        logger: Logger = Logger(label: "lattice.ssh")
    ) {
        self.entry = entry
        self.directory = directory
        self.throttles = throttles
        self.address = address
        self.signIn = signIn
        self.logger = logger
    }

    /// The instance this connection logged into (set once authentication succeeded).
    var target: AccessTarget? { authenticated.withLock { $0 } }

    var supportedAuthenticationMethods: NIOSSHAvailableUserAuthenticationMethods { [.publicKey, .password] }

    func requestReceived(
        request: NIOSSHUserAuthenticationRequest,
        responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>
    ) {
        // `none` is every client's first probe for the methods offered: not a failure.
        if case .none = request.request { return responsePromise.succeed(.failure) }
        responsePromise.completeWithTask { await self.decide(request) }
    }

    func decide(_ request: NIOSSHUserAuthenticationRequest) async -> NIOSSHUserAuthenticationOutcome {
        let target = await resolve(request.username)
        let refusal: String
        if let target {
            let method = if case .password = request.request { "password" } else { "publickey" }
            if await accepts(request.request, for: target) {
                if signIn() {
                    throttles.address.succeeded(address)
                    throttles.instance.succeeded(target.name)
                    authenticated.withLock { $0 = target }
                    await directory.signInAttempted(to: target, address: address, method: method, accepted: true)
                    return .success
                }
                await directory.signInAttempted(to: target, address: address, method: method, accepted: false)
                refusal = "the gateway holds as many sessions as it may"
            } else {
                refusal = "wrong credentials"
                await directory.signInAttempted(to: target, address: address, method: method, accepted: false)
            }
        } else {
            refusal = "no such instance"
        }
        var delay = throttles.address.failed(address)
        if let target { delay = max(delay, throttles.instance.failed(target.name)) }
        // The client is told only "refused"; the log says why (the user name is the client's
        // own claim, so it is quoted as given, cut to 64 characters).
        logger.info(
            "ssh login refused",
            metadata: [
                "address": "\(address)", "user": "\(request.username.prefix(64))", "entry": "\(entry)",
                "reason": "\(refusal)", "delay": "\(delay)",
            ]
        )
        if delay > 0 { try? await Task.sleep(for: .milliseconds(Int(delay * 1000))) }
        return .failure
    }

    func resolve(_ username: String) async -> AccessTarget? {
        switch entry {
        case .shared, .redirected:
            guard username.count <= 64 else { return nil }
            return try? await directory.target(instanceName: username)
        case .instancePort(let port):
            guard username == "root" else { return nil }
            return try? await directory.target(sshPort: port)
        }
    }

    func accepts(_ request: NIOSSHUserAuthenticationRequest.Request, for target: AccessTarget) async -> Bool {
        switch request {
        case .password(let given):
            return !target.sshPassword.isEmpty && Self.constantTimeEquals(given.password, target.sshPassword)
        case .publicKey(let offered):
            guard let keys = try? await directory.authorizedKeys(namespace: target.namespace) else { return false }
            return keys.contains { (try? NIOSSHPublicKey(openSSHPublicKey: $0)) == offered.publicKey }
        default:
            return false
        }
    }

    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(truncatingIfNeeded: x.count ^ y.count)
        for index in 0..<max(x.count, y.count) {
            difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
        }
        return difference == 0
    }
}
