// An example program on the Lattice Swift SDK: finds the cheapest pay-as-you-go GPU SKU
// with free GPUs, starts an instance on it, prints how to connect, and deletes it.
//
//   LATTICE_URL=http://127.0.0.1:8080 LATTICE_TOKEN=lat_... swift run lattice-sdk-example
import Foundation
import LatticeClient
import LatticeDomain

let environment = ProcessInfo.processInfo.environment
guard let url = environment["LATTICE_URL"].flatMap(URL.init(string:)), let token = environment["LATTICE_TOKEN"] else {
    FileHandle.standardError.write(Data("set LATTICE_URL and LATTICE_TOKEN\n".utf8))
    exit(2)
}
let client = LatticeClient(baseURL: url, namespace: environment["LATTICE_NAMESPACE"], token: token)

do {
    let skus = try await client.gpuSkus()
    guard
        let sku = skus.filter({ $0.sellingType == "1" && $0.remainGPUCount >= $0.gpuCounts })
            .min(by: { (Money($0.effectivePrice) ?? .zero) < (Money($1.effectivePrice) ?? .zero) })
    else {
        print("no pay-as-you-go GPU is free right now")
        exit(1)
    }
    guard let image = try await client.images().nodes.first(where: { $0.kind == "official" }) else {
        print("no official image")
        exit(1)
    }
    print("cheapest free SKU: \(sku.skusID) (\(sku.gpuCounts)x\(sku.gpuProduct)) at \(sku.effectivePrice)/h")
    let instance = try await client.createInstance(
        cluster: sku.clusterName,
        .init(gpuSkuID: sku.skusID, displayName: "sdk-example", image: image.name)
    )
    let running = try await client.waitForStatus(cluster: sku.clusterName, name: instance.name, .running) {
        print("  \(instance.name): \($0.status)")
    }
    print("ssh: \(running?.servers.SSH.sshAddr ?? "") (password \(running?.servers.SSH.sshPassword ?? ""))")
    print("jupyter: \(running?.servers.Jupyterlab ?? "")")
    try await client.deleteInstance(cluster: sku.clusterName, name: instance.name)
    print("deleted \(instance.name); balance now \(try await client.balance().balance)")
} catch let error as LatticeAPIError {
    print("error: \(error.code): \(error.message)")
    exit(1)
}
