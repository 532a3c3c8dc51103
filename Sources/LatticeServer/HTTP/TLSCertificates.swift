import HummingbirdCore
import LatticeDomain
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The server's TLS certificate and key, read from the operator's PEM files at start and
/// again on SIGHUP (`ReloadOnHangup`). Every new connection takes the context current when
/// it is accepted; connections already open keep theirs. A pair that does not load is
/// refused and the one in use stays.
public final class TLSCertificates: Sendable {
    let files: TLSFiles
    private let current: Mutex<NIOSSLContext>

    public init(files: TLSFiles) throws {
        self.files = files
        current = Mutex(try Self.context(files))
    }

    /// The context for a connection accepted now.
    public var context: NIOSSLContext { current.withLock { $0 } }

    /// Reads the files again; throws (and keeps the old pair) if they do not load.
    func reload() throws {
        let next = try Self.context(files)
        current.withLock { $0 = next }
    }

    static func context(_ files: TLSFiles) throws -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
            guard !chain.isEmpty else { throw LatticeError.notFound("a certificate in \(files.certificate)") }
            let configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: files.key, format: .pem))
            )
            return try NIOSSLContext(configuration: configuration)
        } catch let error as LatticeError {
            throw error
        } catch {
            throw LatticeError(
                .badRequest,
                code: "InvalidTLS",
                "--tls-cert \(files.certificate), --tls-key \(files.key): \(error)"
            )
        }
    }
}

/// A child channel that speaks TLS with the context `TLSCertificates` holds when the
/// connection is accepted, then hands the decrypted bytes to its base channel.
struct ReloadingTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let certificates: TLSCertificates

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let context = certificates.context
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension ReloadingTLSChannel: HTTPChannelHandler where Base: HTTPChannelHandler {
    var responder: HTTPChannelHandler.Responder { base.responder }
}

extension ServerChildChannel {
    /// This channel behind TLS (opens the existential the server builder gives).
    func behindTLS(_ certificates: TLSCertificates) -> any ServerChildChannel {
        ReloadingTLSChannel(base: self, certificates: certificates)
    }
}
