import AsyncHTTPClient
import Foundation
import LatticeCompute
import LatticeDomain
import NIOCore
import Synchronization

/// One host of an engine cluster: its containers, volumes and images through its Docker
/// Engine API. Docker (GPUs through `DeviceRequests`) and Podman (`podman system service`,
/// GPUs through CDI names) alike. `EngineDriver` routes each instance to its host.
///
/// Everything needed to find a workload again is in container labels (`lattice.instance`,
/// `lattice.cluster`, ...), so a restarted server adopts the containers it finds, and the
/// reconciler removes the ones no instance owns.
final class EngineHost: Sendable {
    let cluster: String
    let node: Node
    let engine: EngineAPI
    let gpuRequests: EngineDriver.GPURequests
    let push: EngineDriver.Push?
    let isolation: EngineDriver.Isolation
    struct State {
        /// What each instance's launcher reported since its last start (apps, startup script).
        var launches: [String: LaunchState] = [:]
        /// Why the last start of an instance failed before a container existed (image missing).
        var startFailures: [String: String] = [:]
        /// False once this host's engine refused a volume capped at a size (its storage cannot).
        var capsVolumeSizes = true
    }

    let state = Mutex(State())
    let changeSink: AsyncStream<String>.Continuation
    /// Where work that outlives its call goes: the driver's `run()` keeps it as a child.
    let jobSink: AsyncStream<@Sendable () async -> Void>.Continuation

    /// Records why a start failed where no container shows it, and says so at once.
    func recordStartFailure(_ instance: String, _ reason: String) {
        // The start failed before any container could say so: tell the reconciler now.
        state.withLock { state in state.startFailures[instance] = reason }
        changeSink.yield(instance)
    }

    func hasStartFailure(_ instance: String) -> Bool {
        state.withLock { state in state.startFailures[instance] != nil }
    }

    init(
        cluster: String,
        node: Node,
        engine: EngineAPI,
        gpuRequests: EngineDriver.GPURequests,
        push: EngineDriver.Push?,
        isolation: EngineDriver.Isolation,
        changeSink: AsyncStream<String>.Continuation,
        jobSink: AsyncStream<@Sendable () async -> Void>.Continuation
    ) {
        self.cluster = cluster
        self.node = node
        self.engine = engine
        self.gpuRequests = gpuRequests
        self.push = push
        self.isolation = isolation
        self.changeSink = changeSink
        self.jobSink = jobSink
    }

    /// Counts the host's GPUs by running `nvidia-smi --query-gpu=index --format=csv,noheader`
    /// in `image` on it, with every GPU requested the cluster's way; nil when that fails.
    func probeGPUs(image: String) async -> Int? {
        var host: [String: Any] = [:]
        switch gpuRequests {
        case .docker: host["DeviceRequests"] = [["Driver": "nvidia", "Count": -1, "Capabilities": [["gpu"]]]]
        case .cdi:
            host["Devices"] = [["PathOnHost": "nvidia.com/gpu=all", "PathInContainer": "", "CgroupPermissions": ""]]
        case .none: break
        }
        let name = "lattice-gpu-probe-\(cluster)-\(node.name)-\(UInt32.random(in: 0...UInt32.max))"
        guard
            let body = try? JSONSerialization.data(withJSONObject: [
                "Image": image, "Cmd": ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                "Labels": ["lattice.probe": "gpus", "lattice.cluster": cluster], "HostConfig": host,
            ]),
            let created = try? await engine.call("POST", "/containers/create", query: ["name": name], body: body),
            created.status == 201 || created.status == 200
        else { return nil }
        let count = await runProbe(name)
        _ = try? await engine.call("DELETE", "/containers/\(name)", query: ["force": "true"])
        return count
    }

