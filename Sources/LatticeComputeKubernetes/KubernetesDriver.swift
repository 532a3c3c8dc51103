import Foundation
import LatticeCompute
import LatticeDomain
import Synchronization

/// Runs instances as pods on a Kubernetes cluster through its REST API
/// ([kubernetes.md](../../docs/kubernetes.md)). Desired state is written with server-side
/// apply (`fieldManager=lattice`); what the cluster does is read from caches of pods,
/// the instances' Secrets and nodes, fed by list + watch, so `observeAll` costs no request
/// and every change reaches the reconciler as an event.
///
/// An instance is: its Secret (it exists from the first start to discard/destroy), its
/// PVC, its Services and Ingress, and at most one live pod. A Secret without a live pod is
/// a *stopped* workload (power_off deletes the pod and keeps the rest); neither is none.
public final class KubernetesDriver: ComputeDriver, Sendable {
    /// One cluster's settings, from the catalog's `kubernetes:` (docs/kubernetes.md).
    public struct Settings: Sendable {
        /// The catalog's cluster name.
        public var cluster: String
        /// Where instances' objects live.
        public var namespace: String
        /// The host the Ingresses answer under (`<uid>.<publicHost>`).
        public var publicHost: String
        /// The node resource that counts GPUs.
        public var gpuResourceKey: String
        /// The node label that names the GPU model.
        public var gpuModelLabel: String
        /// The data disks' storage class when the disk SKU names none; nil: the cluster's default.
        public var storageClass: String?
        /// The Ingress class; nil: the cluster's default.
        public var ingressClass: String?
        /// A `kubernetes.io/dockerconfigjson` Secret in `namespace` to pull and push with.
        public var registrySecret: String?
        /// Taint keys instance pods tolerate; nil: the GPU resource key's.
        public var tolerations: [String]?
        /// The pods' RuntimeClass; nil: the node's default runtime.
        public var runtimeClass: String?
        /// A NodePort Service per instance to its own sshd (off: the gateway needs none).
        public var sshNodePort = false
        /// What the instances' NetworkPolicy lets in and out.
        public var isolation = KubeObjects.Isolation()
        /// Commits a pod's container through the node's containerd and pushes it
        /// (`deploy/committer` builds one); nil: snapshots fail at once, saying so.
        public var committerImage: String?
        /// The containerd socket on the nodes, which the committer mounts.
        public var containerdSocket: String
        /// The pace towards the API server: the steady rate.
        public var queriesPerSecond: Double
        /// The pace towards the API server: the burst.
        public var burst: Double
        /// How long a snapshot Job may take.
        public var commitTimeout: Duration
        /// How long the driver waits for a deleted pod to go before it gives up (and retries later).
        public var podGoneTimeout: Duration
        /// A pod being deleted on a node that is gone or not Ready (no kubelet will confirm
        /// it) is force-deleted once its grace period is this far behind it.
        public var forceDeleteAfter: Duration = .seconds(60)
        /// How long the API server may not answer before its nodes take no work (their pods
        /// are then unseen, not lost).
        public var unreachableAfter: Duration

        /// The defaults are client-go's pace and the NVIDIA device plugin's names.
        public init(
            cluster: String,
            namespace: String = "lattice-instances",
            publicHost: String = "lattice.localhost",
            gpuResourceKey: String = "nvidia.com/gpu",
            gpuModelLabel: String = "nvidia.com/gpu.product",
            storageClass: String? = nil,
            ingressClass: String? = nil,
            registrySecret: String? = nil,
            tolerations: [String]? = nil,
            runtimeClass: String? = nil,
            committerImage: String? = nil,
            containerdSocket: String = "/run/containerd/containerd.sock",
            queriesPerSecond: Double = 5,
            burst: Double = 10,
            commitTimeout: Duration = .seconds(1800),
            podGoneTimeout: Duration = .seconds(90),
            unreachableAfter: Duration = .seconds(30)
        ) {
            self.cluster = cluster
            self.namespace = namespace
            self.publicHost = publicHost
            self.gpuResourceKey = gpuResourceKey
            self.gpuModelLabel = gpuModelLabel
            self.storageClass = storageClass
            self.ingressClass = ingressClass
            self.registrySecret = registrySecret
            self.tolerations = tolerations
            self.runtimeClass = runtimeClass
            self.committerImage = committerImage
            self.containerdSocket = containerdSocket
            self.queriesPerSecond = queriesPerSecond
            self.burst = burst
            self.commitTimeout = commitTimeout
            self.podGoneTimeout = podGoneTimeout
            self.unreachableAfter = unreachableAfter
        }
    }

