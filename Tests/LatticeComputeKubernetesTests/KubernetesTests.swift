import Foundation
import LatticeCompute
import LatticeComputeKubernetes
import LatticeDomain
import LatticeTestSupport
import Testing

@Suite(.timeLimit(.minutes(10))) struct KubeConnectionTests {
    let kubeconfig = """
        apiVersion: v1
        kind: Config
        current-context: prod
        clusters:
          - name: prod-cluster
            cluster:
              server: https://10.0.0.1:6443
              certificate-authority-data: Q0EtUEVN
          - name: lab
            cluster:
              server: https://lab.example:6443
              insecure-skip-tls-verify: true
        users:
          - name: robot
            user:
              token: secret-token
          - name: admin
            user:
              client-certificate: certs/admin.pem
              client-key: certs/admin-key.pem
          - name: half
            user:
              client-certificate-data: Q0VSVA==
        contexts:
          - name: prod
            context: {cluster: prod-cluster, user: robot, namespace: gpu}
          - name: lab
            context: {cluster: lab, user: admin}
          - name: broken
            context: {cluster: lab, user: half}
        """

    func files(_ name: String) throws -> Data {
        guard name.hasPrefix("certs/") else { throw KubeConnection.Failure(description: name) }
        return Data("PEM of \(name)".utf8)
    }

    @Test func theCurrentContextWithATokenAndCAData() throws {
        let connection = try KubeConnection.kubeconfig(text: kubeconfig, readFile: files)
        #expect(connection.server == "https://10.0.0.1:6443" && connection.bearerToken == "secret-token")
        #expect(connection.certificateAuthorityPEM == Data("CA-PEM".utf8) && !connection.insecureSkipTLSVerify)
        #expect(connection.namespace == "gpu")
    }

    @Test func aNamedContextWithAClientCertificate() throws {
        let connection = try KubeConnection.kubeconfig(text: kubeconfig, context: "lab", readFile: files)
        #expect(connection.insecureSkipTLSVerify && connection.bearerToken == nil)
        #expect(connection.clientCertificatePEM == Data("PEM of certs/admin.pem".utf8))
        #expect(connection.clientKeyPEM == Data("PEM of certs/admin-key.pem".utf8))
    }

    @Test func mistakesAreNamed() {
        #expect(throws: KubeConnection.Failure.self) {
            try KubeConnection.kubeconfig(text: kubeconfig, context: "broken", readFile: files)
        }
        #expect(throws: KubeConnection.Failure.self) {
            try KubeConnection.kubeconfig(text: kubeconfig, context: "nope", readFile: files)
        }
        #expect(throws: KubeConnection.Failure.self) {
            try KubeConnection.kubeconfig(text: "- a list", readFile: files)
        }
    }

    @Test func inClusterReadsTheServiceAccount() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("sa-token\n".utf8).write(to: directory.appendingPathComponent("token"))
        try Data("CA".utf8).write(to: directory.appendingPathComponent("ca.crt"))
        try Data("lattice".utf8).write(to: directory.appendingPathComponent("namespace"))
        let connection = try KubeConnection.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
            directory: directory.path
        )
        #expect(connection.server == "https://10.96.0.1:443" && connection.bearerToken == "sa-token")
        #expect(connection.namespace == "lattice" && connection.certificateAuthorityPEM == Data("CA".utf8))
        #expect(throws: KubeConnection.Failure.self) { try KubeConnection.inCluster(environment: [:]) }
    }
}

