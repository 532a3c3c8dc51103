import Foundation
import LatticeCompute
import LatticeDomain
import Testing

/// What the launcher reports and the cgroup figures it reads (SPEC §11).
@Suite(.timeLimit(.minutes(10))) struct WorkloadLauncherTests {
    @Test func readsWhatTheLauncherReports() {
        var report = WorkloadLauncher.Report()
        var changed: Bool
        changed = report.read("jupyterlab=starting")
        #expect(changed)
        changed = report.read("jupyterlab=starting")
        #expect(!changed)
        // Absent is where a report starts: nothing new.
        changed = report.read("tensorboard=absent")
        #expect(!changed)
        changed = report.read("noise")
        #expect(!changed)
        #expect(report.note == "")
        changed = report.read("jupyterlab=running")
        #expect(changed)
        changed = report.read("startup=0")
        #expect(changed)
        #expect(report.note == "")
        changed = report.read("startup=3")
        #expect(changed)
        #expect(report.note.hasPrefix("StartupScriptFailed: the startup script exited with status 3"))
        #expect(report.apps == WorkloadApps(jupyterlab: .running, tensorboard: .absent))
    }

    @Test func readsCgroupFigures() {
        let reading = CgroupReading(
            "cpu=1000000 1500000\nmemory=1048576 max\ngpu=0, 37, 1200, 81920\ngpu=1, 0, 0, 81920\n"
        )
        let metrics = reading.metrics(at: Date(timeIntervalSince1970: 0))
        #expect(metrics.cpuPercent == 50)
        #expect(metrics.memoryUsedBytes == 1_048_576 && metrics.memoryLimitBytes == 0)
        #expect(metrics.gpus.map(\.utilization) == [37, 0] && metrics.gpus[0].memoryTotalMiB == 81920)
    }
}
