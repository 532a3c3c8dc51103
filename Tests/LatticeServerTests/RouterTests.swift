import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LatticeCompute
import LatticeDomain
import LatticeStore
import LatticeStoreSQLite
import LatticeTestDatabase
import LatticeTestSupport
import Logging
import NIOCore
import Testing

@testable import LatticeServer

/// A server without a socket: in-memory SQLite (or the store `kind` names), a simulated
/// fleet on a manual clock, and a reconciler the test steps by hand; wired by the
/// composition root that `lattice serve` runs (`CompositionRoot.assemble`).
struct TestServer {
    static let adminToken = "router-test-admin-token"
    let store: any Store
    let clock: ManualWallClock
    let fleet: ComputeFleet
    let reconciler: Reconciler
    let meter: Meter
    /// Follows the store's change feed into the reconciler's queue, as `lattice serve`
    /// does; a test that wants writes to reach the reconciler without a resync runs it.
    let follower: ChangeFollower
    let api: LatticeAPI
    let router: Router<LatticeRequestContext>

    init(
        configuration base: ServerConfiguration = ServerConfiguration(),
        adminCredit: String = "1000",
        start: Date = Date(timeIntervalSince1970: 1_800_000_000),
        store kind: StoreKind = .sqlite
    ) async throws {
        let store = try await kind.make(base.meterSchedule)
        let clock = ManualWallClock(start)
        var configuration = base
        configuration.bootstrapToken = Self.adminToken
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let parts = try await CompositionRoot.assemble(
            configuration: configuration,
            dependencies: .inMemory(clock: clock, store: store),
            logger: logger
        )
        if let credit = Money(adminCredit), credit > .zero {
            _ = try await store.appendLedger(
                LedgerEntry(
                    id: "seed-credit",
                    namespace: "admin",
                    kind: .credit,
                    amount: credit,
                    idempotencyKey: "seed-credit",
                    createdAt: clock.now()
                )
            )
        }
        self.store = store
        self.clock = clock
        fleet = parts.fleet
        api = parts.api
        router = parts.router
        reconciler = parts.reconciler
        meter = parts.meter
        follower = parts.follower
    }

    /// Resyncs and works off the queue, `passes` times, without moving the clock.
    func settle(passes: Int = 3) async {
        for _ in 0..<passes {
            await reconciler.resync()
            await reconciler.drain()
        }
    }

    /// Resyncs and works off the queue, moving the clock a second after each pass.
    func reconcile(passes: Int = 1) async {
        for _ in 0..<passes {
            await reconciler.resync()
            await reconciler.drain()
            reconciler.readiness.markReady()
            clock.advance(by: 1)
        }
    }

    func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await Application(router: router).test(.router, body)
    }
}

/// Which store a `TestServer` runs on: the suites that hold a rule against both stores run
/// on each of `all` (PostgreSQL when the test command started it, and always under CI).
struct StoreKind: CustomStringConvertible, Sendable {
    let description: String
    let make: @Sendable (MeterSchedule) async throws -> any Store

    static let sqlite = StoreKind(description: "sqlite") { try SQLiteStore(schedule: $0) }
    static let postgresql = StoreKind(description: "postgresql") { try await TestDatabase.store(schedule: $0) }
    static let all = [sqlite] + (TestDatabase.runs ? [postgresql] : [])
}

func headers(_ token: String = TestServer.adminToken, namespace: String? = "admin") -> HTTPFields {
    var fields: HTTPFields = [.authorization: "bearer \(token)", .contentType: "application/json"]
    if let namespace { fields[HTTPField.Name("namespace")!] = namespace }
    return fields
}

func json(_ object: Any) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
}

func decode(_ buffer: ByteBuffer) -> Any {
    (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed])) ?? NSNull()
}

nonisolated(unsafe) let createBody: [String: Any] = [
    "Cost": ["CostType": "1", "CouponID": "", "DiskSKUID": "1", "GPUSKUID": "66", "CostTime": ""],
    "VolumeMount": [["PathInContainer": "/root/data", "Size": 50, "Type": "shared-filesystem"]],
    "namespace": "admin", "displayName": "test1",
    "image": "images.neolink-ai.com/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04",
    "Region": "",
]

