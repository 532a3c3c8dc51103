import Foundation
import LatticeCompute
import LatticeDomain

/// The Kubernetes objects one instance is made of (docs/kubernetes.md): a Pod named as
/// the instance's pod (`<instance>-xxxxx`, new at every power_on, so applying it again is
/// idempotent; pinned by name to the node Lattice placed it on), a PVC
/// `volume-xxxxxxxx` for its data disk, a Secret with its root password and Jupyter token,
/// a NodePort Service for SSH, a ClusterIP Service and an Ingress on `<uid>.<public-host>`
/// for `/jupyter` and `/monitor`. Pure: each is a JSON object the driver applies with
/// server-side apply, and the tests validate with `kubernetes-validate --strict`.
public struct KubeObjects: Sendable {
    /// The namespace every instance object lives in.
    public var namespace: String
    /// The host under which Ingresses answer (`<uid>.<publicHost>`).
    public var publicHost: String
    /// The data disks' storage class unless their disk SKU names one; nil = the cluster's default.
    public var storageClass: String?
    /// The Ingress class; nil = the cluster's default.
    public var ingressClass: String?
    /// A `kubernetes.io/dockerconfigjson` Secret in `namespace`: the pods pull with it (a
    /// snapshot in a private project) and the committer pushes with it. Nil: none.
    public var registrySecret: String?
    /// Taint keys instance pods tolerate (any value, any effect): GPU pools are often
    /// tainted to keep other work off. The node reader counts the same keys.
    public var tolerations: [String]
    /// The pods' RuntimeClass (`nvidia` where that runtime is not the node's default, as
    /// on k3s); nil: the default runtime.
    public var runtimeClass: String?
    /// Give instances a NodePort Service to their own sshd (the gateway needs none).
    public var sshNodePort: Bool
    /// Who besides Lattice's own pods may reach instance pods, and where they may connect.
    public var isolation: Isolation

    /// What the instances' NetworkPolicy lets in and out (docs/kubernetes.md, "Isolation").
    public struct Isolation: Sendable, Equatable {
        /// Namespaces whose pods may come in (an ingress controller's).
        public var fromNamespaces: [String]
        /// Address ranges that may come in (Lattice outside the cluster).
        public var fromCIDRs: [String]
        /// Where instance pods may connect besides DNS; nil: the internet.
        public var egressCIDRs: [String]?

        public init(fromNamespaces: [String] = [], fromCIDRs: [String] = [], egressCIDRs: [String]? = nil) {
            self.fromNamespaces = fromNamespaces
            self.fromCIDRs = fromCIDRs
            self.egressCIDRs = egressCIDRs
        }
    }

    /// Private, shared, link-local (cloud metadata) and loopback ranges: not "the internet".
    public static let privateRanges = [
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8",
    ]
    /// The labels of Lattice's own pods (deploy/kubernetes), whose gateways reach instances.
    public static let controlPlaneLabels = ["app.kubernetes.io/name": "lattice"]
    /// The instances' NetworkPolicy.
    public static let networkPolicyName = "lattice-instances-isolation"

    /// Objects for one cluster's settings.
    public init(
        namespace: String,
        publicHost: String,
        storageClass: String? = nil,
        ingressClass: String? = nil,
        registrySecret: String? = nil,
        tolerations: [String] = ["nvidia.com/gpu"],
        runtimeClass: String? = nil,
        sshNodePort: Bool = false,
        isolation: Isolation = Isolation()
    ) {
        self.sshNodePort = sshNodePort
        self.isolation = isolation
        self.namespace = namespace
        self.publicHost = publicHost
        self.storageClass = storageClass
        self.ingressClass = ingressClass
        self.registrySecret = registrySecret
        self.tolerations = tolerations
        self.runtimeClass = runtimeClass
    }

