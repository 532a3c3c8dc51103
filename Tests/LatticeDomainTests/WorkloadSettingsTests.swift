import Foundation
import LatticeDomain
import LatticeTestSupport
import Testing

/// SPEC §11: env, secretEnv, startupScript, ports and templates, checked and shown.
@Suite(.timeLimit(.minutes(10))) struct WorkloadSettingsTests {
    func fields(_ text: String) throws -> JSONFields { try JSONFields(JSONValue.parseBody(Data(text.utf8))) }
    func settings(_ text: String) throws -> WorkloadSettings { try WorkloadSettings(fields: fields(text)) }

    @Test func readsEveryField() throws {
        let read = try settings(
            """
            {"env": {"A": "1", "_B2": ""}, "secretEnv": {"API_KEY": "sk"}, "startupScript": "echo hi",
             "ports": [{"port": 8000, "name": "api"}, {"port": "9000", "public": true}]}
            """
        )
        #expect(read.env == ["A": "1", "_B2": ""])
        #expect(read.secretEnv == ["API_KEY": "sk"])
        #expect(read.startupScript == "echo hi")
        #expect(read.ports == [PublishedPort(port: 8000, name: "api"), PublishedPort(port: 9000, isPublic: true)])
        #expect(try settings("{}").isEmpty)
    }

    @Test func refusesBadInputNamingTheField() throws {
        let cases: [(String, String)] = [
            (#"{"env": {"1A": "x"}}"#, "env.1A"),
            (#"{"env": {"A-B": "x"}}"#, "env.A-B"),
            (#"{"env": {"A": 1}}"#, "env.A"),
            (#"{"env": ["A"]}"#, "env"),
            (#"{"env": {"JUPYTER_TOKEN": "x"}}"#, "env.JUPYTER_TOKEN"),
            (#"{"secretEnv": {"LATTICE_ROOT_PASSWORD": "x"}}"#, "secretEnv.LATTICE_ROOT_PASSWORD"),
            (#"{"env": {"A": "1"}, "secretEnv": {"A": "2"}}"#, "secretEnv"),
            (#"{"startupScript": ["echo"]}"#, "startupScript"),
            (#"{"ports": [{"port": 22}]}"#, "ports[0].port"),
            (#"{"ports": [{"port": 0}]}"#, "ports[0].port"),
            (#"{"ports": [{"port": 65536}]}"#, "ports[0].port"),
            (#"{"ports": [{"name": "x"}]}"#, "ports[0].port"),
            (#"{"ports": [{"port": 80}, {"port": 80}]}"#, "ports[1].port"),
            (#"{"ports": {"port": 80}}"#, "ports"),
            (#"{"ports": [8000]}"#, "ports[0]"),
        ]
        for (body, field) in cases {
            #expect(throws: LatticeError.self, "\(body)") { try settings(body) }
            do {
                _ = try settings(body)
            } catch let error as LatticeError {
                #expect(error.message.hasPrefix(field), "\(body): \(error.message)")
                #expect(error.kind.status == 400, "\(body)")
            }
        }
    }

    @Test func limitsCountAndSize() throws {
        let many = (0...WorkloadSettings.maximumVariables).map { "\"V\($0)\": \"x\"" }.joined(separator: ",")
        #expect(throws: LatticeError.self) { try settings("{\"env\": {\(many)}}") }
        let sixtyFour = (1...WorkloadSettings.maximumVariables).map { "\"V\($0)\": \"x\"" }.joined(separator: ",")
        #expect(try settings("{\"secretEnv\": {\(sixtyFour)}}").secretEnv.count == 64)
        let big = String(repeating: "x", count: WorkloadSettings.maximumEnvironmentBytes)
        #expect(throws: LatticeError.self) { try settings("{\"env\": {\"BIG\": \"\(big)\"}}") }
        let ports = (1...11).map { "{\"port\": \(8000 + $0)}" }.joined(separator: ",")
        #expect(throws: LatticeError.self) { try settings("{\"ports\": [\(ports)]}") }
        let script = String(repeating: "x", count: WorkloadSettings.maximumScriptBytes + 1)
        #expect(throws: LatticeError.self) { try settings("{\"startupScript\": \"\(script)\"}") }
    }

    @Test func theWireShowsEnvAndSecretNamesButNeverSecretValues() throws {
        var instance = sampleInstance()
        instance.status = .running
        instance.workload = WorkloadSettings(
            env: ["MODE": "train"],
            secretEnv: ["HF_TOKEN": "hf-very-secret", "A_KEY": "k"],
            startupScript: "pip install x",
            ports: [PublishedPort(port: 8000, name: "api"), PublishedPort(port: 7860, name: "ui", isPublic: true)]
        )
        instance.apps = WorkloadApps(jupyterlab: .running, tensorboard: .starting)
        let context = WireContext(publicHost: "gpu.example", httpGatewayPort: 8443)
        let wire = InstanceWire(instance, context: context)
        #expect(wire.env == ["MODE": "train"])
        #expect(wire.secretEnvNames == ["A_KEY", "HF_TOKEN"])
        #expect(wire.startupScript == "pip install x")
        #expect(
            wire.servers.ports?.map(\.url) == [
                "http://\(instance.uid)-8000.gpu.example:8443/", "http://\(instance.uid)-7860.gpu.example:8443/",
            ]
        )
        #expect(wire.servers.apps == InstanceWire.Apps(jupyterlab: "running", tensorboard: "starting"))
        let json = String(decoding: try JSONEncoder().encode(wire), as: UTF8.self)
        #expect(!json.contains("hf-very-secret"))
        // A Stopped instance runs nothing.
        instance.status = .stopped
        #expect(InstanceWire(instance, context: context).servers.apps?.jupyterlab == "absent")
        // The seed's instance, made without any of it, shows empty values.
        let plain = InstanceWire(sampleInstance(), context: context)
        #expect(plain.env == [:] && plain.secretEnvNames == [] && plain.servers.ports == [])
    }
}

@Suite(.timeLimit(.minutes(10))) struct TemplateTests {
    func body(_ text: String) throws -> JSONValue { try JSONValue.parseBody(Data(text.utf8)) }

    let template = InstanceTemplate(
        id: "tpl-1",
        namespace: "alice",
        name: "torch",
        image: "images.example/ml/torch:2",
        env: ["MODE": "train"],
        ports: [PublishedPort(port: 8000, name: "api")],
        startupScript: "echo ready",
        diskSizeGB: 80,
        description: "PyTorch"
    )

    @Test func fillsWhatTheRequestLeavesOut() throws {
        let filled = template.fill(
            try body(
                """
                {"Cost": {"CostType": "1", "DiskSKUID": "1", "GPUSKUID": "66"}, "namespace": "alice",
                 "displayName": "t", "template": "tpl-1"}
                """
            )
        )
        let request = try CreateInstanceRequest(json: filled)
        #expect(request.image == "images.example/ml/torch:2")
        #expect(request.sizeGiB == 80 && request.pathInContainer == "/root/data")
        #expect(request.workload.env == ["MODE": "train"] && request.workload.startupScript == "echo ready")
        #expect(request.workload.ports == [PublishedPort(port: 8000, name: "api")])
        #expect(request.description == "PyTorch")
    }

    @Test func keepsWhatTheRequestGives() throws {
        let filled = template.fill(
            try body(
                """
                {"Cost": {"CostType": "1", "DiskSKUID": "1", "GPUSKUID": "66"}, "namespace": "alice",
                 "displayName": "t", "image": "images.example/ml/other:1", "env": {},
                 "VolumeMount": [{"PathInContainer": "/data", "Size": 20}], "ports": []}
                """
            )
        )
        let request = try CreateInstanceRequest(json: filled)
        #expect(request.image == "images.example/ml/other:1")
        #expect(request.sizeGiB == 20 && request.pathInContainer == "/data")
        #expect(request.workload.env == [:] && request.workload.ports == [])
        #expect(request.workload.startupScript == "echo ready")
    }

    @Test func readsAndChecksACreateBody() throws {
        let made = try InstanceTemplate(
            fields: try JSONFields(
                try body(#"{"name": "n", "image": "img:1", "env": {"A": "b"}, "diskSizeGB": 30, "public": true}"#)
            ),
            id: "tpl-x",
            namespace: "admin",
            createdAt: Date(timeIntervalSince1970: 0)
        )
        #expect(made.isPublic && made.diskSizeGB == 30 && made.env == ["A": "b"])
        for bad in [
            #"{"image": "img:1"}"#, #"{"name": "n"}"#, #"{"name": "n", "image": "img:1", "diskSizeGB": 0}"#,
            #"{"name": "n", "image": "img:1", "secretEnv": {"A": "b"}}"#,
            #"{"name": "n", "image": "img:1", "ports": [{"port": 22}]}"#,
        ] {
            #expect(throws: LatticeError.self, "\(bad)") {
                try InstanceTemplate(
                    fields: try JSONFields(try body(bad)),
                    id: "t",
                    namespace: "a",
                    createdAt: Date(timeIntervalSince1970: 0)
                )
            }
        }
    }

    @Test func officialTemplatesComeFromTheImages() {
        let official = InstanceTemplate.official(images: Catalog.builtIn.images)
        #expect(official.map(\.id) == ["official-tensorflow", "official-pytorch", "official-ubuntu"])
        #expect(official.allSatisfy { $0.isOfficial && $0.isPublic })
        #expect(official[1].name.hasPrefix("PyTorch 2.3.0"))
    }
}
