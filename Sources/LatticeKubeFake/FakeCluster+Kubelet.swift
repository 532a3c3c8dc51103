import Foundation

/// What the fake's nodes do: schedule and start pods, remove deleted ones, run snapshot Jobs.
extension FakeCluster {
    // MARK: - The kubelet and the Job controller

    /// One pass: schedules and starts pods, removes deleted ones after their grace, runs
    /// snapshot Jobs.
    public func tick(now: Date = Date()) {
        lock.withLock {
            runJobs()
            for (key, pod) in objects where key.resource == "pods" {
                step(key, pod, now: now)
            }
        }
    }

    private func step(_ key: Key, _ pod: [String: Any], now: Date) {
        var pod = pod
        let meta = pod["metadata"] as? [String: Any] ?? [:]
        if let deletion = meta["deletionTimestamp"] as? String {
            // The kubelet confirms the deletion; on a node that is not Ready there is none, and
            // the pod stays Terminating until a forced delete. (Pods of a node that left the
            // cluster go, as the pod garbage collector takes them.)
            let node = (pod["spec"] as? [String: Any])?["nodeName"] as? String
            let confirmed = node.map {
                nodeIsReady($0) || objects[Key(resource: "nodes", namespace: "", name: $0)] == nil
            }
            if let at = Self.parse(deletion), at <= now, confirmed ?? true { _ = remove(key) }
            return
        }
        var status = pod["status"] as? [String: Any] ?? [:]
        let spec = pod["spec"] as? [String: Any] ?? [:]
        let phase = status["phase"] as? String
        guard phase == nil || phase == "Pending" else { return }
        let created = (meta["creationTimestamp"] as? String).flatMap { Self.parse($0) } ?? now
        if spec["nodeName"] == nil {
            // The scheduler: the pinned node must exist, be Ready, not cordoned, and have room.
            let wanted = pinnedNode(spec)
            if let why = unschedulable(key, wanted: wanted, spec: spec) {
                let condition: [String: Any] = [
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": why,
                ]
                if (status["conditions"] as? [[String: Any]])?.first?["message"] as? String != why {
                    status["phase"] = "Pending"
                    status["conditions"] = [condition]
                    pod["status"] = status
                    store(key, pod, type: nil)
                }
                return
            }
            var newSpec = spec
            newSpec["nodeName"] = wanted
            pod["spec"] = newSpec
            status["phase"] = "Pending"
            status["conditions"] = [["type": "PodScheduled", "status": "True"]]
            pod["status"] = status
            store(key, pod, type: nil)
            return
        }
        guard now.timeIntervalSince(created) >= startDelay else { return }
        let image = ((spec["containers"] as? [[String: Any]])?.first?["image"] as? String) ?? ""
        if !images.contains(image) {
            let waiting: [String: Any] = [
                "reason": "ErrImagePull",
                "message": "failed to pull and unpack image \"\(image)\": not found",
            ]
            guard (status["containerStatuses"] as? [[String: Any]]) == nil else { return }
            status["containerStatuses"] = [["name": "main", "ready": false, "state": ["waiting": waiting]]]
        } else {
            status["phase"] = "Running"
            status["podIP"] =
                "10.244.\(Int.random(in: 0...255, using: &random)).\(Int.random(in: 2...254, using: &random))"
            status["containerStatuses"] = [
                ["name": "main", "ready": true, "state": ["running": ["startedAt": Self.timestamp(now)]]]
            ]
        }
        pod["status"] = status
        store(key, pod, type: nil)
    }