    /// Starts the probe container, waits for it and counts the indices it printed.
    private func runProbe(_ name: String) async -> Int? {
        guard let started = try? await engine.call("POST", "/containers/\(name)/start"),
            [204, 304].contains(started.status),
            let waited = try? await engine.call("POST", "/containers/\(name)/wait", timeout: .seconds(60)),
            waited.status == 200,
            (try? JSONSerialization.jsonObject(with: waited.body) as? [String: Any])?["StatusCode"] as? Int == 0,
            let logs = try? await engine.call("GET", "/containers/\(name)/logs", query: ["stdout": "true"]),
            logs.status == 200
        else { return nil }
        // Without a terminal the log is framed (8-byte headers); a raw one is taken as is.
        let text = EngineStream.frames(logs.body).map { String(decoding: $0, as: UTF8.self) }.joined()
        return GPUDiscovery.parseIndexList(text.isEmpty ? String(decoding: logs.body, as: UTF8.self) : text)
    }

    /// Whether the engine answers `GET /_ping` within `timeout`.
    func ping(timeout: TimeAmount = .seconds(3)) async -> Bool {
        (try? await engine.call("GET", "/_ping", timeout: timeout)).map { $0.status == 200 } ?? false
    }

    func observeAll() async throws -> [String: WorkloadObservation] {
        try await observe(labels: ["lattice.managed=true", "lattice.cluster=\(cluster)"], failures: nil)
    }

    func observe(instanceName: String) async throws -> WorkloadObservation? {
        let labels = ["lattice.instance=\(instanceName)", "lattice.cluster=\(cluster)"]
        return try await observe(labels: labels, failures: instanceName)[instanceName]
    }

    /// Containers with all `labels`, as observations; plus the start failures recorded for
    /// instances without a container (all of them, or the one named).
    func observe(labels: [String], failures only: String?) async throws -> [String: WorkloadObservation] {
        let filters = try String(decoding: JSONSerialization.data(withJSONObject: ["label": labels]), as: UTF8.self)
        // A short deadline: a slow engine delays a reconcile step, never the API.
        let response = try await engine.call(
            "GET",
            "/containers/json",
            query: ["all": "true", "filters": filters],
            timeout: .seconds(10)
        )
        try response.expect(200, "list containers")
        var result: [String: WorkloadObservation] = [:]
        for container in try response.json([ContainerSummary].self) {
            guard let instance = container.Labels["lattice.instance"] else { continue }
            let ip = container.NetworkSettings?.Networks?.values.compactMap { $0.IPAddress }.first { !$0.isEmpty } ?? ""
            let phase = EngineDriver.phase(state: container.State, status: container.Status)
            let launch = state.withLock { state in state.launches[instance]?.report }
            result[instance] = WorkloadObservation(
                instanceName: instance,
                podName: container.Labels["lattice.pod"] ?? "",
                node: node.name,
                ip: phase == .running ? (ip.isEmpty ? "127.0.0.1" : ip) : "",
                phase: phase,
                note: [
                    container.Labels["lattice.disk-size-enforced"] == "false"
                        ? Self.sizeNotEnforced(node: node.name) : "",
                    launch?.note ?? "",
                ].filter { !$0.isEmpty }.joined(separator: "; "),
                apps: phase == .running ? launch?.apps : nil
            )
        }
        let failures = state.withLock { state in
            only.map { name in state.startFailures.filter { $0.key == name } } ?? state.startFailures
        }
        for (instance, reason) in failures where result[instance] == nil {
            result[instance] = WorkloadObservation(
                instanceName: instance,
                podName: "",
                node: node.name,
                ip: "",
                phase: .failed(reason: reason)
            )
        }
        return result
    }

