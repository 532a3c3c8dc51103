import Foundation
import LatticeDomain
import LatticeTestSupport
import Testing

@Suite(.timeLimit(.minutes(10))) struct RequestParsingTests {
    func body(_ text: String) throws -> JSONValue { try JSONValue.parseBody(Data(text.utf8)) }

    let seedBody = """
        {"Cost": {"CostType": "1", "CouponID": "", "DiskSKUID": "1", "GPUSKUID": "66", "CostTime": ""},
         "VolumeMount": [{"PathInContainer": "/root/data", "Size": 50, "Type": "shared-filesystem"}],
         "namespace": "xxx", "displayName": "test1", "image": "img", "Region": ""}
        """

    @Test func parsesTheSeedsBody() throws {
        let request = try CreateInstanceRequest(json: body(seedBody))
        #expect(request.costType == 1 && request.gpuSkuID == "66" && request.diskSkuID == "1")
        #expect(request.sizeGiB == 50 && request.pathInContainer == "/root/data")
        #expect(request.namespace == "xxx" && request.displayName == "test1")
    }

    @Test func acceptsLenientScalars() throws {
        let text = seedBody.replacingOccurrences(of: "\"CostType\": \"1\"", with: "\"CostType\": 1")
            .replacingOccurrences(of: "\"GPUSKUID\": \"66\"", with: "\"GPUSKUID\": 66")
            .replacingOccurrences(of: "\"Size\": 50", with: "\"Size\": \"50\"")
        let request = try CreateInstanceRequest(json: body(text))
        #expect(request.costType == 1 && request.gpuSkuID == "66" && request.sizeGiB == 50)
    }

    @Test func namesTheMissingField() throws {
        for (field, path) in [
            ("\"GPUSKUID\": \"66\", ", "Cost.GPUSKUID"), ("\"displayName\": \"test1\", ", "displayName"),
        ] {
            let text = seedBody.replacingOccurrences(of: field, with: "")
            #expect(throws: LatticeError.missingField(path)) { try CreateInstanceRequest(json: body(text)) }
        }
    }

    @Test func malformedJSONIsABadRequest() {
        #expect { try JSONValue.parseBody(Data("{".utf8)) } throws: { ($0 as? LatticeError)?.code == "MalformedJSON" }
        #expect((try? JSONValue.parseBody(Data())) == .object([:]))
    }

    @Test func powerOffDefaultsAndLeniency() throws {
        let empty = try PowerOffRequest(json: body(""))
        #expect(empty.gracePeriodSeconds == 10 && !empty.needSnapshot)
        for flag in ["true", "\"true\"", "\"True\""] {
            let request = try PowerOffRequest(
                json: body("{\"needSnapshot\": \(flag), \"imageName\": \"image1\", \"gracePeriodSeconds\": \"10\"}")
            )
            #expect(request.needSnapshot && request.tag == "latest")
        }
        for flag in ["false", "\"false\"", "\"False\"", "\"\""] {
            #expect(try !PowerOffRequest(json: body("{\"needSnapshot\": \(flag)}")).needSnapshot)
        }
        #expect(throws: LatticeError.self) { try PowerOffRequest(json: body("{\"needSnapshot\": \"maybe\"}")) }
        #expect(throws: LatticeError.self) { try PowerOffRequest(json: body("{\"gracePeriodSeconds\": 1.5}")) }
    }

    @Test func pageRequests() throws {
        #expect(try PageRequest(page: nil, pageSize: nil) == PageRequest(page: 1, pageSize: 20))
        #expect(try PageRequest(page: "2", pageSize: "500") == PageRequest(page: 2, pageSize: 100))
        #expect(throws: LatticeError.self) { try PageRequest(page: "0", pageSize: nil) }
        #expect(throws: LatticeError.self) { try PageRequest(page: nil, pageSize: "-1") }
        for huge in ["9223372036854775807", "99999999999999999999999", "10000001"] {
            #expect { try PageRequest(page: huge, pageSize: "100") } throws: {
                ($0 as? LatticeError)?.message.hasPrefix("page:") == true
            }
        }
        #expect(try PageRequest(page: nil, pageSize: "9223372036854775807").pageSize == 100)
        #expect(try PageRequest(page: nil, pageSize: "1013724915685178826817536").pageSize == 100)
        #expect(throws: LatticeError.self) { try PageRequest(page: nil, pageSize: "-1013724915685178826817536") }
        #expect(PageRequest(page: Int.max, pageSize: 100).offset == Int.max)
    }

    @Test func bodiesNestedTooDeepAreRefusedBeforeDecoding() {
        let deep = String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)
        #expect { try JSONValue.parseBody(Data(deep.utf8)) } throws: {
            ($0 as? LatticeError)?.message.contains("deeper than") == true
        }
        let deepObject = String(repeating: "{\"a\":", count: 500) + "1" + String(repeating: "}", count: 500)
        #expect(throws: LatticeError.self) { try JSONValue.parseBody(Data(deepObject.utf8)) }
        let wide = "[" + Array(repeating: "1", count: 5000).joined(separator: ",") + "]"
        #expect { try JSONValue.parseBody(Data(wide.utf8)) } throws: {
            ($0 as? LatticeError)?.message.contains("more than 4096 values") == true
        }
        let long = "\"" + String(repeating: "x", count: 70_000) + "\""
        #expect(throws: LatticeError.self) { try JSONValue.parseBody(Data(long.utf8)) }
        let allowed = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        #expect((try? JSONValue.parseBody(Data(allowed.utf8))) != nil)
    }

    @Test func parsesEveryJSONForm() throws {
        let value = try body(
            #"{"s": "a\"b\\c\/\n\u00e9\ud83d\ude00", "n": -12.5e2, "z": 0, "#
                + #""t": true, "f": false, "x": null, "a": [1, [], {}]}"#
        )
        #expect(
            value
                == .object([
                    "s": .string("a\"b\\c/\né😀"), "n": .number(-1250), "z": .number(0), "t": .bool(true),
                    "f": .bool(false), "x": .null, "a": .array([.number(1), .array([]), .object([:])]),
                ])
        )
        #expect(try body(#"{"k": "北京一区"}"#) == .object(["k": .string("北京一区")]))
        for bad in ["{\"a\" 1}", "[1,]", "01", "1 2", #""\u12""#, "tru", "{\"a\":1,}", "\"\u{01}\"", "-", "1e"] {
            #expect(throws: LatticeError.self) { try JSONValue.parseBody(Data(bad.utf8)) }
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct TokenFormatTests {
    @Test func generatedTokensAreWellFormed() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let token = APITokenFormat.generate(using: &rng)
            #expect(token.hasPrefix("lat_") && token.count == 42)
            #expect(APITokenFormat.isWellFormed(token))
            var broken = Array(token)
            broken[10] = broken[10] == "a" ? "b" : "a"
            #expect(!APITokenFormat.isWellFormed(String(broken)))
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct InstanceWireTests {
    @Test func rendersTheSeedsShape() throws {
        let wire = InstanceWire(
            sampleInstance(),
            context: WireContext(
                annotationDomain: "demo.cdc.datenfab.com",
                time: TimeFormatter(zone: "+08:00")!,
                publicHost: "gw.example"
            )
        )
        #expect(wire.creationTimestamp == "2024-09-02T18:34:33+08:00")
        #expect(wire.updateTimestamp == "0001-01-01T00:00:00Z")
        #expect(wire.resources.GPUNum == "1" && wire.resources.memory == "96Gi")
        #expect(wire.annotations["demo.cdc.datenfab.com/unit-price"] == "2.50")
        #expect(wire.annotations.count == 14)
        #expect(wire.servers.SSH.sshAddr == "ssh -p30099 root@gw.example")
        #expect(wire.Pods.first?.Name == "instance-0000abcd-dd6nm")
        #expect(wire.volumeMounts.map(\.filesystemType) == ["system", "data"])
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(wire)) as! [String: Any]
        for key in [
            "name", "namespace", "Region", "displayName", "description", "annotations", "uid", "servers", "image",
            "replicas",
            "resources", "volumeMounts", "creationTimestamp", "updateTimestamp", "ScheduleStopTimestamp", "status",
            "cost", "Pods",
        ] {
            #expect(json[key] != nil, "missing \(key)")
        }
    }

    @Test func kubernetesClustersTakeTheirNodesFromTheClusterAndCheckTheirSettings() throws {
        var catalog = Catalog.builtIn
        var cluster = Cluster(name: "k8s", driver: .kubernetes, nodes: [])
        cluster.kubernetes = try JSONDecoder().decode(
            KubernetesSettings.self,
            from: Data(
                #"{"kubeconfig": "/etc/kube", "namespace": "gpu-pods", "queriesPerSecond": 20, "burst": 40}"#.utf8
            )
        )
        catalog.regions[0].clusters.append(cluster)
        try catalog.validate()
        func refused(_ change: (inout Cluster) -> Void) -> String {
            var copy = Catalog.builtIn
            var bad = cluster
            change(&bad)
            copy.regions[0].clusters.append(bad)
            do {
                try copy.validate()
                return ""
            } catch {
                return (error as? LatticeError)?.message ?? "\(error)"
            }
        }
        let withNodes = refused {
            $0.nodes = [Node(name: "n", gpuModel: "A100", gpuCount: 8, cpuCores: 8, memoryGiB: 8)]
        }
        #expect(withNodes.contains("nodes come from the cluster"))
        let badName = refused { $0.kubernetes?.namespace = "Not_A_Name" }
        #expect(badName.contains("not a valid namespace name"))
        let badBurst = refused { $0.kubernetes?.burst = 0 }
        #expect(badBurst.contains("burst must be between"))
        let badPace = refused { $0.kubernetes?.queriesPerSecond = -1 }
        #expect(badPace.contains("queriesPerSecond must be between"))
        let badSecret = refused { $0.kubernetes?.registrySecret = "Harbor Robot" }
        #expect(badSecret.contains("kubernetes.registrySecret 'Harbor Robot' is not a valid Secret name"))
        #expect(refused { $0.kubernetes?.registrySecret = "harbor.robot-1" } == "")
        let badRuntime = refused { $0.kubernetes?.runtimeClass = "NVIDIA" }
        #expect(badRuntime.contains("kubernetes.runtimeClass 'NVIDIA' is not a valid RuntimeClass name"))
        let badTaint = refused { $0.kubernetes?.tolerations = ["nvidia.com/gpu", "-bad"] }
        #expect(badTaint.contains("kubernetes.tolerations: '-bad' is not a taint key"))
        #expect(refused { $0.kubernetes?.tolerations = ["nvidia.com/gpu", "dedicated", "sku"] } == "")
    }

    /// A data disk's storage class: the disk SKU's, else the Kubernetes cluster's; none
    /// elsewhere. A class that is no valid name is refused.
    @Test func aDiskSKUNamesItsStorageClassOnKubernetes() throws {
        var kubernetes = Cluster(name: "k8s", driver: .kubernetes, nodes: [])
        kubernetes.kubernetes = KubernetesSettings()
        var disk = DiskSKU(
            id: "9",
            name: "nvme",
            regionID: "",
            type: "shared-filesystem",
            pricePerGBDay: Money("0.02")!
        )
        #expect(disk.storageClass(on: kubernetes) == nil)
        kubernetes.kubernetes?.storageClass = "standard"
        #expect(disk.storageClass(on: kubernetes) == "standard")
        disk.storageClass = "nvme-local"
        #expect(disk.storageClass(on: kubernetes) == "nvme-local")
        #expect(disk.storageClass(on: Cluster(name: "rack", driver: .engine, nodes: [])) == nil)
        var catalog = Catalog.builtIn
        catalog.diskSkus.append(disk)
        try catalog.validate()
        catalog.diskSkus[catalog.diskSkus.count - 1].accessMode = "ReadWriteMany"
        try catalog.validate()
        catalog.diskSkus[catalog.diskSkus.count - 1].accessMode = "ReadMostly"
        #expect(throws: LatticeError.self) { try catalog.validate() }
        catalog.diskSkus[catalog.diskSkus.count - 1].accessMode = nil
        catalog.diskSkus[catalog.diskSkus.count - 1].storageClass = "NVMe Local"
        #expect(throws: LatticeError.self) { try catalog.validate() }
    }

    /// Where a data disk stays on its first node: engine hosts always, Kubernetes when the
    /// disk SKU's class is node-local, never on the simulated fleet.
    @Test func aDiskIsHostLocalOnEnginesAndOnNodeLocalKubernetesClasses() {
        var disk = DiskSKU(id: "9", name: "nvme", regionID: "", type: "local", pricePerGBDay: Money("0.02")!)
        let kubernetes = Cluster(name: "k8s", driver: .kubernetes, nodes: [])
        let engine = Cluster(name: "rack", driver: .engine, nodes: [])
        let simulated = Cluster(name: "sim", nodes: [])
        #expect(disk.isHostLocal(on: engine) == true)
        #expect(disk.isHostLocal(on: kubernetes) == nil && disk.isHostLocal(on: simulated) == nil)
        disk.nodeLocal = true
        #expect(disk.isHostLocal(on: kubernetes) == true && disk.isHostLocal(on: simulated) == nil)
    }

    @Test func builtInCatalogIsValid() throws {
        try Catalog.builtIn.validate()
        #expect(Catalog.builtIn.gpuSku(id: "2")?.name == "H20")
        #expect(Catalog.builtIn.gpuSku(id: "66")?.name == "4090")
        #expect(Catalog.builtIn.cluster(named: "host-cluster") != nil)
    }
}

@Suite(.timeLimit(.minutes(10))) struct ImageReferenceTests {
    @Test func parsesWhatRegistriesAccept() throws {
        let seed = try ImageReference.parse(
            "images.neolink-ai.com/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04"
        )
        #expect(seed.domain == "images.neolink-ai.com" && seed.path == ["matrixdc", "tensorflow"])
        #expect(seed.tag == "2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04")
        let local = try ImageReference.parse("localhost:5000/a__b/c-d.e:v1@sha256:" + String(repeating: "a", count: 64))
        #expect(local.domain == "localhost:5000" && local.path == ["a__b", "c-d.e"] && local.digest != nil)
        #expect(try ImageReference.parse("busybox").domain == nil)
        #expect(try ImageReference.parse("library/busybox:1").path == ["library", "busybox"])
    }

    @Test func refusesWhatTheyDoNot() {
        for bad in [
            "", "upper/CASE", "a//b", "a/../b", "a/./b", "a/b/", "/a", "a:", "a:-x", "a@sha256:xyz", "a b", "a\u{0}b",
            "host:99999/a", "a/b:" + String(repeating: "t", count: 129), "-a", "a-", "a..b", "a___b", "évil",
        ] {
            #expect(throws: LatticeError.self, "\(bad)") { try ImageReference.parse(bad) }
        }
    }

    @Test func mountPathsMustBeCleanAndOutsideTheSystem() {
        for good in ["/root/data", "/data", "/workspace/x-y_z", "/processing", "/devices"] {
            #expect(CreateInstanceRequest.mountPathProblem(good) == nil, "\(good)")
        }
        for bad in [
            "/", "/.", "//", "/root//data", "/root/./data", "/root/..", "/proc", "/proc/1", "/sys", "/dev/shm",
            "relative", "/root/data/", "/a\u{7}b",
        ] {
            #expect(CreateInstanceRequest.mountPathProblem(bad) != nil, "\(bad)")
        }
    }

    @Test func officialProjectsAreReservedAndTheirImagesCannotBeSnapshotted() {
        let catalog = Catalog.builtIn
        #expect(catalog.reservedNamespaces.contains("matrixdc") && catalog.reservedNamespaces.contains("library"))
        #expect(!catalog.isSnapshotReferenceFree(catalog.images[0].name))
        #expect(catalog.isSnapshotReferenceFree("images.neolink-ai.com/alice/tensorflow:mine"))
    }
}

@Suite(.timeLimit(.minutes(10))) struct IdempotencyTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func decidesFromWhatTheStoreKeeps() {
        let answered = Idempotency.Record(requestHash: "h", createdAt: t0, status: 200, body: Data("{}".utf8))
        #expect(Idempotency.decide(existing: nil, requestHash: "h", now: t0) == .claim)
        #expect(
            Idempotency.decide(existing: answered, requestHash: "h", now: t0)
                == .replay(status: 200, body: Data("{}".utf8))
        )
        #expect(Idempotency.decide(existing: answered, requestHash: "other", now: t0) == .reused)
        #expect(
            Idempotency.decide(existing: answered, requestHash: "other", now: t0.addingTimeInterval(86_401)) == .claim
        )
        let running = Idempotency.Record(requestHash: "h", createdAt: t0)
        #expect(Idempotency.decide(existing: running, requestHash: "h", now: t0.addingTimeInterval(1)) == .inProgress)
        #expect(Idempotency.decide(existing: running, requestHash: "h", now: t0.addingTimeInterval(61)) == .claim)
        #expect(Idempotency.keeps(status: 200) && !Idempotency.keeps(status: 402))
    }
}