    /// Pins a pod to a node by the node's name (`matchFields` on `metadata.name`, as
    /// DaemonSets do): the scheduler still checks the node and says why it cannot, and a
    /// node whose `kubernetes.io/hostname` label differs from its name is still found.
    public static func pinned(to node: String) -> [String: Any] {
        let requirement: [String: Any] = ["key": "metadata.name", "operator": "In", "values": [node]]
        return [
            "nodeAffinity": [
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    "nodeSelectorTerms": [["matchFields": [requirement]]]
                ]
            ]
        ]
    }

    /// Marks everything Lattice made.
    public static let managedBy = "app.kubernetes.io/managed-by"
    /// The instance an object belongs to (the caches and selectors key on it).
    public static let instanceLabel = "lattice.dev/instance"
    /// The tenant (the seed's `namespace`) an object belongs to.
    public static let tenantLabel = "lattice.dev/namespace"

    /// Marks the snapshot Job and its pod, which the instance's pod cache leaves out.
    public static let jobLabel = "lattice.dev/job"
    /// Where the committer finds the registry Secret's Docker config (`DOCKER_CONFIG`).
    public static let registryConfigPath = "/etc/lattice/registry"

    /// The labels of every object of `spec`'s instance.
    public func labels(_ spec: WorkloadSpec) -> [String: String] {
        Self.labels(instance: spec.instanceName, tenant: spec.namespace)
    }

    /// The labels of every object of `instance`, of `tenant`.
    public static func labels(instance: String, tenant: String) -> [String: String] {
        [managedBy: "lattice", instanceLabel: instance, tenantLabel: tenant]
    }

    func metadata(_ name: String, _ spec: WorkloadSpec) -> [String: Any] {
        ["name": name, "namespace": namespace, "labels": labels(spec)]
    }

    /// The instance's Secret (root password, Jupyter token).
    public static func secretName(_ instance: String) -> String { "\(instance)-secrets" }
    /// The instance's NodePort Service for SSH (deleted at power_off).
    public static func sshServiceName(_ instance: String) -> String { "\(instance)-ssh" }
    /// The instance's ClusterIP Service for Jupyter and Tensorboard.
    public static func webServiceName(_ instance: String) -> String { "\(instance)-web" }
    /// The instance's snapshot Job.
    public static func jobName(_ instance: String) -> String { "\(instance)-commit" }

    /// The Secret: the instance's secret environment as `stringData`.
    public func secret(_ spec: WorkloadSpec) -> [String: Any] {
        [
            "apiVersion": "v1", "kind": "Secret", "metadata": metadata(Self.secretName(spec.instanceName), spec),
            "type": "Opaque",
            "stringData": spec.environment.filter { spec.secretNames.contains($0.key) },
        ]
    }

    /// The data disk's PVC, of the volume's size, storage class and access mode.
    public func volumeClaim(_ spec: WorkloadSpec) -> [String: Any] {
        var claim: [String: Any] = [
            "accessModes": [spec.volumeAccessMode ?? "ReadWriteOnce"],
            "resources": ["requests": ["storage": "\(spec.volumeSizeGiB)Gi"]],
        ]
        if let storageClass = spec.volumeStorageClass ?? storageClass { claim["storageClassName"] = storageClass }
        return [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata(spec.volumeName, spec),
            "spec": claim,
        ]
    }

    /// The pod: the image (with a terminal, so a shell stays up), GPUs as limits, CPU and
    /// memory as requests = limits, the PVC, the secrets by reference, the launcher's
    /// variables, pinned to its node.
    public func pod(_ spec: WorkloadSpec) -> [String: Any] {
        var meta = metadata(spec.podName, spec)
        meta["annotations"] = ["lattice.dev/gpus": spec.gpuIndices.map(String.init).joined(separator: ",")]
        var limits: [String: String] = ["cpu": String(spec.cpuCores), "memory": "\(spec.memoryGiB)Gi"]
        if !spec.gpuIndices.isEmpty { limits[spec.gpuResourceKey] = String(spec.gpuIndices.count) }
        let secretEnvironment = spec.secretNames.sorted().map { key -> [String: Any] in
            ["name": key, "valueFrom": ["secretKeyRef": ["name": Self.secretName(spec.instanceName), "key": key]]]
        }
        let plainEnvironment = spec.environment.filter { !spec.secretNames.contains($0.key) }
            .sorted { $0.key < $1.key }.map { ["name": $0.key, "value": $0.value] as [String: Any] }
        let published = spec.ports.filter { ![22, 8888, 6006].contains($0) }.map {
            ["name": "http-\($0)", "containerPort": $0] as [String: Any]
        }
        var container: [String: Any] = [
            "name": "main", "image": spec.image,
            "env": secretEnvironment + plainEnvironment,
            "resources": ["limits": limits, "requests": limits],
            "ports": [
                ["name": "ssh", "containerPort": 22], ["name": "jupyter", "containerPort": 8888],
                ["name": "tensorboard", "containerPort": 6006],
            ] + published,
            "volumeMounts": [["name": "data", "mountPath": spec.volumePath]],
            // Root in the pod, but no setuid gains and no raw sockets on the pod network.
            "securityContext": [
                "allowPrivilegeEscalation": false,
                "capabilities": ["drop": ["NET_RAW"]],
            ] as [String: Any],
        ]
        // A terminal on the image's own command, as `kubectl run -it` gives one: an image whose
        // command is a shell (every CUDA base image) waits on it and stays Running.
        container["stdin"] = true
        container["tty"] = true
        // For the launcher the driver runs at each start (`KubeLaunches`): the data disk, and
        // the startup script, which the pod keeps so a restart by the kubelet runs it again.
        var launcherEnvironment = [["name": WorkloadLauncher.dataVariable, "value": spec.volumePath]]
        if !spec.startupScript.isEmpty {
            launcherEnvironment.append(["name": WorkloadLauncher.scriptVariable, "value": spec.startupScript])
        }
        container["env"] = (container["env"] as? [[String: Any]] ?? []) + launcherEnvironment
        var body: [String: Any] = [
            "affinity": Self.pinned(to: spec.node),
            "hostname": spec.instanceName,
            "restartPolicy": "Always",
            "enableServiceLinks": false,
            "automountServiceAccountToken": false,
            "securityContext": ["seccompProfile": ["type": "RuntimeDefault"]],
            "containers": [container],
            "volumes": [["name": "data", "persistentVolumeClaim": ["claimName": spec.volumeName]]],
        ]
        if let registrySecret { body["imagePullSecrets"] = [["name": registrySecret]] }
        if !tolerations.isEmpty {
            body["tolerations"] = Set(tolerations).sorted().map { ["key": $0, "operator": "Exists"] }
        }
        if let runtimeClass { body["runtimeClassName"] = runtimeClass }
        return ["apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body]
    }

    /// Default deny for every instance pod of the namespace: in, only Lattice's own pods (its
    /// gateways), the namespaces and ranges the catalog names; out, DNS and the internet (or
    /// the ranges the catalog names), never another pod, the nodes or a metadata service.
    public func networkPolicy() -> [String: Any] {
        var from: [[String: Any]] = [
            ["namespaceSelector": [String: Any](), "podSelector": ["matchLabels": Self.controlPlaneLabels]]
        ]
        from += isolation.fromNamespaces.map {
            ["namespaceSelector": ["matchLabels": ["kubernetes.io/metadata.name": $0]]]
        }
        from += isolation.fromCIDRs.map { ["ipBlock": ["cidr": $0]] }
        let dns: [String: Any] = [
            "ports": [["port": 53, "protocol": "UDP"], ["port": 53, "protocol": "TCP"]]
        ]
        let out: [[String: Any]] =
            isolation.egressCIDRs.map { ranges in ranges.map { ["ipBlock": ["cidr": $0]] } }
            ?? [["ipBlock": ["cidr": "0.0.0.0/0", "except": Self.privateRanges]]]
        let selector: [String: Any] = [
            "matchLabels": [Self.managedBy: "lattice"],
            "matchExpressions": [
                ["key": Self.instanceLabel, "operator": "Exists"],
                ["key": Self.jobLabel, "operator": "DoesNotExist"],
            ],
        ]
        return [
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": [
                "name": Self.networkPolicyName, "namespace": namespace, "labels": [Self.managedBy: "lattice"],
            ] as [String: Any],
            "spec": [
                "podSelector": selector,
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [["from": from]],
                "egress": [dns] + (out.isEmpty ? [] : [["to": out]]),
            ] as [String: Any],
        ]
    }

    /// On the instance's SSH port (when it is in the NodePort range; else one the cluster picks).
    public func sshService(_ spec: WorkloadSpec) -> [String: Any] {
        var sshPort: [String: Any] = ["name": "ssh", "port": 22, "targetPort": 22]
        if (30000...32767).contains(spec.sshPort) { sshPort["nodePort"] = spec.sshPort }
        return [
            "apiVersion": "v1", "kind": "Service", "metadata": metadata(Self.sshServiceName(spec.instanceName), spec),
            "spec": [
                "type": "NodePort", "selector": [Self.instanceLabel: spec.instanceName],
                "ports": [sshPort],
            ] as [String: Any],
        ]
    }

    /// Jupyter (8888) and Tensorboard (6006) inside the cluster, for the Ingress.
    public func webService(_ spec: WorkloadSpec) -> [String: Any] {
        [
            "apiVersion": "v1", "kind": "Service", "metadata": metadata(Self.webServiceName(spec.instanceName), spec),
            "spec": [
                "type": "ClusterIP", "selector": [Self.instanceLabel: spec.instanceName],
                "ports": [
                    ["name": "jupyter", "port": 8888, "targetPort": 8888],
                    ["name": "tensorboard", "port": 6006, "targetPort": 6006],
                ],
            ] as [String: Any],
        ]
    }

    /// `<uid>.<publicHost>`: `/jupyter` and `/monitor` (Tensorboard).
    public func ingress(_ spec: WorkloadSpec) -> [String: Any] {
        func path(_ prefix: String, _ port: Int) -> [String: Any] {
            [
                "path": prefix, "pathType": "Prefix",
                "backend": ["service": ["name": Self.webServiceName(spec.instanceName), "port": ["number": port]]],
            ]
        }
        var body: [String: Any] = [
            "rules": [
                [
                    "host": "\(spec.uid).\(publicHost)",
                    "http": ["paths": [path("/jupyter", 8888), path("/monitor", 6006)]],
                ]
            ]
        ]
        if let ingressClass { body["ingressClassName"] = ingressClass }
        return [
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata(spec.instanceName, spec),
            "spec": body,
        ]
    }

    /// power_off with a snapshot: a Job on the pod's node that commits the container
    /// through the node's containerd socket and pushes it to `imageReference`. The committer
    /// writes the pushed image's size in bytes as its termination message. It tolerates
    /// every taint: it must run where the pod is, on a GPU node's taints or a cordoned
    /// node; with a registry Secret, its Docker config is `$DOCKER_CONFIG/config.json`.
    public func committerJob(
        instance: String,
        tenant: String,
        node: String,
        podName: String,
        imageReference: String,
        committerImage: String,
        containerdSocket: String = "/run/containerd/containerd.sock"
    ) -> [String: Any] {
        let labels = Self.labels(instance: instance, tenant: tenant).merging([Self.jobLabel: "commit"]) { own, _ in
            own
        }
        var container: [String: Any] = [
            "name": "commit", "image": committerImage,
            "args": ["--namespace", namespace, "--pod", podName, "--container", "main", "--image", imageReference],
            "volumeMounts": [["name": "containerd", "mountPath": "/run/containerd/containerd.sock"]],
            "securityContext": ["privileged": true],
            "terminationMessagePolicy": "File",
        ]
        var volumes: [[String: Any]] = [
            ["name": "containerd", "hostPath": ["path": containerdSocket, "type": "Socket"]]
        ]
        if let registrySecret {
            container["env"] = [["name": "DOCKER_CONFIG", "value": Self.registryConfigPath]]
            container["volumeMounts"] = [
                ["name": "containerd", "mountPath": "/run/containerd/containerd.sock"],
                ["name": "registry", "mountPath": Self.registryConfigPath, "readOnly": true],
            ]
            volumes.append([
                "name": "registry",
                "secret": [
                    "secretName": registrySecret, "items": [["key": ".dockerconfigjson", "path": "config.json"]],
                ] as [String: Any],
            ])
        }
        let podSpec: [String: Any] = [
            "affinity": Self.pinned(to: node),
            "tolerations": [["operator": "Exists"]],
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "containers": [container],
            "volumes": volumes,
        ]
        return [
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": ["name": Self.jobName(instance), "namespace": namespace, "labels": labels],
            "spec": [
                "backoffLimit": 0, "ttlSecondsAfterFinished": 3600,
                "template": ["metadata": ["labels": labels], "spec": podSpec] as [String: Any],
            ] as [String: Any],
        ]
    }
}