@Suite(.timeLimit(.minutes(10))) struct KubeObjectsTests {
    let objects = KubeObjects(
        namespace: "lattice-instances",
        publicHost: "gpu.example.com",
        storageClass: "fast-ssd",
        ingressClass: "nginx",
        registrySecret: "harbor-robot",
        tolerations: ["nvidia.com/gpu", "dedicated"],
        runtimeClass: "nvidia"
    )

    var spec: WorkloadSpec {
        var instance = sampleInstance(status: .creating)
        instance.placement = GPUPlacement(node: "gpu-node-7", gpuIndices: [0, 1])
        instance.access.sshPort = 30099
        instance.access.sshPassword = "Zq9xK2mW7vRt"
        instance.workload = WorkloadSettings(
            env: ["MODE": "train"],
            secretEnv: ["HF_TOKEN": "hf-secret"],
            startupScript: "pip install -r /root/data/requirements.txt",
            ports: [PublishedPort(port: 8000, name: "api")]
        )
        return WorkloadSpec(instance: instance)
    }

    /// SPEC §11: env plain, secretEnv from the Secret, the script and the data disk's path
    /// for the launcher (no hook: the driver runs it), a terminal that keeps a shell up,
    /// published ports declared.
    @Test func theWorkloadsEnvironmentScriptAndPorts() throws {
        let pod = objects.pod(spec)
        let container = try #require(((pod["spec"] as? [String: Any])?["containers"] as? [[String: Any]])?.first)
        let env = try #require(container["env"] as? [[String: Any]])
        #expect(env.contains { $0["name"] as? String == "MODE" && $0["value"] as? String == "train" })
        let secret = try #require(env.first { $0["name"] as? String == "HF_TOKEN" })
        #expect(secret["value"] == nil && secret["valueFrom"] != nil)
        #expect((objects.secret(spec)["stringData"] as? [String: String])?["HF_TOKEN"] == "hf-secret")
        #expect(env.contains { $0["name"] as? String == WorkloadLauncher.scriptVariable })
        #expect(
            env.contains {
                $0["name"] as? String == WorkloadLauncher.dataVariable && $0["value"] as? String == spec.volumePath
            }
        )
        #expect(container["lifecycle"] == nil)
        #expect(container["stdin"] as? Bool == true && container["tty"] as? Bool == true)
        let ports = try #require(container["ports"] as? [[String: Any]])
        #expect(ports.contains { $0["containerPort"] as? Int == 8000 && $0["name"] as? String == "http-8000" })
        let text = String(decoding: try JSONSerialization.data(withJSONObject: pod), as: UTF8.self)
        #expect(!text.contains("hf-secret"), "the secret only in the Secret")
    }

    func all() -> [String: [String: Any]] {
        [
            "pod": objects.pod(spec), "pvc": objects.volumeClaim(spec),
            "secret": objects.secret(spec), "ssh-service": objects.sshService(spec),
            "web-service": objects.webService(spec), "ingress": objects.ingress(spec),
            "network-policy": objects.networkPolicy(),
            "commit-job": objects.committerJob(
                instance: spec.instanceName,
                tenant: spec.namespace,
                node: spec.node,
                podName: "\(spec.instanceName)-abcde",
                imageReference: "harbor.example.com/alice/snap:v1",
                committerImage: "ghcr.io/lattice-cloud/committer:1"
            ),
        ]
    }

    /// A pod spec as the driver reads it back from the API server.
    func podObject(_ spec: [String: Any]) throws -> PodObject {
        let data = try JSONSerialization.data(withJSONObject: ["metadata": ["name": "p"], "spec": spec])
        return try JSONDecoder().decode(PodObject.self, from: data)
    }

    @Test func instancePodsAreDeniedEverythingButLatticeDNSAndTheInternet() throws {
        let policy = objects.networkPolicy()
        let spec = try #require(policy["spec"] as? [String: Any])
        #expect(spec["policyTypes"] as? [String] == ["Ingress", "Egress"])
        let selector = try #require(spec["podSelector"] as? [String: Any])
        #expect((selector["matchLabels"] as? [String: String]) == ["app.kubernetes.io/managed-by": "lattice"])
        let ingress = try #require(spec["ingress"] as? [[String: Any]])
        let from = try #require(ingress.first?["from"] as? [[String: Any]])
        #expect(from.count == 1, "only Lattice's own pods by default")
        #expect(
            (from[0]["podSelector"] as? [String: Any])?["matchLabels"] as? [String: String] == [
                "app.kubernetes.io/name": "lattice"
            ]
        )
        let egress = try #require(spec["egress"] as? [[String: Any]])
        let internet = try #require((egress.last?["to"] as? [[String: Any]])?.first?["ipBlock"] as? [String: Any])
        #expect(internet["cidr"] as? String == "0.0.0.0/0")
        #expect((internet["except"] as? [String])?.contains("169.254.0.0/16") == true, "no cloud metadata service")
        var narrowed = objects
        narrowed.isolation = KubeObjects.Isolation(
            fromNamespaces: ["ingress-nginx"],
            fromCIDRs: ["203.0.113.0/24"],
            egressCIDRs: ["198.51.100.0/24"]
        )
        let other = try #require(narrowed.networkPolicy()["spec"] as? [String: Any])
        #expect(((other["ingress"] as? [[String: Any]])?.first?["from"] as? [[String: Any]])?.count == 3)
        let out = (other["egress"] as? [[String: Any]])?.last?["to"] as? [[String: Any]]
        #expect((out?.first?["ipBlock"] as? [String: Any])?["cidr"] as? String == "198.51.100.0/24")
    }

    @Test func podsRunWithTheRuntimeDefaultSeccompProfileAndNoPrivilegeEscalation() throws {
        let body = try #require(objects.pod(spec)["spec"] as? [String: Any])
        let podSecurity = try #require(body["securityContext"] as? [String: Any])
        #expect((podSecurity["seccompProfile"] as? [String: String]) == ["type": "RuntimeDefault"])
        let container = try #require((body["containers"] as? [[String: Any]])?.first)
        let security = try #require(container["securityContext"] as? [String: Any])
        #expect(security["allowPrivilegeEscalation"] as? Bool == false)
        #expect((security["capabilities"] as? [String: [String]])?["drop"] == ["NET_RAW"])
    }

    @Test func aPodPinnedToItsNodeWithItsGPUsAndSecrets() throws {
        let pod = objects.pod(spec)
        let meta = try #require(pod["metadata"] as? [String: Any])
        // The instance's own pod name (`<instance>-xxxxx`, new at each power_on): applying it
        // twice makes one pod, where generateName would make two.
        #expect(meta["name"] as? String == spec.podName)
        let labels = try #require(meta["labels"] as? [String: String])
        #expect(
            labels["app.kubernetes.io/managed-by"] == "lattice" && labels["lattice.dev/instance"] == spec.instanceName
        )
        let body = try #require(pod["spec"] as? [String: Any])
        // Pinned by the node's name (its hostname label may differ), read back the same way.
        #expect(try podObject(body).node == "gpu-node-7")
        #expect(body["nodeSelector"] == nil)
        // It pulls with the registry Secret (a snapshot in a private project).
        #expect((body["imagePullSecrets"] as? [[String: String]]) == [["name": "harbor-robot"]])
        // It tolerates the configured taint keys and runs with the GPU runtime class.
        #expect(
            (body["tolerations"] as? [[String: String]])
                == [["key": "dedicated", "operator": "Exists"], ["key": "nvidia.com/gpu", "operator": "Exists"]]
        )
        #expect(body["runtimeClassName"] as? String == "nvidia")
        let container = try #require((body["containers"] as? [[String: Any]])?.first)
        let limits = try #require((container["resources"] as? [String: Any])?["limits"] as? [String: String])
        #expect(limits[spec.gpuResourceKey] == "2")
        // Secrets come from the Secret, never inline in the pod.
        let text = String(decoding: try JSONSerialization.data(withJSONObject: pod), as: UTF8.self)
        #expect(!text.contains(spec.environment["LATTICE_ROOT_PASSWORD"]!))
        let secret = try #require(objects.secret(spec)["stringData"] as? [String: String])
        #expect(secret["LATTICE_ROOT_PASSWORD"] == spec.environment["LATTICE_ROOT_PASSWORD"])
    }

    @Test func servicesAndIngressReachTheInstance() throws {
        let ssh = try #require(objects.sshService(spec)["spec"] as? [String: Any])
        #expect((ssh["ports"] as? [[String: Any]])?.first?["nodePort"] as? Int == 30099)
        let rules = try #require((objects.ingress(spec)["spec"] as? [String: Any])?["rules"] as? [[String: Any]])
        #expect(rules.first?["host"] as? String == "\(spec.uid).gpu.example.com")
        let claim = try #require(objects.volumeClaim(spec)["spec"] as? [String: Any])
        #expect(claim["storageClassName"] as? String == "fast-ssd")
        // The disk SKU's class, kept with the volume, comes first.
        #expect(claim["accessModes"] as? [String] == ["ReadWriteOnce"])
        var onCephFS = spec
        onCephFS.volumeStorageClass = "cephfs"
        onCephFS.volumeAccessMode = "ReadWriteMany"
        let shared = try #require(objects.volumeClaim(onCephFS)["spec"] as? [String: Any])
        #expect(shared["storageClassName"] as? String == "cephfs")
        #expect(shared["accessModes"] as? [String] == ["ReadWriteMany"])
    }

    /// The committer runs on the pod's node whatever its taints (a GPU node's, a cordoned
    /// node's) and pushes with the registry Secret's Docker config.
    @Test func theCommitterJobFollowsThePodAndPushesWithTheRegistrySecret() throws {
        let job = try #require(all()["commit-job"])
        let template = try #require((job["spec"] as? [String: Any])?["template"] as? [String: Any])
        let body = try #require(template["spec"] as? [String: Any])
        #expect(try podObject(body).node == "gpu-node-7")
        #expect((body["tolerations"] as? [[String: String]]) == [["operator": "Exists"]])
        let container = try #require((body["containers"] as? [[String: Any]])?.first)
        #expect(
            (container["env"] as? [[String: String]]) == [["name": "DOCKER_CONFIG", "value": "/etc/lattice/registry"]]
        )
        let volumes = try #require(body["volumes"] as? [[String: Any]])
        let registry = try #require(volumes.first { $0["name"] as? String == "registry" }?["secret"] as? [String: Any])
        #expect(registry["secretName"] as? String == "harbor-robot")
        // Without a Secret: neither the variable nor the volume.
        var plain = objects
        plain.registrySecret = nil
        let bare = plain.committerJob(
            instance: "i",
            tenant: "t",
            node: "n",
            podName: "i-abcde",
            imageReference: "r/a/b:c",
            committerImage: "c"
        )
        let text = String(decoding: try JSONSerialization.data(withJSONObject: bare), as: UTF8.self)
        #expect(!text.contains("DOCKER_CONFIG") && !text.contains("registry"))
        #expect(plain.pod(spec)["imagePullSecrets"] == nil)
    }

    /// Written out for `kubernetes-validate --strict` (scripts/validate-manifests.sh), when
    /// the test run says where.
    @Test func everyObjectIsWrittenForValidation() throws {
        let objects = all()
        #expect(objects.count == 8)
        guard let directory = ProcessInfo.processInfo.environment["LATTICE_K8S_OBJECTS_DIR"] else { return }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, object) in objects {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            try data.write(to: URL(fileURLWithPath: directory).appendingPathComponent("\(name).json"))
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct PodStatusTests {
    func status(_ json: String) throws -> PodStatus { try JSONDecoder().decode(PodStatus.self, from: Data(json.utf8)) }

    @Test func podConditionsBecomeStatusesAndReasons() throws {
        let pulling = try status(
            #"{"phase":"Pending","containerStatuses":[{"state":{"waiting":{"reason":"ImagePullBackOff","#
                + #""message":"Back-off pulling image \"nope:1\""}}}]}"#
        )
        #expect(
            pulling.phase(deleting: false, nodeLost: false)
                == .failed(reason: "ImagePullFailed: Back-off pulling image \"nope:1\"")
        )
        let unschedulable = try status(
            #"{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","#
                + #""message":"0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}"#
        )
        #expect(
            unschedulable.phase(deleting: false, nodeLost: false)
                == .failed(reason: "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")
        )
        let oom = try status(
            #"{"phase":"Running","containerStatuses":[{"ready":true,"state":{"running":{}},"#
                + #""lastState":{"terminated":{"reason":"OOMKilled","exitCode":137}}}]}"#
        )
        #expect(
            oom.phase(deleting: false, nodeLost: false)
                == .failed(reason: "OOMKilled: the workload ran out of memory and was killed")
        )
        let running = try status(#"{"phase":"Running","containerStatuses":[{"ready":true,"state":{"running":{}}}]}"#)
        #expect(running.phase(deleting: false, nodeLost: false) == .running)
        #expect(running.phase(deleting: true, nodeLost: false) == .stopping)
        #expect(
            running.phase(deleting: false, nodeLost: true)
                == .failed(reason: "WorkloadLost: the pod's node left the cluster")
        )
        #expect(try status(#"{"phase":"Pending"}"#).phase(deleting: false, nodeLost: false) == .starting)
        #expect(try status(#"{"phase":"Succeeded"}"#).phase(deleting: false, nodeLost: false) == .stopped)
    }
}

