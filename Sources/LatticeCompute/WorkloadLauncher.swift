import Foundation
import LatticeDomain

/// The shell programs that make an instance a place to work in (SPEC §11), the same on
/// every driver that runs containers:
///
/// - `keepAlive`, the container's entrypoint: runs the image's own command in the
///   background and then waits, so an image whose command is a shell (or ends at once)
///   stays Running; a stop's SIGTERM ends it at once.
/// - `launcher`, run as root at every start (an exec after the start, on the engine and on
///   Kubernetes, where a terminal keeps a shell up instead of `keepAlive`): starts
///   JupyterLab and Tensorboard where the image has them and nothing serves their ports,
///   then runs the startup script, with everything they print in the container's log, and
///   reports on its standard output, one `key=value` line each: `jupyterlab=`,
///   `tensorboard=` (`running`, `starting`, `absent`) and `startup=<exit status>`.
public enum WorkloadLauncher {
    /// Where the launcher finds the startup script (in its own environment only, never in
    /// the container's).
    public static let scriptVariable = "LATTICE_STARTUP_SCRIPT"
    /// Where the launcher finds the data disk's path (JupyterLab's root, Tensorboard's logs).
    public static let dataVariable = "LATTICE_DATA_PATH"

    /// `sh -c keepAlive lattice-init <the image's entrypoint and command...>`.
    public static let keepAlive = """
        if [ "$#" -gt 0 ]; then "$@" & fi
        trap 'kill -TERM -1 2>/dev/null; exit 0' TERM INT
        while :; do sleep 3600 & wait $!; done
        """

    public static let launcher = """
        if [ -w /proc/1/fd/1 ]; then exec 3>&1 >/proc/1/fd/1 2>&1; else exec 3>&1; fi
        data="${LATTICE_DATA_PATH:-/root/data}"
        listening() {
            grep -qiE ":$1 [0-9a-f]+:[0-9a-f]+ 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null
        }
        waitfor() {
            n=0
            while [ "$n" -lt "$2" ]; do listening "$1" && return 0; sleep 1; n=$((n + 1)); done
            return 1
        }
        start_jupyter() {
            command -v jupyter >/dev/null 2>&1 || { echo jupyterlab=absent >&3; return 1; }
            if waitfor 22B8 5; then echo jupyterlab=running >&3; return 0; fi
            echo "lattice: starting JupyterLab under /jupyter"
            (cd "$data" 2>/dev/null || cd /; jupyter lab --ip=0.0.0.0 --port=8888 --no-browser --allow-root \\
                --ServerApp.base_url=/jupyter --ServerApp.token="$JUPYTER_TOKEN" \\
                --ServerApp.root_dir="$data" --ServerApp.trust_xheaders=True </dev/null &)
            echo jupyterlab=starting >&3
            (waitfor 22B8 300 && echo jupyterlab=running >&3) &
        }
        start_tensorboard() {
            command -v tensorboard >/dev/null 2>&1 || { echo tensorboard=absent >&3; return 1; }
            if waitfor 1776 5; then echo tensorboard=running >&3; return 0; fi
            echo "lattice: starting Tensorboard under /monitor"
            mkdir -p "$data/tensorboard"
            (tensorboard --logdir "$data/tensorboard" --path_prefix=/monitor --host 0.0.0.0 --port 6006 \\
                </dev/null &)
            echo tensorboard=starting >&3
            (waitfor 1776 300 && echo tensorboard=running >&3) &
        }
        start_jupyter; jupyter=$?
        start_tensorboard; tensorboard=$?
        if [ -n "$LATTICE_STARTUP_SCRIPT" ]; then
            echo "lattice: running the startup script"
            /bin/sh -c "$LATTICE_STARTUP_SCRIPT" </dev/null
            status=$?
            echo "lattice: the startup script exited with status $status"
            echo "startup=$status" >&3
            # A script that installed JupyterLab or Tensorboard gets them started.
            [ "$jupyter" = 1 ] && command -v jupyter >/dev/null 2>&1 && start_jupyter
            [ "$tensorboard" = 1 ] && command -v tensorboard >/dev/null 2>&1 && start_tensorboard
        fi
        wait
        """

    /// What the launcher reported so far.
    public struct Report: Sendable, Equatable {
        public var apps = WorkloadApps.absent
        /// The startup script's exit status, once it ended.
        public var startupStatus: Int32?

        public init() {}

        /// Takes in one line of the launcher's output; false if it said nothing new.
        public mutating func read(_ line: Substring) -> Bool {
            let parts = line.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { return false }
            let before = self
            switch parts[0] {
            case "jupyterlab": apps.jupyterlab = WorkloadApps.State(rawValue: String(parts[1])) ?? apps.jupyterlab
            case "tensorboard": apps.tensorboard = WorkloadApps.State(rawValue: String(parts[1])) ?? apps.tensorboard
            case "startup": startupStatus = Int32(parts[1])
            default: break
            }
            return self != before
        }

        /// What the instance says in its `statusReason` while Running: "" unless the script failed.
        public var note: String {
            guard let status = startupStatus, status != 0 else { return "" }
            return Self.failureNote(status: status)
        }

        public static func failureNote(status: Int32) -> String {
            "StartupScriptFailed: the startup script exited with status \(status); see the instance's logs"
        }
    }
}
