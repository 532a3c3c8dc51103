import Foundation
import Hummingbird
import LatticeCompute
import LatticeDomain

/// The console's page of one instance (SPEC §11): details, environment names, ports with
/// links, its log (refreshed as it grows) and a chart of its figures drawn by the page.
extension ConsoleRoutes {
    func registerInstance(_ console: RouterGroup<LatticeRequestContext>) {
        console.get("instances/:cluster/:name") { request, context in
            try await signedIn(request) { visit, principal in
                let cluster = try context.parameters.require("cluster")
                let name = try context.parameters.require("name")
                let instance = try await api.instance(principal: principal, cluster: cluster, name: name)
                let logs = try? await logText(principal, cluster: cluster, name: name)
                return show(
                    visit,
                    request,
                    title: instance.displayName,
                    page: "instances",
                    template: "instance",
                    ConsoleView.InstancePage(instance, logs: logs ?? ""),
                    live: ConsoleRoutes.ownLiveStatus
                )
            }
        }
        console.get("instances/:cluster/:name/logs.txt") { request, context in
            try await signedIn(request) { _, principal in
                let text = try await logText(
                    principal,
                    cluster: try context.parameters.require("cluster"),
                    name: try context.parameters.require("name")
                )
                var headers = HTTPFields()
                headers[.contentType] = "text/plain; charset=utf-8"
                headers[.cacheControl] = "no-store"
                return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
            }
        }
        console.get("instances/:cluster/:name/metrics.json") { request, context in
            try await signedIn(request) { _, principal in
                try JSONResponse.encode(
                    try await api.instanceMetrics(
                        principal: principal,
                        cluster: try context.parameters.require("cluster"),
                        name: try context.parameters.require("name")
                    )
                )
            }
        }
    }

    /// The log's last 200 lines.
    func logText(_ principal: Principal, cluster: String, name: String) async throws -> String {
        let text = ExecText()
        try await api.instanceLogs(
            principal: principal,
            cluster: cluster,
            name: name,
            request: try LogsRequest(tail: "200", follow: nil)
        ) { text.append($0) }
        return text.text
    }
}

extension ConsoleView {
    /// `instance.mustache`.
    struct InstancePage {
        struct Port {
            var port: Int
            var name: String?
            var url: String
            var `public`: Bool
        }

        var name: String
        var displayName: String
        var status: String
        var statusReason: String
        var image: String
        var gpus: String
        var ssh: String
        var jupyter: String?
        var tensorboard: String?
        var apps: InstanceWire.Apps
        var env: [String]
        var secretEnv: [String]
        var ports: [Port]
        var base: String
        var logs: String

        init(_ i: InstanceWire, logs: String) {
            name = i.name
            displayName = i.displayName
            status = i.status
            statusReason = i.statusReason
            image = i.image
            gpus = "\(i.resources.GPUNum)×\(i.resources.GPUType)"
            ssh = i.servers.SSH.sshAddr
            jupyter = i.servers.Jupyterlab.isEmpty ? nil : i.servers.Jupyterlab
            tensorboard = i.servers.Tensorboard.isEmpty ? nil : i.servers.Tensorboard
            apps = i.servers.apps ?? InstanceWire.Apps(jupyterlab: "absent", tensorboard: "absent")
            env = (i.env ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            secretEnv = i.secretEnvNames ?? []
            ports = (i.servers.ports ?? []).map {
                Port(port: $0.port, name: $0.name.isEmpty ? nil : $0.name, url: $0.url, public: $0.public)
            }
            base = "/console/instances/\(i.Region)/\(i.name)"
            self.logs = logs
        }
    }
}
