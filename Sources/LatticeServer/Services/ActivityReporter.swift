import Foundation
import LatticeDomain
import LatticeGateway
import LatticeStore
import Logging
import ServiceLifecycle

/// Writes this replica's gateways' use of instances (`InstanceActivity`) to the store
/// every `interval`, so the leader's idle clocks (SPEC §12) count every replica's
/// sessions and requests. An instance is written at most once per `IdleRule.resolution`
/// while in use; a write that would change nothing is not made.
struct ActivityReporter: Service {
    let activity: InstanceActivity
    let store: any Store
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { break }
                await report()
            }
        }
        await report()
    }

    func report() async {
        for use in activity.unreported(resolution: IdleRule.resolution) {
            do {
                _ = try await store.updateInstance(namespace: use.namespace, name: use.name) { current in
                    IdleRule.used(current, at: use.at) ?? current
                }
            } catch let error as LatticeError where error.kind == .notFound {
                continue  // deleted since
            } catch {
                logger.warning(
                    "cannot record an instance's use; its idle clock may run early",
                    metadata: ["instance": "\(use.name)", "error": "\(error)"]
                )
            }
        }
    }
}