    /// Follows the engine's `GET /events` for this cluster's containers and publishes the
    /// instance of each. After a dropped stream it reconnects with `since=` the last event
    /// it saw and publishes every instance it finds once, to catch up on what it missed.
    /// `connected` is told whether the stream is up (the host's health, as events see it).
    func follow(_ sink: AsyncStream<String>.Continuation, connected: @escaping @Sendable (Bool) -> Void) async {
        var since = Int64(Date().timeIntervalSince1970)
        var first = true
        while !Task.isCancelled {
            if !first, let all = try? await observeAll() {
                for name in all.keys { sink.yield(name) }
            }
            first = false
            let filters = #"{"type":["container"],"label":["lattice.managed=true","lattice.cluster=\#(cluster)"]}"#
            do {
                try await engine.stream(
                    "/events",
                    query: ["filters": filters, "since": String(since)],
                    connected: { connected(true) }
                ) { line in
                    guard let event = try? JSONDecoder().decode(EngineEvent.self, from: Data(line.utf8)) else { return }
                    if let time = event.time { since = max(since, time) }
                    if let instance = event.Actor?.Attributes?["lattice.instance"] { sink.yield(instance) }
                }
            } catch {
                // The engine went away or the stream broke: try again shortly.
            }
            connected(false)
            try? await Task.sleep(for: .seconds(1))
        }
    }

    func start(_ spec: WorkloadSpec) async throws {
        // An existing container of the instance (whatever its pod name) is started again
        // when its GPUs and port are still the ones placed; otherwise it is replaced on the
        // same volume.
        for (name, _) in try await containers(of: spec.instanceName) {
            let existing = try await engine.call("GET", "/containers/\(name)/json")
            guard existing.status == 200 else { continue }
            let container = try existing.json(ContainerInspect.self)
            if container.Config.Labels["lattice.gpus"] == Self.gpuLabel(spec.gpuIndices),
                container.Config.Labels["lattice.ssh-port"] == String(spec.sshPort)
            {
                if container.State.Running { return }
                let started = try await engine.call("POST", "/containers/\(name)/start")
                guard [204, 304].contains(started.status) else { throw started.failure("start container") }
                if started.status == 204 { launch(spec) }
                return
            }
            let removed = try await engine.call("DELETE", "/containers/\(name)", query: ["force": "true"])
            guard [200, 204, 404].contains(removed.status) else { throw removed.failure("remove \(name)") }
        }
        guard try await ensureImage(spec) else { return }
        let command = try await imageCommand(spec.image)
        let sizeEnforced = try await ensureVolume(spec)
        try await ensureNetwork(namespace: spec.namespace)
        let created = try await engine.call(
            "POST",
            "/containers/create",
            query: ["name": spec.podName],
            body: try JSONSerialization.data(
                withJSONObject: createBody(spec, sizeEnforced: sizeEnforced, command: command)
            )
        )
        guard created.status == 201 || created.status == 200 else {
            let reason = "CreateFailed: " + created.message
            recordStartFailure(spec.instanceName, reason)
            return
        }
        let started = try await engine.call("POST", "/containers/\(spec.podName)/start")
        guard [204, 304].contains(started.status) else {
            recordStartFailure(spec.instanceName, "StartFailed: " + started.message)
            _ = try? await engine.call("DELETE", "/containers/\(spec.podName)", query: ["force": "true"])
            return
        }
        state.withLock { state in state.startFailures[spec.instanceName] = nil }
        launch(spec)
    }

    /// Creates the namespace's network if it is missing. Podman's own API is asked first,
    /// with `isolate` (its bridges otherwise route to each other); Docker has no `/libpod`
    /// (404) and isolates user-defined bridges from each other by itself.
    func ensureNetwork(namespace: String) async throws {
        let name = EngineDriver.networkName(namespace: namespace)
        if try await engine.call("GET", "/networks/\(name)").status == 200 { return }
        let labels = ["lattice.managed": "true", "lattice.namespace": namespace]
        let podman = try await engine.call(
            "POST",
            "/libpod/networks/create",
            body: try JSONSerialization.data(withJSONObject: [
                "name": name, "driver": "bridge", "options": ["isolate": "true"], "labels": labels,
            ])
        )
        if [200, 201, 409].contains(podman.status) { return }
        guard podman.status == 404 else { throw podman.failure("create network \(name)") }
        let docker = try await engine.call(
            "POST",
            "/networks/create",
            body: try JSONSerialization.data(withJSONObject: [
                "Name": name, "Driver": "bridge", "Labels": labels, "CheckDuplicate": true,
            ])
        )
        guard [200, 201, 409].contains(docker.status) else { throw docker.failure("create network \(name)") }
    }

