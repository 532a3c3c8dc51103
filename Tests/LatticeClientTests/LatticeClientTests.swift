import Foundation
import Hummingbird
import HummingbirdTesting
import LatticeDomain
import Logging
import Testing

@testable import LatticeClient
@testable import LatticeServer

/// A transport that answers from a script, recording what was sent.
final class ScriptedTransport: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [Result<TransportResponse, any Error>]
    private(set) var sent: [TransportRequest] = []

    init(_ answers: [Result<TransportResponse, any Error>]) { self.answers = answers }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        let next = lock.withLock { () -> Result<TransportResponse, any Error> in
            sent.append(request)
            return answers.isEmpty ? .success(TransportResponse(status: 500, body: Data())) : answers.removeFirst()
        }
        return try next.get()
    }
}

struct ConnectionRefused: Error {}

@Suite(.timeLimit(.minutes(10))) struct ClientBehaviourTests {
    let url = URL(string: "http://lattice.test")!
    let ok = TransportResponse(
        status: 200,
        body: Data(#"{"namespace":"alice","balance":"1.00","currency":"CNY"}"#.utf8)
    )
    let unavailable = TransportResponse(status: 503, body: Data(#"{"code":"Unavailable","message":"try later"}"#.utf8))
    let fast = LatticeClient.RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(1))

    @Test func readsAreRetriedOnConnectionFailureAnd503() async throws {
        let transport = ScriptedTransport([.failure(ConnectionRefused()), .success(unavailable), .success(ok)])
        let client = LatticeClient(baseURL: url, namespace: "alice", token: "t", retry: fast, transport: transport)
        #expect(try await client.balance().balance == "1.00")
        #expect(transport.sent.count == 3)
        #expect(transport.sent[0].headers["Authorization"] == "bearer t")
        #expect(transport.sent[0].headers["namespace"] == "alice")
        #expect(transport.sent[0].url == "http://lattice.test/mdc/api/v1/balance")
    }

    /// Every POST carries an `Idempotency-Key`, kept across its retries, so a write is
    /// retried like a read: the server answers a repeat with the first answer.
    @Test func writesCarryOneIdempotencyKeyAcrossRetries() async throws {
        let transport = ScriptedTransport([.failure(ConnectionRefused()), .success(unavailable), .success(ok)])
        let client = LatticeClient(baseURL: url, namespace: "alice", token: "t", retry: fast, transport: transport)
        try await client.powerOn(cluster: "c", name: "instance-00000001")
        #expect(transport.sent.count == 3)
        let keys = Set(transport.sent.compactMap { $0.headers["Idempotency-Key"] })
        #expect(keys.count == 1 && keys.first?.isEmpty == false)
        let again = ScriptedTransport([.success(ok)])
        try await LatticeClient(baseURL: url, namespace: "alice", token: "t", retry: fast, transport: again)
            .powerOn(cluster: "c", name: "instance-00000001")
        #expect(again.sent.first?.headers["Idempotency-Key"] != keys.first, "a new call, a new key")
        let deleting = ScriptedTransport([.success(unavailable)])
        await #expect(throws: LatticeAPIError.self) {
            try await LatticeClient(baseURL: url, namespace: "alice", token: "t", retry: fast, transport: deleting)
                .deleteToken(id: "x")
        }
        #expect(deleting.sent.count == 1 && deleting.sent[0].headers["Idempotency-Key"] == nil)
    }

    @Test func retriesGiveUpAfterTheLimit() async throws {
        let transport = ScriptedTransport([
            .success(unavailable), .success(unavailable), .success(unavailable), .success(ok),
        ])
        let client = LatticeClient(baseURL: url, namespace: "alice", token: "t", retry: fast, transport: transport)
        await #expect(throws: LatticeAPIError.self) { try await client.balance() }
        #expect(transport.sent.count == 3)
    }

    @Test func serverErrorsCarryCodeAndMessage() async throws {
        let transport = ScriptedTransport([
            .success(
                TransportResponse(
                    status: 404,
                    body: Data(#"{"code":"NotFound","message":"instance 'x' not found"}"#.utf8)
                )
            )
        ])
        let client = LatticeClient(baseURL: url, namespace: "alice", token: "t", retry: fast, transport: transport)
        await #expect(throws: LatticeAPIError(status: 404, code: "NotFound", message: "instance 'x' not found")) {
            try await client.instance(cluster: "c", name: "x")
        }
    }
}

/// The SDK against a real server on a real socket: every endpoint once.
@Suite(.timeLimit(.minutes(10))) struct ClientAgainstServerTests {
    @Test func everyEndpoint() async throws {
        var catalog = Catalog.builtIn
        catalog.regions[0].clusters[0].startDelaySeconds = 0.05
        catalog.regions[0].clusters[0].stopDelaySeconds = 0.05
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sdk-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = ServerConfiguration(
            port: 0,
            dataDirectory: directory,
            catalog: catalog,
            bootstrapToken: "sdk-test-admin-token"
        )
        configuration.gateways.sshPort = 0
        configuration.gateways.sshSharedForm = true
        // The server `lattice serve` runs, on an in-memory store: every service and its wiring.
        let app = try await CompositionRoot.buildApplication(
            configuration: configuration,
            dependencies: .inMemory(),
            logger: Logger(label: "test")
        )
        let image = catalog.images[0].name

        try await app.test(.live) { http in
            let base = URL(string: "http://127.0.0.1:\(http.port!)")!
            let admin = LatticeClient(baseURL: base, namespace: "admin", token: "sdk-test-admin-token")
            #expect(try await admin.health())
            let user = try await admin.createUser(namespace: "sdk-user", balance: "100")
            #expect(try await admin.credit(namespace: "sdk-user", amount: "50").balance == "150.00")
            let coupon = try await admin.createCoupon(id: "SDK5", kind: "amount", value: "5")
            #expect(try await admin.coupons().nodes.map(\.id) == [coupon.id])

            // No namespace: the token's own is used.
            let client = LatticeClient(baseURL: base, namespace: nil, token: user.token)
            #expect(try await client.regions().first?.clusterName == "host-cluster")
            #expect(try await client.gpuSkus(regionID: Catalog.builtInRegionID).contains { $0.skusID == "66" })
            #expect(try await client.diskSkus().nodes.first?.id == "1")
            #expect(try await client.images().nodes.contains { $0.kind == "official" })

            let created = try await client.createInstance(
                cluster: "host-cluster",
                .init(gpuSkuID: "66", displayName: "sdk", image: image, couponID: "SDK5")
            )
            #expect(created.status == "Creating" && created.namespace == "sdk-user")
            let running = try await client.waitForStatus(
                cluster: "host-cluster",
                name: created.name,
                .running,
                timeout: .seconds(30),
                interval: .milliseconds(50)
            )
            #expect(running?.Pods.first?.ip.isEmpty == false)
            #expect(try await client.instances(cluster: "host-cluster").totalCount == 1)
            #expect(try await client.allInstances(cluster: "host-cluster").map(\.name) == [created.name])
            try await client.powerOff(
                cluster: "host-cluster",
                name: created.name,
                .snapshot(imageName: "sdk-snap", tag: "v1")
            )
            try await client.waitForStatus(
                cluster: "host-cluster",
                name: created.name,
                .stopped,
                timeout: .seconds(30),
                interval: .milliseconds(50)
            )
            #expect(try await client.images().nodes.contains { $0.name.hasSuffix("/sdk-user/sdk-snap:v1") })
            try await client.powerOn(cluster: "host-cluster", name: created.name)
            try await client.waitForStatus(
                cluster: "host-cluster",
                name: created.name,
                .running,
                timeout: .seconds(30),
                interval: .milliseconds(50)
            )
            await #expect(throws: LatticeAPIError.self) {
                try await client.powerOn(cluster: "host-cluster", name: created.name)
            }

            let prepaid = try await client.createInstance(
                cluster: "host-cluster",
                .init(gpuSkuID: "101", displayName: "term", image: image, costType: 4, costTime: "1D")
            )
            let renewed = try await client.renew(cluster: "host-cluster", name: prepaid.name, costTime: "+1D")
            #expect(renewed.ScheduleStopTimestamp > prepaid.ScheduleStopTimestamp)

            try await client.deleteInstance(cluster: "host-cluster", name: created.name)
            try await client.waitForStatus(
                cluster: "host-cluster",
                name: created.name,
                nil,
                timeout: .seconds(30),
                interval: .milliseconds(50)
            )

            let token = try await client.createToken(name: "ci", validityDays: 7)
            #expect(token.token?.hasPrefix("lat_") == true)
            #expect(try await client.tokens().nodes.count == 2)
            let fresh = try await client.regenerateToken(id: token.id)
            #expect(fresh.token != token.token)
            try await client.deleteToken(id: token.id)

            let key = try await client.createSSHKey(
                publicKey:
                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAddCysZZgGCZ7a1QAIsmMbcHCJKfXkWl6zqtDrJ5vsq alice@laptop"
            )
            #expect(
                key.name == "alice@laptop" && key.fingerprint == "SHA256:Kq4jzAizNUCD+LP2phxJj/6hOUfAAoXm9vnQfsa+zG8"
            )
            #expect(try await client.sshKeys().nodes.map(\.id) == [key.id])
            try await client.deleteSSHKey(id: key.id)
            #expect(try await client.sshKeys().nodes.isEmpty)

            #expect(try await client.balance().namespace == "sdk-user")
            #expect(try await client.orders().totalCount == 2)
            #expect(try await client.bills().nodes.contains { $0.kind == "prepaid" })

            let stranger = LatticeClient(baseURL: base, namespace: nil, token: "lat_not-a-real-token")
            await #expect { try await stranger.regions() } throws: { ($0 as? LatticeAPIError)?.status == 401 }
        }
    }

    /// The event stream and a followed log are read as the consumer asks: each `next()` reads
    /// from the connection the iterator holds. The server then stops with both left open: a
    /// followed log that prints nothing more ends on graceful shutdown, as an event stream
    /// does (before, the server waited on it for ever and this test hung).
    @Test func eventsAndLogsAreReadAsTheyHappen() async throws {
        var catalog = Catalog.builtIn
        catalog.regions[0].clusters[0].startDelaySeconds = 0.05
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sdk-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = ServerConfiguration(
            port: 0,
            dataDirectory: directory,
            catalog: catalog,
            bootstrapToken: "sdk-test-admin-token"
        )
        configuration.gateways.sshPort = 0
        let app = try await CompositionRoot.buildApplication(
            configuration: configuration,
            dependencies: .inMemory(),
            logger: Logger(label: "test")
        )
        let image = catalog.images[0].name
        try await app.test(.live) { http in
            let base = URL(string: "http://127.0.0.1:\(http.port!)")!
            let admin = LatticeClient(baseURL: base, namespace: "admin", token: "sdk-test-admin-token")
            let user = try await admin.createUser(namespace: "sdk-user", balance: "100")
            let client = LatticeClient(baseURL: base, namespace: nil, token: user.token)
            let created = try await client.createInstance(
                cluster: "host-cluster",
                .init(gpuSkuID: "66", displayName: "streams", image: image)
            )

            // From the first event on: the create, then status changes until it runs.
            var statuses: [String] = []
            for try await event in client.events(after: 0) where event.instance == created.name {
                if case .string(let status)? = event.data["status"] { statuses.append(status) }
                if statuses.last == "Running" { break }
            }
            #expect(statuses.first == "Creating" && statuses.last == "Running")

            var log = ""
            for try await part in client.followLogs(cluster: "host-cluster", name: created.name, tail: 10) {
                log += part
                if log.contains("lattice: starting") { break }
            }
            #expect(log.contains("on gpu-4090-"))

            // The server's answer ends a stream with its error.
            await #expect { for try await _ in client.followLogs(cluster: "host-cluster", name: "nope") {} } throws: {
                ($0 as? LatticeAPIError)?.status == 404
            }
        }
    }
}
