import Foundation
import LatticeCompute
import LatticeDomain

/// Snapshots: a Job on the pod's node commits the running container and pushes the image;
/// the pod is deleted only once the push is done.
extension KubernetesDriver {
    /// Commits the running pod's container with the snapshot Job and, only once it pushed,
    /// deletes the pod; the image's size in bytes.
    public func commit(instanceName: String, imageReference: String) async throws -> Int64 {
        try await synced()
        guard let committerImage = settings.committerImage else {
            throw DriverError(
                "cluster \(settings.cluster) has no committer: set kubernetes.committerImage in the catalog"
                    + " (deploy/committer builds one)",
                kind: .invalidSpec
            )
        }
        guard let pod = livePod(instanceName), pod.status?.phase == "Running" else {
            throw DriverError("no running pod of \(instanceName) to commit", kind: .notFound)
        }
        let job = KubeObjects.jobName(instanceName)
        // A Job of an earlier snapshot goes first (a Job's template cannot change).
        try await delete("jobs", job, query: [("propagationPolicy", "Background")])
        try await api.apply(
            path("jobs", job),
            objects.committerJob(
                instance: instanceName,
                tenant: pod.metadata.labels?[KubeObjects.tenantLabel] ?? "",
                node: pod.node,
                podName: pod.metadata.name,
                imageReference: imageReference,
                committerImage: committerImage,
                containerdSocket: settings.containerdSocket
            )
        )
        let size = try await waitForJob(job)
        // Saved: now the pod goes, and its GPUs with it.
        try await deletePod(pod.metadata.name, grace: 30)
        try await delete("services", KubeObjects.sshServiceName(instanceName))
        try await waitUntilGone(pod.metadata.name)
        return size
    }

    /// Polls the snapshot Job (one at a time, seconds apart) until it succeeds (the size its
    /// pod wrote) or fails (its message). A Job whose pod cannot start (the committer image
    /// cannot be pulled, the node refuses it) in two looks 3 s apart, or that outlives the
    /// timeout, is deleted and fails, saying why.
    func waitForJob(_ job: String) async throws -> Int64 {
        let deadline = ContinuousClock.now + settings.commitTimeout
        var polls = 0
        var trouble: String?
        while ContinuousClock.now < deadline {
            polls += 1
            if polls % 3 == 0 {
                let now = try await jobPodTrouble(job)
                if let now, now == trouble {
                    try await delete("jobs", job, query: [("propagationPolicy", "Background")])
                    throw DriverError("the snapshot Job cannot run: \(now)", kind: .workloadFailed)
                }
                trouble = now
            }
            let object = try await api.call(.GET, path("jobs", job)).object
            let status = object["status"] as? [String: Any] ?? [:]
            if (status["succeeded"] as? Int ?? 0) > 0 {
                let message = try await jobPodMessage(job)
                return Int64(message.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            }
            let conditions = status["conditions"] as? [[String: Any]] ?? []
            if let failed = conditions.first(where: {
                $0["type"] as? String == "Failed" && $0["status"] as? String == "True"
            })
                ?? ((status["failed"] as? Int ?? 0) > 0 ? [:] : nil)
            {
                let podMessage = try await jobPodMessage(job)
                let message =
                    podMessage.isEmpty ? (failed["message"] as? String ?? "the snapshot Job failed") : podMessage
                throw DriverError(message.trimmingCharacters(in: .whitespacesAndNewlines), kind: .workloadFailed)
            }
            try await Task.sleep(for: .seconds(1))
        }
        try await delete("jobs", job, query: [("propagationPolicy", "Background")])
        throw DriverError("the snapshot Job \(job) did not finish in time", kind: .workloadFailed)
    }

    /// The Job's pods (the Job controller labels them with `job-name`).
    func jobPods(_ job: String) async throws -> [[String: Any]] {
        let list = try await api.call(.GET, "\(base)/pods", query: [("labelSelector", "job-name=\(job)")]).object
        return list["items"] as? [[String: Any]] ?? []
    }

    /// Why the Job's pod cannot start, if it cannot: the pod's own words (`ImagePullFailed:
    /// …`, `Unschedulable: …`).
    func jobPodTrouble(_ job: String) async throws -> String? {
        for item in try await jobPods(job) {
            guard let status = item["status"], let data = try? JSONSerialization.data(withJSONObject: status),
                let decoded = try? JSONDecoder().decode(PodStatus.self, from: data),
                case .failed(let reason) = decoded.phase(deleting: false, nodeLost: false),
                reason.hasPrefix("ImagePullFailed: ") || reason.hasPrefix("Unschedulable: ")
            else { continue }
            return reason
        }
        return nil
    }

    /// What the Job's pod wrote as its termination message.
    func jobPodMessage(_ job: String) async throws -> String {
        for item in try await jobPods(job) {
            let statuses = (item["status"] as? [String: Any])?["containerStatuses"] as? [[String: Any]] ?? []
            for container in statuses {
                let terminated = (container["state"] as? [String: Any])?["terminated"] as? [String: Any]
                if let message = terminated?["message"] as? String, !message.isEmpty { return message }
            }
        }
        return ""
    }
}