@Suite(.timeLimit(.minutes(10))) struct ClientRateLimitTests {
    @Test func aBurstThenTheSteadyRate() {
        var limit = ClientRateLimit(queriesPerSecond: 5, burst: 10, now: 0)
        let delays = (0..<12).map { _ in limit.delay(now: 0) }
        #expect(delays.prefix(10).allSatisfy { $0 == 0 }, "the burst goes at once")
        #expect(abs(delays[10] - 0.2) < 1e-9 && abs(delays[11] - 0.4) < 1e-9, "then 5 per second")
    }

    @Test func retryAfterHoldsEveryRequest() {
        var limit = ClientRateLimit(now: 0)
        limit.retryAfter(3, now: 1)
        #expect(limit.delay(now: 1) == 3)
        #expect(limit.delay(now: 5) == 0, "after the pause, the bucket decides again")
        limit.retryAfter(100_000, now: 5)
        #expect(limit.delay(now: 5) == 600, "a silly Retry-After is capped")
    }

    @Test func retryAfterIsSecondsOrAnHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_764_633_600)  // Tue, 02 Dec 2025 00:00:00 GMT
        #expect(ClientRateLimit.retryAfterSeconds("7", now: now) == 7)
        #expect(ClientRateLimit.retryAfterSeconds("Tue, 02 Dec 2025 00:00:30 GMT", now: now) == 30)
        #expect(ClientRateLimit.retryAfterSeconds("Mon, 01 Dec 2025 23:00:00 GMT", now: now) == 0, "a past date")
        #expect(ClientRateLimit.retryAfterSeconds(nil, now: now) == 1)
        #expect(ClientRateLimit.retryAfterSeconds("soon", now: now) == 1)
    }
}

