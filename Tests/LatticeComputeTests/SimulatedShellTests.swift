import Foundation
import LatticeCompute
import Testing

@Suite(.timeLimit(.minutes(10))) struct SimulatedShellTests {
    let machine = SimulatedShell.Machine(hostname: "instance-0000abcd", gpuModel: "H20", gpuIndices: [2, 3])

    @Test func runsACommandLineAndEnds() {
        var shell = SimulatedShell(machine: machine, environment: ["GREETING": "hi"], terminal: nil)
        let step = shell.run(commandLine: "echo $GREETING there; hostname; nvidia-smi")
        let lines = step.output.split(separator: "\n").map(String.init)
        #expect(lines[0] == "hi there" && lines[1] == "instance-0000abcd")
        #expect(lines.filter { $0.contains("H20") }.count == 2)
        #expect(step.exitStatus == 0)
    }

    @Test func exitStatusesComeBack() {
        var shell = SimulatedShell(machine: machine, environment: [:], terminal: nil)
        #expect(shell.run(commandLine: "exit 3").exitStatus == 3)
        #expect(shell.run(commandLine: "false").exitStatus == 1)
        #expect(shell.run(commandLine: "no-such-command").exitStatus == 127)
        #expect(shell.run(commandLine: "exit 300").exitStatus == 44)
    }

    @Test func anInteractiveShellEchoesEditsAndResizes() {
        let size = TerminalSize(columns: 80, rows: 24)
        var shell = SimulatedShell(machine: machine, environment: [:], terminal: size)
        #expect(shell.greeting().output.hasSuffix(shell.prompt))
        var step = shell.feed(Data("stty sizx\u{7F}e\r".utf8))
        #expect(step.output.contains("stty sizx\u{08} \u{08}e\r\n24 80\r\n"))
        shell.resize(TerminalSize(columns: 132, rows: 50))
        step = shell.feed(Data("stty size\r".utf8))
        #expect(step.output.contains("50 132\r\n") && step.exitStatus == nil)
        step = shell.feed(Data("exit 5\r".utf8))
        #expect(step.exitStatus == 5)
    }

    @Test func endOfInputEndsAShellWithoutATerminal() {
        var shell = SimulatedShell(machine: machine, environment: [:], terminal: nil)
        #expect(shell.feed(Data("false\n".utf8)).exitStatus == nil)
        #expect(shell.endOfInput().exitStatus == 1)
    }
}