    /// Pulls the image if the engine lacks it; records a failure (shown as Failed) if it cannot.
    func ensureImage(_ spec: WorkloadSpec) async throws -> Bool {
        if try await engine.call("GET", "/images/\(spec.image)/json").status == 200 { return true }
        let (repository, tag) = ImageReference.split(spec.image)
        let pull = try await engine.call(
            "POST",
            "/images/create",
            query: ["fromImage": repository, "tag": tag],
            timeout: .seconds(600)
        )
        if pull.status == 200, try await engine.call("GET", "/images/\(spec.image)/json").status == 200 { return true }
        recordStartFailure(spec.instanceName, "ImagePullFailed: \(spec.image): \(pull.message)")
        return false
    }

    /// Makes the instance's data volume (or finds it), capped at the disk's size where the
    /// host's storage can cap it: Podman's `local` driver on XFS with project quota takes
    /// `o=size=`. Elsewhere (ext4, overlay, Docker's `local` driver) the engine refuses the
    /// option; the volume is then made without it (and this host is not asked again until
    /// the server restarts), and the answer is false: the instance says so in its
    /// `statusReason`, from the container's `lattice.disk-size-enforced` label.
    func ensureVolume(_ spec: WorkloadSpec) async throws -> Bool {
        let existing = try await engine.call("GET", "/volumes/\(spec.volumeName)")
        if existing.status == 200 {
            return (try? existing.json(VolumeInspect.self))?.capped ?? false
        }
        var body: [String: Any] = [
            "Name": spec.volumeName, "Labels": ["lattice.managed": "true", "lattice.instance": spec.instanceName],
        ]
        if spec.volumeSizeGiB > 0, state.withLock({ state in state.capsVolumeSizes }) {
            body["DriverOpts"] = ["o": "size=\(spec.volumeSizeGiB)G"]
            let sized = try await engine.call(
                "POST",
                "/volumes/create",
                body: try JSONSerialization.data(withJSONObject: body)
            )
            if [200, 201].contains(sized.status) { return true }
            guard (400..<500).contains(sized.status) || sized.status == 500 else {
                throw sized.failure("create volume \(spec.volumeName)")
            }
            body["DriverOpts"] = nil
        }
        let volume = try await engine.call(
            "POST",
            "/volumes/create",
            body: try JSONSerialization.data(withJSONObject: body)
        )
        guard [200, 201].contains(volume.status) else { throw volume.failure("create volume \(spec.volumeName)") }
        // Made without the cap where the cap was refused: this host's storage cannot cap.
        if spec.volumeSizeGiB > 0 { state.withLock { state in state.capsVolumeSizes = false } }
        return false
    }

    /// What a Running instance whose data disk is not capped says in its `statusReason`.
    static func sizeNotEnforced(node: String) -> String {
        "DiskSizeNotEnforced: the storage of host \(node) cannot cap volume sizes, so the data disk's Size is "
            + "billed but not enforced"
    }

