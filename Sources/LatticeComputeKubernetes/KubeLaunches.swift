import Foundation
import LatticeCompute
import LatticeDomain
import Synchronization

/// Each instance's launcher (SPEC §11) on Kubernetes: `WorkloadLauncher.launcher`, run
/// through `pods/exec` whenever the pod's `main` container has started (the first start,
/// a power_on, a restart by the kubelet), as the engine runs it after each start. It
/// starts JupyterLab and Tensorboard where the image has them and nothing serves their
/// ports, and the startup script (from the pod's environment); what it reports becomes the
/// instance's `servers.apps` and, for a failed script, its `statusReason`.
package final class KubeLaunches: Sendable {
    /// One start's launcher: which start it is (the pod and its container's start time) and
    /// what it reported so far.
    struct Launch: Equatable {
        var start: String
        var report = WorkloadLauncher.Report()
        var partial = ""
    }

    private let launches = Mutex<[String: Launch]>([:])
    /// When this driver began: a container that started well before it (more than
    /// `KubeLaunches.margin`, timestamps being whole seconds) was launched by the Lattice
    /// that ran before (a restart, a failover), and its startup script is not run twice.
    let since: Date
    static let margin: TimeInterval = 2

    package init(since: Date = Date()) { self.since = since }

    /// The start to launch now for `pod`, if its container started anew since the last
    /// one (nil: none, or one launched before this driver began).
    package func toLaunch(_ pod: PodObject) -> String? {
        guard let instance = pod.instance, let start = Self.start(of: pod), begin(instance, start: start) else {
            return nil
        }
        if let text = pod.status?.containerStatuses?.first?.state?.running?["startedAt"],
            let at = Self.date(text), at < since.addingTimeInterval(-Self.margin)
        {
            return nil
        }
        return start
    }

    /// The start of `pod`'s `main` container, when it runs (nil: not running, or going).
    static func start(of pod: PodObject) -> String? {
        guard !pod.deleting, pod.status?.phase == "Running",
            let running = pod.status?.containerStatuses?.first?.state?.running,
            let at = running["startedAt"]
        else { return nil }
        return "\(pod.metadata.name)@\(at)"
    }

    /// An API server's time (RFC 3339, with or without fractions of a second).
    package static func date(_ text: String) -> Date? {
        (try? Date(text, strategy: .iso8601))
            ?? (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
    }

    /// Whether `start` of `instance` is new (then it is recorded and is to be launched).
    func begin(_ instance: String, start: String) -> Bool {
        launches.withLock { launches in
            guard launches[instance]?.start != start else { return false }
            launches[instance] = Launch(start: start)
            return true
        }
    }

    /// Takes in the launcher's output for `start`; true if it said something new.
    func read(_ instance: String, start: String, _ data: Data) -> Bool {
        launches.withLock { launches in
            guard var launch = launches[instance], launch.start == start else { return false }
            var changed = false
            launch.partial += String(decoding: data, as: UTF8.self)
            while let newline = launch.partial.firstIndex(of: "\n") {
                if launch.report.read(launch.partial[..<newline]) { changed = true }
                launch.partial.removeSubrange(...newline)
            }
            launches[instance] = launch
            return changed
        }
    }

    /// What the launcher of the instance's running pod reported.
    func report(_ instance: String, start: String?) -> WorkloadLauncher.Report? {
        launches.withLock { launches in
            guard let start, let launch = launches[instance], launch.start == start else { return nil }
            return launch.report
        }
    }

    /// `pod` of the instance is gone: what its launcher said goes with it.
    func forget(_ instance: String, pod: String) {
        launches.withLock { launches in
            if launches[instance]?.start.hasPrefix(pod + "@") == true { launches[instance] = nil }
        }
    }

    /// Runs the launcher in `pod` for `start` (the driver's `run()` keeps it as a child; the data disk's path and
    /// the startup script come from the pod's own environment, `KubeObjects.pod`); `changed`
    /// is called whenever it reports something new. An exec the API server refuses before the
    /// launcher printed anything (the container only just started) is tried again, up to 5
    /// times, 2 s apart.
    static func run(
        api: KubeAPI,
        namespace: String,
        pod: String,
        instance: String,
        start: String,
        _ launches: KubeLaunches,
        changed: @escaping @Sendable () -> Void
    ) async {
        for attempt in 1...5 {
            let heard = Mutex(false)
            let (input, feed) = AsyncStream<ExecInput>.makeStream()
            feed.yield(.endOfInput)
            feed.finish()
            do {
                _ = try await KubeExec.run(
                    api: api,
                    namespace: namespace,
                    pod: pod,
                    ExecRequest(command: WorkloadLauncher.launcher),
                    input: input
                ) { output in
                    guard case .stdout(let data) = output else { return }
                    heard.withLock { $0 = true }
                    if launches.read(instance, start: start, data) { changed() }
                }
                return
            } catch {
                guard attempt < 5, !heard.withLock({ $0 }), launches.isCurrent(instance, start: start) else {
                    return
                }
                try? await Task.sleep(for: .seconds(2))
            }
        }
    }

    /// Whether `start` is still the instance's newest.
    func isCurrent(_ instance: String, start: String) -> Bool {
        launches.withLock { $0[instance]?.start == start }
    }
}
