import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP (what `systemctl reload` and logrotate send) re-reads what the server can take
/// again while serving: the catalog file (`--catalog`) and the TLS certificate and key.
/// Something that does not load is refused, the one in use stays, and the log says which
/// and why. Without this service SIGHUP would end the process.
final class ReloadOnHangup: Service, Sendable {
    struct Reload: Sendable {
        var what: String
        var run: @Sendable () throws -> Void
    }

    let reloads: [Reload]
    let logger: Logger

    init(reloads: [Reload], logger: Logger) {
        self.reloads = reloads
        self.logger = logger
    }

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in hangups {
                self.reloadAll()
            }
        }
    }

    func reloadAll() {
        guard !reloads.isEmpty else {
            logger.notice("SIGHUP: nothing to reload")
            return
        }
        for reload in reloads {
            do {
                try reload.run()
                logger.notice("SIGHUP: reloaded", metadata: ["what": "\(reload.what)"])
            } catch {
                logger.error(
                    "SIGHUP: reload refused; the one in use stays",
                    metadata: ["what": "\(reload.what)", "error": "\(error)"]
                )
            }
        }
    }
}