    /// The `POST /containers/create` body; pure, so both GPU forms are unit-tested.
    /// `command` is the image's own entrypoint and command: given, the container runs it
    /// under `WorkloadLauncher.keepAlive`, so it stays up when the command is a shell.
    func createBody(_ spec: WorkloadSpec, sizeEnforced: Bool = true, command: [String]? = nil) -> [String: Any] {
        var labels = [
            "lattice.managed": "true", "lattice.cluster": cluster, "lattice.instance": spec.instanceName,
            "lattice.pod": spec.podName, "lattice.namespace": spec.namespace, "lattice.uid": spec.uid,
            "lattice.gpus": Self.gpuLabel(spec.gpuIndices), "lattice.volume": spec.volumeName,
        ]
        labels["lattice.gpu-resource-key"] = spec.gpuResourceKey
        labels["lattice.ssh-port"] = String(spec.sshPort)
        labels["lattice.disk-size-enforced"] = sizeEnforced ? "true" : "false"
        labels["lattice.secret-env"] = spec.secretNames.joined(separator: ",")
        var host: [String: Any] = [
            "Mounts": [["Type": "volume", "Source": spec.volumeName, "Target": spec.volumePath]],
            "NanoCpus": Int64(spec.cpuCores) * 1_000_000_000,
            "Memory": Int64(spec.memoryGiB) * 1_073_741_824,
            "NetworkMode": EngineDriver.networkName(namespace: spec.namespace),
        ]
        if isolation.pidsLimit > 0 { host["PidsLimit"] = isolation.pidsLimit }
        // Root in the container, but a reduced root: no setuid gains, a short capability list.
        host["SecurityOpt"] = ["no-new-privileges"]
        host["CapDrop"] = ["ALL"]
        host["CapAdd"] = isolation.capabilities
        switch gpuRequests {
        case .docker where !spec.gpuIndices.isEmpty:
            host["DeviceRequests"] = [
                ["Driver": "nvidia", "DeviceIDs": spec.gpuIndices.map(String.init), "Capabilities": [["gpu"]]]
            ]
        case .cdi where !spec.gpuIndices.isEmpty:
            host["Devices"] = spec.gpuIndices.map {
                ["PathOnHost": "nvidia.com/gpu=\($0)", "PathInContainer": "", "CgroupPermissions": ""]
            }
        default:
            break
        }
        var exposed: [String: [String: String]] = ["22/tcp": [:], "8888/tcp": [:], "6006/tcp": [:]]
        for port in spec.ports { exposed["\(port)/tcp"] = [:] }
        var body: [String: Any] = [
            "Image": spec.image,
            "Hostname": spec.instanceName,
            "Env": spec.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
            "Labels": labels,
            // No port is published on the host: the SSH gateway runs sessions through the exec
            // API and forwards to the container's address, where the HTTP gateway reaches
            // Jupyter (8888), Tensorboard (6006) and the instance's own ports too.
            "ExposedPorts": exposed,
            "HostConfig": host,
        ]
        if let command {
            body["Entrypoint"] = ["/bin/sh", "-c", WorkloadLauncher.keepAlive, "lattice-init"]
            body["Cmd"] = command
        }
        return body
    }

    static func gpuLabel(_ indices: [Int]) -> String { indices.map(String.init).joined(separator: ",") }

    /// Containers labelled for an instance: name → id.
    func containers(of instance: String) async throws -> [(String, String)] {
        let filters = #"{"label":["lattice.instance=\#(instance)","lattice.cluster=\#(cluster)"]}"#
        let response = try await engine.call("GET", "/containers/json", query: ["all": "true", "filters": filters])
        try response.expect(200, "list containers")
        return try response.json([ContainerSummary].self).map {
            (($0.Names.first ?? $0.Id).trimmingCharacters(in: CharacterSet(charactersIn: "/")), $0.Id)
        }
    }

    func stop(instanceName: String, gracePeriodSeconds: Int) async throws {
        for (name, _) in try await containers(of: instanceName) {
            let response = try await engine.call(
                "POST",
                "/containers/\(name)/stop",
                query: ["t": String(gracePeriodSeconds)],
                timeout: .seconds(Int64(gracePeriodSeconds) + 30)
            )
            guard [204, 304, 404].contains(response.status) else { throw response.failure("stop \(name)") }
        }
    }