    /// The cluster's settings.
    public let settings: Settings
    /// The paced REST client (tests use it to act as someone else would).
    public let api: KubeAPI
    let objects: KubeObjects
    let reader: KubeNodeReader
    let pods: KubeInformer<PodObject>
    let secrets: KubeInformer<MetadataOnly>
    let nodeCache: KubeInformer<KubeNodeReader.NodeObject>
    private let changeStream: AsyncStream<String>
    private let changeSink: AsyncStream<String>.Continuation
    private struct State {
        var lastNodes: [ClusterNode] = []
    }

    /// A launcher to run in a pod that just started: (pod, instance, start).
    private typealias Launch = (pod: String, instance: String, start: String)
    private let launchStream: AsyncStream<Launch>
    private let launchSink: AsyncStream<Launch>.Continuation

    private let state = Mutex(State())
    let losses = PodLosses()
    let launches = KubeLaunches()

    /// A driver for one cluster; its caches list and watch once `run()` runs.
    public init(settings: Settings, connection: KubeConnection) throws {
        self.settings = settings
        api = try KubeAPI(connection: connection, queriesPerSecond: settings.queriesPerSecond, burst: settings.burst)
        // One rule for both: the pods tolerate exactly the taints the node reader forgives.
        let tolerated = settings.tolerations ?? [settings.gpuResourceKey]
        objects = KubeObjects(
            namespace: settings.namespace,
            publicHost: settings.publicHost,
            storageClass: settings.storageClass,
            ingressClass: settings.ingressClass,
            registrySecret: settings.registrySecret,
            tolerations: tolerated,
            runtimeClass: settings.runtimeClass,
            sshNodePort: settings.sshNodePort,
            isolation: settings.isolation
        )
        let reader = KubeNodeReader(
            gpuResourceKey: settings.gpuResourceKey,
            modelLabel: settings.gpuModelLabel,
            tolerated: Set(tolerated)
        )
        self.reader = reader
        let (stream, sink) = AsyncStream.makeStream(of: String.self)
        (changeStream, changeSink) = (stream, sink)
        let base = "/api/v1/namespaces/\(settings.namespace)"
        let selector = "\(KubeObjects.managedBy)=lattice"
        let losses = self.losses
        let launches = self.launches
        let (launchStream, launchSink) = AsyncStream.makeStream(of: Launch.self)
        (self.launchStream, self.launchSink) = (launchStream, launchSink)
        let launch: @Sendable (String, String, String) -> Void = { launchSink.yield(($0, $1, $2)) }
        pods = KubeInformer(
            api: api,
            path: "\(base)/pods",
            labelSelector: "\(selector),!\(KubeObjects.jobLabel)",
            indexLabel: KubeObjects.instanceLabel
        ) { old, new in
            losses.changed(old: old, new: new)
            if let pod = new, let instance = pod.instance, let start = launches.toLaunch(pod) {
                launch(pod.metadata.name, instance, start)
            }
            if new == nil, let pod = old, let instance = pod.instance {
                launches.forget(instance, pod: pod.metadata.name)
            }
            for pod in [old, new].compactMap({ $0 }) { if let name = pod.instance { sink.yield(name) } }
        }
        secrets = KubeInformer(api: api, path: "\(base)/secrets", labelSelector: selector) {
            for secret in [$0, $1].compactMap({ $0 }) {
                if let name = secret.metadata.labels?[KubeObjects.instanceLabel] { sink.yield(name) }
            }
        }
        let podCache = pods
        let cluster = settings.cluster
        nodeCache = KubeInformer(api: api, path: "/api/v1/nodes", labelSelector: nil) { old, new in
            // A node that came, went, or changed how it takes work: its instances take a look.
            let before = old.flatMap { reader.clusterNode($0, cluster: cluster) }
            let after = new.flatMap { reader.clusterNode($0, cluster: cluster) }
            guard before != after, let name = (new ?? old)?.metadata.name else { return }
            for pod in podCache.all where pod.node == name { if let instance = pod.instance { sink.yield(instance) } }
        }
    }