@Suite(.timeLimit(.minutes(10))) struct RouterTests {
    @Test func healthAndReadiness() async throws {
        let server = try await TestServer()
        try await server.test { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect((decode(response.body) as? [String: String])?["code"] == "NotReady")
            }
        }
        await server.reconcile()
        try await server.test { client in
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(String(buffer: response.body).contains("lattice_instances{status=\"Running\"} 0.0"))
            }
        }
    }

    @Test func authenticationFailuresAreJSON() async throws {
        let server = try await TestServer()
        try await server.test { client in
            try await client.execute(uri: "/mdc/api/v1/regions", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect((decode(response.body) as? [String: String])?["code"] == "Unauthorized")
            }
            try await client.execute(
                uri: "/mdc/api/v1/regions",
                method: .get,
                headers: headers(namespace: "someone-else")
            ) {
                // An admin's token may name any namespace there is; one that is not is 404.
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/mdc/api/v1/regions", method: .get, headers: headers(namespace: nil)) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/mdc/api/v1/nowhere", method: .get, headers: headers()) { response in
                #expect(response.status == .notFound)
                #expect((decode(response.body) as? [String: String])?["code"] == "NotFound")
            }
        }
    }

    @Test func createReconcileStopStartDelete() async throws {
        let server = try await TestServer()
        let nameBox = NameBox()
        try await server.test { client in
            try await client.execute(
                uri: "/mdc/api/v1/clusters/host-cluster/instances",
                method: .post,
                headers: headers(),
                body: json(createBody)
            ) { response in
                #expect(response.status == .ok)
                let instance = decode(response.body) as! [String: Any]
                #expect(instance["status"] as? String == "Creating")
                nameBox.name = instance["name"] as! String
            }
        }
        await server.reconcile(passes: 4)
        let path = "/mdc/api/v1/clusters/host-cluster/instances/\(nameBox.name)"
        try await server.test { client in
            try await client.execute(uri: path, method: .get, headers: headers()) { response in
                #expect((decode(response.body) as! [String: Any])["status"] as? String == "Running")
            }
            try await client.execute(
                uri: path + "/power_off",
                method: .post,
                headers: headers(),
                body: json(["needSnapshot": "True", "imageName": "image1", "tag": "v1.1.0"])
            ) { response in
                #expect(String(buffer: response.body) == "\"ok\"")
            }
        }
        await server.reconcile(passes: 5)
        try await server.test { client in
            try await client.execute(uri: path, method: .get, headers: headers()) { response in
                #expect((decode(response.body) as! [String: Any])["status"] as? String == "Stopped")
            }
            try await client.execute(uri: "/mdc/api/v1/images", method: .get, headers: headers()) { response in
                let page = decode(response.body) as! [String: Any]
                let names = (page["nodes"] as! [[String: Any]]).map { $0["name"] as! String }
                #expect(names.contains("images.neolink-ai.com/admin/image1:v1.1.0"))
            }
            try await client.execute(uri: path + "/power_on", method: .post, headers: headers()) {
                #expect($0.status == .ok)
            }
            try await client.execute(
                uri: "/mdc/api/v1/clusters/host-cluster/instances?name=\(nameBox.name)",
                method: .delete,
                headers: headers()
            ) {
                #expect(String(buffer: $0.body) == "\"ok\"")
            }
        }
        await server.reconcile(passes: 2)
        try await server.test { client in
            try await client.execute(uri: path, method: .get, headers: headers()) { #expect($0.status == .notFound) }
        }
        #expect(try await server.store.nodeUsage().isEmpty)
    }

    @Test func lostNodeFailsItsInstancesAndFreesTheirGPUs() async throws {
        let server = try await TestServer()
        let nameBox = NameBox()
        try await server.test { client in
            try await client.execute(
                uri: "/mdc/api/v1/clusters/host-cluster/instances",
                method: .post,
                headers: headers(),
                body: json(createBody)
            ) {
                nameBox.name = (decode($0.body) as! [String: Any])["name"] as! String
            }
        }
        await server.reconcile(passes: 4)
        let node = try await server.store.instance(name: nameBox.name)!.placement!.node
        let driver = server.fleet.driver(for: "host-cluster") as! SimulatedFleetDriver
        try await driver.loseNode(node)
        await server.reconcile(passes: 2)
        let failed = try await server.store.instance(name: nameBox.name)!
        #expect(failed.status == .failed)
        #expect(failed.statusReason.hasPrefix("WorkloadLost"))
        #expect(try await server.store.nodeUsage()[node] == nil)
        try await server.test { client in
            try await client.execute(
                uri: "/mdc/api/v1/clusters/host-cluster/instances/\(nameBox.name)/power_on",
                method: .post,
                headers: headers()
            ) {
                #expect($0.status == .ok)
            }
        }
        await server.reconcile(passes: 4)
        let recovered = try await server.store.instance(name: nameBox.name)!
        #expect(recovered.status == .running)
        #expect(recovered.placement?.node != node)
        // Operators see the lost node as unhealthy, with the driver's reason.
        try await server.test { client in
            try await client.execute(uri: "/mdc/api/v1/admin/nodes", method: .get, headers: headers()) { response in
                #expect(response.status == .ok)
                let page = try JSONDecoder().decode(Page<AdminNodeWire>.self, from: Data(buffer: response.body))
                let lost = page.nodes.first { $0.name == node }
                #expect(lost?.health == "unhealthy" && lost?.reason.hasPrefix("NodeLost") == true)
                #expect(lost?.gpuFree == 8)
            }
        }
    }

    @Test func failedStartIsReported() async throws {
        let server = try await TestServer()
        let driver = server.fleet.driver(for: "host-cluster") as! SimulatedFleetDriver
        await driver.failNextStarts(1, reason: "ImagePullBackOff: simulated")
        let nameBox = NameBox()
        try await server.test { client in
            try await client.execute(
                uri: "/mdc/api/v1/clusters/host-cluster/instances",
                method: .post,
                headers: headers(),
                body: json(createBody)
            ) {
                nameBox.name = (decode($0.body) as! [String: Any])["name"] as! String
            }
        }
        await server.reconcile(passes: 3)
        try await server.test { client in
            try await client.execute(
                uri: "/mdc/api/v1/clusters/host-cluster/instances/\(nameBox.name)",
                method: .get,
                headers: headers()
            ) { response in
                let instance = decode(response.body) as! [String: Any]
                #expect(instance["status"] as? String == "Failed")
                #expect(instance["statusReason"] as? String == "ImagePullBackOff: simulated")
            }
        }
        #expect(try await server.store.nodeUsage().isEmpty)
    }

    @Test func everyDocumentedRouteExists() async throws {
        let server = try await TestServer()
        await server.reconcile()
        try await server.test { client in
            try await client.execute(uri: "/openapi.json", method: .get) { response in
                let document = decode(response.body) as! [String: Any]
                #expect(document["openapi"] as? String == "3.1.0")
                #expect((document["paths"] as! [String: Any]).count >= 19)
            }
            for operation in OpenAPIDocument.operations {
                let path = operation.path.replacingOccurrences(of: "{cluster}", with: "host-cluster")
                    .replacingOccurrences(of: "{name}", with: "instance-00000000").replacingOccurrences(
                        of: "{id}",
                        with: "x"
                    )
                    .replacingOccurrences(of: "{namespace}", with: "admin")
                // A stream never ends: its one-shot form answers from the same route.
                let query = operation.contentType == "text/event-stream" ? "?follow=false" : ""
                try await client.execute(
                    uri: path + query,
                    method: HTTPRequest.Method(rawValue: operation.method.uppercased())!,
                    headers: headers(),
                    body: json([:])
                ) { response in
                    let body = decode(response.body) as? [String: Any]
                    #expect(
                        (body?["message"] as? String)?.hasPrefix("no route") != true,
                        "\(operation.method) \(operation.path) has no route"
                    )
                    #expect(response.status.code < 500, "\(operation.method) \(operation.path)")
                }
            }
        }
    }

    /// The other half of keeping the route list and the OpenAPI document as one: every
    /// route the router has is in `/openapi.json`, but the console's pages and the web
    /// terminal, which are for browsers, not for scripts.
    @Test func everyRouteIsDocumented() async throws {
        let server = try await TestServer()
        let documented = Set(OpenAPIDocument.operations.map { "\($0.method.uppercased()) \($0.path)" })
        let routed = server.router.routes.map { route in
            // Hummingbird writes a capture `{name}` as `:name`.
            let path =
                "/"
                + "\(route.path)".split(separator: "/").map { part in
                    part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
                }.joined(separator: "/")
            return "\(route.method.rawValue) \(path)"
        }
        let forBrowsers = routed.filter { $0.contains(" /console") || $0.hasSuffix("/terminal") }
        #expect(!routed.isEmpty)
        for route in routed where !forBrowsers.contains(route) {
            // One route with a `{verb}` capture (credit and debit, drain and undrain) is
            // documented as one operation per verb.
            let prefix = route.hasSuffix("/{verb}") ? String(route.dropLast("{verb}".count)) : nil
            let isDocumented =
                documented.contains(route)
                || prefix.map { prefix in documented.contains { $0.hasPrefix(prefix) } } == true
            #expect(isDocumented, "\(route) is routed but not in /openapi.json")
        }
    }

    @Test func oversizedBodyIs413() async throws {
        let server = try await TestServer()
        try await server.test { client in
            let big = ByteBuffer(repeating: UInt8(ascii: "x"), count: 2 * 1024 * 1024)
            try await client.execute(
                uri: "/mdc/api/v1/clusters/host-cluster/instances",
                method: .post,
                headers: headers(),
                body: big
            ) { response in
                #expect(response.status == .contentTooLarge)
                #expect((decode(response.body) as? [String: String])?["code"] == "PayloadTooLarge")
            }
        }
    }
}