    func commit(instanceName: String, imageReference: String) async throws -> Int64 {
        guard let (name, _) = try await containers(of: instanceName).first else {
            throw DriverError("no container of \(instanceName) to commit", kind: .notFound)
        }
        let (repository, tag) = ImageReference.split(imageReference)
        // Podman's compatible API wants a (possibly empty) container config as the body. An
        // engine keeps the container's environment in the image and merges any config given
        // here with it, so the instance's secrets are blanked with one `ENV` change each.
        let secrets = try await secretNames(container: name)
        let blanked = secrets.map { URLQueryItem(name: "changes", value: "ENV \($0)=") }
        let response = try await engine.call(
            "POST",
            "/commit",
            query: ["container": name, "repo": repository, "tag": tag, "pause": "false"],
            repeatedQuery: blanked,
            body: Data("{}".utf8),
            timeout: .seconds(1800)
        )
        guard [200, 201].contains(response.status) else { throw response.failure("commit \(name)") }
        if let push { try await self.push(imageReference, push) }
        let image = try await engine.call("GET", "/images/\(imageReference)/json")
        return (try? image.json(ImageInspect.self).Size) ?? 0
    }

    /// `POST /images/{name}/push`. The engine answers 200 and reports failures inside its
    /// progress stream, so the stream is read for an `error`.
    func push(_ reference: String, _ push: EngineDriver.Push) async throws {
        let (repository, tag) = ImageReference.split(reference)
        let server = String(repository.prefix { $0 != "/" })
        let auth = try JSONSerialization.data(withJSONObject: [
            "username": push.username, "password": push.password, "serveraddress": server,
        ])
        let encoded = auth.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/",
            with: "_"
        )
        let response = try await engine.call(
            "POST",
            "/images/\(repository)/push",
            query: ["tag": tag],
            headers: ["X-Registry-Auth": encoded],
            timeout: .seconds(1800)
        )
        guard response.status == 200 else { throw response.failure("push \(reference)") }
        for line in String(decoding: response.body, as: UTF8.self).split(whereSeparator: \.isNewline) {
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let error = object["error"] as? String
            {
                throw DriverError("push \(reference): \(error)")
            }
        }
    }

    func discard(instanceName: String) async throws {
        state.withLock { state in state.startFailures[instanceName] = nil }
        for (name, _) in try await containers(of: instanceName) {
            let response = try await engine.call("DELETE", "/containers/\(name)", query: ["force": "true"])
            guard [200, 204, 404].contains(response.status) else { throw response.failure("remove \(name)") }
        }
    }

    /// `DELETE /images/{name}`: not forced, so an image a container still uses stays (409).
    func removeImage(reference: String) async throws {
        let response = try await engine.call("DELETE", "/images/\(reference)")
        guard [200, 404, 409].contains(response.status) else { throw response.failure("remove image \(reference)") }
    }

    func destroy(instanceName: String, volumeName: String) async throws {
        try await discard(instanceName: instanceName)
        let response = try await engine.call("DELETE", "/volumes/\(volumeName)", query: ["force": "true"])
        guard [200, 204, 404].contains(response.status) else { throw response.failure("remove volume \(volumeName)") }
    }
}

// MARK: Engine API shapes (only the fields Lattice reads)

struct VolumeInspect: Decodable {
    var Options: [String: String]?

    /// Whether the volume was made with a size cap.
    var capped: Bool { Options?["o"]?.split(separator: ",").contains { $0.hasPrefix("size=") } ?? false }
}

struct ContainerSummary: Decodable {
    struct Network: Decodable { var IPAddress: String? }
    struct Settings: Decodable { var Networks: [String: Network]? }
    var Id: String
    var Names: [String]
    var State: String
    var Status: String
    var Labels: [String: String]
    var NetworkSettings: Settings?
}

struct ContainerInspect: Decodable {
    struct State: Decodable { var Running: Bool }
    struct Config: Decodable { var Labels: [String: String] }
    var State: State
    var Config: Config
}

struct EngineEvent: Decodable {
    struct Actor: Decodable { var Attributes: [String: String]? }
    var Actor: Actor?
    var time: Int64?
}

struct ImageInspect: Decodable {
    struct Config: Decodable {
        var Entrypoint: [String]?
        var Cmd: [String]?
    }
    var Size: Int64
    var Config: Config?
}
