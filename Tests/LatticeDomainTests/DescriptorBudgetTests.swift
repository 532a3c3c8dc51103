import Testing

@testable import LatticeDomain

@Suite(.timeLimit(.minutes(10))) struct DescriptorBudgetTests {
    @Test func aLowLimitIsSharedSoNoKindTakesAll() {
        let budget = DescriptorBudget(openFileLimit: 1024)
        #expect(budget.reserve == 256)
        #expect(budget.sshListeners == 288 && budget.sshUnauthenticated == 96)
        #expect(budget.sshSessions == 192 && budget.apiConnections == 192)
        #expect(
            budget.reserve + budget.sshListeners + budget.sshUnauthenticated + budget.sshSessions
                + budget.apiConnections == 1024
        )
    }

    @Test func thePortsHandedOutAreTheLowestOfTheRangeThatTheBudgetCovers() {
        let budget = DescriptorBudget(openFileLimit: 1024)
        #expect(budget.allocatableSSHPorts(1024...65535, perInstanceListeners: true) == 1024...1311)
        #expect(budget.allocatableSSHPorts(30000...30009, perInstanceListeners: true) == 30000...30009)
        #expect(budget.allocatableSSHPorts(1024...65535, perInstanceListeners: false) == 1024...65535)
        #expect(DescriptorBudget(openFileLimit: 2).allocatableSSHPorts(1...9, perInstanceListeners: true) == nil)
        let large = DescriptorBudget(openFileLimit: 1_048_576)
        #expect(large.allocatableSSHPorts(30000...32767, perInstanceListeners: true) == 30000...32767)
    }

    @Test func theRefusalNamesTheLimitAndHowToRaiseIt() {
        let error = DescriptorBudget(openFileLimit: 1024).listenersExhausted(range: 1024...65535)
        #expect(error.kind == .unavailable && error.code == "OpenFileLimitReached")
        #expect(
            error.message.contains("1024") && error.message.contains("288") && error.message.contains("LimitNOFILE")
        )
        #expect(error.retryAfter == 60)
    }
}