@Suite(.timeLimit(.minutes(10))) struct IdentifierTests {
    /// A generator that counts its draws, so the tests see how much randomness each identifier takes.
    struct CountingGenerator: RandomNumberGenerator {
        var inner = SystemRandomNumberGenerator()
        var draws = 0
        mutating func next() -> UInt64 {
            draws += 1
            return inner.next()
        }
    }

    @Test func shapesMatchTheSeed() {
        var rng = CountingGenerator()
        let uuid = Identifiers.uuid(using: &rng)
        #expect(rng.draws == 2)
        let parts = uuid.split(separator: "-").map(\.count)
        #expect(parts == [8, 4, 4, 4, 12])
        #expect(uuid.allSatisfy { "0123456789abcdef-".contains($0) })
        #expect(Array(uuid)[14] == "4")
        #expect("89ab".contains(Array(uuid)[19]))
        #expect(UUID(uuidString: uuid) != nil)
        #expect(Identifiers.instanceName(using: &rng).wholeMatch(of: /instance-[0-9a-f]{8}/) != nil)
        #expect(Identifiers.sshPassword(using: &rng).wholeMatch(of: /[0-9A-Za-z]{12}/) != nil)
        #expect(Identifiers.jupyterToken(using: &rng).wholeMatch(of: /[0-9a-f]{32}/) != nil)
        #expect(
            Identifiers.podName(instance: "instance-ccff84c2", using: &rng)
                .wholeMatch(of: /instance-ccff84c2-[bcdfghjklmnpqrstvwxz2456789]{5}/) != nil
        )
    }

    /// Every character of the alphabet turns up about equally often: 204,000 base62
    /// characters of passwords, each expected 3,290 times; a chi-square over 61 degrees of
    /// freedom above 140 would happen by chance far less than once in a million runs.
    @Test func charactersAreUniform() {
        var rng = SystemRandomNumberGenerator()
        var counts: [Character: Int] = [:]
        for _ in 0..<17_000 {
            for character in Identifiers.sshPassword(using: &rng) {
                counts[character, default: 0] += 1
            }
        }
        #expect(counts.count == 62)
        let expected = 204_000.0 / 62
        let chiSquare = counts.values.reduce(0.0) { $0 + pow(Double($1) - expected, 2) / expected }
        #expect(chiSquare < 140)
    }
}
