import Foundation
import LatticeDomain
import LatticeTestSupport
import Testing

@Suite struct InstanceLifecycleTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func powerOffOnlyFromRunning() throws {
        let stopping = try InstanceLifecycle.powerOff(sampleInstance(), gracePeriodSeconds: 5, snapshot: nil, now: now)
        #expect(stopping.status == .stopping)
        #expect(stopping.desired.power == .off)
        #expect(stopping.placement != nil, "GPUs stay held until the stop completes")
        for status in InstanceStatus.allCases where status != .running {
            #expect(
                throws: LatticeError.invalidState(
                    "instance instance-0000abcd is \(status.rawValue); power_off needs Running"
                )
            ) {
                try InstanceLifecycle.powerOff(
                    sampleInstance(status: status),
                    gracePeriodSeconds: 5,
                    snapshot: nil,
                    now: now
                )
            }
        }
    }

    @Test func powerOnFromStoppedOrFailed() throws {
        let placement = GPUPlacement(node: "n", gpuIndices: [3])
        for status in [InstanceStatus.stopped, .failed] {
            let started = try InstanceLifecycle.powerOn(
                sampleInstance(status: status),
                placement: placement,
                podName: "p",
                now: now
            )
            #expect(started.status == .starting)
            #expect(started.placement == placement)
            #expect(started.generation == 2)
        }
        for status in InstanceStatus.allCases where status != .stopped && status != .failed {
            #expect(throws: LatticeError.self) { try InstanceLifecycle.checkPowerOn(sampleInstance(status: status)) }
        }
    }

    @Test func deleteFromAnyStateAndTwiceIsHarmless() {
        for status in InstanceStatus.allCases {
            let deleted = InstanceLifecycle.delete(sampleInstance(status: status), now: now)
            #expect(deleted.desired.deleted)
            #expect(deleted.status == .deleting)
            #expect(InstanceLifecycle.delete(deleted, now: now) == deleted)
        }
    }
}

@Suite struct ReconcilePlannerTests {
    func observed(_ phase: WorkloadObservation.Phase, node: String = "gpu-4090-01") -> WorkloadObservation {
        WorkloadObservation(
            instanceName: "instance-0000abcd",
            podName: "instance-0000abcd-dd6nm",
            node: node,
            ip: "172.31.213.79",
            phase: phase
        )
    }

    @Test func creatingStartsThenRecordsRunning() {
        let creating = sampleInstance(status: .creating)
        #expect(ReconcilePlanner.plan(creating, observed: nil) == .start)
        #expect(ReconcilePlanner.plan(creating, observed: observed(.starting)) == nil)
        let pod = PodInfo(name: "instance-0000abcd-dd6nm", node: "gpu-4090-01", ip: "172.31.213.79")
        #expect(ReconcilePlanner.plan(creating, observed: observed(.running)) == .record(.running(pod)))
        #expect(
            ReconcilePlanner.plan(creating, observed: observed(.failed(reason: "pull")))
                == .record(.failed(reason: "pull"))
        )
    }

    @Test func runningThatVanishesFails() {
        guard case .record(.failed(let reason)) = ReconcilePlanner.plan(sampleInstance(), observed: nil) else {
            Issue.record("expected a failure"); return
        }
        #expect(reason.hasPrefix("WorkloadLost"))
        #expect(ReconcilePlanner.plan(sampleInstance(), observed: observed(.running)) == nil)
    }

    @Test func stoppingStopsThenSavesThenStops() {
        var stopping = sampleInstance(status: .stopping)
        stopping.desired.gracePeriodSeconds = 7
        #expect(ReconcilePlanner.plan(stopping, observed: observed(.running)) == .stop(gracePeriodSeconds: 7))
        #expect(ReconcilePlanner.plan(stopping, observed: observed(.stopping)) == nil)
        #expect(ReconcilePlanner.plan(stopping, observed: observed(.stopped)) == .record(.stopped(reason: "")))
        stopping.desired.snapshot = SnapshotRequest(imageReference: "h/ns/img:v1")
        #expect(ReconcilePlanner.plan(stopping, observed: observed(.stopped)) == .record(.saving))
        var saving = stopping
        saving.status = .saving
        #expect(
            ReconcilePlanner.plan(saving, observed: observed(.stopped))
                == .commitThenStop(SnapshotRequest(imageReference: "h/ns/img:v1"))
        )
    }

    @Test func deletedAlwaysDestroys() {
        for status in InstanceStatus.allCases {
            let deleted = InstanceLifecycle.delete(sampleInstance(status: status), now: Date())
            #expect(ReconcilePlanner.plan(deleted, observed: nil) == .destroyThenPurge)
        }
    }

    @Test func stoppedTransitionReleasesGPUs() {
        let stopped = ReconcilePlanner.apply(.stopped(reason: ""), to: sampleInstance(status: .stopping), now: Date())
        #expect(stopped.placement == nil && stopped.pod == nil && stopped.status == .stopped)
        #expect(stopped.generation == 2)
        let failed = ReconcilePlanner.apply(.failed(reason: "x"), to: sampleInstance(), now: Date())
        #expect(failed.placement == nil && failed.statusReason == "x")
    }

    @Test func planningIsIdempotent() {
        for status in InstanceStatus.allCases {
            for phase in [WorkloadObservation.Phase.starting, .running, .stopping, .stopped, .failed(reason: "r")] {
                let instance = sampleInstance(status: status)
                #expect(
                    ReconcilePlanner.plan(instance, observed: observed(phase))
                        == ReconcilePlanner.plan(instance, observed: observed(phase))
                )
            }
        }
    }
}
