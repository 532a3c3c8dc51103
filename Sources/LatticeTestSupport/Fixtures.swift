import Foundation
import LatticeDomain

/// A ready-made instance for tests, shaped like the seed's sample.
public func sampleInstance(
    name: String = "instance-0000abcd",
    namespace: String = "alice",
    status: InstanceStatus = .running
) -> Instance {
    Instance(
        name: name,
        uid: "8d40c2e6-a0b0-45c2-9b40-a0de065104f5",
        namespace: namespace,
        cluster: "host-cluster",
        regionID: "r",
        displayName: "test1",
        image: "img",
        cost: CostSelection(
            costType: 1,
            costTime: "",
            couponID: "",
            discountID: "",
            gpuSkuID: "66",
            diskSkuID: "1",
            orderID: "o",
            unitPrice: Money("2.50")!
        ),
        resources: InstanceResources(
            cpuCores: 16,
            memoryGiB: 96,
            gpuCount: 1,
            gpuModel: "4090",
            gpuResourceKey: "nvidia.com/gpu-4090",
            systemDiskGiB: 30
        ),
        volume: DataVolume(
            name: "volume-920020f7",
            pathInContainer: "/root/data",
            sizeGiB: 50,
            type: "shared-filesystem"
        ),
        access: AccessSecrets(jupyterToken: "t", sshPassword: "p", sshPort: 30099),
        status: status,
        placement: status.holdsGPUs ? GPUPlacement(node: "gpu-4090-01", gpuIndices: [0]) : nil,
        pod: status.holdsGPUs ? PodInfo(name: name + "-dd6nm", node: "gpu-4090-01", ip: "172.31.213.79") : nil,
        createdAt: Date(timeIntervalSince1970: 1_725_273_273)
    )
}
