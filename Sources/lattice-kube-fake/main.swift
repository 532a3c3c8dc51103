import Foundation
import LatticeKubeFake

// A fake Kubernetes API server for the black-box tests (never shipped): nodes and pullable
// images from the command line, every object a client sends written to a directory.
//
//   lattice-kube-fake --port-file F [--port N] [--node NAME:GPUS[:MODEL]]... [--image REF]...
//                     [--objects-dir DIR] [--token T]
var arguments = Array(CommandLine.arguments.dropFirst())
var port = 0
var portFile: String?
var objectsDirectory: String?
var nodes: [(String, Int, String)] = []
var images: Set<String> = []
var token: String?
while !arguments.isEmpty {
    let flag = arguments.removeFirst()
    guard let value = arguments.first else {
        FileHandle.standardError.write(Data("lattice-kube-fake: \(flag) needs a value\n".utf8))
        exit(2)
    }
    arguments.removeFirst()
    switch flag {
    case "--port": port = Int(value) ?? 0
    case "--port-file": portFile = value
    case "--objects-dir": objectsDirectory = value
    case "--image": images.insert(value)
    case "--token": token = value
    case "--node":
        let parts = value.split(separator: ":").map(String.init)
        nodes.append((parts[0], parts.count > 1 ? Int(parts[1]) ?? 8 : 8, parts.count > 2 ? parts[2] : "NVIDIA-A100"))
    default:
        FileHandle.standardError.write(Data("lattice-kube-fake: unknown flag \(flag)\n".utf8))
        exit(2)
    }
}

let cluster = FakeCluster(images: images)
for (name, gpus, model) in nodes { cluster.addNode(name, gpus: gpus, model: model) }
if let objectsDirectory {
    try FileManager.default.createDirectory(atPath: objectsDirectory, withIntermediateDirectories: true)
    cluster.receivedSink = FakeObjectWriter(directory: objectsDirectory).write
}
var configured = FakeKubeServer(cluster: cluster)
configured.token = token
let server = configured
let announceTo = portFile
Task {
    do {
        try await server.run(port: port) { listening in
            if let announceTo { try? String(listening).write(toFile: announceTo, atomically: true, encoding: .utf8) }
            print("lattice-kube-fake listening on 127.0.0.1:\(listening)")
        }
    } catch {
        FileHandle.standardError.write(Data("lattice-kube-fake: \(error)\n".utf8))
        exit(1)
    }
}
// The main thread turns its run loop: Foundation's Process (the fake's exec) reports exits there.
RunLoop.main.run()
