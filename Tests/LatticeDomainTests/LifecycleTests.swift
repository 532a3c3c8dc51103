import Foundation
import LatticeDomain
import LatticeTestSupport
import Testing

@Suite(.timeLimit(.minutes(10))) struct InstanceLifecycleTests {
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
                sshPort: 30001,
                podName: "p",
                now: now
            )
            #expect(started.status == .starting && started.access.sshPort == 30001)
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

@Suite(.timeLimit(.minutes(10))) struct ReconcilePlannerTests {
    func observed(_ phase: WorkloadObservation.Phase, node: String = "gpu-4090-01") -> WorkloadObservation {
        WorkloadObservation(
            instanceName: "instance-0000abcd",
            podName: "instance-0000abcd-dd6nm",
            node: node,
            ip: "172.31.213.79",
            phase: phase
        )
    }

    @Test func anUnreachableNodeLeavesItsInstancesRunningWithAReason() {
        var running = sampleInstance(status: .running)
        running.pod = PodInfo(name: "instance-0000abcd-dd6nm", node: "gpu-4090-01", ip: "172.31.213.79")
        let reason = ReconcilePlanner.unreachablePrefix + "EngineUnreachable: gpu-4090-01 does not answer"
        // Unseen on a node that does not answer: not lost, only said.
        #expect(
            ReconcilePlanner.plan(running, observed: nil, unreachable: "EngineUnreachable: gpu-4090-01 does not answer")
                == .record(.unreachable(reason: reason))
        )
        let marked = ReconcilePlanner.apply(.unreachable(reason: reason), to: running, now: Date())
        #expect(marked.status == .running && marked.statusReason == reason && marked.placement == running.placement)
        #expect(
            ReconcilePlanner.plan(marked, observed: nil, unreachable: "EngineUnreachable: gpu-4090-01 does not answer")
                == nil
        )
        // Back: the reason goes.
        #expect(ReconcilePlanner.plan(marked, observed: observed(.running)) == .record(.running(running.pod!)))
        // Other states wait for the node rather than act.
        #expect(ReconcilePlanner.plan(sampleInstance(status: .starting), observed: nil, unreachable: "x") == nil)
        // A node gone for good (no `unreachable`) still loses the workload.
        #expect(
            ReconcilePlanner.plan(running, observed: nil)
                == .record(.failed(reason: "WorkloadLost: the workload vanished from its node"))
        )
    }

    /// Issue 22: a driver's note (a data disk it cannot cap) is a Running instance's
    /// `statusReason`, recorded with the start and kept in step with what the driver says.
    @Test func aDriversNoteIsARunningInstancesReason() {
        let note = "DiskSizeNotEnforced: the storage of host h cannot cap volume sizes"
        let pod = PodInfo(name: "p", node: "h", ip: "10.0.0.2")
        func seen(_ note: String) -> WorkloadObservation {
            WorkloadObservation(instanceName: "i", podName: "p", node: "h", ip: "10.0.0.2", phase: .running, note: note)
        }
        let creating = sampleInstance(status: .creating)
        #expect(ReconcilePlanner.plan(creating, observed: seen(note)) == .record(.running(pod, note: note)))
        var running = ReconcilePlanner.apply(.running(pod, note: note), to: creating, now: Date())
        #expect(running.status == .running && running.statusReason == note)
        #expect(ReconcilePlanner.plan(running, observed: seen(note)) == nil, "nothing changed")
        #expect(ReconcilePlanner.plan(running, observed: seen("")) == .record(.running(pod, note: "")))
        running.statusReason = ""
        #expect(ReconcilePlanner.plan(running, observed: seen(note)) == .record(.running(pod, note: note)))
        let off = try? InstanceLifecycle.powerOff(
            ReconcilePlanner.apply(.running(pod, note: note), to: creating, now: Date()),
            gracePeriodSeconds: 1,
            snapshot: nil,
            now: Date()
        )
        #expect(off?.statusReason == "", "a power_off clears the note: Stopped says nothing")
    }

    @Test func aHostLocalVolumeRemembersItsNodeAndPinsPowerOn() {
        var instance = sampleInstance(status: .creating)
        instance.volume.hostLocal = true
        let pod = PodInfo(name: "p", node: "host-b", ip: "10.0.0.2")
        let ran = ReconcilePlanner.apply(.running(pod), to: instance, now: Date())
        #expect(ran.volume.node == "host-b")
        let moved = ReconcilePlanner.apply(.running(PodInfo(name: "p", node: "host-c", ip: "")), to: ran, now: Date())
        #expect(moved.volume.node == "host-b", "the volume does not move")
        #expect(PlacementRequest(powerOn: ran).node == "host-b")
        #expect(PlacementRequest(powerOn: sampleInstance(status: .stopped)).node == nil)
        let request = PlacementRequest(powerOn: ran)
        #expect(request.refusal(freeInCluster: 3).contains("data volume is on node host-b"))
        let nodes = [
            NodeCapacity(
                node: Node(name: "host-a", gpuModel: ran.resources.gpuModel, gpuCount: 8, cpuCores: 64, memoryGiB: 512),
                cluster: ran.cluster
            ),
            NodeCapacity(
                node: Node(name: "host-b", gpuModel: ran.resources.gpuModel, gpuCount: 8, cpuCores: 64, memoryGiB: 512),
                cluster: ran.cluster,
                healthy: false
            ),
        ]
        #expect(PlacementPolicy.place(request, on: nodes) == nil, "only its own node will do")
        var up = nodes
        up[1].healthy = true
        #expect(PlacementPolicy.place(request, on: up)?.node == "host-b")
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

    /// Every status × what the driver reports (nothing, or each phase), with and without a
    /// snapshot request: the one step the planner must choose.
    @Test func theWholeTableOfStatusAndObservedPhase() {
        let pod = PodInfo(name: "instance-0000abcd-dd6nm", node: "gpu-4090-01", ip: "172.31.213.79")
        let lost = ReconcileStep.record(.failed(reason: "WorkloadLost: the workload vanished from its node"))
        let exited = ReconcileStep.record(.failed(reason: "Exited: the workload stopped on its own"))
        let failed = ReconcileStep.record(.failed(reason: "r"))
        let stopped = ReconcileStep.record(.stopped(reason: ""))
        let stop = ReconcileStep.stop(gracePeriodSeconds: 7)
        let request = SnapshotRequest(imageReference: "h/alice/img:v1")
        let commit = ReconcileStep.commitThenStop(request)
        // Columns: nothing observed, starting, running, stopping, stopped, failed.
        let table: [(InstanceStatus, Bool, [ReconcileStep?])] = [
            (.creating, false, [.start, nil, .record(.running(pod)), nil, .start, failed]),
            (.starting, false, [.start, nil, .record(.running(pod)), nil, .start, failed]),
            (.running, false, [lost, nil, nil, exited, exited, failed]),
            (.stopping, false, [stopped, stop, stop, nil, stopped, stopped]),
            (.stopping, true, [stopped, stop, stop, nil, .record(.saving), stopped]),
            (.saving, false, [stopped, stopped, stopped, stopped, stopped, stopped]),
            (.saving, true, [commit, commit, commit, commit, commit, commit]),
            (.stopped, false, [nil, stop, stop, nil, nil, nil]),
            (.failed, false, [nil, .discard, .discard, .discard, nil, .discard]),
        ]
        let phases: [WorkloadObservation.Phase?] = [
            nil, .starting, .running, .stopping, .stopped, .failed(reason: "r"),
        ]
        for (status, withSnapshot, steps) in table {
            var instance = sampleInstance(status: status)
            instance.desired.gracePeriodSeconds = 7
            instance.desired.snapshot = withSnapshot ? request : nil
            for (phase, expected) in zip(phases, steps) {
                let step = ReconcilePlanner.plan(instance, observed: phase.map { observed($0) })
                #expect(step == expected, "\(status) snapshot=\(withSnapshot) observed \(String(describing: phase))")
            }
            instance.desired.deleted = true
            for phase in phases {
                #expect(ReconcilePlanner.plan(instance, observed: phase.map { observed($0) }) == .destroyThenPurge)
            }
        }
        #expect(Set(table.map(\.0)).union([.deleting]) == Set(InstanceStatus.allCases), "every status is in the table")
    }

    /// Plays the planner against a driver that does what it is told: from every status ×
    /// observed phase, applying each step's result and planning again reaches a state with
    /// nothing left to do within a few steps, and that state agrees with the workload.
    @Test func applyingEachStepAndPlanningAgainConverges() {
        let phases: [WorkloadObservation.Phase?] = [
            nil, .starting, .running, .stopping, .stopped, .failed(reason: "r"),
        ]
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for status in InstanceStatus.allCases {
            for snapshot in [nil, SnapshotRequest(imageReference: "h/alice/img:v1")] {
                for deleted in [false, true] {
                    for phase in phases {
                        var instance: Instance? = sampleInstance(status: status)
                        instance?.desired.snapshot = snapshot
                        instance?.desired.deleted = deleted || status == .deleting
                        var workload = phase
                        var steps: [ReconcileStep] = []
                        let start =
                            "\(status) snapshot=\(snapshot != nil) deleted=\(deleted) "
                            + "observed \(String(describing: phase))"
                        while let current = instance, steps.count < 8 {
                            guard let step = ReconcilePlanner.plan(current, observed: workload.map { observed($0) })
                            else {
                                // Waiting is only right while the workload is on its way somewhere.
                                if workload == .starting { workload = .running; continue }
                                if workload == .stopping { workload = .stopped; continue }
                                break
                            }
                            steps.append(step)
                            switch step {
                            case .start: workload = .running
                            case .stop: workload = .stopped
                            case .discard: workload = nil
                            case .destroyThenPurge: instance = nil; workload = nil
                            case .commitThenStop:
                                instance = ReconcilePlanner.apply(.stopped(reason: ""), to: current, now: now)
                            case .record(let transition):
                                instance = ReconcilePlanner.apply(transition, to: current, now: now)
                            }
                        }
                        #expect(steps.count <= 4, "\(start): no fixed point after \(steps)")
                        guard let final = instance else {
                            #expect(deleted || status == .deleting, "\(start): purged without a delete")
                            continue
                        }
                        #expect(!final.desired.deleted, "\(start): a deleted instance must be purged")
                        switch final.status {
                        case .running:
                            #expect(workload == .running, "\(start): Running over \(String(describing: workload))")
                            #expect(final.placement != nil)
                        case .stopped, .failed:
                            #expect(workload != .running && workload != .starting, "\(start): \(final.status) but runs")
                            #expect(final.placement == nil, "\(start): \(final.status) still holds GPUs")
                        default:
                            Issue.record("\(start): settled in \(final.status) after \(steps)")
                        }
                        for (a, b) in zip(steps, steps.dropFirst()) { #expect(a != b, "\(start): repeated \(a)") }
                    }
                }
            }
        }
    }
}
