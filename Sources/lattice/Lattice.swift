import ArgumentParser
import Foundation
import LatticeClient
import LatticeDomain
import LatticeServer

/// The one executable: `lattice serve` runs the control plane; every other verb is a
/// client of it. Exit codes: 0 success, 1 API or connection error, 2 usage.
@main
struct Lattice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lattice",
        abstract: "A self-hostable GPU cloud control plane, and its command line.",
        version: LatticeVersion.current,
        subcommands: [
            Serve.self, Login.self, Regions.self, Skus.self, Images.self, Balance.self, Orders.self, Bills.self,
            Instances.self, Templates.self, BudgetCommand.self, Tokens.self, SSHKeys.self, SSH.self, Audit.self,
            Events.self, Webhooks.self, IdleDefaultCommand.self,
            Admin.self, Host.self,
            DB.self,
            Completion.self,
        ]
    )

    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as LatticeAPIError {
            Terminal.error("error: \(error.code): \(error.message)")
            Foundation.exit(1)
        } catch let error as LatticeClientError {
            Terminal.error("error: \(error)")
            Foundation.exit(1)
        } catch let error as LatticeError {
            // What a local command (db backup, restore) refuses, said as the API says it.
            Terminal.error("error: \(error.code): \(error.message)")
            Foundation.exit(1)
        } catch let error as UsageError {
            Terminal.error("error: \(error.message)")
            Foundation.exit(2)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            Terminal.error(fullMessage(for: error))
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}

/// A mistake in how the command was called (exit code 2).
struct UsageError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
