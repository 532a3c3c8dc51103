import LatticeCompute
import LatticeDomain
import Testing

@testable import LatticeServer

/// A driver's failure reaches a client by its kind: no workload is a conflict the client can
/// fix (power on), anything else is the backend not answering.
@Suite(.timeLimit(.minutes(10))) struct DriverErrorKindTests {
    func answer(_ error: DriverError) async -> LatticeError? {
        do {
            try await LatticeAPI.fromDriver { throw error }
            return nil
        } catch {
            return error as? LatticeError
        }
    }

    @Test func eachKindHasItsStatus() async {
        let gone = await answer(DriverError("instance-1 has no container", kind: .notFound))
        #expect(gone?.code == "InvalidState" && gone?.kind.status == 409)
        #expect(gone?.message.contains("instance-1 has no container") == true)
        for kind in [DriverError.Kind.transient, .invalidSpec, .workloadFailed] {
            let other = await answer(DriverError("engine at x does not answer", kind: kind))
            #expect(other?.code == "Unavailable" && other?.kind.status == 503, "\(kind)")
        }
        #expect(DriverError("x").kind == .transient, "unless told otherwise, a failure may pass")
    }
}