@Suite(.timeLimit(.minutes(10))) struct KubeNodeReaderTests {
    func node(_ json: String) throws -> KubeNodeReader.NodeObject {
        try JSONDecoder().decode(KubeNodeReader.NodeObject.self, from: Data(json.utf8))
    }

    @Test func gpusModelAndHealthComeFromTheCluster() throws {
        let reader = KubeNodeReader()
        let ready = try node(
            #"{"metadata":{"name":"gpu-1","labels":{"nvidia.com/gpu.product":"NVIDIA-H20"}},"#
                + #""status":{"allocatable":{"nvidia.com/gpu":"8","cpu":"191500m","memory":"1584938732Ki"},"#
                + #""conditions":[{"type":"Ready","status":"True"}]}}"#
        )
        let seen = try #require(reader.clusterNode(ready, cluster: "k8s"))
        #expect(seen.node == Node(name: "gpu-1", gpuModel: "NVIDIA-H20", gpuCount: 8, cpuCores: 191, memoryGiB: 1511))
        #expect(seen.healthy)

        let cordoned = try node(
            #"{"metadata":{"name":"gpu-2"},"spec":{"unschedulable":true},"#
                + #""status":{"allocatable":{"nvidia.com/gpu":"4"},"conditions":[{"type":"Ready","status":"True"}]}}"#
        )
        let closed = try #require(reader.clusterNode(cordoned, cluster: "k8s"))
        #expect(!closed.healthy && closed.reason.hasPrefix("Cordoned") && !closed.unreachable)

        let notReady = try node(
            #"{"metadata":{"name":"gpu-3"},"status":{"allocatable":{"nvidia.com/gpu":"4"},"#
                + #""conditions":[{"type":"Ready","status":"Unknown","#
                + #""message":"Kubelet stopped posting node status."}]}}"#
        )
        let gone = try #require(reader.clusterNode(notReady, cluster: "k8s"))
        #expect(
            !gone.healthy && gone.unreachable && gone.reason == "NodeNotReady: Kubelet stopped posting node status."
        )

        let cpuOnly = try node(#"{"metadata":{"name":"cpu-1"},"status":{"allocatable":{"cpu":"64"}}}"#)
        #expect(reader.clusterNode(cpuOnly, cluster: "k8s") == nil, "no GPUs of the key: not a GPU node")
        let other = KubeNodeReader(gpuResourceKey: "amd.com/gpu", modelLabel: "amd.com/gpu.product")
        #expect(other.clusterNode(ready, cluster: "k8s") == nil)
    }

    /// A taint the instance pods do not tolerate closes the node, saying which; the GPU
    /// key's taint (a GPU pool's) is tolerated by default, PreferNoSchedule only prefers.
    @Test func untoleratedTaintsCloseANode() throws {
        func tainted(_ taints: String) throws -> KubeNodeReader.NodeObject {
            try node(
                #"{"metadata":{"name":"gpu-4"},"spec":{"taints":"# + taints + "},"
                    + #""status":{"allocatable":{"nvidia.com/gpu":"8"},"#
                    + #""conditions":[{"type":"Ready","status":"True"}]}}"#
            )
        }
        let reader = KubeNodeReader()
        let pool = try tainted(
            #"[{"key":"nvidia.com/gpu","value":"present","effect":"NoSchedule"},"#
                + #"{"key":"spot","effect":"PreferNoSchedule"}]"#
        )
        #expect(try #require(reader.clusterNode(pool, cluster: "k8s")).healthy)
        let kept = try tainted(#"[{"key":"dedicated","value":"training","effect":"NoSchedule"}]"#)
        let closed = try #require(reader.clusterNode(kept, cluster: "k8s"))
        #expect(!closed.healthy && !closed.unreachable)
        #expect(
            closed.reason
                == "Tainted: the node has the taint dedicated=training:NoSchedule, which instance pods do not tolerate"
                + " (kubernetes.tolerations)"
        )
        let tolerant = KubeNodeReader(tolerated: ["nvidia.com/gpu", "dedicated"])
        #expect(try #require(tolerant.clusterNode(kept, cluster: "k8s")).healthy)
        let pressure = try tainted(#"[{"key":"node.kubernetes.io/disk-pressure","effect":"NoSchedule"}]"#)
        #expect(try #require(reader.clusterNode(pressure, cluster: "k8s")).reason.contains("disk-pressure:NoSchedule"))
    }
}