    static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }

    /// Why the scheduler cannot put the pod on `wanted`, if it cannot.
    private func unschedulable(_ key: Key, wanted: String, spec: [String: Any]) -> String? {
        let nodeCount = objects.keys.filter { $0.resource == "nodes" }.count
        guard let node = objects[Key(resource: "nodes", namespace: "", name: wanted)] else {
            return "0/\(nodeCount) nodes are available: \(nodeCount) node(s) didn't match Pod's node affinity/selector."
        }
        // A cordoned node has the taint node.kubernetes.io/unschedulable:NoSchedule.
        let nodeSpec = node["spec"] as? [String: Any] ?? [:]
        if nodeSpec["unschedulable"] as? Bool == true,
            !Self.tolerates(spec, key: "node.kubernetes.io/unschedulable", effect: "NoSchedule")
        {
            return "0/\(nodeCount) nodes are available: 1 node(s) were unschedulable."
        }
        for taint in nodeSpec["taints"] as? [[String: String]] ?? []
        where ["NoSchedule", "NoExecute"].contains(taint["effect"] ?? "")
            && !Self.tolerates(spec, key: taint["key"] ?? "", effect: taint["effect"] ?? "")
        {
            let shown = "{\(taint["key"] ?? ""): \(taint["value"] ?? "")}"
            return "0/\(nodeCount) nodes are available: 1 node(s) had untolerated taint \(shown)."
        }
        let allocatable = (node["status"] as? [String: Any])?["allocatable"] as? [String: String] ?? [:]
        let capacity = Int(allocatable["nvidia.com/gpu"] ?? "0") ?? 0
        let used = objects.filter { other, pod in
            other.resource == "pods" && other != key
                && ((pod["spec"] as? [String: Any])?["nodeName"] as? String) == wanted
        }
        .map { Self.gpus($0.value["spec"] as? [String: Any] ?? [:]) }.reduce(0, +)
        if used + Self.gpus(spec) > capacity {
            return "0/\(nodeCount) nodes are available: 1 Insufficient nvidia.com/gpu."
        }
        return nil
    }

    /// The node a pod is pinned to: by name (`matchFields` on `metadata.name`), else by
    /// the `kubernetes.io/hostname` label; "" when neither.
    private func pinnedNode(_ spec: [String: Any]) -> String {
        let affinity = (spec["affinity"] as? [String: Any])?["nodeAffinity"] as? [String: Any]
        let required = affinity?["requiredDuringSchedulingIgnoredDuringExecution"] as? [String: Any]
        let terms = required?["nodeSelectorTerms"] as? [[String: Any]] ?? []
        for field in terms.flatMap({ $0["matchFields"] as? [[String: Any]] ?? [] })
        where field["key"] as? String == "metadata.name" && field["operator"] as? String == "In" {
            if let values = field["values"] as? [String], values.count == 1 { return values[0] }
        }
        guard let hostname = (spec["nodeSelector"] as? [String: String])?["kubernetes.io/hostname"] else { return "" }
        return objects.first { key, node in
            key.resource == "nodes" && Self.labels(node)["kubernetes.io/hostname"] == hostname
        }?.key.name ?? ""
    }

    /// Whether a pod's tolerations (`Exists` ones: the driver writes no others) let it
    /// onto a node with the taint `key` of `effect`.
    static func tolerates(_ spec: [String: Any], key taintKey: String, effect taintEffect: String) -> Bool {
        (spec["tolerations"] as? [[String: Any]] ?? []).contains { toleration in
            let key = toleration["key"] as? String
            let effect = toleration["effect"] as? String
            return toleration["operator"] as? String == "Exists" && (key == nil || key == taintKey)
                && (effect == nil || effect == taintEffect)
        }
    }

    static func gpus(_ spec: [String: Any]) -> Int {
        let containers = spec["containers"] as? [[String: Any]] ?? []
        return containers.compactMap {
            (($0["resources"] as? [String: Any])?["limits"] as? [String: String])?["nvidia.com/gpu"].flatMap(Int.init)
        }.reduce(0, +)
    }

    /// The Job controller and the committer: a Job's pod commits and pushes at once; a push
    /// to a refused reference fails with the committer's message. A pod that cannot start
    /// (its node refuses it, its image is unknown) waits, Pending, saying why.
    private func runJobs() {
        for (key, job) in objects where key.resource == "jobs" {
            guard (job["status"] as? [String: Any])?["startTime"] == nil else { continue }
            let template = ((job["spec"] as? [String: Any])?["template"] as? [String: Any]) ?? [:]
            let podSpec = template["spec"] as? [String: Any] ?? [:]
            var labels = (template["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
            labels["job-name"] = key.name
            let existing = matching("pods", key.namespace, LabelSelector(["job-name": key.name])).first?.key
            let podKey = existing ?? Key(resource: "pods", namespace: key.namespace, name: "\(key.name)-\(suffix(5))")
            func pod(_ status: [String: Any]) -> [String: Any] {
                [
                    "apiVersion": "v1", "kind": "Pod", "metadata": ["name": podKey.name, "labels": labels],
                    "spec": podSpec, "status": status,
                ]
            }
            let container = (podSpec["containers"] as? [[String: Any]])?.first ?? [:]
            if let why = unschedulable(key, wanted: pinnedNode(podSpec), spec: podSpec) {
                let condition = ["type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": why]
                if existing == nil { store(podKey, pod(["phase": "Pending", "conditions": [condition]]), type: nil) }
                continue
            }
            let committer = container["image"] as? String ?? ""
            guard images.contains(committer) else {
                let waiting = [
                    "reason": "ErrImagePull", "message": "failed to pull and unpack image \"\(committer)\": not found",
                ]
                let status: [String: Any] = [
                    "phase": "Pending",
                    "containerStatuses": [["name": "commit", "ready": false, "state": ["waiting": waiting]]],
                ]
                if existing == nil { store(podKey, pod(status), type: nil) }
                continue
            }
            let args = container["args"] as? [String] ?? []
            let image = args.firstIndex(of: "--image").flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil } ?? ""
            let refused = refusedPushes.contains { !$0.isEmpty && image.contains($0) }
            let message = refused ? "push \(image): 403 Forbidden: the registry refused the push" : "52428800"
            let ended: [String: Any] = ["exitCode": refused ? 1 : 0, "message": message]
            store(
                podKey,
                pod([
                    "phase": refused ? "Failed" : "Succeeded",
                    "containerStatuses": [["name": "commit", "ready": false, "state": ["terminated": ended]]],
                ]),
                type: nil
            )
            if !refused { images.insert(image) }
            var done = job
            done["status"] =
                refused
                ? [
                    "startTime": Self.timestamp(), "failed": 1,
                    "conditions": [
                        [
                            "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                            "message": "Job has reached the specified backoff limit",
                        ]
                    ],
                ]
                : [
                    "startTime": Self.timestamp(), "succeeded": 1,
                    "conditions": [["type": "Complete", "status": "True"]],
                ]
            store(key, done, type: nil)
        }
    }
}