final class NameBox: @unchecked Sendable {
    var name = ""
}

/// Token expiry through the real path: `validityDays` and the injected clock.
@Suite(.timeLimit(.minutes(10))) struct TokenExpiryTests {
    func newToken(_ client: any TestClientProtocol, days: Int) async throws -> String {
        try await client.execute(
            uri: "/mdc/api/v1/tokens",
            method: .post,
            headers: headers(),
            body: json(["name": "short-lived", "validityDays": days])
        ) { response in
            #expect(response.status == .ok)
            return (decode(response.body) as? [String: Any])?["token"] as? String ?? ""
        }
    }

    func status(_ client: any TestClientProtocol, _ token: String) async throws -> HTTPResponse.Status {
        try await client.execute(uri: "/mdc/api/v1/regions", method: .get, headers: headers(token)) { $0.status }
    }

    @Test func aTokenExpiresEvenWhileCachedAndAnUnusedOneToo() async throws {
        let server = try await TestServer()
        let clock = server.clock
        try await server.test { client in
            let used = try await newToken(client, days: 1)
            let unused = try await newToken(client, days: 1)
            clock.advance(by: 86400 - 2)
            #expect(try await status(client, used) == .ok, "valid, and now in the token cache")
            clock.advance(by: 3)
            try await client.execute(uri: "/mdc/api/v1/regions", method: .get, headers: headers(used)) { response in
                #expect(response.status == .unauthorized, "expired one second ago, within the cache's lifetime")
                #expect((decode(response.body) as? [String: String])?["message"]?.contains("expired") == true)
            }
            #expect(try await status(client, unused) == .unauthorized)
            #expect(try await status(client, TestServer.adminToken) == .ok, "the 3650-day admin token still works")
        }
    }

    @Test func aConsoleSessionEndsWhenItsTokenExpires() async throws {
        let server = try await TestServer()
        let clock = server.clock
        try await server.test { client in
            let token = try await newToken(client, days: 1)
            let csrf = try await client.execute(uri: "/console/login", method: .get) { response in
                let cookie = response.headers[values: .setCookie].first { $0.hasPrefix("lattice_csrf=") } ?? ""
                return String(cookie.dropFirst("lattice_csrf=".count).prefix { $0 != ";" })
            }
            #expect(!csrf.isEmpty)
            let session = try await client.execute(
                uri: "/console/login",
                method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded", .cookie: "lattice_csrf=\(csrf)"],
                body: ByteBuffer(string: "csrf=\(csrf)&namespace=admin&token=\(token)")
            ) { response in
                #expect(response.status == .seeOther)
                #expect(response.headers[.location] == "/console/instances")
                let cookie = response.headers[values: .setCookie].first { $0.hasPrefix("lattice_session=") } ?? ""
                return String(cookie.dropFirst("lattice_session=".count).prefix { $0 != ";" })
            }
            let cookies: HTTPFields = [.cookie: "lattice_csrf=\(csrf); lattice_session=\(session)"]
            try await client.execute(uri: "/console/instances", method: .get, headers: cookies) {
                #expect($0.status == .ok)
            }
            clock.advance(by: 86400 + 1)
            try await client.execute(uri: "/console/instances", method: .get, headers: cookies) { response in
                #expect(response.status == .seeOther)
                #expect(response.headers[.location] == "/console/login")
            }
        }
    }
}