    deinit {
        changeSink.finish()
        launchSink.finish()
    }

    /// The caches' list-and-watch loops and the launchers of pods that started, as children,
    /// until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.pods.run() }
            group.addTask { await self.secrets.run() }
            group.addTask { await self.nodeCache.run() }
            let (api, namespace, launches, sink) = (api, settings.namespace, launches, changeSink)
            for await launch in launchStream {
                group.addTask {
                    await KubeLaunches.run(
                        api: api,
                        namespace: namespace,
                        pod: launch.pod,
                        instance: launch.instance,
                        start: launch.start,
                        launches
                    ) { sink.yield(launch.instance) }
                }
            }
        }
    }

    /// Lists, watches and bookmarks so far, per cache (for tests).
    public var feeds: [String: (lists: Int, watches: Int, bookmarks: Int)] {
        ["pods": pods.counts, "secrets": secrets.counts, "nodes": nodeCache.counts]
    }

    var base: String { "/api/v1/namespaces/\(settings.namespace)" }
    func path(_ resource: String, _ name: String) -> String {
        switch resource {
        case "ingresses", "networkpolicies":
            "/apis/networking.k8s.io/v1/namespaces/\(settings.namespace)/\(resource)/\(name)"
        case "jobs": "/apis/batch/v1/namespaces/\(settings.namespace)/jobs/\(name)"
        default: "\(base)/\(resource)/\(name)"
        }
    }

    /// Waits (briefly) for the first lists; a cluster that does not answer fails the call.
    func synced() async throws {
        try await pods.waitUntilSynced(limit: .seconds(10))
        try await secrets.waitUntilSynced(limit: .seconds(10))
        try await nodeCache.waitUntilSynced(limit: .seconds(10))
    }

    // MARK: - Reading (from the caches)

    /// The GPU nodes from the node cache; all of them closed while the API server does not answer.
    public func nodes() async throws -> [ClusterNode] {
        try await nodeCache.waitUntilSynced(limit: .seconds(5))
        var now = nodeCache.all.compactMap { reader.clusterNode($0, cluster: settings.cluster) }
            .sorted { $0.node.name < $1.node.name }
        if let why = nodeCache.outage(longerThan: settings.unreachableAfter) {
            now = now.map {
                ClusterNode(
                    node: $0.node,
                    cluster: $0.cluster,
                    healthy: false,
                    reason: "ClusterUnreachable: \(why)",
                    unreachable: true
                )
            }
        }
        // The same array while nothing changed, so the store can tell at once.
        return state.withLock { state in
            if now != state.lastNodes { state.lastNodes = now }
            return state.lastNodes
        }
    }

    /// Every instance that has a Secret or a pod, from the caches (no request).
    public func observeAll() async throws -> [String: WorkloadObservation] {
        try await synced()
        var podsOf: [String: [PodObject]] = [:]
        for pod in pods.all { if let name = pod.instance { podsOf[name, default: []].append(pod) } }
        var names = Set(podsOf.keys)
        for secret in secrets.all {
            if let name = secret.metadata.labels?[KubeObjects.instanceLabel] { names.insert(name) }
        }
        var result: [String: WorkloadObservation] = [:]
        for name in names {
            if let seen = observation(name, pods: podsOf[name] ?? []) { result[name] = seen }
        }
        return result
    }

    /// One instance, from the caches (no request).
    public func observe(instanceName: String) async throws -> WorkloadObservation? {
        try await synced()
        return observation(instanceName, pods: pods.objects(labelled: instanceName))
    }

    func livePod(_ instance: String) -> PodObject? { Self.newestLive(pods.objects(labelled: instance)) }

    /// The newest pod that is not being deleted (there is one but for a moment of a move).
    static func newestLive(_ pods: [PodObject]) -> PodObject? {
        pods.filter { !$0.deleting }.max {
            ($0.metadata.creationTimestamp ?? "", $0.metadata.name) < (
                $1.metadata.creationTimestamp ?? "", $1.metadata.name
            )
        }
    }

    func observation(_ name: String, pods mine: [PodObject]) -> WorkloadObservation? {
        let defined = secrets.object(named: KubeObjects.secretName(name)) != nil
        if let pod = Self.newestLive(mine) {
            let lost = !pod.node.isEmpty && nodeCache.isSynced && nodeCache.object(named: pod.node) == nil
            let phase = (pod.status ?? PodStatus()).phase(deleting: false, nodeLost: lost)
            let launched = phase == .running ? launches.report(name, start: KubeLaunches.start(of: pod)) : nil
            return WorkloadObservation(
                instanceName: name,
                podName: pod.metadata.name,
                node: pod.node,
                ip: pod.status?.podIP ?? "",
                phase: phase,
                note: launched?.note ?? "",
                apps: launched?.apps
            )
        }
        guard defined else { return nil }
        if let reason = losses.reason(name) {
            return WorkloadObservation(
                instanceName: name,
                podName: "",
                node: "",
                ip: "",
                phase: .failed(reason: reason)
            )
        }
        if let dying = mine.first {
            return WorkloadObservation(
                instanceName: name,
                podName: dying.metadata.name,
                node: dying.node,
                ip: "",
                phase: .stopping
            )
        }
        return WorkloadObservation(instanceName: name, podName: "", node: "", ip: "", phase: .stopped)
    }

    /// Instances whose pods or Secrets changed, and those on a node that changed how it takes work.
    public func changes() -> AsyncStream<String> { changeStream }

    // MARK: - Writing

    /// The pod is deleted only after the snapshot Job succeeded, so the reconciler asks for
    /// the commit while the workload still runs.
    public var commitsRunningWorkloads: Bool { true }

    /// Applies what the instance needs: everything at the first start, the SSH Service and
    /// the pod at a power_on; nothing when its pod already runs where it should.
    public func start(_ spec: WorkloadSpec) async throws {
        try await synced()
        losses.clear(spec.instanceName)
        let mine = pods.objects(labelled: spec.instanceName).filter { !$0.deleting }
        if mine.contains(where: { $0.metadata.name == spec.podName && $0.node == spec.node }) { return }
        // The Secret is written last of what outlives a power_off, so a cached Secret means
        // the PVC, the web Service and the Ingress are there: a power_on writes two objects.
        let secretName = KubeObjects.secretName(spec.instanceName)
        if secrets.object(named: secretName) == nil {
            // The namespace's default deny comes before the first pod (applying it again is a no-op).
            try await api.apply(
                path("networkpolicies", KubeObjects.networkPolicyName),
                objects.networkPolicy()
            )
            try await api.apply(path("persistentvolumeclaims", spec.volumeName), objects.volumeClaim(spec))
            try await api.apply(
                path("services", KubeObjects.webServiceName(spec.instanceName)),
                objects.webService(spec)
            )
            try await api.apply(path("ingresses", spec.instanceName), objects.ingress(spec))
            let secret = try await api.apply(path("secrets", secretName), objects.secret(spec))
            if let object = try? JSONDecoder().decode(MetadataOnly.self, from: secret.body) {
                secrets.remember(object)
            }
        }
        if settings.sshNodePort {
            try await api.apply(
                path("services", KubeObjects.sshServiceName(spec.instanceName)),
                objects.sshService(spec)
            )
        }
        // A pod of an older placement goes first (a pod cannot move).
        for pod in mine { try await deletePod(pod.metadata.name, grace: 30) }
        try await waitUntilGone(spec.podName)
        let reply = try await api.apply(path("pods", spec.podName), objects.pod(spec))
        if let pod = try? JSONDecoder().decode(PodObject.self, from: reply.body) { pods.remember(pod) }
    }

    /// Waits until no pod is named `name` (one that is being deleted, of an older placement).
    func waitUntilGone(_ name: String) async throws {
        let deadline = ContinuousClock.now + settings.podGoneTimeout
        while pods.object(named: name) != nil {
            guard ContinuousClock.now < deadline else {
                throw DriverError("kubernetes: pod \(name) is still being deleted; trying again later")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func deletePod(_ name: String, grace: Int) async throws {
        losses.deleting(name)
        let reply = try await api.call(
            .DELETE,
            path("pods", name),
            query: [("gracePeriodSeconds", String(max(0, grace)))],
            allowNotFound: true
        )
        if reply.notFound {
            pods.forgetGone(name)
        } else if let pod = try? JSONDecoder().decode(PodObject.self, from: reply.body) {
            if pod.deleting {
                pods.remember(pod)
            } else {
                pods.forget(name, version: KubeInformer<PodObject>.version(pod))
            }
        }
    }

    func delete(_ resource: String, _ name: String, query: [(String, String)] = []) async throws {
        try await api.call(.DELETE, path(resource, name), query: query, allowNotFound: true)
    }

    /// Deletes the pod (the PVC, Secret, web Service and Ingress stay) and the SSH Service.
    public func stop(instanceName: String, gracePeriodSeconds: Int) async throws {
        try await synced()
        for pod in pods.objects(labelled: instanceName) where !pod.deleting {
            try await deletePod(pod.metadata.name, grace: gracePeriodSeconds)
        }
        // The SSH port goes back to the pool while the instance is off.
        try await delete("services", KubeObjects.sshServiceName(instanceName))
    }

    /// Removes everything of the instance but its PVC.
    public func discard(instanceName: String) async throws {
        try await synced()
        losses.clear(instanceName)
        for pod in pods.objects(labelled: instanceName) where !pod.deleting {
            try await deletePod(pod.metadata.name, grace: 10)
        }
        try await delete("jobs", KubeObjects.jobName(instanceName), query: [("propagationPolicy", "Background")])
        try await delete("ingresses", instanceName)
        try await delete("services", KubeObjects.webServiceName(instanceName))
        try await delete("services", KubeObjects.sshServiceName(instanceName))
        let secret = KubeObjects.secretName(instanceName)
        let reply = try await api.call(.DELETE, path("secrets", secret), allowNotFound: true)
        if let gone = try? JSONDecoder().decode(MetadataOnly.self, from: reply.body), !reply.notFound {
            secrets.forget(secret, version: KubeInformer<MetadataOnly>.version(gone))
        } else {
            secrets.forgetGone(secret)
        }
    }

    /// Removes everything, the PVC too, and waits until the pods are gone. A pod whose node
    /// died stays Terminating forever (no kubelet confirms it): once its grace period is
    /// `forceDeleteAfter` behind it, it is force-deleted (grace 0), as `kubectl delete
    /// --force` would; its node is gone, so nothing still runs there to be lost.
    public func destroy(instanceName: String, volumeName: String) async throws {
        let going = pods.objects(labelled: instanceName).map(\.metadata.name)
        try await discard(instanceName: instanceName)
        try await delete("persistentvolumeclaims", volumeName)
        for pod in pods.objects(labelled: instanceName)
        where Self.stuck(
            pod,
            node: nodeCache.object(named: pod.node),
            nodesKnown: nodeCache.isSynced,
            after: settings.forceDeleteAfter,
            now: Date()
        ) {
            try await deletePod(pod.metadata.name, grace: 0)
        }
        // The instance is forgotten (and its GPUs given to another) only once its pods are
        // gone: a terminating pod still holds them on the node.
        for pod in going { try await waitUntilGone(pod) }
    }

    /// Whether `pod` is being deleted on a node that cannot finish it (gone, or not Ready)
    /// and its grace period ended `after` ago.
    static func stuck(
        _ pod: PodObject,
        node: KubeNodeReader.NodeObject?,
        nodesKnown: Bool,
        after: Duration,
        now: Date
    ) -> Bool {
        guard let mark = pod.metadata.deletionTimestamp, let due = RFC3339.parse(mark), nodesKnown else {
            return false
        }
        let ready = node?.status?.conditions?.first { $0.type == "Ready" }?.status == "True"
        guard node == nil || !ready else { return false }
        // A node that left the cluster runs nothing any more; a NotReady one may come back.
        let wait = node == nil ? 0 : Double(after.components.seconds)
        return now.timeIntervalSince(due) >= wait
    }

    /// Snapshots live in the registry; nodes' kubelets collect unused images themselves.
    public func removeImage(reference: String) async throws {}
}
