import Foundation
import LatticeCompute
import LatticeDomain
import LatticeTestSupport
import Testing

@testable import LatticeComputeEngine

@Suite(.timeLimit(.minutes(10))) struct EngineRequestTests {
    let node = Node(name: "ws", gpuModel: "4090", gpuCount: 2, cpuCores: 32, memoryGiB: 128)

    func body(_ requests: EngineDriver.GPURequests) -> [String: Any] {
        var instance = sampleInstance(status: .creating)
        instance.placement = GPUPlacement(node: "ws", gpuIndices: [0, 1])
        let driver = EngineDriver(cluster: "local", node: node, socketPath: "/nonexistent.sock", gpuRequests: requests)
        return driver.createBody(WorkloadSpec(instance: instance))
    }

    @Test func dockerAsksForDevicesByID() throws {
        let host = body(.docker)["HostConfig"] as! [String: Any]
        let requests = host["DeviceRequests"] as! [[String: Any]]
        #expect(requests.count == 1)
        #expect(requests[0]["Driver"] as? String == "nvidia")
        #expect(requests[0]["DeviceIDs"] as? [String] == ["0", "1"])
        #expect(requests[0]["Capabilities"] as? [[String]] == [["gpu"]])
        #expect(host["Devices"] == nil)
        let json = String(
            decoding: try JSONSerialization.data(withJSONObject: requests, options: .sortedKeys),
            as: UTF8.self
        )
        #expect(json == #"[{"Capabilities":[["gpu"]],"DeviceIDs":["0","1"],"Driver":"nvidia"}]"#)
    }

    @Test func podmanAsksForCDIDevices() throws {
        let host = body(.cdi)["HostConfig"] as! [String: Any]
        let devices = host["Devices"] as! [[String: String]]
        #expect(devices.map { $0["PathOnHost"] } == ["nvidia.com/gpu=0", "nvidia.com/gpu=1"])
        #expect(host["DeviceRequests"] == nil)
    }

    @Test func containerCarriesLabelsEnvVolumeLimitsAndPorts() {
        let created = body(.none)
        let host = created["HostConfig"] as! [String: Any]
        #expect(host["DeviceRequests"] == nil && host["Devices"] == nil)
        #expect((host["NanoCpus"] as? NSNumber)?.int64Value == 16_000_000_000)
        #expect((host["Memory"] as? NSNumber)?.int64Value == 103_079_215_104)
        let mounts = host["Mounts"] as! [[String: String]]
        #expect(mounts == [["Type": "volume", "Source": "volume-920020f7", "Target": "/root/data"]])
        // Nothing is published on the host: the gateways reach the container.
        #expect(host["PortBindings"] == nil)
        let labels = created["Labels"] as! [String: String]
        #expect(
            labels["lattice.managed"] == "true" && labels["lattice.instance"] == "instance-0000abcd"
                && labels["lattice.gpus"] == "0,1"
        )
        let env = created["Env"] as! [String]
        #expect(env.contains("LATTICE_ROOT_PASSWORD=p") && env.contains("JUPYTER_TOKEN=t"))
    }

    @Test func containersRunWithoutNewPrivilegesAndAReducedCapabilitySet() {
        let host = body(.none)["HostConfig"] as! [String: Any]
        #expect(host["SecurityOpt"] as? [String] == ["no-new-privileges"])
        #expect(host["CapDrop"] as? [String] == ["ALL"])
        let kept = Set(host["CapAdd"] as! [String])
        #expect(kept.isSuperset(of: ["CHOWN", "SETUID", "SETGID", "SYS_CHROOT"]))
        #expect(kept.isDisjoint(with: ["NET_RAW", "MKNOD", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"]))
        #expect(host["Privileged"] == nil)
    }

    @Test func countsGPUsFromNvidiaSmiOutput() {
        #expect(GPUDiscovery.parseIndexList("0\n1\n2\n3\n") == 4)
        #expect(GPUDiscovery.parseIndexList("") == nil)
        #expect(GPUDiscovery.parseIndexList("No devices were found\n") == nil)
    }

    @Test func anEngineThatIsDownMakesItsNodeUnhealthy() async throws {
        let driver = EngineDriver(cluster: "local", node: node, socketPath: "/nonexistent/lattice.sock")
        #expect(try await driver.nodes().first?.healthy == false)
    }

    /// Docker's and Podman's container states, as the planner sees them: a dead container is
    /// a failed workload with the engine's words; one on its way is waited for.
    @Test func engineStatesMapToWorkloadPhases() {
        let table: [(String, WorkloadObservation.Phase)] = [
            ("running", .running), ("Running", .running),
            ("created", .starting), ("restarting", .starting), ("configured", .starting), ("initialized", .starting),
            ("paused", .stopping), ("removing", .stopping), ("stopping", .stopping),
            ("exited", .stopped), ("stopped", .stopped),
            ("dead", .failed(reason: "ContainerDead: Dead")),
            ("something-new", .starting),
        ]
        for (state, phase) in table {
            #expect(EngineDriver.phase(state: state, status: "Dead") == phase, "\(state)")
        }
    }
}
